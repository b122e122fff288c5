"""Who is calling: the `Caller` every RPC runs as, and where it comes from.

The authorisation interceptor asks a `CallerSource` for each call (`accounts.Accounts`: access tokens, or the
development identity for calls without credentials when a setting allows it) and makes the caller current for the
servicers and the domain (`current()`).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

ADMIN = "admin"
"""A permission that implies every other."""
TENANT_MANAGE, USER_MANAGE, ROLE_MANAGE = "tenant:manage", "user:manage", "role:manage"
"""Platform administration: these act on the whole installation, not on the caller's tenant."""
BINDING_MANAGE = "binding:manage"
"""Tenant administration: who holds which role in the caller's own tenant."""
APIKEY_MANAGE = "apikey:manage"
NOTIFICATION_SUBSCRIBE = "notification:subscribe"
"""One's own devices and notification preferences."""
NOTIFICATION_WEBHOOK_MANAGE = "notification:webhook:manage"
"""The tenant's chat webhooks: where every VM event of the tenant is posted."""
KNOWN_PERMISSIONS: frozenset[str] = frozenset(
    {
        "vm:query",
        "vm:create",
        "vm:update",
        "vm:delete",
        "vm:start",
        "vm:stop",
        "vm:restart",
        "vm:pause",
        "vm:console:access",
        "vm:console:manage",
        "vm:access-service:manage",
        "vm:ssh-key:manage",
        "task:query",
        NOTIFICATION_SUBSCRIBE,
        NOTIFICATION_WEBHOOK_MANAGE,
        APIKEY_MANAGE,
        BINDING_MANAGE,
        TENANT_MANAGE,
        USER_MANAGE,
        ROLE_MANAGE,
        ADMIN,
    }
)
"""Every permission string a role may hold."""
NOT_FOR_API_KEYS: frozenset[str] = frozenset(
    {APIKEY_MANAGE, BINDING_MANAGE, TENANT_MANAGE, USER_MANAGE, ROLE_MANAGE, ADMIN}
)
"""Administration stays with people who log in: a leaked key can neither mint keys nor change who may do what."""


@dataclass(frozen=True)
class Caller:
    user: str
    tenant: str
    permissions: frozenset[str]
    session: str = ""
    """The login session the caller's access token belongs to; empty for the development identity and API keys."""
    client_type: str = ""
    api_key: str = ""
    """The id of the API key the caller used, if it used one."""
    address: str = ""
    """The client's address (as Envoy reports it): what per-client budgets are kept by."""
    development: bool = False
    """The development identity (NOVASPHERE_DEV_IDENTITY): not a stored user, not rate-limited."""

    def may(self, permission: str) -> bool:
        return permission in self.permissions or ADMIN in self.permissions


class CallerSource(Protocol):
    async def caller(self, metadata: Sequence[tuple[str, str | bytes]], *, address: str) -> Caller:
        """The caller of a request with this metadata from `address`; raises `errors.Unauthenticated` without valid
        credentials."""


_CURRENT: contextvars.ContextVar[Caller] = contextvars.ContextVar("caller")


def current() -> Caller:
    """The caller of the RPC being served, as the authorisation interceptor established it."""
    return _CURRENT.get()


def acting_as(caller: Caller) -> contextvars.Token[Caller]:
    return _CURRENT.set(caller)


def done_acting(token: contextvars.Token[Caller]) -> None:
    """Restores the caller before `acting_as`. A stream the client abandoned has its generator closed later by the
    event loop's finaliser, in a context of its own: there is nothing to restore there (and reset would raise)."""
    with contextlib.suppress(ValueError):
        _CURRENT.reset(token)
