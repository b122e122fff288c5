"""A task's progress and end, read from observed states only (server/tasks/progress.py), and which operations each
state allows (server/tasks/operations.py `check_transition`)."""

from __future__ import annotations

from typing import Any

import pytest

from server import errors
from server.tasks.model import Operation, State, Task
from server.tasks.operations import check_transition
from server.tasks.progress import observe
from server.wukongs.cache import WukongState
from server.wukongs.status import derive

SPEC = {"cpu": 1, "memory": "1Gi", "disks": [{"name": "root", "size": "1Gi", "storageClassName": "local-path"}]}


def task(operation: Operation, *, instance_uid: str = "old", force: bool = False, state: str = "Running") -> Task:
    return Task(
        {
            "metadata": {"name": "t-1", "namespace": "novasphere-system", "resourceVersion": "5"},
            "spec": {
                "operation": str(operation),
                "target": {"namespace": "n", "name": "w", "uid": "uid-w"},
                "requestedBy": {"user": "u", "tenant": "t"},
                "force": force,
            },
            "status": {"state": state, "action": {"phase": "Sent", "instanceUid": instance_uid}},
        }
    )


def joined(
    *,
    auto_start: bool = True,
    running: bool | None = True,
    printable: str = "Running",
    vmi_phase: str | None = "Running",
    vmi_uid: str = "old",
    vmi_deleting: bool = False,
    paused: bool = False,
    wukong_deleting: bool = False,
    vm: bool = True,
) -> WukongState:
    wukong: dict[str, Any] = {
        "metadata": {"name": "w", "namespace": "n", "uid": "uid-w", "resourceVersion": "1"},
        "spec": {**SPEC, "startStrategy": {"autoStart": auto_start}},
    }
    if wukong_deleting:
        wukong["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    machine = {"metadata": {"name": "w-vm"}, "spec": {"running": running}, "status": {"printableStatus": printable}}
    instance: dict[str, Any] | None = None
    if vmi_phase is not None:
        conditions = [{"type": "Ready", "status": "True"}] + ([{"type": "Paused", "status": "True"}] * paused)
        instance = {
            "metadata": {"name": "w-vm", "uid": vmi_uid},
            "status": {"phase": vmi_phase, "nodeName": "sim-node-1", "conditions": conditions},
        }
        if vmi_deleting:
            instance["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    machine_or_none = machine if vm else None
    status = derive(wukong, machine_or_none, instance, None)
    return WukongState(wukong, machine_or_none, instance, None, status, 1, 1)


@pytest.mark.parametrize(
    ("operation", "observed", "progress", "outcome"),
    [
        # A stop: VM halted → guest shutting down → instance stopped → VM stopped.
        (Operation.STOP, joined(auto_start=False, running=True), 10, None),
        (Operation.STOP, joined(auto_start=False, running=False, printable="Stopping"), 30, None),
        (Operation.STOP, joined(running=False, printable="Stopping", vmi_deleting=True), 50, None),
        (
            Operation.STOP,
            joined(running=False, printable="Stopping", vmi_phase="Succeeded", vmi_deleting=True),
            80,
            None,
        ),
        (Operation.STOP, joined(running=False, printable="Stopping", vmi_phase="Succeeded"), 80, None),
        (Operation.STOP, joined(running=False, printable="Stopped", vmi_phase=None), 100, State.SUCCEEDED),
        # A start: VM set to run → instance created → scheduling → scheduled → running.
        (Operation.START, joined(running=False, printable="Stopped", vmi_phase=None), 10, None),
        (Operation.START, joined(printable="Stopped", vmi_phase=None), 20, None),
        (Operation.START, joined(printable="Starting", vmi_phase="Pending"), 30, None),
        (Operation.START, joined(printable="Starting", vmi_phase="Scheduling"), 45, None),
        (Operation.START, joined(printable="Starting", vmi_phase="Scheduled"), 60, None),
        (Operation.START, joined(), 100, State.SUCCEEDED),
        (Operation.START, joined(printable="Starting", vmi_phase="Failed"), 0, State.FAILED),
        (Operation.START, joined(printable="CrashLoopBackOff", vmi_phase=None), 0, State.FAILED),
        # A restart: the old instance goes, a new one (another UID) comes up.
        (Operation.RESTART, joined(), 10, None),
        (Operation.RESTART, joined(vmi_deleting=True, printable="Stopping"), 30, None),
        (Operation.RESTART, joined(vmi_phase=None, printable="Starting"), 40, None),
        (Operation.RESTART, joined(vmi_uid="new", vmi_phase="Scheduled", printable="Starting"), 60, None),
        (Operation.RESTART, joined(vmi_uid="new"), 100, State.SUCCEEDED),
        (Operation.PAUSE, joined(), 10, None),
        (Operation.PAUSE, joined(paused=True, printable="Paused"), 100, State.SUCCEEDED),
        (Operation.PAUSE, joined(vmi_phase=None, printable="Stopped"), 0, State.FAILED),
        (Operation.RESUME, joined(paused=True, printable="Paused"), 10, None),
        (Operation.RESUME, joined(), 100, State.SUCCEEDED),
        (Operation.DELETE, joined(), 10, None),
        (Operation.DELETE, joined(wukong_deleting=True, printable="Terminating"), 40, None),
        (Operation.DELETE, joined(wukong_deleting=True, vm=False, vmi_phase=None), 70, None),
        (Operation.DELETE, None, 100, State.SUCCEEDED),
    ],
)
def test_progress_stands_for_an_observed_state(
    operation: Operation, observed: WukongState | None, progress: int, outcome: State | None
) -> None:
    seen = observe(task(operation), observed)
    assert (seen.progress, seen.outcome) == (progress, outcome), seen
    assert seen.step


def test_a_deleted_wukong_fails_any_other_operation_and_a_namesake_is_not_it() -> None:
    assert observe(task(Operation.START), None).outcome is State.FAILED
    namesake = joined()
    namesake.wukong["metadata"]["uid"] = "another"
    seen = observe(task(Operation.STOP), namesake)
    assert (seen.outcome, seen.reason) == (State.FAILED, "WUKONG_DELETED")


def test_a_delete_with_its_disks_waits_for_them() -> None:
    with_disks = Task(
        {**task(Operation.DELETE).raw, "spec": {**task(Operation.DELETE).raw["spec"], "deleteDisks": True}}
    )
    seen = observe(with_disks, None)
    assert (seen.progress, seen.outcome) == (90, None)


@pytest.mark.parametrize(
    ("operation", "state", "force", "reason"),
    [
        (Operation.START, joined(), False, "INVALID_TRANSITION"),
        (
            Operation.STOP,
            joined(auto_start=False, running=False, printable="Stopped", vmi_phase=None),
            False,
            "INVALID_TRANSITION",
        ),
        (
            Operation.PAUSE,
            joined(auto_start=False, running=False, printable="Stopped", vmi_phase=None),
            False,
            "INVALID_TRANSITION",
        ),
        (Operation.RESUME, joined(), False, "INVALID_TRANSITION"),
        (Operation.RESTART, joined(printable="Starting", vmi_phase="Scheduled"), False, "INVALID_TRANSITION"),
        (Operation.STOP, joined(wukong_deleting=True, printable="Terminating"), False, "INVALID_TRANSITION"),
        (Operation.DELETE, joined(wukong_deleting=True, printable="Terminating"), False, "INVALID_TRANSITION"),
        (Operation.STOP, joined(), False, None),
        (Operation.START, joined(auto_start=False, running=False, printable="Stopped", vmi_phase=None), False, None),
        (Operation.RESTART, joined(paused=True, printable="Paused"), False, None),
        (Operation.PAUSE, joined(), False, None),
        (Operation.RESUME, joined(paused=True, printable="Paused"), False, None),
        # A forced stop still applies to a VM already stopping gracefully (its instance is still there).
        (Operation.STOP, joined(auto_start=False, running=False, printable="Stopping", vmi_deleting=True), True, None),
    ],
)
def test_transitions(operation: Operation, state: WukongState, force: bool, reason: str | None) -> None:
    if reason is None:
        check_transition(operation, state, [], force=force)
        return
    with pytest.raises(errors.FailedPrecondition) as raised:
        check_transition(operation, state, [], force=force)
    assert raised.value.reason == reason
    assert f"'{state.name}'" in raised.value.message
    assert state.status.power_state.name in raised.value.message or "being deleted" in raised.value.message


def test_a_task_in_progress_allows_only_a_delete_or_a_forced_stop() -> None:
    running_stop = task(Operation.STOP, state="Running")
    busy = joined(auto_start=False, running=False, printable="Stopping", vmi_deleting=True)
    with pytest.raises(errors.FailedPrecondition) as raised:
        check_transition(Operation.START, busy, [running_stop], force=False)
    assert raised.value.reason == errors.Reason.TASK_IN_PROGRESS
    assert "t-1 (stop)" in raised.value.message
    check_transition(Operation.STOP, busy, [running_stop], force=True)
    check_transition(Operation.DELETE, busy, [running_stop], force=False)
    check_transition(Operation.START, busy, [running_stop], force=False, own="t-1")  # its own task is no obstacle
