"""`make bench-chart`: the memory each container of the chart's pods holds with N Wukongs (default 2,000), on a real
node, against the limit the chart sets (512Mi for each). The pods' API servers have every Wukong in their informers
(each answers a ListWukongs of all of them through its Envoy); the resident memory of each container's process is
read from /proc through containerd's task list, idle and then after a round of lists.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import yaml

from bench import rss_mib
from bench.seeding import namespace_of_wukongs
from devcluster import chart
from novasphere.v1 import wukong_service_pb2 as service_pb2
from novasphere.v1.wukong_service_pb2_grpc import WukongServiceStub

NAMESPACE = "bench"
TENANT = "default"
"""The initial admin's tenant (deploy/authz.yaml binds admin there)."""
SIM_SPEED = 20.0


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.chart_memory", description=__doc__.splitlines()[0])
    parser.add_argument("--wukongs", type=int, default=2000)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="bench-chart-") as state,
        chart.running(Path(state), sim_speed=SIM_SPEED) as local,
    ):
        limit = yaml.safe_load((chart.CHART / "values.yaml").read_text())["api"]["resources"]["limits"]["memory"]
        limit_mib = int(str(limit).removesuffix("Mi"))  # the chart's default is in Mi
        print(f"helm install: {local.install():.0f} s; limits per container: {limit}")
        print(f"idle, no Wukongs: {_memory(local, limit_mib)}")
        namespace_of_wukongs(local.kube, namespace=NAMESPACE, tenant=TENANT, count=args.wukongs)
        password = local.initial_admin_password()
        with local.edge.http_client() as http:
            token = http.post("/api/v1/auth/login", json={"username": "admin", "password": password}).json()
        metadata = (("authorization", f"Bearer {token['accessToken']}"),)
        started = time.monotonic()
        for _ in range(3 * len(local.ready_pods())):  # new connections: each reaches one of the Envoys
            with local.edge.channel() as channel:
                _list_all(WukongServiceStub(channel), metadata, args.wukongs)
        print(f"{args.wukongs} Wukongs listed through every pod's Envoy in {time.monotonic() - started:.0f} s")
        print(f"with {args.wukongs} Wukongs: {_memory(local, limit_mib)}")


def _list_all(stub: WukongServiceStub, metadata: tuple[tuple[str, str], ...], expected: int) -> None:
    """Waits until this replica's informer holds every Wukong (a page's `total` counts them all: the cache, not the
    page, is what the memory figure measures)."""
    deadline = time.monotonic() + 300
    while True:
        listed = stub.ListWukongs(
            service_pb2.ListWukongsRequest(namespace=NAMESPACE, page_size=500), metadata=metadata, timeout=60
        )
        if listed.total >= expected:
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"a replica lists {listed.total} of {expected} Wukongs after 300 s")
        time.sleep(1)


def _memory(local: chart.LocalRelease, limit_mib: int) -> str:
    """Each container's resident memory (MiB) and the largest as a share of the chart's limit."""
    pids = {
        columns[0]: int(columns[1])
        for columns in (line.split() for line in local.node.ctr("tasks", "list").splitlines()[1:])
        if len(columns) > 1
    }
    resident: dict[str, list[float]] = {}
    for pod in local.ready_pods():
        for status in pod["status"]["containerStatuses"]:
            pid = pids.get(str(status["containerID"]).partition("://")[2])
            if pid is not None:
                resident.setdefault(status["name"], []).append(rss_mib(pid))
    shown = ", ".join(f"{name} {' / '.join(f'{mib:.0f}' for mib in values)} MiB" for name, values in resident.items())
    largest = max((mib for values in resident.values() for mib in values), default=0.0)
    return f"{shown} (largest {largest / limit_mib:.0%} of the {limit_mib} MiB limit)"


if __name__ == "__main__":
    main()
