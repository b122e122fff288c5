"""The simulator's rules, row by row from the references. Each row names the section it transcribes, so a reader can
check it against shared/reference/wukong.md (vmoperator) and shared/reference/kubevirt.md (KubeVirt)."""

from __future__ import annotations

from typing import Any

import pytest

from sim import quantity, vmoperator
from sim.kubevirt import rules

# ---- wukong.md §7: stored phase by observation --------------------------------------------------------------------
# One pass = step F (§5.2), then what the pass observes: a child error (G/H/J0 → Error), an unbound disk (I: phase
# not written), or the VM status of J1 decided by J2 (no write → the value after F stays stored).

STORED = ("Pending", "Creating", "Running", "Stopped", "Error")


def _stored_after_pass(stored: str, observation: str, spec: dict[str, Any]) -> str:
    after_f = vmoperator.phase_after_step_f(stored)
    if observation == "child error":
        return "Error"
    if observation == "some disk not bound":
        return after_f
    decided = vmoperator.phase_for_vm_status(observation, spec)
    return after_f if decided is None else decided


AUTOSTART_OFF = {"startStrategy": {"autoStart": False}}
PHASE_TABLE = [
    # (§7 row, J1 observation, spec, stored after the pass for P = Pending, Creating, Running, Stopped, Error)
    ("child error (NAD/PVC/DV/VM)", "child error", {}, ("Error", "Error", "Error", "Error", "Error")),
    ("some disk not bound", "some disk not bound", {}, ("Creating", "Creating", "Running", "Creating", "Creating")),
    ("VMI Running", "Running", {}, ("Running", "Running", "Running", "Running", "Running")),
    ("VMI Pending", "Pending", {}, ("Creating", "Creating", "Running", "Creating", "Creating")),
    ("VMI Scheduling", "Scheduling", {}, ("Creating", "Creating", "Running", "Creating", "Creating")),
    ("VMI Scheduled", "Scheduled", {}, ("Creating", "Creating", "Running", "Creating", "Creating")),
    ("VMI absent (VM stopped)", "Stopped", {}, ("Creating", "Creating", "Running", "Creating", "Creating")),
    ("VMI Succeeded", "Succeeded", {}, ("Creating", "Creating", "Running", "Creating", "Creating")),
    ("VMI Failed", "Failed", {}, ("Error", "Error", "Error", "Error", "Error")),
    ("VMI with an empty phase (J1 reports Unknown)", "Unknown", {}, ("Error", "Error", "Error", "Error", "Error")),
    ("VM not yet in cache & autoStart:false", "", AUTOSTART_OFF, ("Stopped",) * 5),
    (
        "VM not yet in cache, autoStart on (J2: Creating in memory)",
        "",
        {},
        ("Creating", "Creating", "Running", "Creating", "Creating"),
    ),
]


@pytest.mark.parametrize(("row", "observation", "spec", "expected"), PHASE_TABLE, ids=[r[0] for r in PHASE_TABLE])
def test_wukong_md_7_stored_phase_by_observation(
    row: str, observation: str, spec: dict[str, Any], expected: tuple[str, ...]
) -> None:
    assert tuple(_stored_after_pass(stored, observation, spec) for stored in STORED) == expected


@pytest.mark.parametrize(
    ("spec", "valid"),
    [
        # wukong.md §2 validateSpec: cpu 1..64, memory set, ≥ 1 disk with name, size and storageClassName
        ({"cpu": 2, "memory": "2Gi", "disks": [{"name": "r", "size": "1Gi", "storageClassName": "sc"}]}, True),
        ({"cpu": 2, "memory": "2Gi", "disks": []}, False),  # "no disks" is CRD-valid but controller-invalid
        ({"cpu": 2, "memory": "2Gi", "disks": [{"name": "r", "size": "1Gi", "storageClassName": ""}]}, False),
        ({"cpu": 0, "memory": "2Gi", "disks": [{"name": "r", "size": "1Gi", "storageClassName": "sc"}]}, False),
        ({"cpu": 65, "memory": "2Gi", "disks": [{"name": "r", "size": "1Gi", "storageClassName": "sc"}]}, False),
        ({"cpu": 2, "memory": "", "disks": [{"name": "r", "size": "1Gi", "storageClassName": "sc"}]}, False),
    ],
)
def test_wukong_md_2_validate_spec(spec: dict[str, Any], valid: bool) -> None:
    assert vmoperator.spec_valid(spec) is valid


