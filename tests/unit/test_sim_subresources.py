"""The simulated virt-api's decisions, row by row from shared/reference/kubevirt.md: §1.5 (each route's errors, in
order, with codes and messages), §1.6 (what start/stop/restart write, per run strategy) and §2.4 (console errors
before the upgrade). Each row names the line it transcribes. The same functions serve the HTTP routes
(`sim/kubevirt/virt_api.py`); tests/integration/test_virt_api.py drives them through kube-apiserver."""

from __future__ import annotations

from typing import Any

import pytest

from sim.kubevirt import lifecycle
from sim.kubevirt.lifecycle import ApiError

VM_CONFLICT = 'Operation cannot be fulfilled on virtualmachine.kubevirt.io "db": '
VMI_CONFLICT = 'Operation cannot be fulfilled on virtualmachineinstance.kubevirt.io "db": '
UNDERWAY = "Internal error occurred: unable to complete request: stop/start already underway"


def vm(
    *, running: bool | None = None, strategy: str | None = None, requests: list[Any] | None = None
) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if running is not None:
        spec["running"] = running
    if strategy is not None:
        spec["runStrategy"] = strategy
    status: dict[str, Any] = {"printableStatus": "Running"}
    if requests is not None:
        status["stateChangeRequests"] = requests
    return {"metadata": {"name": "db", "namespace": "ns"}, "spec": spec, "status": status}


def vmi(
    phase: str = "Running", *, grace: int | None = None, conditions: list[Any] | None = None, **spec: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "metadata": {"name": "db", "namespace": "ns", "uid": "uid-1"},
        "spec": dict(spec),
        "status": {"phase": phase, "conditions": conditions or []},
    }
    if grace is not None:
        body["spec"]["terminationGracePeriodSeconds"] = grace
    return body


PAUSED = [{"type": "Paused", "status": "True", "reason": "PausedByUser"}]
AGENT = [{"type": "AgentConnected", "status": "True"}]
STOP_UID = {"action": "Stop", "uid": "uid-1"}

