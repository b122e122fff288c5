"""The simulator runs beside the real node and its kube-scheduler: its launcher pods name a scheduler of their own, so
the simulator still places them on its simulated Nodes, and the real node is left alone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import kubernetes.client
import pytest

import devcluster
from devcluster import manifests, node, procs
from devcluster import stack as devstack
from sim.kubevirt import vmi_controller
from tests.conftest import SIM_SPEED
from tests.kubectl import Kubectl


@pytest.fixture
def simulator(
    realnode_cluster: devcluster.ClusterInfo, realnode_kube: kubernetes.client.ApiClient, tmp_path: Path
) -> Iterator[procs.Process]:
    """The simulator with only its own CRDs applied (deploy/ stays out: a chart installs that here)."""
    manifests.apply(realnode_kube, manifests.load(manifests.SIM_CRDS))
    with procs.stopping([devstack.start_simulator(realnode_cluster, state_dir=tmp_path, speed=SIM_SPEED)]) as started:
        yield started[0]


def test_launcher_pods_are_placed_by_the_simulator_not_the_scheduler(
    real_node: node.RealNode,
    realnode_cluster: devcluster.ClusterInfo,
    realnode_namespace: str,
    simulator: procs.Process,
) -> None:
    kubectl = Kubectl(realnode_cluster.kubeconfig, realnode_namespace)

    kubectl.apply_wukong(
        "beside",
        {"cpu": 1, "memory": "1Gi", "disks": [{"name": "root", "size": "10Gi", "storageClassName": "local-path"}]},
    )

    kubectl.wait_for("vmi", "beside-vm", ("status", "phase"), "Running")
    (launcher,) = kubectl.items("pod", "-l", "vm.kubevirt.io/name=beside-vm")
    assert launcher["spec"]["schedulerName"] == vmi_controller.LAUNCHER_SCHEDULER
    assert launcher["spec"]["nodeName"].startswith("sim-node-")
    assert real_node.task_pids() == []  # nothing of the simulator's runs for real
