"""The simulator of vmoperator + KubeVirt against the real control plane, driven with kubectl only, as an operator
would: create, stop and delete Wukongs, fault annotations, and a simulator killed in the middle of a boot."""

from __future__ import annotations

import ipaddress
import json
import signal
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

import devcluster
from devcluster import stack as devstack
from sim import faults
from tests import kube_helpers
from tests.conftest import SIM_SPEED
from tests.kubectl import TIMEOUT, Kubectl


@pytest.fixture
def kubectl(stack: devstack.Stack, namespace: str) -> Kubectl:
    return Kubectl(stack.cluster.kubeconfig, namespace)


def _disk(name: str, *, storage_class: str = "local-path", **extra: str) -> dict[str, str]:
    return {"name": name, "size": "10Gi", "storageClassName": storage_class, **extra}


def test_create_stop_and_delete_a_wukong(kubectl: Kubectl) -> None:
    kubectl.apply_wukong(
        "web",
        {
            "cpu": 2,
            "memory": "1.5Gi",
            "disks": [_disk("root", image="docker://quay.io/containerdisks/ubuntu:22.04"), _disk("data")],
        },
    )

    vm = kubectl.wait_for("vm", "web-vm", ("status", "printableStatus"), "Running")
    wukong = kubectl.wait_for("wukong", "web", ("status", "phase"), "Running")
    vmi = kubectl.get("vmi", "web-vm")
    assert vmi is not None

    # vmoperator (wukong.md §4): VM owned by the Wukong, claims per disk (a DataVolume for the image), finalizer
    assert vm["metadata"]["ownerReferences"][0]["kind"] == "Wukong"
    assert vm["metadata"]["ownerReferences"][0]["uid"] == wukong["metadata"]["uid"]
    assert vm["spec"]["running"] is True
    assert vm["spec"]["template"]["spec"]["domain"]["memory"]["guest"] == "1536Mi"
    assert "wukong.novasphere.dev/finalizer" in wukong["metadata"]["finalizers"]
    assert (wukong["status"]["vmName"], wukong["status"]["nodeName"]) == ("web-vm", vmi["status"]["nodeName"])
    assert [v["bound"] for v in wukong["status"]["volumes"]] == [True, True]
    assert {c["type"]: c["status"] for c in wukong["status"]["conditions"]} == {
        "Ready": "True",
        "NetworksConfigured": "False",
        "VolumesBound": "True",
    }
    data_volume = kubectl.get("dv", "web-root")
    assert data_volume is not None
    assert (data_volume["status"]["phase"], data_volume["status"]["progress"]) == ("Succeeded", "100.0%")
    for claim in ("web-root", "web-data"):
        assert kube_helpers.dig(kubectl.get("pvc", claim), "status", "phase") == "Bound"

    # KubeVirt (kubevirt.md §3.4): the phase sequence, the launcher pod, interfaces on loopback only
    phases = [p["phase"] for p in vmi["status"]["phaseTransitionTimestamps"]]
    assert phases == ["Pending", "Scheduling", "Scheduled", "Running"]
    pods = kubectl.items("pod", "-l", f"kubevirt.io/created-by={vmi['metadata']['uid']}")
    assert len(pods) == 1
    pod = pods[0]
    assert pod["metadata"]["name"].startswith("virt-launcher-web-vm-")
    assert pod["metadata"]["labels"]["kubevirt.io"] == "virt-launcher"
    assert pod["metadata"]["labels"]["vm.kubevirt.io/name"] == "web-vm"
    assert pod["spec"]["nodeName"] == vmi["status"]["nodeName"]
    assert pod["status"]["phase"] == "Running"
    interface = vmi["status"]["interfaces"][0]
    assert ipaddress.ip_address(interface["ipAddress"]).is_loopback
    assert interface["mac"].startswith("02:")
    node = kubectl.get("node", vmi["status"]["nodeName"])
    assert node is not None
    assert all(
        ipaddress.ip_address(a["address"]).is_loopback for a in node["status"]["addresses"] if a["type"] == "InternalIP"
    )
    assert (vm["status"]["created"], vm["status"]["ready"]) == (True, True)

    # Stop through the durable intent (wukong.md §8): the VMI goes, the VM shows Stopped, the stored phase stays
    # Running (§7, upstream's stale phase)
    kubectl("patch", "wukong", "web", "--type", "merge", "-p", '{"spec": {"startStrategy": {"autoStart": false}}}')
    kubectl.wait_gone("vmi", "web-vm")
    kubectl.wait_for("vm", "web-vm", ("status", "printableStatus"), "Stopped")
    assert kube_helpers.dig(kubectl.get("wukong", "web"), "status", "phase") == "Running"
    assert kubectl.items("pod", "-l", "vm.kubevirt.io/name=web-vm") == []
    events = [(e["involvedObject"]["kind"], e["reason"]) for e in kubectl.items("events")]
    for expected in [
        ("VirtualMachine", "SuccessfulCreate"),
        ("VirtualMachineInstance", "SuccessfulCreate"),
        ("VirtualMachineInstance", "Created"),
        ("VirtualMachineInstance", "Started"),
        ("VirtualMachine", "SuccessfulDelete"),
        ("VirtualMachineInstance", "ShuttingDown"),
        ("VirtualMachineInstance", "Stopped"),
    ]:
        assert expected in events

    # Delete: the real garbage collector removes the VM; the claims stay behind (wukong.md §10)
    data_claim = kubectl.get("pvc", "web-data")
    kubectl("delete", "wukong", "web", "--wait=false")
    kubectl.wait_gone("wukong", "web")
    kubectl.wait_gone("vm", "web-vm")
    assert kubectl.get("pvc", "web-data") is not None

    # Re-create: the same claims are used again, so the data survives (wukong.md §10)
    kubectl.apply_wukong("web", {"cpu": 1, "memory": "1Gi", "disks": [_disk("data")]})
    kubectl.wait_for("vm", "web-vm", ("status", "printableStatus"), "Running")
    reused = kubectl.get("pvc", "web-data")
    assert reused is not None
    assert data_claim is not None
    assert reused["metadata"]["uid"] == data_claim["metadata"]["uid"]