# (row, function, vm, vmi, body, expected error (code, message) or None, expected writes)
VM_ROWS: list[tuple[str, Any, dict[str, Any], dict[str, Any] | None, bytes, tuple[int, str] | None, dict[str, Any]]] = [
    # ---- start (§1.5 lines 157-169, §1.6 table lines 248-254) ----
    (
        "l.159 start: VMI Running",
        lifecycle.start,
        vm(running=True),
        vmi(),
        b"{}",
        (409, VM_CONFLICT + "VM is already running"),
        {},
    ),
    (
        "l.160 start: VMI Scheduling counts as running",
        lifecycle.start,
        vm(running=False),
        vmi("Scheduling"),
        b"{}",
        (409, VM_CONFLICT + "VM is already running"),
        {},
    ),
    (
        "l.160 start: a paused VM is running",
        lifecycle.start,
        vm(running=False),
        vmi(conditions=PAUSED),
        b"",
        (409, VM_CONFLICT + "VM is already running"),
        {},
    ),
    (
        "l.162 start: bad body",
        lifecycle.start,
        vm(running=False),
        None,
        b"{nope",
        (400, "Can not unmarshal Request body to struct, error: "),
        {},
    ),
    (
        "l.163 start: Always",
        lifecycle.start,
        vm(strategy="Always"),
        vmi("Succeeded"),
        b"",
        (409, VM_CONFLICT + "Always does not support manual start requests"),
        {},
    ),
    (
        "l.164 start: Once",
        lifecycle.start,
        vm(strategy="Once"),
        None,
        b"",
        (409, VM_CONFLICT + "Once does not support manual start requests"),
        {},
    ),
    (
        "l.164 start: RerunOnFailure from Failed",
        lifecycle.start,
        vm(strategy="RerunOnFailure"),
        vmi("Failed"),
        b"",
        (409, VM_CONFLICT + "RerunOnFailure does not support starting VM from failed state"),
        {},
    ),
    (
        "l.166 start: requests already pending",
        lifecycle.start,
        vm(strategy="Manual", requests=[{"action": "Stop"}]),
        None,
        b"",
        (500, UNDERWAY),
        {},
    ),
    (
        "§1.6 Halted + start: running → true",
        lifecycle.start,
        vm(running=False),
        None,
        b"{}",
        None,
        {
            "spec": [
                {"op": "test", "path": "/spec/running", "value": False},
                {"op": "replace", "path": "/spec/running", "value": True},
            ]
        },
    ),
    (
        "§1.6 Halted + start: runStrategy → Always",
        lifecycle.start,
        vm(strategy="Halted"),
        vmi("Succeeded"),
        b"",
        None,
        {
            "spec": [
                {"op": "test", "path": "/spec/runStrategy", "value": "Halted"},
                {"op": "replace", "path": "/spec/runStrategy", "value": "Always"},
            ]
        },
    ),
    (
        "§1.6 Halted + start paused: requests [Start{paused}]",
        lifecycle.start,
        vm(running=False),
        None,
        b'{"paused":true}',
        None,
        {
            "status": [
                {
                    "op": "add",
                    "path": "/status/stateChangeRequests",
                    "value": [{"action": "Start", "data": {"paused": "true"}}],
                }
            ]
        },
    ),
    (
        "§1.6 Manual + start: requests [Start]",
        lifecycle.start,
        vm(strategy="Manual"),
        None,
        b"",
        None,
        {"status": [{"op": "add", "path": "/status/stateChangeRequests", "value": [{"action": "Start"}]}]},
    ),
    (
        "§1.6 Manual + start, old VMI final: [Stop old, Start]",
        lifecycle.start,
        vm(strategy="Manual"),
        vmi("Failed"),
        b"",
        None,
        {"status": [{"op": "add", "path": "/status/stateChangeRequests", "value": [STOP_UID, {"action": "Start"}]}]},
    ),
    (
        "§1.6 RerunOnFailure + start, old VMI Succeeded: [Stop old, Start]",
        lifecycle.start,
        vm(strategy="RerunOnFailure"),
        vmi("Succeeded"),
        b"",
        None,
        {"status": [{"op": "add", "path": "/status/stateChangeRequests", "value": [STOP_UID, {"action": "Start"}]}]},
    ),
    (
        "l.160 start: VMI phase Unknown may be replaced",
        lifecycle.start,
        vm(running=False),
        vmi("Unknown"),
        b"",
        None,
        {
            "spec": [
                {"op": "test", "path": "/spec/running", "value": False},
                {"op": "replace", "path": "/spec/running", "value": True},
            ]
        },
    ),
    # ---- stop (§1.5 lines 171-180) ----
    (
        "l.172 stop: bad body",
        lifecycle.stop,
        vm(running=True),
        vmi(),
        b"[1]",
        (400, "Can not unmarshal Request body to struct, error: "),
        {},
    ),
    (
        "l.175 stop: Halted, no VMI",
        lifecycle.stop,
        vm(running=False),
        None,
        b"",
        (409, VM_CONFLICT + "VM is not running"),
        {},
    ),
    (
        "l.175 stop: Halted, no shorter grace period",
        lifecycle.stop,
        vm(running=False),
        vmi(grace=30),
        b'{"gracePeriod": 30}',
        (409, VM_CONFLICT + "Halted only supports manual stop requests with a shorter graceperiod"),
        {"grace": 30},
    ),
    (
        "l.176 stop: Halted with a shorter grace period: Stop request",
        lifecycle.stop,
        vm(running=False),
        vmi(grace=30),
        b'{"gracePeriod": 0}',
        None,
        {"grace": 0, "status": [{"op": "add", "path": "/status/stateChangeRequests", "value": [STOP_UID]}]},
    ),
    (
        "l.177 stop: Manual, VMI final",
        lifecycle.stop,
        vm(strategy="Manual"),
        vmi("Succeeded"),
        b"",
        (409, VM_CONFLICT + "VM is not running"),
        {},
    ),
    (
        "l.178 stop: RerunOnFailure replaces pending requests",
        lifecycle.stop,
        vm(strategy="RerunOnFailure", requests=[{"action": "Start"}]),
        vmi(),
        b"",
        None,
        {
            "status": [
                {"op": "test", "path": "/status/stateChangeRequests", "value": [{"action": "Start"}]},
                {"op": "replace", "path": "/status/stateChangeRequests", "value": [STOP_UID]},
            ]
        },
    ),
    (
        "l.179 stop: Always → running false",
        lifecycle.stop,
        vm(running=True),
        vmi(),
        b"{}",
        None,
        {
            "spec": [
                {"op": "test", "path": "/spec/running", "value": True},
                {"op": "replace", "path": "/spec/running", "value": False},
            ]
        },
    ),
    (
        "l.179 stop: Once → Halted even with no VMI",
        lifecycle.stop,
        vm(strategy="Once"),
        None,
        b"",
        None,
        {
            "spec": [
                {"op": "test", "path": "/spec/runStrategy", "value": "Once"},
                {"op": "replace", "path": "/spec/runStrategy", "value": "Halted"},
            ]
        },
    ),
    (
        "l.173 stop: gracePeriod patches the live VMI first",
        lifecycle.stop,
        vm(running=True),
        vmi(grace=600),
        b'{"gracePeriod": 0}',
        None,
        {
            "grace": 0,
            "spec": [
                {"op": "test", "path": "/spec/running", "value": True},
                {"op": "replace", "path": "/spec/running", "value": False},
            ],
        },
    ),
    # ---- restart (§1.5 lines 182-194) ----
    (
        "l.183 restart: gracePeriodSeconds > 0",
        lifecycle.restart,
        vm(running=True),
        vmi(),
        b'{"gracePeriodSeconds": 5}',
        (400, "For force restart, only gracePeriod=0 is supported for now"),
        {},
    ),
    (
        "l.184 restart: gracePeriodSeconds < 0",
        lifecycle.restart,
        vm(running=True),
        vmi(),
        b'{"gracePeriodSeconds": -1}',
        (400, "gracePeriod has to be greater or equal to 0"),
        {},
    ),
    (
        "l.186 restart: Halted",
        lifecycle.restart,
        vm(running=False),
        vmi(),
        b"",
        (409, VM_CONFLICT + "RunStategy Halted does not support manual restart requests"),
        {},
    ),
    (
        "l.187 restart: Once",
        lifecycle.restart,
        vm(strategy="Once"),
        vmi(),
        b"",
        (409, VM_CONFLICT + "RunStategy Once does not support manual restart requests"),
        {},
    ),
    (
        "l.188 restart: no VMI",
        lifecycle.restart,
        vm(running=True),
        None,
        b"",
        (409, VM_CONFLICT + "VM is not running: Halted"),
        {},
    ),
    (
        "l.193 restart: requests pending",
        lifecycle.restart,
        vm(running=True, requests=[STOP_UID]),
        vmi(),
        b"",
        (500, UNDERWAY),
        {},
    ),
    (
        "l.192 restart: [Stop uid, Start]",
        lifecycle.restart,
        vm(running=True),
        vmi(),
        b"{}",
        None,
        {"status": [{"op": "add", "path": "/status/stateChangeRequests", "value": [STOP_UID, {"action": "Start"}]}]},
    ),
    (
        "l.189 restart force: VMI grace → 1 first",
        lifecycle.restart,
        vm(running=True),
        vmi(grace=600),
        b'{"gracePeriodSeconds": 0}',
        None,
        {
            "grace": 1,
            "status": [{"op": "add", "path": "/status/stateChangeRequests", "value": [STOP_UID, {"action": "Start"}]}],
        },
    ),
    (
        "l.188 restart: a final VMI is accepted",
        lifecycle.restart,
        vm(running=True),
        vmi("Failed"),
        b"",
        None,
        {"status": [{"op": "add", "path": "/status/stateChangeRequests", "value": [STOP_UID, {"action": "Start"}]}]},
    ),
    # ---- migrate (§1.5 line 196) ----
    (
        "l.196 migrate: no VMI",
        lifecycle.migrate,
        vm(running=True),
        None,
        b"",
        (404, 'virtualmachineinstance.kubevirt.io "db" not found'),
        {},
    ),
    (
        "l.196 migrate: VMI not Running",
        lifecycle.migrate,
        vm(running=True),
        vmi("Scheduled"),
        b"",
        (409, VM_CONFLICT + "VM is not running"),
        {},
    ),
    ("l.196 migrate: accepted", lifecycle.migrate, vm(running=True), vmi(), b"", None, {}),
]