# ---- wukong.md §8: start/stop defaulting ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start_strategy", "running"),
    [
        (None, True),  # startStrategy absent → start
        ({}, False),  # present without autoStart → Go zero value → stopped
        ({"runStrategy": "Always"}, False),  # runStrategy is ignored
        ({"autoStart": True}, True),
        ({"autoStart": False}, False),
        ({"runStrategy": "Manual", "autoStart": True}, True),
    ],
)
def test_wukong_md_8_auto_start_becomes_vm_spec_running(start_strategy: dict[str, Any] | None, running: bool) -> None:
    spec: dict[str, Any] = {"cpu": 1, "memory": "1Gi", "disks": [{"name": "r", "size": "1Gi", "storageClassName": "x"}]}
    if start_strategy is not None:
        spec["startStrategy"] = start_strategy
    wukong = {"metadata": {"name": "w"}, "spec": spec}

    _, vm_spec = vmoperator.build_vm_spec(wukong, network_status=[], ssh_keys=[])

    assert vmoperator.auto_start(spec) is running
    assert vm_spec["running"] is running
    assert "runStrategy" not in vm_spec  # never set on the VM


# ---- wukong.md §3.1: conditions ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("vm_phase", "ready"),
    [
        ("Running", ("True", "VMRunning", "Virtual machine is running")),
        ("Failed", ("False", "VMFailed", "Virtual machine is in Failed state")),
        ("Unknown", ("False", "VMFailed", "Virtual machine is in Unknown state")),
        ("Scheduling", ("False", "VMCreating", "Virtual machine is in Scheduling state")),
        ("", ("False", "VMNotReady", "Virtual machine is not ready")),
    ],
)
def test_wukong_md_3_1_conditions(vm_phase: str, ready: tuple[str, str, str]) -> None:
    rows = vmoperator.conditions(
        vm_phase=vm_phase, networks=[], volumes=[{"bound": True}, {"bound": False}], now="2026-01-01T00:00:00Z"
    )

    assert [r["type"] for r in rows] == ["Ready", "NetworksConfigured", "VolumesBound"]
    assert (rows[0]["status"], rows[0]["reason"], rows[0]["message"]) == ready
    assert (rows[1]["status"], rows[1]["reason"], rows[1]["message"]) == (
        "False",
        "NetworksReady",
        "0 networks configured",
    )
    assert (rows[2]["status"], rows[2]["reason"], rows[2]["message"]) == ("False", "VolumesReady", "2 volumes bound")
    assert all(r["lastTransitionTime"] == "2026-01-01T00:00:00Z" for r in rows)


# ---- wukong.md §4.1 and §2: the VM vmoperator builds ----------------------------------------------------------------


