"""Events derived from changes as the informers deliver them (server/notifications/events.py): a real `WukongCache`
fed Wukongs and VirtualMachines, real `Task` snapshots. The helpers at the top make events for the other notification
tests."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from server.kube import kubevirt
from server.notifications import events
from server.notifications.events import Event, EventKind
from server.tasks.model import Operation, Task
from server.wukongs.cache import KINDS, Change, WukongCache
from tests.unit.test_wukong_queries import add, vm_item, wukong_item

NOW = datetime.datetime(2026, 11, 22, 15, 30, tzinfo=datetime.UTC)
NOBODY: frozenset[str] = frozenset()


class Replica:
    """One replica's Wukong cache, recording the changes it publishes."""

    def __init__(self) -> None:
        self.cache = WukongCache()
        for kind in KINDS:
            self.cache.replace(kind, [], 1)
        self.changes: list[Change] = []
        self.cache.subscribe(self.changes.append)

    def see(self, item: dict[str, Any]) -> Change:
        if "printableStatus" in item.get("status", {}):
            self.cache.apply(kubevirt.VIRTUAL_MACHINES, "MODIFIED", item, int(item["metadata"]["resourceVersion"]))
        else:
            add(self.cache, item)
        return self.changes[-1]


def vm_event(
    namespace: str = "prod",
    name: str = "web-1",
    *,
    labels: dict[str, str] | None = None,
    printable: str = "Stopped",
    tenant: str = "acme",
) -> Event:
    """The event of a VM that was running and is now `printable`, nobody having asked."""
    replica = Replica()
    replica.see(wukong_item(namespace, name, labels=labels))
    replica.see(vm_item(namespace, name, "Running"))
    change = replica.see(vm_item(namespace, name, printable))
    (event,) = events.wukong_events(change.before, change.after, tenant=tenant, explained=NOBODY, at=NOW)
    return event


def task(
    name: str = "web-1",
    *,
    state: str = "Running",
    operation: Operation = Operation.STOP,
    user: str = "ada",
    tenant: str = "acme",
    namespace: str = "prod",
    message: str = "",
    ended: datetime.datetime = NOW,
) -> Task:
    status: dict[str, Any] = {"state": state}
    if state not in ("Pending", "Running"):
        status |= {"completionTime": ended.isoformat(), "message": message}
    return Task(
        {
            "metadata": {"name": f"task-{name}", "namespace": "novasphere-system", "resourceVersion": "7"},
            "spec": {
                "operation": str(operation),
                "target": {"namespace": namespace, "name": name, "uid": f"uid-{namespace}-{name}"},
                "requestedBy": {"user": user, "tenant": tenant},
            },
            "status": status,
        }
    )


def task_event(name: str = "web-1", *, state: str = "Succeeded", **fields: Any) -> Event:
    """The event of a task on `name` that was running and has now ended in `state`."""
    (event,) = events.task_events(task(name, **fields), task(name, state=state, **fields), at=NOW)
    return event


# -- VMs


def test_a_running_vm_that_stops_without_a_task_stopped_unexpectedly() -> None:
    event = vm_event(labels={"app": "web"})
    assert (event.kind, event.tenant, event.namespace, event.wukong, event.wukong_uid) == (
        EventKind.VM_STOPPED_UNEXPECTEDLY,
        "acme",
        "prod",
        "web-1",
        "uid-prod-web-1",
    )
    assert (dict(event.labels), event.owner, event.task_id, event.occurred_at) == ({"app": "web"}, "", "", NOW)
    assert event.details == {"was": "RUNNING", "power_state": "STOPPED", "status": "Stopped"}


def test_a_stop_explained_by_a_task_or_by_the_wukongs_intent_is_no_event() -> None:
    replica = Replica()
    replica.see(wukong_item("prod", "web-1"))
    replica.see(vm_item("prod", "web-1", "Running"))
    stopped = replica.see(vm_item("prod", "web-1", "Stopped"))
    explained = frozenset({"uid-prod-web-1"})
    assert events.wukong_events(stopped.before, stopped.after, tenant="acme", explained=explained, at=NOW) == []

    replica.see(vm_item("prod", "web-1", "Running"))
    intent = wukong_item("prod", "web-1")
    intent["spec"]["startStrategy"] = {"autoStart": False}  # what a stop writes: the Wukong no longer asks to run
    replica.see(intent)
    stopped = replica.see(vm_item("prod", "web-1", "Stopped"))
    assert events.wukong_events(stopped.before, stopped.after, tenant="acme", explained=NOBODY, at=NOW) == []