@pytest.mark.parametrize(
    ("row", "decide", "vm_", "vmi_", "body", "error", "writes"), VM_ROWS, ids=[r[0] for r in VM_ROWS]
)
def test_kubevirt_md_1_5_vm_routes(
    row: str,
    decide: Any,
    vm_: dict[str, Any],
    vmi_: dict[str, Any] | None,
    body: bytes,
    error: tuple[int, str] | None,
    writes: dict[str, Any],
) -> None:
    try:
        outcome = decide(vm_, vmi_, body)
    except ApiError as raised:
        outcome = lifecycle.Outcome(error=raised)
    if error is None:
        assert outcome.error is None, outcome.error
    else:
        assert outcome.error is not None
        assert (outcome.error.code, outcome.error.message[: len(error[1])]) == error
    assert outcome.vmi_grace_seconds == writes.get("grace")
    assert outcome.vm_spec_patch == writes.get("spec", [])
    assert outcome.vm_status_patch == writes.get("status", [])


def test_kubevirt_md_1_3_dry_run_validates_without_writing() -> None:
    outcome = lifecycle.stop(vm(running=True), vmi(), b'{"dryRun": ["All"]}')
    assert outcome.dry_run  # the server sends the patch with dryRun=All (l.115)
    assert outcome.error is None