def test_wukong_md_4_1_vm_shape() -> None:
    wukong = {
        "metadata": {"name": "db"},
        "spec": {
            "cpu": 4,
            "memory": "1.5Gi",  # written canonicalised: 1536Mi
            "osImage": "ubuntu",
            "disks": [
                {"name": "root", "size": "20Gi", "storageClassName": "x", "boot": True},
                {"name": "data", "size": "5Gi", "storageClassName": "x"},
            ],
            "highAvailability": {
                "nodeSelector": {"zone": "a"},
                "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoSchedule", "tolerationSeconds": 9}],
            },
        },
    }
    networks = [{"name": "storage", "nadName": "db-storage-nad"}]

    annotations, spec = vmoperator.build_vm_spec(wukong, network_status=networks, ssh_keys=[])

    template = spec["template"]["spec"]
    assert annotations == {"k8s.v1.cni.cncf.io/networks": '[{"interface":"net1","name":"db-storage-nad"}]'}
    assert template["domain"]["cpu"] == {"cores": 4}
    assert template["domain"]["memory"] == {"guest": "1536Mi"}
    assert template["domain"]["devices"]["disks"] == [
        {"name": "root", "disk": {"bus": "virtio"}},  # no bootOrder: `boot` is unused
        {"name": "data", "disk": {"bus": "virtio"}},
    ]
    assert template["domain"]["devices"]["interfaces"] == [
        {"name": "default", "masquerade": {}},
        {"name": "db-storage-nad", "bridge": {}},
    ]
    assert template["networks"][1] == {"name": "db-storage-nad", "multus": {"networkName": "db-storage-nad"}}
    assert [v["name"] for v in template["volumes"]] == ["root", "data", "cloudinitdisk"]
    assert template["volumes"][0]["persistentVolumeClaim"] == {"claimName": "db-root"}
    assert template["tolerations"] == [{"key": "k", "operator": "Exists", "effect": "NoSchedule"}]  # seconds dropped
    assert template["nodeSelector"] == {"zone": "a"}
    assert spec["template"]["metadata"] == {"annotations": annotations}


def test_wukong_md_5_3_cloud_init_order() -> None:
    spec = {
        "cloudInitUser": {"name": "ops", "passwordHash": "$6$h", "lockPasswd": True},
        "networks": [
            {"name": "lan", "ipConfig": {"mode": "static", "address": "192.0.2.9/24", "gateway": "192.0.2.1"}}
        ],
    }

    text = vmoperator.cloud_init_user_data(spec, ["ssh-ed25519 AAAA ops@x"])

    assert text.splitlines()[:9] == [
        "#cloud-config",
        "users:",
        "  - name: ops",
        "    passwd: $6$h",
        "    sudo: ALL=(ALL) NOPASSWD:ALL",
        "    shell: /bin/bash",
        "    groups: sudo, adm, dialout, cdrom, floppy, audio, dip, video, plugdev, netdev",
        "    lock_passwd: true",
        "ssh_pwauth: true",
    ]
    assert text.index("ssh_authorized_keys:") < text.index("network:")
    assert "    lan:\n      addresses: [192.0.2.9/24]\n      gateway4: 192.0.2.1\n" in text


@pytest.mark.parametrize(
    ("given", "canonical"),
    [("1.5Gi", "1536Mi"), ("2Gi", "2Gi"), ("4096Mi", "4Gi"), ("1000M", "1G"), ("1.5G", "1500M"), ("512", "512")],
)
def test_wukong_md_2_memory_is_canonicalised(given: str, canonical: str) -> None:
    assert quantity.canonical(given) == canonical


# ---- kubevirt.md §3.3: printableStatus precedence -------------------------------------------------------------------