def test_restart_and_pause_state_as_kubevirt_stores_it(kubectl: Kubectl) -> None:
    """What part 2's subresource API will write: a restart is `stateChangeRequests: [Stop <uid>, Start]` on the VM
    status (kubevirt.md §1.6); a pause is the VMI's `Paused` condition, mirrored to the VM (§1.5, §3.2)."""
    kubectl.apply_wukong("app", {"cpu": 1, "memory": "1Gi", "disks": [_disk("root")]})
    kubectl.wait_for("vm", "app-vm", ("status", "printableStatus"), "Running")
    first = kubectl.get("vmi", "app-vm")
    assert first is not None

    requests = {
        "status": {"stateChangeRequests": [{"action": "Stop", "uid": first["metadata"]["uid"]}, {"action": "Start"}]}
    }
    kubectl("patch", "vm", "app-vm", "--subresource=status", "--type=merge", "-p", json.dumps(requests))

    def restarted() -> dict[str, Any] | None:
        vmi = kubectl.get("vmi", "app-vm")
        fresh = vmi is not None and vmi["metadata"]["uid"] != first["metadata"]["uid"]
        return vmi if fresh and kube_helpers.dig(vmi, "status", "phase") == "Running" else None

    second = kube_helpers.eventually(restarted, timeout=TIMEOUT, what="a new VMI after the restart")
    vm = kubectl.wait_for("vm", "app-vm", ("status", "printableStatus"), "Running")
    assert "stateChangeRequests" not in vm["status"]  # both requests consumed

    paused = {
        "type": "Paused",
        "status": "True",
        "reason": "PausedByUser",
        "message": "VMI was paused by user",
        "lastProbeTime": None,
        "lastTransitionTime": "2026-01-01T00:00:00Z",
    }
    second["status"]["conditions"].append(paused)
    kubectl("replace", "-f", "-", stdin=json.dumps(second))
    vm = kubectl.wait_for("vm", "app-vm", ("status", "printableStatus"), "Paused")
    assert {"type": "Paused", "status": "True", "reason": "PausedByUser"}.items() <= next(
        c for c in vm["status"]["conditions"] if c["type"] == "Paused"
    ).items()