def test_kubevirt_md_1_4_status_shape() -> None:
    error = lifecycle.conflict("virtualmachine", "db", "VM is already running")
    assert error.status() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'Operation cannot be fulfilled on virtualmachine.kubevirt.io "db": VM is already running',
        "reason": "Conflict",
        "details": {"name": "db", "group": "kubevirt.io", "kind": "virtualmachine"},
        "code": 409,
    }


# (row, call, expected error (code, message) or expected (paused, event reason))
VMI_ROWS: list[tuple[str, Any, tuple[int, str] | tuple[bool | None, str]]] = [
    (
        "l.200 pause: not Running",
        lambda: lifecycle.pause(vmi("Scheduled"), b""),
        (409, VMI_CONFLICT + "VM is not running"),
    ),
    (
        "l.200 pause: exec liveness probe",
        lambda: lifecycle.pause(vmi(livenessProbe={"exec": {}}), b""),
        (
            403,
            'virtualmachineinstance.kubevirt.io "db" is forbidden: '
            "Pausing VMIs with a non-GuestAgentPing LivenessProbe is not supported",
        ),
    ),
    (
        "l.201 pause: already paused",
        lambda: lifecycle.pause(vmi(conditions=PAUSED), b""),
        (409, VMI_CONFLICT + "VMI is already paused"),
    ),
    (
        "l.203 pause: Paused condition + event Paused",
        lambda: lifecycle.pause(vmi(livenessProbe={"guestAgentPing": {}}), b""),
        (True, "Paused"),
    ),
    (
        "l.207 unpause: not Running",
        lambda: lifecycle.unpause(vmi("Succeeded"), b"", vm=None),
        (409, VMI_CONFLICT + "VMI is not running"),
    ),
    (
        "l.206 unpause: snapshot in progress",
        lambda: lifecycle.unpause(vmi(conditions=PAUSED), b"", vm={**vm(), "status": {"snapshotInProgress": "snap"}}),
        (409, VM_CONFLICT + "VM snapshot is in progress"),
    ),
    (
        "l.208 unpause: not paused",
        lambda: lifecycle.unpause(vmi(), b"", vm=None),
        (409, VMI_CONFLICT + "VMI is not paused"),
    ),
    (
        "l.208 unpause: condition removed + event Unpaused",
        lambda: lifecycle.unpause(vmi(conditions=PAUSED), b"", vm=vm()),
        (False, "Unpaused"),
    ),
    (
        "l.211 softreboot: not Running",
        lambda: lifecycle.softreboot(vmi("Pending")),
        (409, VMI_CONFLICT + "VM is not running"),
    ),
    (
        "l.211 softreboot: paused",
        lambda: lifecycle.softreboot(vmi(conditions=PAUSED)),
        (409, VMI_CONFLICT + "VMI is paused"),
    ),
    (
        "l.212 softreboot: no agent and no ACPI",
        lambda: lifecycle.softreboot(vmi(domain={"features": {"acpi": {"enabled": False}}})),
        (409, VMI_CONFLICT + "VMI neither have the agent connected nor the ACPI feature enabled"),
    ),
    (
        "l.213 softreboot: with the agent",
        lambda: lifecycle.softreboot(vmi(conditions=AGENT, domain={"features": {"acpi": {"enabled": False}}})),
        (None, "SoftRebooted"),
    ),
    (
        "l.215 reset: Pending",
        lambda: lifecycle.reset(vmi("Pending")),
        (
            400,
            "Failed to reset non-running VMI with phase Pending: Unable to connect to VirtualMachineInstance "
            "because phase is Pending instead of Running or Scheduled",
        ),
    ),
    ("l.217 reset: Scheduled is accepted", lambda: lifecycle.reset(vmi("Scheduled")), (None, "Reset")),
]