def _vm(*, deleting: bool = False, running: bool = True, fail_count: int = 0) -> dict[str, Any]:
    vm: dict[str, Any] = {"metadata": {"name": "v"}, "spec": {"running": running}, "status": {}}
    if deleting:
        vm["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    if fail_count:
        vm["status"]["startFailure"] = {"consecutiveFailCount": fail_count}
    return vm


def _vmi(phase: str, *, deleting: bool = False, conditions: list[dict[str, str]] | None = None) -> dict[str, Any]:
    vmi: dict[str, Any] = {"metadata": {"name": "v"}, "status": {"phase": phase, "conditions": conditions or []}}
    if deleting:
        vmi["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return vmi


PAUSED = [{"type": "Paused", "status": "True", "reason": "PausedByUser"}]
PRINTABLE_TABLE: list[tuple[str, dict[str, Any], dict[str, Any] | None, dict[str, bool], str]] = [
    ("#1 VM has deletionTimestamp", _vm(deleting=True), _vmi("Running"), {}, "Terminating"),
    ("#2 VMI not final and being deleted", _vm(), _vmi("Running", deleting=True), {}, "Stopping"),
    ("#4 VMI Running with Paused=True", _vm(), _vmi("Running", conditions=PAUSED), {}, "Paused"),
    ("#5 VMI Running, not paused", _vm(), _vmi("Running"), {}, "Running"),
    (
        "#6 Synchronized=False FailedPvcNotFound",
        _vm(),
        _vmi("Pending", conditions=[{"type": "Synchronized", "status": "False", "reason": "FailedPvcNotFound"}]),
        {},
        "ErrorPvcNotFound",
    ),
    ("#7 a DataVolume reports an error", _vm(), _vmi("Pending"), {"data_volume_error": True}, "DataVolumeError"),
    (
        "#8 PodScheduled=False Unschedulable",
        _vm(),
        _vmi("Scheduling", conditions=[{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]),
        {},
        "ErrorUnschedulable",
    ),
    ("#9 a DataVolume is provisioning", _vm(), _vmi("Pending"), {"data_volume_provisioning": True}, "Provisioning"),
    (
        "#10 set to start and a PVC is unbound",
        _vm(),
        None,
        {"create_pending": True, "claim_unbound": True},
        "WaitingForVolumeBinding",
    ),
    (
        "#11 Synchronized=False ErrImagePull",
        _vm(),
        _vmi("Pending", conditions=[{"type": "Synchronized", "status": "False", "reason": "ErrImagePull"}]),
        {},
        "ErrImagePull",
    ),
    (
        "#12 Synchronized=False ImagePullBackOff",
        _vm(),
        _vmi("Pending", conditions=[{"type": "Synchronized", "status": "False", "reason": "ImagePullBackOff"}]),
        {},
        "ImagePullBackOff",
    ),
    ("#13 no VMI but a create is pending", _vm(), None, {"create_pending": True}, "Starting"),
    ("#13 VMI Scheduled", _vm(), _vmi("Scheduled"), {}, "Starting"),
    ("#13 VMI with no phase yet", _vm(), _vmi(""), {}, "Starting"),
    ("#14 no VMI, start failures, Always", _vm(fail_count=2), None, {}, "CrashLoopBackOff"),
    ("#14 final VMI, start failures, Always", _vm(fail_count=1), _vmi("Failed"), {}, "CrashLoopBackOff"),
    ("#15 no VMI and no create pending", _vm(running=False), None, {}, "Stopped"),
    ("#15 VMI final", _vm(), _vmi("Succeeded"), {}, "Stopped"),
    (
        "#15 start failures but Halted (row 14 needs Always/RerunOnFailure/Once)",
        _vm(running=False, fail_count=3),
        None,
        {},
        "Stopped",
    ),
    ("#1 beats #4: deleting a paused VM", _vm(deleting=True), _vmi("Running", conditions=PAUSED), {}, "Terminating"),
    ("#2 beats #5: a running VMI being deleted", _vm(), _vmi("Running", deleting=True), {}, "Stopping"),
    ("- nothing matched", _vm(), _vmi("Unknown"), {}, "Unknown"),
]


@pytest.mark.parametrize(
    ("row", "vm", "vmi", "extra", "expected"), PRINTABLE_TABLE, ids=[r[0] for r in PRINTABLE_TABLE]
)
def test_kubevirt_md_3_3_printable_status(
    row: str, vm: dict[str, Any], vmi: dict[str, Any] | None, extra: dict[str, bool], expected: str
) -> None:
    options = {"create_pending": False, **extra}
    assert rules.printable_status(vm=vm, vmi=vmi, **options) == expected


# ---- kubevirt.md §1.6 and §3.2 -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "strategy"),
    [
        ({"running": True}, "Always"),
        ({"running": False}, "Halted"),
        ({}, "Halted"),
        ({"runStrategy": "Manual"}, "Manual"),
    ],
)
def test_kubevirt_md_1_6_run_strategy(spec: dict[str, Any], strategy: str) -> None:
    assert rules.run_strategy(spec) == strategy


def test_kubevirt_md_1_6_running_and_run_strategy_are_exclusive() -> None:
    with pytest.raises(rules.RunStrategyError):
        rules.run_strategy({"running": True, "runStrategy": "Always"})


def test_kubevirt_md_3_2_vm_conditions() -> None:
    missing = rules.vm_conditions(None, restart_required=False, now="t")
    vmi = _vmi(
        "Running",
        conditions=[{"type": "Ready", "status": "True", "reason": "", "message": ""}, *PAUSED],
    )
    mirrored = rules.vm_conditions(vmi, restart_required=True, now="t")

    assert [(c["type"], c["status"], c["reason"]) for c in missing] == [("Ready", "False", "VMINotExists")]
    assert missing[0]["message"] == "VMI does not exist"
    assert [(c["type"], c["status"]) for c in mirrored] == [
        ("Ready", "True"),
        ("Paused", "True"),
        ("RestartRequired", "True"),
    ]


# ---- kubevirt.md §3.4 (lines 430-433) and §5 (lines 566-570): the VMI phase sequence -----------------------------

VMI_PHASE_TABLE: list[tuple[str, str, dict[str, Any], tuple[str, str]]] = [
    ('§3.4 l.430 "" (unset) → Pending', "", {"pod": "absent", "step_done": False}, ("Pending", "")),
    ("§3.4 l.430 Pending waits its delay", "Pending", {"pod": "absent", "step_done": False}, ("Pending", "")),
    (
        "§3.4 l.430 Pending → Scheduling (launcher pod created)",
        "Pending",
        {"pod": "absent", "step_done": True},
        ("Scheduling", ""),
    ),
    (
        "§3.4 l.430 Scheduling: launcher pod created, not yet running",
        "Scheduling",
        {"pod": "pending", "step_done": True},
        ("Scheduling", ""),
    ),
    (
        "§3.4 l.430 Scheduled: pod running, virt-handler takes over",
        "Scheduling",
        {"pod": "running", "step_done": True},
        ("Scheduled", ""),
    ),
    (
        "§3.4 l.431 Scheduled waits for the guest to boot",
        "Scheduled",
        {"pod": "running", "step_done": False},
        ("Scheduled", ""),
    ),
    (
        "§3.4 l.431 + §5 l.566 Scheduled → Running (Started)",
        "Scheduled",
        {"pod": "running", "step_done": True},
        ("Running", ""),
    ),
    (
        "§3.4 l.431 + §5 l.570 Failed: lost before start (fault fail-start)",
        "Scheduled",
        {"pod": "running", "step_done": True, "fails_to_start": True},
        ("Failed", "SimulatedStartFailure"),
    ),
    (
        "§3.4 l.431 Failed: launcher pod lost while scheduling",
        "Scheduling",
        {"pod": "absent", "step_done": True},
        ("Failed", "PodDisappeared"),
    ),
    (
        "§3.4 l.431 Failed: launcher pod lost while running",
        "Running",
        {"pod": "absent", "step_done": False},
        ("Failed", "PodDisappeared"),
    ),
    (
        "§3.4 l.431 + §5 l.570 Failed: crash (fault crash-after-seconds)",
        "Running",
        {"pod": "running", "step_done": True, "crash_due": True},
        ("Failed", "SimulatedCrash"),
    ),
    ("§3.4 l.430 Running stays Running", "Running", {"pod": "running", "step_done": False}, ("Running", "")),
    ("§3.4 l.433 Succeeded is final", "Succeeded", {"pod": "absent", "step_done": True}, ("Succeeded", "")),
    ("§3.4 l.433 Failed is final", "Failed", {"pod": "absent", "step_done": True}, ("Failed", "")),
]


@pytest.mark.parametrize(("row", "phase", "observed", "expected"), VMI_PHASE_TABLE, ids=[r[0] for r in VMI_PHASE_TABLE])
def test_kubevirt_md_3_4_vmi_phase_sequence(
    row: str, phase: str, observed: dict[str, Any], expected: tuple[str, str]
) -> None:
    assert rules.vmi_phase_after(phase, **observed) == expected