def test_a_stop_seen_in_two_steps_is_one_event() -> None:
    replica = Replica()
    replica.see(wukong_item("prod", "web-1"))
    replica.see(vm_item("prod", "web-1", "Running"))
    stopping = replica.see(vm_item("prod", "web-1", "Stopping"))
    stopped = replica.see(vm_item("prod", "web-1", "Stopped"))
    derived = [
        events.wukong_events(c.before, c.after, tenant="acme", explained=NOBODY, at=NOW) for c in (stopping, stopped)
    ]
    assert [[e.kind for e in found] for found in derived] == [[], [EventKind.VM_STOPPED_UNEXPECTEDLY]]


def test_entering_an_error_state_is_a_failure_even_during_a_task_and_staying_there_is_not_news() -> None:
    replica = Replica()
    replica.see(wukong_item("prod", "web-1"))
    replica.see(vm_item("prod", "web-1", "Starting"))
    failing = replica.see(vm_item("prod", "web-1", "CrashLoopBackOff"))
    still_failing = replica.see(vm_item("prod", "web-1", "ErrImagePull"))
    explained = frozenset({"uid-prod-web-1"})
    (event,) = events.wukong_events(failing.before, failing.after, tenant="acme", explained=explained, at=NOW)
    assert (event.kind, event.details["status"]) == (EventKind.VM_FAILED, "CrashLoopBackOff")
    assert event.details["message"].startswith("the VM keeps failing to start")
    assert (
        events.wukong_events(still_failing.before, still_failing.after, tenant="acme", explained=NOBODY, at=NOW) == []
    )


@pytest.mark.parametrize(
    "steps",
    [
        ["Starting", "Running"],
        ["Stopped", "Starting"],
        ["Running", "Paused"],
        ["Running", "Migrating"],
        ["Running", "Unknown"],
        ["Running", "Terminating"],
    ],
)
def test_ordinary_transitions_are_no_event(steps: list[str]) -> None:
    replica = Replica()
    replica.see(wukong_item("prod", "web-1"))
    for printable in steps:
        change = replica.see(vm_item("prod", "web-1", printable))
    assert events.wukong_events(change.before, change.after, tenant="acme", explained=NOBODY, at=NOW) == []


def test_a_first_sighting_and_a_deletion_are_no_event() -> None:
    replica = Replica()
    added = replica.see(wukong_item("prod", "web-1"))
    assert added.before is None
    assert events.wukong_events(None, added.after, tenant="acme", explained=NOBODY, at=NOW) == []
    assert events.wukong_events(added.after, None, tenant="acme", explained=NOBODY, at=NOW) == []


def test_every_replica_derives_the_same_id_for_the_same_change_and_another_for_the_next() -> None:
    item, running, stopped = (
        wukong_item("prod", "web-1"),
        vm_item("prod", "web-1", "Running"),
        vm_item("prod", "web-1", "Stopped"),
    )
    ids = []
    for replica in (Replica(), Replica()):  # e.g. the old leader and the new one, fed the same informer events
        for raw in (item, running):
            replica.see(raw)
        change = replica.see(stopped)
        ids.append(
            [e.id for e in events.wukong_events(change.before, change.after, tenant="acme", explained=NOBODY, at=NOW)]
        )
    assert ids[0] == ids[1]
    assert len(ids[0][0]) == 32

    replica = Replica()
    for raw in (item, running, stopped, vm_item("prod", "web-1", "Running")):
        replica.see(raw)
    again = replica.see(vm_item("prod", "web-1", "Stopped"))
    (later,) = events.wukong_events(again.before, again.after, tenant="acme", explained=NOBODY, at=NOW)
    assert later.id != ids[0][0]


# -- tasks


