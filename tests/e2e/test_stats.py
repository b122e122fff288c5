"""GET /api/v1/stats against an independent count over 300 VMs in mixed states (running, stopped, provisioning,
error), read straight from kube-apiserver by the test, and a namespace's ResourceQuota."""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
import kubernetes.client

from devcluster import stack as devstack
from sim import faults
from tests import kube_helpers

DISK = {"name": "root", "size": "1Gi", "storageClassName": "local-path"}
# (count, cpu, memory, how it is made): 300 in all.
# Running VMs are fewest: each needs its claim provisioned and bound by kube-controller-manager first.
MIX: list[tuple[int, int, str, str]] = [
    (20, 1, "1Gi", "running"),
    (10, 2, "2Gi", "running"),
    (150, 1, "512Mi", "stopped"),
    (60, 2, "1Gi", "provisioning"),
    (60, 4, "4Gi", "error"),
]


def _body(namespace: str, name: str, cpu: int, memory: str, kind: str) -> dict[str, Any]:
    spec: dict[str, Any] = {"cpu": cpu, "memory": memory, "disks": [DISK]}
    annotations = {}
    if kind == "stopped":
        spec["startStrategy"] = {"autoStart": False}
    if kind == "provisioning":
        # An Immediate class: vmoperator waits for the claim to bind (a WaitForFirstConsumer claim counts as bound).
        spec["disks"] = [{**DISK, "storageClassName": "sim-immediate"}]
        annotations[faults.PVC_NEVER_BINDS] = "true"
    if kind == "error":
        del spec["disks"]  # vmoperator refuses a spec without disks: phase Error for good
    return {
        "apiVersion": "vm.novasphere.dev/v1alpha1",
        "kind": "Wukong",
        "metadata": {"name": name, "namespace": namespace, "annotations": annotations},
        "spec": spec,
    }


def _independent_count(kube: kubernetes.client.ApiClient, namespace: str) -> dict[str, int]:
    """What kube-apiserver holds, counted the way the API documents its buckets."""
    custom = kubernetes.client.CustomObjectsApi(kube)
    wukongs = kube_helpers.json_object(
        custom.list_namespaced_custom_object("vm.novasphere.dev", "v1alpha1", namespace, "wukongs")
    )["items"]
    listed = kube_helpers.json_object(
        custom.list_namespaced_custom_object("kubevirt.io", "v1", namespace, "virtualmachines")
    )
    vms = {vm["metadata"]["name"]: vm for vm in listed["items"]}
    counts: Counter[str] = Counter()
    for wukong in wukongs:
        vm = vms.get(wukong["metadata"]["name"] + "-vm")
        printable = kube_helpers.dig(vm, "status", "printableStatus") or ""
        phase = kube_helpers.dig(wukong, "status", "phase")
        if phase == "Error" and not printable:
            counts["error"] += 1
        elif printable in ("Running", "Stopped"):
            counts[printable.lower()] += 1
        elif vm is None or printable in ("Provisioning", "WaitingForVolumeBinding"):
            counts["provisioning"] += 1
        else:
            counts["transitioning"] += 1
        counts["vcpu_total"] += int(wukong["spec"]["cpu"])
        if printable == "Running":
            counts["vcpu_allocated"] += int(wukong["spec"]["cpu"])
    counts["vms"] = len(wukongs)
    return dict(counts)


def test_stats_equal_an_independent_count_over_300_vms(
    stack: devstack.Stack, kube: kubernetes.client.ApiClient, namespace: str
) -> None:
    # The quota first, so each launcher pod is charged to it when admitted (pods that existed before a quota are
    # counted only at kube-controller-manager's next full resync, minutes later).
    kubernetes.client.CoreV1Api(kube).create_namespaced_resource_quota(
        namespace,
        {  # type: ignore[arg-type]  # the client accepts plain JSON
            "metadata": {"name": "vms"},
            "spec": {"hard": {"requests.cpu": "500", "requests.memory": "1000Gi"}},
        },
    )

    def quota_ready() -> bool | None:
        status = kubernetes.client.CoreV1Api(kube).read_namespaced_resource_quota("vms", namespace).status
        return True if status is not None and status.hard else None

    kube_helpers.eventually(quota_ready, what="the quota controller to set up the quota")
    custom = kubernetes.client.CustomObjectsApi(kube)
    index = 0
    for count, cpu, memory, kind in MIX:
        for _ in range(count):
            body = _body(namespace, f"vm-{index:03d}", cpu, memory, kind)
            custom.create_namespaced_custom_object("vm.novasphere.dev", "v1alpha1", namespace, "wukongs", body)
            index += 1
    expected = {"vms": 300, "running": 30, "stopped": 150, "provisioning": 60, "error": 60, "vcpu_allocated": 40}

    last: list[dict[str, int]] = [{}]

    def settled() -> dict[str, int] | None:
        last[0] = _independent_count(kube, namespace)
        return last[0] if {k: last[0].get(k, 0) for k in expected} == expected else None

    try:
        counted = kube_helpers.eventually(settled, timeout=180, what="the 300 VMs to settle")
    except AssertionError as error:
        raise AssertionError(f"{error}; last count {last[0]}") from None
    assert counted["vcpu_total"] == 20 * 1 + 10 * 2 + 150 * 1 + 60 * 2 + 60 * 4

    def served() -> dict[str, Any] | None:
        response = httpx.get(
            f"{stack.http}/api/v1/stats", params={"namespace": namespace}, timeout=30, verify=stack.edge.verify()
        )
        assert response.status_code == 200, response.text
        stats = response.json()
        assert isinstance(stats, dict)
        total = stats["total"]
        return stats if {k: int(total.get(_camel(k), 0)) for k in expected} == expected else None

    stats = kube_helpers.eventually(served, timeout=60, what="the API's stats to match")
    total = stats["total"]
    assert int(total["vcpuTotal"]) == counted["vcpu_total"]
    assert int(total["transitioning"]) == 0
    assert total["memoryMbTotal"] == 20 * 1024 + 10 * 2048 + 150 * 512 + 60 * 1024 + 60 * 4096
    assert total["memoryMbAllocated"] == 20 * 1024 + 10 * 2048
    (entry,) = stats["namespaces"]
    assert entry["namespace"] == namespace
    assert entry["usage"] == total
    assert (entry["quota"]["cpuHardMillis"], entry["quota"]["memoryHardMb"]) == (500_000, 1000 * 1024)  # JSON numbers

    def quota_used() -> dict[str, Any] | None:
        response = httpx.get(
            f"{stack.http}/api/v1/stats", params={"namespace": namespace}, timeout=30, verify=stack.edge.verify()
        )
        quota = response.json()["namespaces"][0]["quota"]
        assert isinstance(quota, dict)
        return quota if quota["cpuUsedMillis"] == 40 * 100 else None

    # kube-controller-manager's quota controller counts the launcher pods' requests: 100m per vCPU (KubeVirt's
    # default allocation ratio 10), guest memory plus overhead.
    used = kube_helpers.eventually(quota_used, timeout=60, what="the quota's use to count the launcher pods")
    assert used["memoryUsedMb"] == 20 * 1024 + 10 * 2048 + 30 * 256


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)
