"""A Wukong's state as a UI shows it, joined from the Wukong, its VirtualMachine, VirtualMachineInstance and launcher
Pod. Pure functions of the objects' JSON.

The power state comes from KubeVirt's `printableStatus` (reference/kubevirt.md §3.3), never from vmoperator's stored
phase, which stays `Running` after a stop (reference/wukong.md §7). vmoperator's phase matters only where KubeVirt
has nothing to say: before the VirtualMachine exists, and when vmoperator rejects the spec (`Error`).
"""

from __future__ import annotations

import datetime
import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from server import quantity, timestamps

Raw = Mapping[str, Any]


class PowerState(enum.Enum):
    PROVISIONING = "PROVISIONING"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    STOPPING = "STOPPING"
    STOPPED = "STOPPED"
    MIGRATING = "MIGRATING"
    ERROR = "ERROR"
    DELETING = "DELETING"
    UNKNOWN = "UNKNOWN"


# KubeVirt's printableStatus values (kubevirt.md §3.3) → power state.
_BY_PRINTABLE_STATUS = {
    "Terminating": PowerState.DELETING,
    "Stopping": PowerState.STOPPING,
    "Migrating": PowerState.MIGRATING,
    "Paused": PowerState.PAUSED,
    "Running": PowerState.RUNNING,
    "ErrorPvcNotFound": PowerState.ERROR,
    "DataVolumeError": PowerState.ERROR,
    "ErrorUnschedulable": PowerState.ERROR,
    "Provisioning": PowerState.PROVISIONING,
    "WaitingForVolumeBinding": PowerState.PROVISIONING,
    "ErrImagePull": PowerState.ERROR,
    "ImagePullBackOff": PowerState.ERROR,
    "Starting": PowerState.STARTING,
    "CrashLoopBackOff": PowerState.ERROR,
    "Stopped": PowerState.STOPPED,
    "WaitingForReceiver": PowerState.STARTING,
    "Unknown": PowerState.UNKNOWN,
}
_MESSAGES = {
    "ErrorPvcNotFound": "a disk's PersistentVolumeClaim does not exist",
    "DataVolumeError": "importing a disk image failed",
    "ErrorUnschedulable": "no node can run the VM (check node selector, tolerations and free resources)",
    "Provisioning": "disk images are being imported",
    "WaitingForVolumeBinding": "waiting for the disks' volumes to be bound",
    "ErrImagePull": "the VM's container image cannot be pulled",
    "ImagePullBackOff": "the VM's container image cannot be pulled; retrying",
    "CrashLoopBackOff": "the VM keeps failing to start; KubeVirt retries with a growing delay",
}
# States in which vmoperator's own verdict (phase `Error`) explains more than KubeVirt's.
_OPERATOR_ERROR_SHOWS_IN = frozenset({PowerState.PROVISIONING, PowerState.STOPPED, PowerState.STARTING})


@dataclass(frozen=True)
class Interface:
    name: str
    ip_address: str
    ip_addresses: tuple[str, ...]
    mac: str
    interface_name: str


@dataclass(frozen=True)
class DerivedStatus:
    power_state: PowerState
    printable_status: str
    message: str
    node: str
    interfaces: tuple[Interface, ...]
    cpu: int
    memory_bytes: int
    image: str
    restart_required: bool
    ready: bool
    start_time: datetime.datetime | None
    guest_os: str
    wants_running: bool
    """The durable start/stop intent vmoperator honours (wukong.md §8)."""


def wants_running(spec: Raw) -> bool:
    """vmoperator's reading of the intent: no `startStrategy` runs; one without `autoStart` does not (wukong.md §8)."""
    strategy = spec.get("startStrategy")
    if strategy is None:
        return True
    return bool(isinstance(strategy, Mapping) and strategy.get("autoStart"))


