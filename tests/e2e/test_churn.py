"""Memory stays bounded under churn: thousands of Wukongs created and deleted, with no watch ever resuming (which is
when tombstones used to be pruned), leave the API server's memory flat after warm-up and its tombstones at their cap."""

from __future__ import annotations

import concurrent.futures
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import kubernetes.client
import pytest
from prometheus_client.parser import text_string_to_metric_families

from devcluster import procs
from devcluster import stack as devstack
from tests import kube_helpers
from tests.conftest import API_ENV, TENANT_LABELS

MAX_TOMBSTONES = 200
WARM_UP, CYCLES = 600, 2400
GROWTH_ALLOWED_MIB = 8


@pytest.fixture
def api(stack: devstack.Stack, tmp_path: Path) -> Iterator[devstack.ApiServer]:
    server = devstack.start_api_server(
        api_kubeconfig=stack.api_kubeconfig,
        log_path=tmp_path / "api.log",
        extra_env={**API_ENV, "NOVASPHERE_MAX_TOMBSTONES": str(MAX_TOMBSTONES), "NOVASPHERE_LOG_LEVEL": "WARNING"},
    )
    with procs.stopping([server.process]):
        yield server


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _gauge(api: devstack.ApiServer, name: str) -> float:
    text = httpx.get(api.metrics_url, timeout=10).text
    return next(s.value for f in text_string_to_metric_families(text) for s in f.samples if s.name == name)


def _churn(kube: kubernetes.client.ApiClient, namespace: str, count: int) -> None:
    """`count` Wukongs, each created and deleted at once, eight at a time."""
    api = kubernetes.client.CustomObjectsApi(kube)

    def cycle(index: int) -> None:
        name = f"churn-{index}-{uuid.uuid4().hex[:6]}"
        kube_helpers.create_wukong(kube, namespace, name)
        api.delete_namespaced_custom_object("vm.novasphere.dev", "v1alpha1", namespace, "wukongs", name)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(cycle, range(count)))


def test_churn_leaves_memory_flat_and_tombstones_capped(
    api: devstack.ApiServer, kube: kubernetes.client.ApiClient
) -> None:
    namespace = f"t-{uuid.uuid4().hex[:10]}"
    kube_helpers.create_namespace(kube, namespace, TENANT_LABELS)
    try:
        _churn(kube, namespace, WARM_UP)
        warm = _rss_mib(api.process.pid)
        _churn(kube, namespace, CYCLES)
        kube_helpers.eventually(
            lambda: _gauge(api, "novasphere_watch_tombstones") == MAX_TOMBSTONES,
            timeout=60,
            what="the deletions to reach the replica",
        )
        grown = _rss_mib(api.process.pid) - warm
        print(f"RSS after {WARM_UP} cycles {warm:.1f} MiB; {grown:+.1f} MiB after {CYCLES} more")  # kept in the report
        assert grown < GROWTH_ALLOWED_MIB
    finally:
        kube_helpers.delete_namespace(kube, namespace)