@pytest.mark.parametrize(
    ("annotations", "spec_overrides", "check"),
    [
        ({faults.FAIL_START: "true"}, {}, "fails-to-start"),
        ({faults.CRASH_AFTER_SECONDS: "20"}, {}, "crashes"),
        ({faults.PVC_NEVER_BINDS: "true"}, {"disks": [_disk("root", storage_class="sim-immediate")]}, "claim-pending"),
        ({faults.BOOT_SECONDS: "120"}, {}, "boots-slowly"),
        ({}, {"networks": [{"name": "lan", "type": "bridge"}]}, "network-without-nad"),
    ],
    ids=["fail-start", "crash-after-seconds", "pvc-never-binds", "boot-seconds", "network-without-nad"],
)
def test_fault_annotations_give_their_documented_failure(
    kubectl: Kubectl, annotations: dict[str, str], spec_overrides: dict[str, Any], check: str
) -> None:
    spec = {"cpu": 1, "memory": "1Gi", "disks": [_disk("root")], **spec_overrides}
    kubectl.apply_wukong("faulty", spec, annotations)

    if check == "fails-to-start":
        # every boot fails: VMI Failed, KubeVirt counts start failures and backs off (CrashLoopBackOff)
        vm = kubectl.wait_for("vm", "faulty-vm", ("status", "printableStatus"), "CrashLoopBackOff")
        assert vm["status"]["startFailure"]["consecutiveFailCount"] >= 1
        events = [(e["reason"], e["type"], e["message"]) for e in kubectl.items("events")]
        assert ("Stopped", "Warning", "The VirtualMachineInstance crashed.") in events
    elif check == "crashes":
        kubectl.wait_for("vm", "faulty-vm", ("status", "printableStatus"), "Running")
        vm = kube_helpers.eventually(
            lambda: (vm := kubectl.get("vm", "faulty-vm")) and kube_helpers.dig(vm, "status", "startFailure") and vm,
            timeout=TIMEOUT,
            what="a crash to be counted",
        )
        assert vm["status"]["startFailure"]["lastFailedVMIUID"]
    elif check == "claim-pending":
        kubectl.wait_for("wukong", "faulty", ("status", "phase"), "Creating")
        volumes = kube_helpers.eventually(
            lambda: kube_helpers.dig(kubectl.get("wukong", "faulty"), "status", "volumes"), what="volumes in status"
        )
        assert kube_helpers.dig(kubectl.get("pvc", "faulty-root"), "status", "phase") == "Pending"
        assert volumes[0]["bound"] is False
        assert kubectl.get("vm", "faulty-vm") is None  # vmoperator creates the VM only once every disk is bound
    elif check == "boots-slowly":
        vmi = kubectl.wait_for("vmi", "faulty-vm", ("status", "phase"), "Running")
        stamps = {p["phase"]: p["phaseTransitionTimestamp"] for p in vmi["status"]["phaseTransitionTimestamps"]}
        boot = datetime.fromisoformat(stamps["Running"]) - datetime.fromisoformat(stamps["Scheduled"])
        assert boot.total_seconds() >= 120 / SIM_SPEED - 1  # timestamps have one-second precision
    else:
        # vmoperator on main cannot auto-create a NAD (its Multus-CRD check fails): phase Error (wukong.md §10)
        kubectl.wait_for("wukong", "faulty", ("status", "phase"), "Error")
        assert kubectl.get("vm", "faulty-vm") is None


@pytest.fixture
def own_cluster(tmp_path: Path) -> Iterator[devcluster.ClusterInfo]:
    with devcluster.running(tmp_path / "cluster") as cluster:
        devstack.install(cluster)
        yield cluster


def test_killing_the_simulator_mid_boot_loses_nothing(own_cluster: devcluster.ClusterInfo, tmp_path: Path) -> None:
    kubectl = Kubectl(own_cluster.kubeconfig, "default")
    simulator = devstack.start_simulator(own_cluster, state_dir=tmp_path, speed=SIM_SPEED)
    try:
        kubectl.apply_wukong(
            "resume", {"cpu": 1, "memory": "1Gi", "disks": [_disk("root")]}, {faults.BOOT_SECONDS: "100"}
        )
        booting = kubectl.wait_for("vmi", "resume-vm", ("status", "phase"), "Scheduled")

        simulator.popen.send_signal(signal.SIGKILL)
        simulator.popen.wait(30)
        simulator = devstack.start_simulator(own_cluster, state_dir=tmp_path, speed=SIM_SPEED)

        vmi = kubectl.wait_for("vmi", "resume-vm", ("status", "phase"), "Running")
        kubectl.wait_for("vm", "resume-vm", ("status", "printableStatus"), "Running")
        kubectl.wait_for("wukong", "resume", ("status", "phase"), "Running")
        assert vmi["metadata"]["uid"] == booting["metadata"]["uid"]  # the same VMI carried on
        assert len(kubectl.items("pod", "-l", "vm.kubevirt.io/name=resume-vm")) == 1
    finally:
        simulator.stop()
