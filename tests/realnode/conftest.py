"""A control plane of their own for the real-node tests (a chart installed there brings cluster-scoped objects the
session's `cluster` already has from deploy/), and a real node on it per test module."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import kubernetes.client
import pytest

import devcluster
from devcluster import node, oci
from devcluster import stack as devstack
from tests import kube_helpers

BUSYBOX_IMAGE = "docker.io/local/busybox:1"


@pytest.fixture(scope="session")
def realnode_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[devcluster.ClusterInfo]:
    with devcluster.running(tmp_path_factory.mktemp("realnode-cluster")) as info:
        yield info


@pytest.fixture(scope="session")
def realnode_kube(realnode_cluster: devcluster.ClusterInfo) -> Iterator[kubernetes.client.ApiClient]:
    """An admin client of the real node's control plane."""
    with devstack.admin_client(realnode_cluster) as client:
        yield client


@pytest.fixture(scope="session")
def busybox_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An OCI archive of a busybox-static image (shell, nc, httpd), for test pods."""
    return oci.busybox_image(tmp_path_factory.mktemp("images") / "busybox.tar")


@pytest.fixture(scope="module")
def real_node(
    realnode_cluster: devcluster.ClusterInfo, busybox_archive: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[node.RealNode]:
    """A Ready `real-node-1` with BUSYBOX_IMAGE imported, for one test module (stopped, leaving nothing, after it)."""
    with node.running(realnode_cluster, tmp_path_factory.mktemp("node")) as real:
        real.import_image(busybox_archive, BUSYBOX_IMAGE)
        yield real


@pytest.fixture
def realnode_namespace(realnode_kube: kubernetes.client.ApiClient) -> Iterator[str]:
    name = f"rn-{uuid.uuid4().hex[:10]}"
    kube_helpers.create_namespace(realnode_kube, name)
    yield name
    kube_helpers.delete_namespace(realnode_kube, name)
