"""Simulated Nodes: Ready, with capacity, and addresses in 127.0.0.0/8 only (nothing the simulator creates may point
at a private or public network). With no kubelet, these stay as written; the node-lifecycle controller is off."""

from __future__ import annotations

from sim import kubeapi
from sim.kubeapi import Body, KubeApi
from sim.runtime import now_rfc3339

KUBELET_VERSION = "v1.32.4"
NODE_PREFIX = "sim-node-"
ZONES = ("zone-a", "zone-b", "zone-c")

SIMULATED_LABEL = "sim.novasphere.dev/simulated"
"""On the simulator's own Nodes: it plays the kubelet there only (a real node's pods are its kubelet's)."""


def node_name(index: int) -> str:
    return f"{NODE_PREFIX}{index}"


def node_address(index: int) -> str:
    return f"127.0.1.{index}"


def _node(index: int) -> Body:
    name = node_name(index)
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "topology.kubernetes.io/zone": ZONES[(index - 1) % len(ZONES)],
                "kubevirt.io/schedulable": "true",
                SIMULATED_LABEL: "true",
            },
        },
        "spec": {},
    }


def _status(index: int) -> Body:
    now = now_rfc3339()
    capacity = {"cpu": "64", "memory": "256Gi", "pods": "1000", "ephemeral-storage": "1Ti"}
    return {
        "capacity": capacity,
        "allocatable": capacity,
        "addresses": [
            {"type": "InternalIP", "address": node_address(index)},
            {"type": "Hostname", "address": node_name(index)},
        ],
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "KubeletReady",
                "message": "kubelet is posting ready status (simulated)",
                "lastHeartbeatTime": now,
                "lastTransitionTime": now,
            }
        ],
        "nodeInfo": {
            "kubeletVersion": KUBELET_VERSION,
            "kubeProxyVersion": KUBELET_VERSION,
            "containerRuntimeVersion": "containerd://1.7.0-sim",
            "operatingSystem": "linux",
            "architecture": "amd64",
            "osImage": "NovaSphere simulated node",
            "kernelVersion": "6.1.0-sim",
            "machineID": f"sim{index:029d}",
            "systemUUID": f"00000000-0000-0000-0000-{index:012d}",
            "bootID": f"00000000-0000-0000-0000-{index:012d}",
        },
    }


async def ensure(api: KubeApi, count: int) -> list[str]:
    """Creates (or repairs) `count` nodes; returns their names."""
    names = []
    for index in range(1, count + 1):
        try:
            await api.get(kubeapi.NODES, None, node_name(index))
        except kubeapi.NotFound:
            await api.create(kubeapi.NODES, None, _node(index))
        # A merge patch, not an update: kube-controller-manager annotates new nodes at the same moment.
        await api.patch(kubeapi.NODES, None, node_name(index), {"status": _status(index)}, subresource="status")
        names.append(node_name(index))
    return names
