"""Fixtures of the integration tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import devcluster
from server.kube.client import KubeClient
from server.metrics import Metrics


@pytest.fixture
def admin_kube(cluster: devcluster.ClusterInfo) -> Iterator[KubeClient]:
    """The API's own Kubernetes client, with the cluster administrator's credentials."""
    client = KubeClient.connect(kubeconfig=Path(cluster.kubeconfig), threads=4, metrics=Metrics())
    try:
        yield client
    finally:
        client.close()
