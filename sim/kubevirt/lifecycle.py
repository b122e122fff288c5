"""virt-api's lifecycle endpoints as pure decisions (shared/reference/kubevirt.md §1.3 to §1.6, `pkg/virt-api/rest/
lifecycle.go`): given the VM, its VMI and the request body, either the object changes KubeVirt makes or the error it
answers, with codes and messages verbatim. The HTTP server (`virt_api.py`) applies the changes; the simulated
controllers then do the rest, so clients see the same intermediate states as on a real cluster."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sim.kubevirt import rules
from sim.runtime import deep_get

VM_RESOURCE = "virtualmachine"  # §1.4: errors name the singular resource in group kubevirt.io
VMI_RESOURCE = "virtualmachineinstance"
NOT_STOPPABLE_PHASES = ("Succeeded", "Failed", "Unknown", "")  # §1.5 start step 2: a VMI in these may be replaced


@dataclass(frozen=True)
class ApiError(Exception):
    """A metav1.Status failure as virt-api writes it (§1.4)."""

    code: int
    reason: str
    message: str
    details: Mapping[str, Any] | None = None

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        }
        if self.details is not None:
            body["details"] = dict(self.details)
        body["code"] = self.code
        return body


def not_found(resource: str, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{resource}.kubevirt.io "{name}" not found', _details(resource, name))


def conflict(resource: str, name: str, text: str) -> ApiError:
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {resource}.kubevirt.io "{name}": {text}',
        _details(resource, name),
    )


def bad_request(text: str) -> ApiError:
    return ApiError(400, "BadRequest", text)


def forbidden(resource: str, name: str, text: str) -> ApiError:
    return ApiError(403, "Forbidden", f'{resource}.kubevirt.io "{name}" is forbidden: {text}', _details(resource, name))


def internal(text: str) -> ApiError:
    return ApiError(500, "InternalError", f"Internal error occurred: {text}", {"causes": [{"message": text}]})


def _details(resource: str, name: str) -> dict[str, str]:
    return {"name": name, "group": "kubevirt.io", "kind": resource}


UNDERWAY = "unable to complete request: stop/start already underway"


@dataclass
class Outcome:
    """What an endpoint does. Changes listed here are made in this order, then `error` (if any) is answered:
    stop's grace-period patch happens "even if a later check fails" (§1.5)."""

    dry_run: bool = False
    vmi_grace_seconds: int | None = None  # patch the live VMI's spec.terminationGracePeriodSeconds first
    vm_spec_patch: list[dict[str, Any]] = field(default_factory=list)  # JSON patch on the VM
    vm_status_patch: list[dict[str, Any]] = field(default_factory=list)  # JSON patch on the VM's /status
    error: ApiError | None = None


def parse_body(raw: bytes) -> dict[str, Any]:
    """§1.3: YAML or JSON, empty allowed, unknown fields ignored; anything else is 400."""
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError as error:
        raise bad_request(f"Can not unmarshal Request body to struct, error: {error}") from error
    if not isinstance(body, dict):
        raise bad_request(
            "Can not unmarshal Request body to struct, error: json: cannot unmarshal "
            f"{type(body).__name__} into Go value of type struct"
        )
    return body


def _dry_run(body: Mapping[str, Any]) -> bool:
    return list(body.get("dryRun") or []) == ["All"]


