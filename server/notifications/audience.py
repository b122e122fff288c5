"""Who may hear of an event. The rules of the API's own reads apply: a tenant's events go to its users only, and only
to those who may see its VMs (`vm:query`, as every Wukong read requires; `admin` implies it, as `Caller.may` says).

- VM events: every such user whose preferences want them.
- Task and console events: their `owner` only, if they still may see the VM (a role lost since the task began ends
  their right to hear about it).
- Quota events: the tenant's administrators, i.e. the holders of `binding:manage` (deploy/authz.yaml's `tenant-admin`
  role: the permission that runs one tenant; `vm:*` holders are its operators, who can do nothing about a quota).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from server.auth import BINDING_MANAGE, Caller
from server.notifications.events import VM_KINDS, Event, EventKind
from server.notifications.preferences import Preferences, wants

SEE_VMS = "vm:query"
RUN_TENANT = BINDING_MANAGE


@dataclass(frozen=True)
class Recipient:
    """A user of one tenant, with their permissions there (a user bound in two tenants is two candidates)."""

    user: str
    tenant: str
    permissions: frozenset[str]
    preferences: Preferences

    def may(self, permission: str) -> bool:
        return Caller(self.user, self.tenant, self.permissions).may(permission)


def recipients(event: Event, candidates: Iterable[Recipient]) -> list[Recipient]:
    """The candidates who should be told of `event`, in their order."""
    return [r for r in candidates if event.tenant and r.tenant == event.tenant and _entitled(event, r)]


def _entitled(event: Event, recipient: Recipient) -> bool:
    if event.kind is EventKind.QUOTA_NEARLY_USED:
        allowed = recipient.may(RUN_TENANT)
    elif event.kind in VM_KINDS:
        allowed = recipient.may(SEE_VMS)
    else:
        allowed = recipient.user == event.owner and recipient.may(SEE_VMS)
    return allowed and wants(recipient.preferences, event)