@pytest.mark.parametrize(("row", "call", "expected"), VMI_ROWS, ids=[r[0] for r in VMI_ROWS])
def test_kubevirt_md_1_5_vmi_routes(row: str, call: Any, expected: tuple[Any, str]) -> None:
    assert _result(call) == expected


def _result(call: Any) -> tuple[Any, str]:
    try:
        action = call()
    except ApiError as error:
        return error.code, error.message
    return action.paused, action.event_reason


# §2.4 (lines 330-338): errors before the upgrade
CONSOLE_ROWS: list[tuple[str, dict[str, Any] | None, str, tuple[int, str] | None]] = [
    ("l.334 VMI missing", None, "console", (404, 'virtualmachineinstance.kubevirt.io "db" not found')),
    (
        "l.335 no serial console",
        vmi(domain={"devices": {"autoattachSerialConsole": False}}),
        "console",
        (400, "No serial consoles are present."),
    ),
    (
        "l.336 no graphics device",
        vmi(domain={"devices": {"autoattachGraphicsDevice": False}}),
        "vnc",
        (400, "No graphics devices are present."),
    ),
    ("l.337 serial on a Failed VMI", vmi("Failed"), "console", (409, VMI_CONFLICT + "VMI is in failed status")),
    ("l.337 vnc on a Failed VMI", vmi("Failed"), "vnc", (400, "VMI is not running")),
    ("l.338 Scheduled", vmi("Scheduled"), "vnc", (400, "VMI is not running")),
    ("l.338 Succeeded", vmi("Succeeded"), "console", (400, "VMI is not running")),
    ("Running: upgrade", vmi(), "vnc", None),
]


@pytest.mark.parametrize(("row", "vmi_", "kind", "expected"), CONSOLE_ROWS, ids=[r[0] for r in CONSOLE_ROWS])
def test_kubevirt_md_2_4_console_errors(
    row: str, vmi_: dict[str, Any] | None, kind: str, expected: tuple[int, str] | None
) -> None:
    if expected is None:
        lifecycle.console_precheck(vmi_, "db", kind=kind)
        return
    with pytest.raises(ApiError) as raised:
        lifecycle.console_precheck(vmi_, "db", kind=kind)
    assert (raised.value.code, raised.value.message) == expected


# §1.5 (lines 222-223): the guest-agent routes answer every failure with 500 and the error text
AGENT_ROWS: list[tuple[str, dict[str, Any] | None, str | None]] = [
    ("l.222 VMI missing", None, 'virtualmachineinstance.kubevirt.io "db" not found'),
    ("l.222 not Running", vmi("Scheduled", conditions=AGENT), VMI_CONFLICT + "VMI is not running"),
    ("l.223 no agent", vmi(), VMI_CONFLICT + "VMI does not have guest agent connected"),
    ("l.223 agent connected", vmi(conditions=AGENT), None),
]


@pytest.mark.parametrize(("row", "vmi_", "text"), AGENT_ROWS, ids=[r[0] for r in AGENT_ROWS])
def test_kubevirt_md_1_5_guest_agent_routes(row: str, vmi_: dict[str, Any] | None, text: str | None) -> None:
    if text is None:
        assert lifecycle.guest_agent_precheck(vmi_, "db") is vmi_
        return
    with pytest.raises(ApiError) as raised:
        lifecycle.guest_agent_precheck(vmi_, "db")
    assert (raised.value.code, raised.value.message) == (500, text)