def derive(wukong: Raw, vm: Raw | None, vmi: Raw | None, pod: Raw | None) -> DerivedStatus:
    spec = wukong.get("spec") or {}
    vm_status = (vm or {}).get("status") or {}
    vmi_status = (vmi or {}).get("status") or {}
    printable = str(vm_status.get("printableStatus") or "")
    state, message = _power_state(wukong, vm, printable)
    running_instance = vmi is not None and vmi_status.get("phase") == "Running"
    domain = ((vmi or {}).get("spec") or {}).get("domain") or {}
    spec_cpu = int(spec.get("cpu") or 0)
    spec_memory = _bytes_or_zero(str(spec.get("memory") or ""))
    cpu = int((domain.get("cpu") or {}).get("cores") or 0) if running_instance else 0
    memory = _bytes_or_zero(str((domain.get("memory") or {}).get("guest") or "")) if running_instance else 0
    restart_required = running_instance and (
        _condition_true(vm_status, "RestartRequired") or (cpu, memory) != (spec_cpu, spec_memory)
    )
    disks = spec.get("disks") or []
    return DerivedStatus(
        power_state=state,
        printable_status=printable,
        message=message,
        node=str(vmi_status.get("nodeName") or ((pod or {}).get("spec") or {}).get("nodeName") or "")
        if vmi is not None
        else "",
        interfaces=tuple(_interface(raw) for raw in vmi_status.get("interfaces") or []) if vmi is not None else (),
        cpu=cpu or spec_cpu,
        memory_bytes=memory or spec_memory,
        image=str(disks[0].get("image") or "") if disks and isinstance(disks[0], Mapping) else "",
        restart_required=restart_required,
        ready=running_instance and _condition_true(vmi_status, "Ready"),
        start_time=_running_since(vmi_status) if running_instance else None,
        guest_os=str((vmi_status.get("guestOSInfo") or {}).get("prettyName") or "") if running_instance else "",
        wants_running=wants_running(spec),
    )


def _power_state(wukong: Raw, vm: Raw | None, printable: str) -> tuple[PowerState, str]:
    if (wukong.get("metadata") or {}).get("deletionTimestamp"):
        return PowerState.DELETING, "the Wukong is being deleted"
    operator_phase = (wukong.get("status") or {}).get("phase")
    if vm is None or not printable:
        if operator_phase == "Error":
            return PowerState.ERROR, _operator_error(wukong)
        return PowerState.PROVISIONING, "vmoperator is creating the VM's disks and VirtualMachine"
    state = _BY_PRINTABLE_STATUS.get(printable, PowerState.UNKNOWN)
    if operator_phase == "Error" and state in _OPERATOR_ERROR_SHOWS_IN:
        return PowerState.ERROR, _operator_error(wukong)
    return state, _MESSAGES.get(printable, "")


def _operator_error(wukong: Raw) -> str:
    spec = wukong.get("spec") or {}
    disks = spec.get("disks") or []
    if not disks:
        return "vmoperator rejected the spec: it needs at least one disk"
    if any(isinstance(disk, Mapping) and not disk.get("storageClassName") for disk in disks):
        return "vmoperator rejected the spec: every disk needs a storageClassName"
    return "vmoperator reports an error creating the VM's resources (disks, networks or VirtualMachine)"


def _interface(raw: Raw) -> Interface:
    return Interface(
        name=str(raw.get("name") or ""),
        ip_address=str(raw.get("ipAddress") or ""),
        ip_addresses=tuple(str(address) for address in raw.get("ipAddresses") or []),
        mac=str(raw.get("mac") or ""),
        interface_name=str(raw.get("interfaceName") or ""),
    )


def _condition_true(status: Raw, condition_type: str) -> bool:
    return any(
        isinstance(c, Mapping) and c.get("type") == condition_type and c.get("status") == "True"
        for c in status.get("conditions") or []
    )


def _running_since(vmi_status: Raw) -> datetime.datetime | None:
    for transition in vmi_status.get("phaseTransitionTimestamps") or []:
        if isinstance(transition, Mapping) and transition.get("phase") == "Running":
            return timestamps.parse(transition.get("phaseTransitionTimestamp"))
    return None


def _bytes_or_zero(text: str) -> int:
    try:
        return quantity.parse_bytes(text) if text else 0
    except ValueError:
        return 0
