"""What is worth telling people, derived from what the informers show. Pure functions of a before and an after state:
the notifier (on the leader) feeds them changes and delivers what they return.

An event's id is stable: a hash of its kind, the object it is about and the version of the change (a Wukong state's
cursor, which is the etcd revision of the change and so the same on every replica; a task's id and end state; a
console session's id; a ResourceQuota's resourceVersion). The same change seen by any replica, before or after a
leader change, has the same id, so a re-send is recognisably the same notification (idempotency id, provider collapse).

A first sighting (`before` None) is not a change: a new leader's initial list must not announce every VM again. A task
first seen already ended is the exception, for `FRESH_FOR`: an end that fell between two leaders is still told, under
the id the old leader would have used.
"""

from __future__ import annotations

import datetime
import enum
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from server import quantity
from server.tasks.model import Operation, State, Task
from server.wukongs.cache import WukongState
from server.wukongs.status import PowerState

NEARLY_USED_PERCENT = 90
FRESH_FOR = datetime.timedelta(minutes=5)
MAX_MESSAGE = 200
"""A task's message is quoted up to this length: push payloads are small."""

# A VM in one of these has a running instance (or is losing it): reaching STOPPED from here is a stop. STOPPING is
# among them because a stop is usually seen in two steps (RUNNING → STOPPING → STOPPED).
_UP = frozenset({PowerState.RUNNING, PowerState.PAUSED, PowerState.MIGRATING, PowerState.STOPPING})


class EventKind(enum.StrEnum):
    VM_STOPPED_UNEXPECTEDLY = "VM_STOPPED_UNEXPECTEDLY"
    VM_FAILED = "VM_FAILED"
    TASK_ENDED = "TASK_ENDED"
    """Succeeded or cancelled."""
    TASK_FAILED = "TASK_FAILED"
    CONSOLE_TAKEN_OVER = "CONSOLE_TAKEN_OVER"
    QUOTA_NEARLY_USED = "QUOTA_NEARLY_USED"


VM_KINDS = frozenset({EventKind.VM_STOPPED_UNEXPECTEDLY, EventKind.VM_FAILED})
"""Events about a VM that everyone who may see it can hear; the others concern one person (`Event.owner`) or the
tenant's administrators."""


@dataclass(frozen=True)
class Event:
    id: str
    kind: EventKind
    tenant: str
    namespace: str
    occurred_at: datetime.datetime
    wukong: str = ""
    wukong_uid: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    """The Wukong's labels, for matching preferences."""
    task_id: str = ""
    task_operation: Operation | None = None
    owner: str = ""
    """The user the event is about: who requested the task, whose console was taken. Empty for VM and quota events."""
    details: Mapping[str, str] = field(default_factory=dict)


def _event_id(kind: EventKind, subject: str, version: str) -> str:
    digest = hashlib.sha256(f"{kind}\n{subject}\n{version}".encode()).hexdigest()
    return digest[:32]


def wukong_events(
    before: WukongState | None,
    after: WukongState | None,
    *,
    tenant: str,
    explained: frozenset[str],
    at: datetime.datetime,
) -> list[Event]:
    """At most one event for a change of one Wukong. Entering ERROR is VM_FAILED whatever caused it: a failure is news
    even during a task. A VM that was up and is now STOPPED is VM_STOPPED_UNEXPECTEDLY unless its uid is in `explained`
    (a stop, delete or restart of anyone's is in progress or just ended) or its Wukong no longer asks to run (someone
    changed the intent, which is how stops are made)."""
    if before is None or after is None:
        return []
    was, now = before.status.power_state, after.status.power_state
    if now is PowerState.ERROR and was is not PowerState.ERROR:
        kind = EventKind.VM_FAILED
    elif now is PowerState.STOPPED and was in _UP and after.uid not in explained and after.status.wants_running:
        kind = EventKind.VM_STOPPED_UNEXPECTEDLY
    else:
        return []
    details = {"was": was.value, "power_state": now.value, "status": after.status.printable_status}
    return [
        Event(
            id=_event_id(kind, after.uid, str(after.cursor)),
            kind=kind,
            tenant=tenant,
            namespace=after.namespace,
            occurred_at=at,
            wukong=after.name,
            wukong_uid=after.uid,
            labels=after.labels,
            details=_present(details | {"message": after.status.message}),
        )
    ]