@pytest.mark.parametrize(
    ("state", "kind"),
    [("Succeeded", EventKind.TASK_ENDED), ("Cancelled", EventKind.TASK_ENDED), ("Failed", EventKind.TASK_FAILED)],
)
def test_a_task_that_ends_is_told_to_whoever_requested_it(state: str, kind: EventKind) -> None:
    event = task_event(state=state, message="the Wukong no longer exists")
    assert (event.kind, event.owner, event.tenant, event.task_id, event.task_operation) == (
        kind,
        "ada",
        "acme",
        "task-web-1",
        Operation.STOP,
    )
    assert (event.namespace, event.wukong, event.wukong_uid, event.occurred_at) == (
        "prod",
        "web-1",
        "uid-prod-web-1",
        NOW,
    )
    assert event.details == {"state": state, "message": "the Wukong no longer exists"}


def test_an_open_task_an_already_ended_one_and_a_batch_are_no_event() -> None:
    assert events.task_events(task(state="Pending"), task(state="Running"), at=NOW) == []
    assert events.task_events(task(state="Failed"), task(state="Failed"), at=NOW) == []
    batch = task(state="Succeeded", operation=Operation.BATCH)
    assert events.task_events(task(state="Running", operation=Operation.BATCH), batch, at=NOW) == []


def test_a_task_first_seen_ended_is_told_only_if_it_just_ended_and_under_the_same_id() -> None:
    (seen_ending,) = events.task_events(task(), task(state="Succeeded"), at=NOW)
    (first_seen,) = events.task_events(None, task(state="Succeeded"), at=NOW + datetime.timedelta(minutes=2))
    assert first_seen == seen_ending
    long_ago = task(state="Succeeded", ended=NOW - datetime.timedelta(hours=1))
    assert events.task_events(None, long_ago, at=NOW) == []


def test_a_tasks_end_states_have_their_own_ids() -> None:
    assert task_event(state="Succeeded").id == task_event(state="Succeeded").id
    assert task_event(state="Succeeded").id != task_event(state="Cancelled").id
    assert task_event("web-1").id != task_event("web-2").id


# -- given by the caller


def test_a_console_taken_over_is_told_to_whoever_held_it_unless_they_took_it_themselves() -> None:
    replica = Replica()
    state = replica.see(wukong_item("prod", "web-1", labels={"app": "web"})).state
    event = events.console_taken_over(
        state, tenant="acme", session_id="cs-1", protocol="vnc", holder="ada", taken_by="bob", at=NOW
    )
    assert event is not None
    assert (event.kind, event.owner, event.wukong, dict(event.labels)) == (
        EventKind.CONSOLE_TAKEN_OVER,
        "ada",
        "web-1",
        {"app": "web"},
    )
    assert event.details == {"session_id": "cs-1", "protocol": "vnc", "taken_by": "bob"}
    own = events.console_taken_over(
        state, tenant="acme", session_id="cs-2", protocol="vnc", holder="ada", taken_by="ada", at=NOW
    )
    assert own is None


def quota(used: str, used_before: str | None, *, hard: str = "10Gi", version: str = "41") -> Event | None:
    return events.quota_nearly_used(
        tenant="acme",
        namespace="prod",
        resource="requests.memory",
        used=used,
        hard=hard,
        used_before=used_before,
        quota_uid="q-1",
        resource_version=version,
        at=NOW,
    )


def test_a_quota_is_nearly_used_once_it_crosses_ninety_percent() -> None:
    event = quota("9Gi", "8Gi")
    assert event is not None
    assert (event.kind, event.namespace, event.wukong, event.owner) == (EventKind.QUOTA_NEARLY_USED, "prod", "", "")
    assert event.details == {"resource": "requests.memory", "used": "9Gi", "hard": "10Gi", "percent": "90"}
    assert quota("9Gi", "8Gi") == event
    assert quota("9Gi", "8Gi", version="42") != event
    assert quota("9500Mi", "9Gi") is None  # still up there: told already
    assert quota("8Gi", "7Gi") is None
    assert quota("9Gi", None) is None  # a first sighting
    assert quota("0", "0", hard="0") is None
    assert quota("lots", "8Gi") is None
    cpu = quota("1900m", "1", hard="2")
    assert cpu is not None
    assert cpu.details["percent"] == "95"
