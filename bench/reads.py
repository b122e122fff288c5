"""`make bench`'s reads of one Wukong and what Envoy adds, on its loaded API server (N running VMs).

- GetWukong in its two views (AIP-157), against kube-apiserver's GET of the same Wukong with the official Python
  client (what a client with cluster credentials would do); calls interleaved, one connection each. Targets: the
  basic view's p99 ≤ the GET's p99, the full view's ≤ 2x.
- Envoy in front of the same API server (TLS, every filter as deployed): each call through native gRPC, REST and
  gRPC-Web via Envoy against the same call made directly (bench/doors.py `measure_doors`). Target: Envoy adds ≤ 1 ms
  p50 per call (an absolute budget), REST included. ListWukongs is a page of 50, the web console's.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import grpc
import kubernetes.client
import kubernetes.config

from bench import doors, percentile
from bench.report import Row
from devcluster import pki, procs
from devcluster import stack as devstack
from novasphere.v1 import wukong_service_pb2 as service_pb2
from novasphere.v1.wukong_service_pb2_grpc import WukongServiceStub

PAGE = 50
"""The page the Envoy rows list: the web console's."""


def rows(api: devstack.ApiServer, admin_kubeconfig: Path, *, namespace: str, name: str, samples: int) -> list[Row]:
    configuration = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(config_file=str(admin_kubeconfig), client_configuration=configuration)
    with kubernetes.client.ApiClient(configuration) as admin:
        return view_rows(api, admin, namespace=namespace, name=name, samples=samples) + envoy_rows(
            api, namespace=namespace, name=name, samples=samples
        )


def view_rows(
    api: devstack.ApiServer, admin: kubernetes.client.ApiClient, *, namespace: str, name: str, samples: int
) -> list[Row]:
    custom = kubernetes.client.CustomObjectsApi(admin)
    with grpc.insecure_channel(api.target) as channel:
        stub = WukongServiceStub(channel)

        def view(value: int) -> doors.Call:
            request = service_pb2.GetWukongRequest(namespace=namespace, name=name, view=value)  # type: ignore[arg-type]
            return lambda _: stub.GetWukong(request)

        timings, _ = doors.rounds(
            {
                "basic": view(service_pb2.WUKONG_VIEW_BASIC),
                "full": view(service_pb2.WUKONG_VIEW_FULL),
                "kube": lambda _: custom.get_namespaced_custom_object(
                    "vm.novasphere.dev", "v1alpha1", namespace, "wukongs", name
                ),
            },
            iterations=samples,
            warmup=max(10, samples // 10),
            tag="views",
        )
    p50 = {door: percentile(values, 0.5) for door, values in timings.items()}
    p99 = {door: percentile(values, 0.99) for door, values in timings.items()}
    return [
        Row(
            "get_basic_p99_vs_kube_get",
            "GetWukong basic view p99 vs kube-apiserver GET p99",
            p99["basic"],
            p99["kube"],
            "ms",
            1,
        ),
        Row(
            "get_full_p99_vs_kube_get",
            "GetWukong full view (default) p99 vs GET p99",
            p99["full"],
            p99["kube"],
            "ms",
            2,
        ),
        Row("get_basic_p50_vs_kube_get", "GetWukong basic view p50 vs GET p50", p50["basic"], p50["kube"], "ms"),
        Row("get_full_p50_vs_kube_get", "GetWukong full view p50 vs GET p50", p50["full"], p50["kube"], "ms"),
    ]


def envoy_rows(api: devstack.ApiServer, *, namespace: str, name: str, samples: int) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="novasphere-bench-envoy-") as scratch:
        state = Path(scratch)
        (state / "logs").mkdir()
        envoy = devstack.start_front(api, tls=pki.edge(state / "edge-pki"), state_dir=state)
        with procs.stopping([envoy.process]):
            results = doors.measure_doors(
                grpc_direct=api.target,
                edge=envoy.edge,
                envoy_log=envoy.process.log_path,
                namespace=namespace,
                name=name,
                page_size=PAGE,
                iterations=samples,
                warmup=max(10, samples // 10),
            )
    out = []
    keys = {doors.GRPC: "grpc", doors.REST: "rest", doors.GRPC_WEB: "grpc_web"}
    calls = {"AuthService.Me (floor)": "me", "GetWukong": "get", "ListWukongs": "list"}
    for call, measured in results["calls"].items():
        direct = measured["doors"][doors.DIRECT]["p50_ms"]
        label = f"{call}, page of {PAGE}" if call == "ListWukongs" else call
        for door, key in keys.items():
            adds = measured["doors"][door]["envoy_adds_p50_ms"]
            out.append(
                Row(
                    f"envoy_adds_{calls[call]}_{key}_ms",
                    f"Envoy adds, p50: {label}, {door} (ref: direct gRPC p50)",
                    adds,
                    direct,
                    "ms",
                    doors.BUDGET_MS,
                    "value",
                )
            )
    return out