def task_events(
    before: Task | None, after: Task, *, at: datetime.datetime, labels: Mapping[str, str] | None = None
) -> list[Event]:
    """TASK_ENDED or TASK_FAILED when a task ends, for whoever requested it. `labels`: its Wukong's, if the notifier
    knows them. A batch is told through its children (one per VM, which the coalescer gathers), not as itself."""
    if after.open or after.operation is Operation.BATCH or (before is not None and not before.open):
        return []
    ended = after.completion_time or at
    if before is None and at - ended > FRESH_FOR:
        return []
    kind = EventKind.TASK_FAILED if after.state is State.FAILED else EventKind.TASK_ENDED
    details = {"state": str(after.state), "reason": after.reason, "message": after.message[:MAX_MESSAGE]}
    return [
        Event(
            id=_event_id(kind, after.id, str(after.state)),
            kind=kind,
            tenant=after.tenant,
            namespace=after.namespace,
            occurred_at=ended,
            wukong=after.name,
            wukong_uid=after.uid,
            labels=labels or {},
            task_id=after.id,
            task_operation=after.operation,
            owner=after.user,
            details=_present(details),
        )
    ]


def console_taken_over(
    vm: WukongState,
    *,
    tenant: str,
    session_id: str,
    protocol: str,
    holder: str,
    taken_by: str,
    at: datetime.datetime,
) -> Event | None:
    """The event for `holder`, whose console session `session_id` `taken_by` took over; None when they took it from
    themselves (another device of theirs), which is nothing to tell."""
    if holder == taken_by:
        return None
    kind = EventKind.CONSOLE_TAKEN_OVER
    return Event(
        id=_event_id(kind, session_id, ""),
        kind=kind,
        tenant=tenant,
        namespace=vm.namespace,
        occurred_at=at,
        wukong=vm.name,
        wukong_uid=vm.uid,
        labels=vm.labels,
        owner=holder,
        details={"session_id": session_id, "protocol": protocol, "taken_by": taken_by},
    )


def quota_nearly_used(
    *,
    tenant: str,
    namespace: str,
    resource: str,
    used: str,
    hard: str,
    used_before: str | None,
    quota_uid: str,
    resource_version: str,
    at: datetime.datetime,
) -> Event | None:
    """The event when the use of `resource` (Kubernetes quantities, as a ResourceQuota's status shows them) reaches
    NEARLY_USED_PERCENT of `hard`, from below: once per crossing, not on every change while it stays up there.
    `used_before` None is a first sighting. A quantity this server cannot read is never nearly used."""
    try:
        percent = _percent(used, hard)
        before = None if used_before is None else _percent(used_before, hard)
    except ValueError:
        return None
    if percent is None or percent < NEARLY_USED_PERCENT or before is None or before >= NEARLY_USED_PERCENT:
        return None
    kind = EventKind.QUOTA_NEARLY_USED
    return Event(
        id=_event_id(kind, f"{quota_uid}/{resource}", resource_version),
        kind=kind,
        tenant=tenant,
        namespace=namespace,
        occurred_at=at,
        details={"resource": resource, "used": used, "hard": hard, "percent": str(percent)},
    )


def _percent(used: str, hard: str) -> int | None:
    """Whole percent, rounded down; None for a zero limit (nothing can be used: not a matter of nearly)."""
    limit = quantity.parse_millis(hard)
    return quantity.parse_millis(used) * 100 // limit if limit > 0 else None


def _present(details: Mapping[str, str]) -> dict[str, str]:
    return {key: value for key, value in details.items() if value}
