"""Stopping the real node leaves nothing behind: no kubelet, containerd, shim or container process, no mount under
its state folder, no cgroup, no log symlink, no Node object; and what a node whose owner was killed left is cleaned up
by the next start. A module of its own: its tests run nodes of their own."""

from __future__ import annotations

import sys
from pathlib import Path

import kubernetes.client
import pytest

import devcluster
from devcluster import manifests, node, procs, supervisor
from tests.realnode import pods
from tests.realnode.conftest import BUSYBOX_IMAGE


def test_stopping_the_node_leaves_nothing_behind(
    realnode_cluster: devcluster.ClusterInfo,
    realnode_kube: kubernetes.client.ApiClient,
    realnode_namespace: str,
    busybox_archive: Path,
    tmp_path: Path,
) -> None:
    core = kubernetes.client.CoreV1Api(realnode_kube)
    with node.running(realnode_cluster, tmp_path / "node") as real:
        real.import_image(busybox_archive, BUSYBOX_IMAGE)
        pods.run(core, realnode_namespace, pods.busybox_pod("busy", BUSYBOX_IMAGE, "echo started && sleep 100000"))
        tasks, shims = real.task_pids(), real.shim_pids()
        pids = [*tasks, *shims, *(p.pid for p in real.processes.values())]
        mounts_while_running = real.leftovers()

    assert any(entry.startswith("mount ") for entry in mounts_while_running)  # token tmpfs, emptyDir, root bind mount
    assert len(tasks) == 2  # the pod's sandbox and its container
    assert shims  # one per pod: the sandbox's shim runs the pod's containers too
    assert real.leftovers() == []
    assert [pid for pid in pids if procs.pid_alive(pid)] == []
    with pytest.raises(kubernetes.client.ApiException) as gone:
        core.read_node(node.NODE_NAME)
    assert gone.value.status == 404


OWNER_SCRIPT = """
import sys, time
from pathlib import Path
from devcluster import node
from devcluster.controlplane import ClusterInfo
cluster = ClusterInfo.read(Path(sys.argv[1]))
with node.running(cluster, Path(sys.argv[2])) as real:
    real.import_image(Path(sys.argv[3]), sys.argv[4])
    print("ready", flush=True)
    time.sleep(600)
"""


def test_the_next_start_cleans_up_after_a_node_whose_owner_was_killed(
    realnode_cluster: devcluster.ClusterInfo,
    realnode_kube: kubernetes.client.ApiClient,
    realnode_namespace: str,
    busybox_archive: Path,
    tmp_path: Path,
) -> None:
    abandoned = node.NodeLayout(tmp_path / "abandoned")
    missing_before = [directory for directory in node.HOST_DIRS if not directory.exists()]
    owner = procs.spawn(
        "node owner",
        [
            sys.executable,
            "-c",
            OWNER_SCRIPT,
            str(Path(realnode_cluster.state_dir) / supervisor.CLUSTER_FILE),
            str(abandoned.state_dir),
            str(busybox_archive),
            BUSYBOX_IMAGE,
        ],
        log_path=tmp_path / "owner.log",
        cwd=manifests.REPO_ROOT,
    )
    with procs.stopping([owner]):
        procs.wait_until(lambda: "ready" in owner.log_path.read_text(), timeout=120, what="the node", processes=[owner])
        core = kubernetes.client.CoreV1Api(realnode_kube)
        pods.run(core, realnode_namespace, pods.busybox_pod("orphan", BUSYBOX_IMAGE, "sleep 100000"))
        owner.popen.kill()  # SIGKILL: no clean stop; kubelet, containerd and scheduler die with it, shims do not
        owner.popen.wait()
    core.delete_namespaced_pod("orphan", realnode_namespace, grace_period_seconds=0)

    left = node.host_leftovers(abandoned)
    assert any(entry.startswith("containerd-shim") for entry in left)
    assert any(entry.startswith("mount") for entry in left)
    with node.running(realnode_cluster, tmp_path / "next"):
        assert node.host_leftovers(abandoned) == []
    assert [directory for directory in missing_before if directory.exists()] == []  # the kubelet's fixed folders
