"""What a task's VM shows: the progress, the step it stands for, and whether the task has ended. Pure functions of
the Wukong's joined state (Wukong, VirtualMachine, instance), so every value is tied to a state that was observed and
never written ahead of it.

The steps follow KubeVirt's instance lifecycle (reference/kubevirt.md §1.6, §3.4): a start goes VM set to run →
instance created → scheduling → scheduled (booting) → running; a stop goes VM set to halt → instance shutting down →
instance stopped → VM stopped; a restart replaces the instance (a new UID) and follows the new one to running.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from server.tasks.model import Operation, State, Task
from server.wukongs.cache import WukongState
from server.wukongs.status import PowerState

SENT = 10
"""The progress of a task whose action was sent and nothing more observed yet."""

START_FAILED = "VM_START_FAILED"
WUKONG_GONE = "WUKONG_DELETED"


@dataclass(frozen=True)
class Observation:
    progress: int
    step: str
    outcome: State | None = None
    reason: str = ""
    message: str = ""


def observe(task: Task, state: WukongState | None) -> Observation:
    """Where `task` (action sent) stands, given its Wukong's current state (None: the Wukong is gone)."""
    if state is not None and state.uid != task.uid:
        state = None  # a namesake created since is another Wukong
    if task.operation is Operation.DELETE:
        return _delete(task, state)
    if state is None:
        return Observation(
            0, "Wukong deleted", State.FAILED, WUKONG_GONE, "the Wukong was deleted before the operation finished"
        )
    return _OBSERVERS[task.operation](task, state)


def _start(task: Task, state: WukongState) -> Observation:
    vm, vmi = state.vm or {}, state.vmi
    failure = _start_failure(state)
    if failure:
        return Observation(0, failure, State.FAILED, START_FAILED, f"the VM did not start: {failure}")
    if vmi is not None and _phase(vmi) == "Running" and state.status.power_state in (PowerState.RUNNING,):
        return Observation(100, _running_on(state), State.SUCCEEDED)
    if vmi is not None and not _deleting(vmi):
        return _booting(vmi)
    if _spec(vm).get("running") is True or _spec(vm).get("runStrategy") == "Always":
        return Observation(20, "VirtualMachine set to run")
    if state.status.power_state is PowerState.PROVISIONING:
        return Observation(15, "disks being provisioned")
    return Observation(SENT, "start requested")


def _stop(task: Task, state: WukongState) -> Observation:
    vm, vmi = state.vm, state.vmi
    if vm is not None and vmi is None and state.status.power_state is PowerState.STOPPED:
        return Observation(100, "VM stopped", State.SUCCEEDED)
    if vm is None and state.status.power_state in (PowerState.PROVISIONING, PowerState.ERROR):
        return Observation(100, "VM stopped (it had not been created yet)", State.SUCCEEDED)
    if vmi is not None and _phase(vmi) in ("Succeeded", "Failed"):
        return Observation(80, "instance stopped")
    if vmi is not None and _deleting(vmi):
        return Observation(50, "guest shutting down" + (" (forced)" if task.force else ""))
    if vm is not None and (_spec(vm).get("running") is False or _spec(vm).get("runStrategy") == "Halted"):
        return Observation(30, "VirtualMachine set to halt")
    return Observation(SENT, "stop requested")


def _restart(task: Task, state: WukongState) -> Observation:
    vmi = state.vmi
    if vmi is None:
        return Observation(40, "old instance gone")
    if _uid(vmi) == task.instance_uid:
        return (
            Observation(30, "old instance shutting down") if _deleting(vmi) else Observation(SENT, "restart requested")
        )
    failure = _start_failure(state)
    if failure:
        return Observation(50, failure, State.FAILED, START_FAILED, f"the VM did not come back: {failure}")
    if _phase(vmi) == "Running" and state.status.power_state is PowerState.RUNNING:
        return Observation(100, _running_on(state) + " (new instance)", State.SUCCEEDED)
    booting = _booting(vmi)
    return Observation(max(50, booting.progress), "new " + booting.step)


def _pause(task: Task, state: WukongState) -> Observation:
    if state.vmi is not None and _condition(state.vmi, "Paused"):
        return Observation(100, "VM paused", State.SUCCEEDED)
    return _guest_gone(state) or Observation(SENT, "pause requested")


def _resume(task: Task, state: WukongState) -> Observation:
    if state.vmi is not None and _phase(state.vmi) == "Running" and not _condition(state.vmi, "Paused"):
        return Observation(100, "VM running", State.SUCCEEDED)
    return _guest_gone(state) or Observation(SENT, "resume requested")


def _delete(task: Task, state: WukongState | None) -> Observation:
    if state is None:
        if task.delete_disks:
            return Observation(90, "Wukong deleted; deleting its disks")
        return Observation(100, "Wukong deleted (its disks are kept)", State.SUCCEEDED)
    if state.vm is None and state.status.power_state is PowerState.DELETING:
        return Observation(70, "VirtualMachine deleted")
    if state.status.power_state is PowerState.DELETING:
        return Observation(40, "Wukong being deleted")
    return Observation(SENT, "delete requested")


def _guest_gone(state: WukongState) -> Observation | None:
    if state.vmi is None or _deleting(state.vmi) or _phase(state.vmi) in ("Succeeded", "Failed"):
        return Observation(0, "instance stopped", State.FAILED, "VM_NOT_RUNNING", "the VM stopped meanwhile")
    return None


def _booting(vmi: Mapping[str, Any]) -> Observation:
    phase = _phase(vmi)
    if phase == "Scheduled":
        return Observation(60, "instance scheduled; guest booting")
    if phase == "Scheduling":
        if _condition(vmi, "PodScheduled", "False"):
            return Observation(45, "instance waiting for a node (unschedulable)")
        return Observation(45, "instance scheduling")
    if phase == "Running":
        return Observation(80, "guest running")
    return Observation(30, "instance created")


def _start_failure(state: WukongState) -> str:
    vmi = state.vmi
    if vmi is not None and _phase(vmi) == "Failed" and not _deleting(vmi):
        return "the instance failed while booting"
    printable = state.status.printable_status
    if printable in ("CrashLoopBackOff", "ErrImagePull", "ImagePullBackOff", "ErrorPvcNotFound", "DataVolumeError"):
        return f"KubeVirt reports {printable}: {state.status.message}"
    return ""


def _running_on(state: WukongState) -> str:
    return f"VM running on {state.status.node}" if state.status.node else "VM running"


def _spec(raw: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return (raw or {}).get("spec") or {}


def _phase(vmi: Mapping[str, Any]) -> str:
    return str((vmi.get("status") or {}).get("phase") or "")


def _uid(raw: Mapping[str, Any]) -> str:
    return str(raw["metadata"].get("uid") or "")


def _deleting(raw: Mapping[str, Any]) -> bool:
    return bool(raw["metadata"].get("deletionTimestamp"))


def _condition(raw: Mapping[str, Any], condition_type: str, status: str = "True") -> bool:
    conditions = (raw.get("status") or {}).get("conditions") or []
    return any(c.get("type") == condition_type and c.get("status") == status for c in conditions)


_OBSERVERS = {
    Operation.START: _start,
    Operation.STOP: _stop,
    Operation.RESTART: _restart,
    Operation.PAUSE: _pause,
    Operation.RESUME: _resume,
}
