"""`make bench-doors`: what each door of the API adds on top of Kubernetes, as ratios against a reference measured in
the same run.

Reference: the same read straight from kube-apiserver with the official Python client (what a client with cluster
credentials would do). Measured: GetWukong and ListWukongs over native gRPC (direct and through Envoy), REST through
Envoy and gRPC-Web through Envoy. Sequential calls from one client; p50/p99 in milliseconds.
"""

from __future__ import annotations

import argparse
import statistics
import struct
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import httpx
import kubernetes.client

import devcluster
from devcluster import manifests
from devcluster import stack as devstack
from novasphere.v1 import wukong_service_pb2 as service_pb2
from novasphere.v1.wukong_service_pb2_grpc import WukongServiceStub

NAMESPACE = "bench"
TENANT = "bench"


def _timed(call: Callable[[], object], iterations: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(iterations):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def _percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _grpc_web_body(request: service_pb2.GetWukongRequest | service_pb2.ListWukongsRequest) -> bytes:
    payload = request.SerializeToString()
    return struct.pack(">BI", 0, len(payload)) + payload


def _seed(admin: kubernetes.client.ApiClient, count: int) -> None:
    documents: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": NAMESPACE, "labels": {"novasphere.dev/tenant": TENANT}},
        }
    ]
    documents += [
        {
            "apiVersion": "vm.novasphere.dev/v1alpha1",
            "kind": "Wukong",
            "metadata": {"name": f"vm-{i:04d}", "namespace": NAMESPACE, "labels": {"bench": "yes"}},
            "spec": {"cpu": 2, "memory": "4Gi", "disks": [{"name": "root", "size": "20Gi", "storageClassName": "x"}]},
        }
        for i in range(count)
    ]
    manifests.apply(admin, documents)


def _listed(admin: kubernetes.client.ApiClient) -> list[dict[str, Any]]:
    listed = kubernetes.client.CustomObjectsApi(admin).list_namespaced_custom_object(
        "vm.novasphere.dev", "v1alpha1", NAMESPACE, "wukongs"
    )
    assert isinstance(listed, dict)
    items: list[dict[str, Any]] = listed["items"]
    return items


def _cases(
    admin: kubernetes.client.ApiClient,
    direct: WukongServiceStub,
    via_envoy: WukongServiceStub,
    http: httpx.Client,
    count: int,
) -> dict[str, dict[str, Callable[[], object]]]:
    """Per operation, the reference first, then each door of the API."""
    custom = kubernetes.client.CustomObjectsApi(admin)
    get_request = service_pb2.GetWukongRequest(namespace=NAMESPACE, name="vm-0000")
    list_request = service_pb2.ListWukongsRequest(namespace=NAMESPACE, page_size=500)
    web_headers = {"content-type": "application/grpc-web+proto", "x-grpc-web": "1"}
    return {
        "GetWukong": {
            "kube-apiserver (reference)": lambda: custom.get_namespaced_custom_object(
                "vm.novasphere.dev", "v1alpha1", NAMESPACE, "wukongs", "vm-0000"
            ),
            "gRPC direct": lambda: direct.GetWukong(get_request),
            "gRPC via Envoy": lambda: via_envoy.GetWukong(get_request),
            "REST via Envoy": lambda: http.get(
                "/api/v1/wukongs/vm-0000", params={"namespace": NAMESPACE}
            ).raise_for_status(),
            "gRPC-Web via Envoy": lambda: http.post(
                "/novasphere.v1.WukongService/GetWukong", content=_grpc_web_body(get_request), headers=web_headers
            ).raise_for_status(),
        },
        f"ListWukongs ({count} per page)": {
            "kube-apiserver (reference)": lambda: custom.list_namespaced_custom_object(
                "vm.novasphere.dev", "v1alpha1", NAMESPACE, "wukongs", limit=500
            ),
            "gRPC direct": lambda: direct.ListWukongs(list_request),
            "gRPC via Envoy": lambda: via_envoy.ListWukongs(list_request),
            "REST via Envoy": lambda: http.get(
                "/api/v1/wukongs", params={"namespace": NAMESPACE, "pageSize": 500}
            ).raise_for_status(),
            "gRPC-Web via Envoy": lambda: http.post(
                "/novasphere.v1.WukongService/ListWukongs", content=_grpc_web_body(list_request), headers=web_headers
            ).raise_for_status(),
        },
    }


def _report(title: str, paths: dict[str, Callable[[], object]], *, iterations: int, warmup: int) -> None:
    print(f"\n{title}: {iterations} sequential calls each, after {warmup} warm-up calls")
    print(f"  {'path':28} {'p50 ms':>8} {'p99 ms':>8} {'p50 ratio':>10} {'p99 ratio':>10}")
    reference: tuple[float, float] | None = None
    for name, call in paths.items():
        samples = _timed(call, iterations, warmup)
        p50, p99 = statistics.median(samples), _percentile(samples, 0.99)
        reference = reference or (p50, p99)
        ratios = f"{p50 / reference[0]:9.2f}x {p99 / reference[1]:9.2f}x"
        print(f"  {name:28} {p50:8.2f} {p99:8.2f} {ratios}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--wukongs", type=int, default=200, help="Wukongs in the listed namespace")
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=30)
    args = parser.parse_args()

    with (
        tempfile.TemporaryDirectory(prefix="novasphere-bench-") as scratch,
        devcluster.running(Path(scratch) / "cluster") as cluster,
        devstack.running(cluster, Path(scratch) / "stack", api_env={"NOVASPHERE_DEV_TENANT": TENANT}) as stack,
        devstack.admin_client(cluster) as admin,
        grpc.insecure_channel(stack.grpc_direct) as direct,
        stack.edge.channel() as via_envoy,
        stack.edge.http_client() as http,
    ):
        _seed(admin, args.wukongs)
        cursor = str(max(int(w["metadata"]["resourceVersion"]) for w in _listed(admin)))
        WukongServiceStub(direct).ListWukongs(service_pb2.ListWukongsRequest(namespace=NAMESPACE, cursor=cursor))
        cases = _cases(admin, WukongServiceStub(direct), WukongServiceStub(via_envoy), http, args.wukongs)
        for title, paths in cases.items():
            _report(title, paths, iterations=args.iterations, warmup=args.warmup)


if __name__ == "__main__":
    main()