def _int_field(body: Mapping[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad_request(
            f"Can not unmarshal Request body to struct, error: json: cannot unmarshal {type(value).__name__} "
            f"into Go struct field .{name} of type int64"
        )
    return value


def _phase(vmi: Mapping[str, Any] | None) -> str:
    return str(deep_get(vmi, "status", "phase", default=""))


def _live(vmi: Mapping[str, Any] | None) -> bool:
    return vmi is not None and _phase(vmi) not in rules.FINAL_PHASES


def _requests_patch(vm: Mapping[str, Any], requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """§1.6: written through /status with a JSON patch that tests the old value; startFailure goes with it."""
    status = vm.get("status")
    if not status:
        return [{"op": "add", "path": "/status", "value": {"stateChangeRequests": requests}}]
    old = status.get("stateChangeRequests")
    ops: list[dict[str, Any]] = (
        [
            {"op": "test", "path": "/status/stateChangeRequests", "value": old},
            {"op": "replace", "path": "/status/stateChangeRequests", "value": requests},
        ]
        if old is not None
        else [{"op": "add", "path": "/status/stateChangeRequests", "value": requests}]
    )
    if "startFailure" in status:
        ops.append({"op": "remove", "path": "/status/startFailure"})
    return ops


def _strategy_patch(vm: Mapping[str, Any], strategy: str) -> list[dict[str, Any]]:
    """§1.6: runStrategy flips Halted↔Always, or the legacy `running` false↔true, with a JSON-patch test."""
    spec = vm.get("spec", {})
    if spec.get("runStrategy"):
        return [
            {"op": "test", "path": "/spec/runStrategy", "value": spec["runStrategy"]},
            {"op": "replace", "path": "/spec/runStrategy", "value": strategy},
        ]
    running = strategy != "Halted"
    if "running" in spec:
        return [
            {"op": "test", "path": "/spec/running", "value": spec["running"]},
            {"op": "replace", "path": "/spec/running", "value": running},
        ]
    return [{"op": "add", "path": "/spec/running", "value": running}]


def _pending_requests(vm: Mapping[str, Any]) -> bool:
    return bool(deep_get(vm, "status", "stateChangeRequests", default=None))


def start(vm: Mapping[str, Any], vmi: Mapping[str, Any] | None, raw_body: bytes) -> Outcome:
    """§1.5 VM start, checks in the reference's order; effects per §1.6's table."""
    name = vm["metadata"]["name"]
    if vmi is not None and _phase(vmi) not in NOT_STOPPABLE_PHASES:
        return Outcome(error=conflict(VM_RESOURCE, name, "VM is already running"))
    body = parse_body(raw_body)
    strategy = rules.run_strategy(vm.get("spec", {}))
    if strategy in ("Always", "Once"):
        return Outcome(error=conflict(VM_RESOURCE, name, f"{strategy} does not support manual start requests"))
    if strategy == "RerunOnFailure" and _phase(vmi) == "Failed":
        return Outcome(
            error=conflict(VM_RESOURCE, name, "RerunOnFailure does not support starting VM from failed state")
        )
    outcome = Outcome(dry_run=_dry_run(body))
    paused = bool(body.get("paused"))
    if strategy == "Halted" and not paused:
        outcome.vm_spec_patch = _strategy_patch(vm, "Always")
        return outcome
    if _pending_requests(vm):
        return Outcome(error=internal(UNDERWAY))
    request: dict[str, Any] = {"action": "Start"}
    if paused:
        request["data"] = {"paused": "true"}
    replaceable = ("Succeeded",) if strategy == "RerunOnFailure" else rules.FINAL_PHASES
    requests = [request]
    if vmi is not None and _phase(vmi) in replaceable:
        requests = [{"action": "Stop", "uid": vmi["metadata"]["uid"]}, request]
    outcome.vm_status_patch = _requests_patch(vm, requests)
    return outcome


def stop(vm: Mapping[str, Any], vmi: Mapping[str, Any] | None, raw_body: bytes) -> Outcome:
    """§1.5 VM stop. `gracePeriod` (not gracePeriodSeconds) shortens a live VMI's grace period first."""
    name = vm["metadata"]["name"]
    body = parse_body(raw_body)
    grace = _int_field(body, "gracePeriod")
    outcome = Outcome(dry_run=_dry_run(body))
    current_grace = int(deep_get(vmi, "spec", "terminationGracePeriodSeconds", default=rules.DEFAULT_GRACE_SECONDS))
    if _live(vmi) and grace is not None:
        outcome.vmi_grace_seconds = grace
    strategy = rules.run_strategy(vm.get("spec", {}))
    if strategy in ("Halted", "Manual", "RerunOnFailure") and not _live(vmi):
        outcome.error = conflict(VM_RESOURCE, name, "VM is not running")
        return outcome
    if strategy == "Halted" and (grace is None or grace >= current_grace):
        outcome.error = conflict(
            VM_RESOURCE, name, "Halted only supports manual stop requests with a shorter graceperiod"
        )
        return outcome
    if strategy in ("Halted", "Manual", "RerunOnFailure"):
        assert vmi is not None  # _live
        outcome.vm_status_patch = _requests_patch(vm, [{"action": "Stop", "uid": vmi["metadata"]["uid"]}])
        return outcome
    outcome.vm_spec_patch = _strategy_patch(vm, "Halted")
    return outcome


def restart(vm: Mapping[str, Any], vmi: Mapping[str, Any] | None, raw_body: bytes) -> Outcome:
    """§1.5 VM restart: requests [Stop uid, Start]; `gracePeriodSeconds: 0` forces it (VMI grace → 1 first)."""
    name = vm["metadata"]["name"]
    body = parse_body(raw_body)
    grace = _int_field(body, "gracePeriodSeconds")
    if grace is not None and grace > 0:
        return Outcome(error=bad_request("For force restart, only gracePeriod=0 is supported for now"))
    if grace is not None and grace < 0:
        return Outcome(error=bad_request("gracePeriod has to be greater or equal to 0"))
    strategy = rules.run_strategy(vm.get("spec", {}))
    if strategy in ("Halted", "Once"):
        return Outcome(
            error=conflict(VM_RESOURCE, name, f"RunStategy {strategy} does not support manual restart requests")
        )
    if vmi is None:
        return Outcome(error=conflict(VM_RESOURCE, name, "VM is not running: Halted"))
    if _pending_requests(vm):
        return Outcome(error=internal(UNDERWAY))
    outcome = Outcome(dry_run=_dry_run(body))
    if grace == 0 and _live(vmi):
        outcome.vmi_grace_seconds = 1
    outcome.vm_status_patch = _requests_patch(
        vm, [{"action": "Stop", "uid": vmi["metadata"]["uid"]}, {"action": "Start"}]
    )
    return outcome


def migrate(vm: Mapping[str, Any], vmi: Mapping[str, Any] | None, raw_body: bytes) -> Outcome:
    """§1.5 VM migrate: only the checks and the 202; the simulator creates the migration object and never runs it."""
    name = vm["metadata"]["name"]
    body = parse_body(raw_body)
    if vmi is None:
        return Outcome(error=not_found(VMI_RESOURCE, name))
    if _phase(vmi) != "Running":
        return Outcome(error=conflict(VM_RESOURCE, name, "VM is not running"))
    return Outcome(dry_run=_dry_run(body))


@dataclass(frozen=True)
class VmiAction:
    """A VMI endpoint's effect (virt-handler's, asynchronous upstream): the Paused condition and the event."""

    paused: bool | None  # True: add Paused; False: remove it; None: leave it
    event_reason: str
    event_message: str
    dry_run: bool = False


def _condition_status(vmi: Mapping[str, Any], kind: str) -> str | None:
    found = rules.condition(vmi, kind)
    return None if found is None else str(found.get("status"))


def pause(vmi: Mapping[str, Any], raw_body: bytes) -> VmiAction:
    name = vmi["metadata"]["name"]
    if _phase(vmi) != "Running":
        raise conflict(VMI_RESOURCE, name, "VM is not running")
    probe = deep_get(vmi, "spec", "livenessProbe", default=None)
    if probe and "guestAgentPing" not in probe:
        raise forbidden(VMI_RESOURCE, name, "Pausing VMIs with a non-GuestAgentPing LivenessProbe is not supported")
    if _condition_status(vmi, "Paused") is not None:
        raise conflict(VMI_RESOURCE, name, "VMI is already paused")
    body = parse_body(raw_body)
    return VmiAction(True, "Paused", "VirtualMachineInstance paused", dry_run=_dry_run(body))


def unpause(vmi: Mapping[str, Any], raw_body: bytes, *, vm: Mapping[str, Any] | None) -> VmiAction:
    name = vmi["metadata"]["name"]
    if vm is not None and deep_get(vm, "status", "snapshotInProgress", default=None):
        raise conflict(VM_RESOURCE, name, "VM snapshot is in progress")
    if _phase(vmi) != "Running":
        raise conflict(VMI_RESOURCE, name, "VMI is not running")
    if _condition_status(vmi, "Paused") is None:
        raise conflict(VMI_RESOURCE, name, "VMI is not paused")
    body = parse_body(raw_body)
    return VmiAction(False, "Unpaused", "VirtualMachineInstance unpaused", dry_run=_dry_run(body))


def softreboot(vmi: Mapping[str, Any]) -> VmiAction:
    name = vmi["metadata"]["name"]
    if _phase(vmi) != "Running":
        raise conflict(VMI_RESOURCE, name, "VM is not running")
    if _condition_status(vmi, "Paused") == "True":
        raise conflict(VMI_RESOURCE, name, "VMI is paused")
    acpi = deep_get(vmi, "spec", "domain", "features", "acpi", "enabled", default=True)
    if _condition_status(vmi, "AgentConnected") is None and acpi is False:
        raise conflict(VMI_RESOURCE, name, "VMI neither have the agent connected nor the ACPI feature enabled")
    return VmiAction(None, "SoftRebooted", "VirtualMachineInstance soft rebooted")


def reset(vmi: Mapping[str, Any]) -> VmiAction:
    """§1.5 VMI reset (v1.5+): no pre-check, the node refuses a VMI that is not Running or Scheduled."""
    phase = _phase(vmi)
    if phase not in ("Running", "Scheduled"):
        raise bad_request(
            f"Failed to reset non-running VMI with phase {phase}: Unable to connect to VirtualMachineInstance "
            f"because phase is {phase} instead of Running or Scheduled"
        )
    return VmiAction(None, "Reset", "VirtualMachineInstance reset")


def guest_agent_precheck(vmi: Mapping[str, Any] | None, name: str) -> Mapping[str, Any]:
    """§1.5 guestosinfo/userlist/filesystemlist: every failure is a 500 whose text/plain body is the error text
    (`ApiError.message`; the server writes it raw, not as a Status)."""
    if vmi is None:
        raise ApiError(500, "InternalError", f'{VMI_RESOURCE}.kubevirt.io "{name}" not found')
    if _phase(vmi) != "Running":
        raise ApiError(500, "InternalError", conflict(VMI_RESOURCE, name, "VMI is not running").message)
    if _condition_status(vmi, "AgentConnected") is None:
        raise ApiError(
            500, "InternalError", conflict(VMI_RESOURCE, name, "VMI does not have guest agent connected").message
        )
    return vmi


def console_precheck(vmi: Mapping[str, Any] | None, name: str, *, kind: str) -> None:
    """§2.4: errors before the upgrade, as plain HTTP Status responses. `kind` is "console" or "vnc"."""
    if vmi is None:
        raise not_found(VMI_RESOURCE, name)
    devices = deep_get(vmi, "spec", "domain", "devices", default={})
    if kind == "console" and devices.get("autoattachSerialConsole") is False:
        raise bad_request("No serial consoles are present.")
    if kind == "vnc" and devices.get("autoattachGraphicsDevice") is False:
        raise bad_request("No graphics devices are present.")
    phase = _phase(vmi)
    if phase == "Failed" and kind == "console":
        raise conflict(VMI_RESOURCE, name, "VMI is in failed status")
    if phase != "Running":
        raise bad_request("VMI is not running")


PRESERVED_VNC = internal(
    "Can't connect to websocket (503): websocket: bad handshake: application info: Active VNC connection. "
    "Request denied."
)
