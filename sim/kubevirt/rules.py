"""KubeVirt's rules as pure functions, each citing shared/reference/kubevirt.md."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sim.kubeapi import Body
from sim.runtime import deep_get

FINAL_PHASES = ("Succeeded", "Failed")  # §3.4
STARTING_PHASES = ("", "Pending", "Scheduling", "Scheduled")  # §3.3 row 13
VM_FINALIZER = "kubevirt.io/virtualMachineControllerFinalize"  # §1.6
VMI_FINALIZERS = (VM_FINALIZER, "kubevirt.io/foregroundDeleteVirtualMachine")
DEFAULT_GRACE_SECONDS = 30  # §1.6 DefaultGracePeriodSeconds


class RunStrategyError(ValueError):
    pass


def run_strategy(spec: Mapping[str, Any]) -> str:
    """§1.6 vm.RunStrategy(): running and runStrategy are mutually exclusive; running true ≡ Always; running false or
    neither ≡ Halted."""
    running, strategy = spec.get("running"), spec.get("runStrategy")
    if running is not None and strategy:
        raise RunStrategyError("running and runstrategy are mutually exclusive")
    if strategy:
        return str(strategy)
    return "Always" if running else "Halted"


def condition(obj: Mapping[str, Any] | None, kind: str) -> Body | None:
    return next((c for c in deep_get(obj, "status", "conditions", default=[]) if c.get("type") == kind), None)


def is_final(vmi: Mapping[str, Any] | None) -> bool:
    return deep_get(vmi, "status", "phase", default="") in FINAL_PHASES


def printable_status(
    *,
    vm: Mapping[str, Any],
    vmi: Mapping[str, Any] | None,
    create_pending: bool,
    data_volume_error: bool = False,
    data_volume_provisioning: bool = False,
    claim_unbound: bool = False,
) -> str:
    """§3.3 setPrintableStatus: the first true row wins, else Unknown. Row 3 (Migrating) and 16 (WaitingForReceiver)
    cannot occur in the simulator (no migrations, no decentralized receivers)."""
    phase = deep_get(vmi, "status", "phase", default="")
    live = vmi is not None and phase not in FINAL_PHASES
    paused = (condition(vmi, "Paused") or {}).get("status") == "True"
    synchronized = condition(vmi, "Synchronized") or {}
    scheduled = condition(vmi, "PodScheduled") or {}
    strategy = run_strategy(vm.get("spec", {}))
    fail_count = deep_get(vm, "status", "startFailure", "consecutiveFailCount", default=0)
    rows = [
        ("Terminating", bool(vm["metadata"].get("deletionTimestamp"))),
        ("Stopping", live and bool(vmi and vmi["metadata"].get("deletionTimestamp"))),
        ("Paused", phase == "Running" and paused),
        ("Running", phase == "Running" and not paused),
        (
            "ErrorPvcNotFound",
            synchronized.get("status") == "False" and synchronized.get("reason") == "FailedPvcNotFound",
        ),
        ("DataVolumeError", data_volume_error),
        ("ErrorUnschedulable", scheduled.get("status") == "False" and scheduled.get("reason") == "Unschedulable"),
        ("Provisioning", data_volume_provisioning),
        ("WaitingForVolumeBinding", claim_unbound and (create_pending or live)),
        ("ErrImagePull", synchronized.get("status") == "False" and synchronized.get("reason") == "ErrImagePull"),
        (
            "ImagePullBackOff",
            synchronized.get("status") == "False" and synchronized.get("reason") == "ImagePullBackOff",
        ),
        ("Starting", (vmi is None and create_pending) or (vmi is not None and phase in STARTING_PHASES)),
        (
            "CrashLoopBackOff",
            (vmi is None or not live)
            and not create_pending
            and fail_count > 0
            and strategy in ("Always", "RerunOnFailure", "Once"),
        ),
        ("Stopped", (vmi is not None and not live) or (vmi is None and not create_pending)),
    ]
    return next((value for value, holds in rows if holds), "Unknown")


def vm_conditions(vmi: Mapping[str, Any] | None, *, restart_required: bool, now: str) -> list[Body]:
    """§3.2: Ready always present (copied from the VMI, or VMINotExists / VMIConditionMissing); every other VMI
    condition mirrored with its type, status and reason; RestartRequired when the template changed under a live VMI."""
    if vmi is None:
        ready: Body = {"type": "Ready", "status": "False", "reason": "VMINotExists", "message": "VMI does not exist"}
    else:
        found = condition(vmi, "Ready")
        ready = (
            {k: found[k] for k in ("type", "status", "reason", "message") if k in found}
            if found
            else {"type": "Ready", "status": "False", "reason": "VMIConditionMissing", "message": ""}
        )
    mirrored = [
        {k: c[k] for k in ("type", "status", "reason", "message") if k in c}
        for c in deep_get(vmi, "status", "conditions", default=[])
        if c.get("type") not in ("Ready",)
    ]
    result = [ready, *mirrored]
    if restart_required:
        result.append(
            {
                "type": "RestartRequired",
                "status": "True",
                "reason": "",
                "message": "a non-live-updatable field was changed in the template spec",
            }
        )
    for item in result:
        item.setdefault("lastProbeTime", None)
        item.setdefault("lastTransitionTime", now)
    return result


def vmi_phase_after(
    phase: str,
    *,
    pod: str,
    step_done: bool,
    fails_to_start: bool = False,
    crash_due: bool = False,
) -> tuple[str, str]:
    """§3.4's phase sequence for a VMI that is not being deleted: the phase it moves to from what is observed, and
    `status.reason` when that is Failed. The same phase means "wait". `pod` is the launcher pod: "absent",
    "pending" (created, maybe bound, not running) or "running"; `step_done` says the current phase's delay has passed.
    "" → Pending → Scheduling (launcher pod created) → Scheduled (pod running; virt-handler takes over) → Running;
    a lost launcher pod or a crash → Failed; final phases never change."""
    if phase in FINAL_PHASES:
        return phase, ""
    if phase in ("Scheduling", "Scheduled", "Running") and pod == "absent":
        return "Failed", "PodDisappeared"
    if phase == "":
        return "Pending", ""
    if phase == "Pending":
        return ("Scheduling" if step_done else phase), ""
    if phase == "Scheduling":
        return ("Scheduled" if pod == "running" else phase), ""
    if phase == "Scheduled" and step_done:
        return ("Failed", "SimulatedStartFailure") if fails_to_start else ("Running", "")
    if phase == "Running" and crash_due:
        return "Failed", "SimulatedCrash"
    return phase, ""


def start_failure_backoff(consecutive_failures: int) -> float:
    """Seconds before a crashed VM is started again: doubling from 10 s, capped at 300 s (KubeVirt's start-failure
    backoff; `status.startFailure.retryAfterTimestamp`)."""
    return float(min(300, 10 * 2 ** max(consecutive_failures - 1, 0)))
