"""What the informers keep of each object (`Kind.keep`): everything the API derives from the whole object comes out the
same from the kept copy, which is a fraction of the size, and recurring parts are shared."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from server.kube import kubevirt, pods, slim, wukongs
from server.tasks import progress
from server.tasks.model import Operation, Task
from server.wukongs.cache import WukongState
from server.wukongs.status import derive

Objects = tuple[dict[str, Any], dict[str, Any] | None, dict[str, Any] | None, dict[str, Any] | None]
KEEPS = (wukongs.keep, kubevirt.keep_vm, kubevirt.keep_instance, pods.keep)
MANAGED_FIELDS: list[dict[str, Any]] = [
    {
        "manager": manager,
        "operation": "Update",
        "apiVersion": "v1",
        "time": "2026-12-01T10:00:00Z",
        "fieldsType": "FieldsV1",
        "fieldsV1": {f"f:{field}": {".": {}, **{f"f:sub{i}": {} for i in range(12)}} for field in ("metadata", "spec")},
    }
    for manager in ("virt-controller", "virt-handler", "vmoperator")
]


def wukong(name: str = "web-1") -> dict[str, Any]:
    return {
        "apiVersion": "vm.novasphere.dev/v1alpha1",
        "kind": "Wukong",
        "metadata": {
            "name": name,
            "namespace": "team-a",
            "uid": "5a1f0c3e-1111-4c1e-9a55-000000000001",
            "resourceVersion": "4711",
            "generation": 3,
            "creationTimestamp": "2026-12-01T10:00:00Z",
            "labels": {"tier": "web", "novasphere.dev/tenant": "team-a"},
            "annotations": {
                wukongs.API_ANNOTATIONS + "request-id": "req-1",
                "kubectl.kubernetes.io/last-applied-configuration": "{" + "x" * 2000 + "}",
            },
            "finalizers": ["vm.novasphere.dev/finalizer"],
            "managedFields": MANAGED_FIELDS,
        },
        "spec": {
            "cpu": 2,
            "memory": "4Gi",
            "disks": [{"name": "root", "size": "20Gi", "storageClassName": "local-path", "image": "ubuntu:24.04"}],
            "networks": [{"name": "data", "type": "bridge", "nadName": "data-net"}],
        },
        "status": {
            "phase": "Running",
            "vmName": f"{name}-vm",
            "nodeName": "node-1",
            "networks": [{"name": "data", "nadName": "data-net"}],
            "volumes": [{"name": "root", "pvcName": f"{name}-root", "bound": True, "size": "20Gi"}],
            "conditions": [
                {
                    "type": t,
                    "status": "True",
                    "reason": "Ready",
                    "message": "ok",
                    "lastTransitionTime": "2026-12-01T10:01:00Z",
                }
                for t in ("Ready", "NetworksConfigured", "VolumesBound")
            ],
        },
    }


def vm(name: str = "web-1", *, printable: str = "Running", restart_required: bool = False) -> dict[str, Any]:
    conditions = [
        {"type": "Ready", "status": "True", "lastProbeTime": None, "lastTransitionTime": "2026-12-01T10:01:00Z"},
        {"type": "LiveMigratable", "status": "False", "reason": "DisksNotLiveMigratable", "message": "x" * 120},
    ]
    if restart_required:
        conditions.append({"type": "RestartRequired", "status": "True", "message": "a non-live-updatable field"})
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachine",
        "metadata": {
            "name": f"{name}-vm",
            "namespace": "team-a",
            "uid": "5a1f0c3e-2222-4c1e-9a55-000000000002",
            "resourceVersion": "4712",
            "generation": 2,
            "creationTimestamp": "2026-12-01T10:00:05Z",
            "labels": {"app": name},
            "ownerReferences": [{"apiVersion": "vm.novasphere.dev/v1alpha1", "kind": "Wukong", "name": name}],
            "managedFields": MANAGED_FIELDS,
        },
        "spec": {
            "runStrategy": "Always",
            "template": {
                "spec": {
                    "domain": {
                        "cpu": {"cores": 2},
                        "memory": {"guest": "4Gi"},
                        "devices": {"disks": [{"name": "root"}]},
                    },
                    "volumes": [{"name": "root", "persistentVolumeClaim": {"claimName": f"{name}-root"}}],
                }
            },
        },
        "status": {
            "printableStatus": printable,
            "ready": True,
            "created": True,
            "conditions": conditions,
            "volumeSnapshotStatuses": [{"name": "root", "enabled": False, "reason": "no snapshot class"}],
        },
    }


def instance(name: str = "web-1", *, phase: str = "Running", paused: bool = False) -> dict[str, Any]:
    conditions = [
        {"type": "Ready", "status": "True", "lastProbeTime": None, "lastTransitionTime": "2026-12-01T10:01:00Z"},
        {"type": "AgentConnected", "status": "True", "lastTransitionTime": "2026-12-01T10:01:30Z"},
    ]
    if paused:
        conditions.append({"type": "Paused", "status": "True", "reason": "PausedByUser"})
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachineInstance",
        "metadata": {
            "name": f"{name}-vm",
            "namespace": "team-a",
            "uid": "5a1f0c3e-3333-4c1e-9a55-000000000003",
            "resourceVersion": "4713",
            "creationTimestamp": "2026-12-01T10:00:10Z",
            "labels": {"kubevirt.io/nodeName": "node-1", "vm.kubevirt.io/name": f"{name}-vm"},
            "finalizers": ["kubevirt.io/virtualMachineControllerFinalize"],
            "managedFields": MANAGED_FIELDS,
        },
        "spec": {
            "domain": {
                "cpu": {"cores": 2, "sockets": 1, "threads": 1, "model": "host-model"},
                "memory": {"guest": "4Gi"},
                "resources": {"requests": {"memory": "4Gi"}},
                "devices": {
                    "disks": [{"name": "root", "disk": {"bus": "virtio"}}],
                    "interfaces": [{"name": "default"}],
                },
                "features": {"acpi": {"enabled": True}},
                "firmware": {"uuid": "5a1f0c3e-4444-4c1e-9a55-000000000004"},
            },
            "networks": [{"name": "default", "pod": {}}],
            "volumes": [{"name": "root", "persistentVolumeClaim": {"claimName": f"{name}-root"}}],
        },
        "status": {
            "phase": phase,
            "nodeName": "node-1",
            "activePods": {"5a1f0c3e-5555-4c1e-9a55-000000000005": "node-1"},
            "conditions": conditions,
            "guestOSInfo": {"id": "ubuntu", "name": "Ubuntu", "prettyName": "Ubuntu 24.04 LTS", "version": "24.04"},
            "interfaces": [
                {
                    "name": "default",
                    "ipAddress": "10.42.0.17",
                    "ipAddresses": ["10.42.0.17", "fd00::17"],
                    "mac": "52:54:00:12:34:56",
                    "interfaceName": "eth0",
                    "infoSource": "domain, guest-agent",
                    "queueCount": 1,
                }
            ],
            "phaseTransitionTimestamps": [
                {"phase": p, "phaseTransitionTimestamp": f"2026-12-01T10:00:{i:02d}Z"}
                for i, p in enumerate(("Pending", "Scheduling", "Scheduled", "Running"))
            ],
            "volumeStatus": [
                {"name": "root", "target": "vda", "persistentVolumeClaimInfo": {"capacity": {"storage": "20Gi"}}}
            ],
            "launcherContainerImageVersion": "quay.io/kubevirt/virt-launcher:v1.5.0",
        },
    }


def launcher(name: str = "web-1") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"virt-launcher-{name}-vm-abcde",
            "generateName": f"virt-launcher-{name}-vm-",
            "namespace": "team-a",
            "uid": "5a1f0c3e-5555-4c1e-9a55-000000000005",
            "resourceVersion": "4714",
            "creationTimestamp": "2026-12-01T10:00:11Z",
            "labels": {
                "kubevirt.io": "virt-launcher",
                pods.VMI_NAME_LABEL: f"{name}-vm",
                "kubevirt.io/created-by": "x",
            },
            "annotations": {"kubevirt.io/domain": f"{name}-vm", "post.hook.backup.velero.io/command": "[]"},
            "managedFields": MANAGED_FIELDS,
        },
        "spec": {
            "nodeName": "node-1",
            "containers": [
                {
                    "name": "compute",
                    "image": "quay.io/kubevirt/virt-launcher:v1.5.0",
                    "command": ["/usr/bin/virt-launcher-monitor", "--qemu-timeout", "300s"],
                    "env": [{"name": f"ENV_{i}", "value": "v" * 20} for i in range(10)],
                    "resources": {"requests": {"cpu": "200m", "memory": "4400Mi"}, "limits": {"memory": "4400Mi"}},
                    "volumeMounts": [{"name": f"vol-{i}", "mountPath": f"/var/run/kubevirt/{i}"} for i in range(8)],
                }
            ],
            "volumes": [{"name": f"vol-{i}", "emptyDir": {}} for i in range(8)],
        },
        "status": {
            "phase": "Running",
            "podIP": "10.42.0.17",
            "conditions": [{"type": t, "status": "True"} for t in ("Initialized", "Ready", "ContainersReady")],
            "containerStatuses": [{"name": "compute", "ready": True, "restartCount": 0, "image": "x", "imageID": "y"}],
        },
    }


def state(objects: Objects) -> WukongState:
    return WukongState(*objects, derive(*objects), 1, 0)


def kept(objects: Objects) -> Objects:
    raw_wukong, *others = (
        None if raw is None else keep(copy.deepcopy(raw)) for keep, raw in zip(KEEPS, objects, strict=True)
    )
    assert raw_wukong is not None
    return raw_wukong, others[0], others[1], others[2]


SCENARIOS: dict[str, Callable[[], Objects]] = {
    "running": lambda: (wukong(), vm(), instance(), launcher()),
    "restart required": lambda: (wukong(), vm(restart_required=True), instance(), launcher()),
    "paused": lambda: (wukong(), vm(printable="Paused"), instance(paused=True), launcher()),
    "scheduling": lambda: (wukong(), vm(printable="Starting"), instance(phase="Scheduling"), None),
    "stopped": lambda: (wukong(), vm(printable="Stopped"), None, None),
    "provisioning": lambda: (wukong(), None, None, None),
}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_the_kept_copies_derive_what_the_whole_objects_do(scenario: str) -> None:
    whole = SCENARIOS[scenario]()
    assert derive(*kept(whole)) == derive(*whole)
    full_state, kept_state = state(whole), state(kept(whole))
    for operation in (Operation.START, Operation.STOP, Operation.RESTART, Operation.PAUSE, Operation.RESUME):
        task = _task(operation)
        assert progress.observe(task, kept_state) == progress.observe(task, full_state), operation


def test_a_wukong_keeps_its_spec_labels_and_the_apis_annotations_only() -> None:
    kept = wukongs.keep(wukong())
    assert kept["spec"] == wukong()["spec"]
    assert kept["metadata"]["labels"] == wukong()["metadata"]["labels"]
    assert kept["metadata"]["annotations"] == {wukongs.API_ANNOTATIONS + "request-id": "req-1"}
    assert "managedFields" not in kept["metadata"]
    assert kept["status"] == {
        "phase": "Running",
        "vmName": "web-1-vm",
        "nodeName": "node-1",
        "networks": [{"name": "data", "nadName": "data-net"}],
    }


def test_a_launcher_keeps_its_instance_label_node_and_phase() -> None:
    pod = pods.keep(launcher())
    assert pod["metadata"]["labels"] == {pods.VMI_NAME_LABEL: "web-1-vm"}
    assert pod["spec"] == {"nodeName": "node-1"}
    assert pod["status"] == {"phase": "Running"}


def test_the_kept_copies_are_a_fraction_of_the_objects() -> None:
    whole = SCENARIOS["running"]()
    before = sum(len(json.dumps(raw)) for raw in whole)
    after = sum(len(json.dumps(raw)) for raw in kept(whole))
    assert after < before / 5, (before, after)


def test_recurring_parts_are_one_object() -> None:
    first, second = kubevirt.keep_instance(instance("a")), kubevirt.keep_instance(instance("b"))
    assert first["status"]["conditions"] is second["status"]["conditions"]
    assert first["metadata"]["namespace"] is second["metadata"]["namespace"]
    assert first["status"]["nodeName"] is second["status"]["nodeName"]


def test_shared_parts_are_bounded() -> None:
    for index in range(slim.SHARED_LIMIT + 10):
        slim.conditions([{"type": f"Custom{index}", "status": "True"}])
    assert len(slim._shared) <= slim.SHARED_LIMIT


def _task(operation: Operation) -> Task:
    """A task whose action was sent, for the Wukong of these objects."""
    return Task(
        {
            "metadata": {"name": "t-1", "namespace": "novasphere-system", "resourceVersion": "5"},
            "spec": {
                "operation": str(operation),
                "target": {"namespace": "team-a", "name": "web-1", "uid": wukong()["metadata"]["uid"]},
                "requestedBy": {"user": "u", "tenant": "t"},
            },
            "status": {"state": "Running", "action": {"phase": "Sent", "instanceUid": "old"}},
        }
    )
