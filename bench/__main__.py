"""`make bench`: ListWukongs and WatchWukong against kube-apiserver's own list and watch, in one run.

On a fresh local control plane with one API server (no simulator, no Envoy: the API server itself, over native gRPC)
and N Wukongs (default 2,000; `--wukongs 10000` for the issue's targets):
- list latency, p50/p99: our ListWukongs page of 50, filtered by label and sorted by cpu, against kube-apiserver's
  plain `limit=50` page and its full LIST of the same Wukongs;
- change-to-event delay, p50/p99: from just before the PATCH of a Wukong to its event, on 1 and on 500 WatchWukong
  streams (the last of the 500 to receive it; Node receivers), against one direct Kubernetes watch (Python).
  Receivers run in processes of their own; CLOCK_MONOTONIC is shared by the processes of one machine, so send and
  arrival times compare directly.
Targets (issue 6, on 10,000): page p99 ≤ the `limit=50` p99 and ≤ 1/50 of the full LIST p99; 500-stream delay p99
≤ 2 times one direct watch.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc

import devcluster
from bench import rss_mib
from devcluster import procs
from devcluster import stack as devstack
from novasphere.v1 import wukong_service_pb2 as service_pb2
from novasphere.v1.wukong_service_pb2_grpc import WukongServiceStub
from sim import kubeapi
from sim.kubeapi import KubeApi

REPO_ROOT = Path(__file__).resolve().parent.parent
NAMESPACE = "bench"
TENANT = "bench"
PROBE = "probe"
CHANGES = 100
SPACING_SECONDS = 0.15


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def seed(api: KubeApi, count: int) -> int:
    """The tenant's namespace, N Wukongs in three tiers with varied sizes, and the probe the watches follow; returns
    the last write's resourceVersion."""
    await api.create(
        kubeapi.NAMESPACES,
        None,
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": NAMESPACE, "labels": {"novasphere.dev/tenant": TENANT}},
        },
    )
    limit = asyncio.Semaphore(32)
    last = 0

    async def one(name: str, cpu: int, labels: dict[str, str]) -> None:
        nonlocal last
        body = {
            "apiVersion": kubeapi.WUKONGS.api_version,
            "kind": "Wukong",
            "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels},
            "spec": {
                "cpu": cpu,
                "memory": f"{cpu}Gi",
                "disks": [{"name": "root", "size": "10Gi", "storageClassName": "local-path"}],
            },
        }
        async with limit:
            created = await api.create(kubeapi.WUKONGS, NAMESPACE, body)
        last = max(last, int(created["metadata"]["resourceVersion"]))

    await asyncio.gather(
        *(one(f"vm-{i:05d}", i % 8 + 1, {"tier": ("web", "db", "cache")[i % 3]}) for i in range(count)),
        one(PROBE, 1, {"role": "probe"}),
    )
    return last


async def time_calls(call: Callable[[], Awaitable[object]], samples: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        await call()
    timings = []
    for _ in range(samples):
        started = time.perf_counter()
        await call()
        timings.append((time.perf_counter() - started) * 1000)
    return timings


async def list_latencies(api: KubeApi, stub: Any, samples: int) -> dict[str, list[float]]:
    ours = service_pb2.ListWukongsRequest(
        namespace=NAMESPACE, page_size=50, label_selector="tier=web", sort_by="cpu", sort_order="desc"
    )
    fresh_filters = iter(range(10**6))

    async def ours_new_filter() -> object:
        """A filter this replica has not seen: the view is built from every Wukong (a user typing a search)."""
        request = service_pb2.ListWukongsRequest()
        request.CopyFrom(ours)
        request.name_like = f"vm-{next(fresh_filters) % 100:02d}"[:5]
        request.label_selector = f"tier=web,!nothing-{next(fresh_filters)}"
        return await stub.ListWukongs(request)

    return {
        "ours: page of 50, filtered + sorted": await time_calls(lambda: stub.ListWukongs(ours), samples, 20),
        "ours: same, a filter never seen before": await time_calls(ours_new_filter, max(20, samples // 5), 2),
        "kube-apiserver: limit=50 page": await time_calls(lambda: api.list(kubeapi.WUKONGS, limit="50"), samples, 20),
        "kube-apiserver: full LIST": await time_calls(lambda: api.list(kubeapi.WUKONGS), max(10, samples // 10), 2),
    }


def watch_delays(target: str, mode: str, streams: int, admin_kubeconfig: str, processes: int = 1) -> list[float]:
    """Starts receiver processes (`streams` split among them), changes the probe CHANGES times, and returns each
    change's delay in ms until the last stream anywhere received it."""
    receivers = [
        subprocess.Popen(
            _receiver(mode, target, streams // processes + (1 if index < streams % processes else 0)),
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "BENCH_KUBECONFIG": admin_kubeconfig},
        )
        for index in range(processes)
    ]
    try:
        outputs = [receiver.stdout for receiver in receivers if receiver.stdout is not None]
        if any(output.readline().strip() != "ready" for output in outputs):
            raise RuntimeError(f"a {mode} receiver did not start")
        sent = asyncio.run(_change_probe(Path(admin_kubeconfig)))
        arrivals: dict[int, float] = {}
        for output in outputs:
            for _ in range(CHANGES):
                sequence, arrived = output.readline().split()
                arrivals[int(sequence)] = max(arrivals.get(int(sequence), 0.0), float(arrived))
        return [(arrivals[k] - sent[k]) * 1000 for k in range(CHANGES)]
    finally:
        for receiver in receivers:
            receiver.kill()
            receiver.wait()


def _receiver(mode: str, target: str, streams: int) -> list[str]:
    """The direct watch in Python (as a client with cluster credentials would hold it); the gRPC streams in Node
    (tests/browser/watch_receiver.mjs), whose per-message cost is small next to the server's."""
    if mode == "direct":
        return [sys.executable, "-m", "bench", "receive"]
    script = REPO_ROOT / "tests" / "browser" / "watch_receiver.mjs"
    return ["node", str(script), str(devstack.DESCRIPTOR), target, str(streams), NAMESPACE, "role=probe"]


async def _change_probe(kubeconfig: Path) -> dict[int, float]:
    api = KubeApi.from_kubeconfig(kubeconfig)
    sent: dict[int, float] = {}
    try:
        for sequence in range(CHANGES):
            sent[sequence] = time.monotonic()
            await api.patch(kubeapi.WUKONGS, NAMESPACE, PROBE, {"metadata": {"labels": {"seq": str(sequence)}}})
            await asyncio.sleep(SPACING_SECONDS)
    finally:
        await api.close()
    return sent


# -- the receiver process


async def receive_direct() -> None:
    """One Kubernetes watch on the probe, as a client with cluster credentials would hold it."""
    api = KubeApi.from_kubeconfig(Path(os.environ["BENCH_KUBECONFIG"]))
    current = await api.get(kubeapi.WUKONGS, NAMESPACE, PROBE)
    print("ready", flush=True)
    async for event in api.watch(kubeapi.WUKONGS, current["metadata"]["resourceVersion"]):
        obj = event.get("object") or {}
        if obj.get("metadata", {}).get("name") != PROBE:
            continue
        sequence = (obj["metadata"].get("labels") or {}).get("seq")
        if sequence is not None:
            print(sequence, time.monotonic(), flush=True)


# -- main


def report(title: str, rows: dict[str, list[float]]) -> dict[str, tuple[float, float]]:
    print(f"\n{title}")
    print(f"  {'':42} {'p50 ms':>9} {'p99 ms':>9} {'samples':>8}")
    summary = {}
    for name, samples in rows.items():
        p50, p99 = statistics.median(samples), percentile(samples, 0.99)
        summary[name] = (p50, p99)
        print(f"  {name:42} {p50:9.2f} {p99:9.2f} {len(samples):8d}")
    return summary


def verdict(name: str, ratio: float, target: float) -> str:
    return f"  {name:58} {ratio:8.3f}  (target ≤ {target:g})  {'PASS' if ratio <= target else 'MISS'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("receive", help="(internal) the direct-watch receiver process")
    parser.add_argument("--wukongs", type=int, default=2000)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--streams", type=int, default=500)
    parser.add_argument("--receivers", type=int, default=2, help="client processes sharing the streams")
    args = parser.parse_args()
    if args.command == "receive":
        asyncio.run(receive_direct())
        return
    run(args.wukongs, args.samples, args.streams, args.receivers)


def run(count: int, samples: int, streams: int, receivers: int) -> None:
    with (
        tempfile.TemporaryDirectory(prefix="novasphere-bench-") as scratch,
        devcluster.running(Path(scratch) / "cluster") as cluster,
    ):
        devstack.install(cluster)
        api_kubeconfig = devstack.service_account_kubeconfig(cluster, Path(scratch) / "api.kubeconfig")
        api = devstack.start_api_server(
            api_kubeconfig=api_kubeconfig,
            log_path=Path(scratch) / "api.log",
            extra_env={"NOVASPHERE_DEV_TENANT": TENANT, "NOVASPHERE_LOG_LEVEL": "WARNING"},
        )
        server = api.process
        with procs.stopping([server]):
            target = api.target
            started = time.monotonic()
            results = asyncio.run(_measure_lists(cluster.kubeconfig, target, count, samples))
            print(f"seeded {count} Wukongs and measured lists in {time.monotonic() - started:.0f} s")
            lists = report(f"List latency, {count} Wukongs", results)
            delays = report(
                f"Change-to-event delay, {CHANGES} changes {SPACING_SECONDS * 1000:.0f} ms apart",
                {
                    "one direct Kubernetes watch": watch_delays(target, "direct", 1, cluster.kubeconfig),
                    "ours, 1 WatchWukong stream": watch_delays(target, "grpc", 1, cluster.kubeconfig),
                    f"ours, {streams} streams (last receiver)": watch_delays(
                        target, "grpc", streams, cluster.kubeconfig, processes=receivers
                    ),
                },
            )
            rss = rss_mib(server.pid)
        ours = lists["ours: page of 50, filtered + sorted"][1]
        print("\nRatios (p99)")
        print(verdict("ours page / kube-apiserver limit=50 page", ours / lists["kube-apiserver: limit=50 page"][1], 1))
        print(verdict("ours page / kube-apiserver full LIST", ours / lists["kube-apiserver: full LIST"][1], 1 / 50))
        print(
            verdict(
                f"ours {streams} streams / one direct watch",
                delays[f"ours, {streams} streams (last receiver)"][1] / delays["one direct Kubernetes watch"][1],
                2,
            )
        )
        print(f"\nAPI server resident memory after the run: {rss:.0f} MiB")
        print(json.dumps({"wukongs": count, "lists_ms": lists, "delays_ms": delays, "api_rss_mib": rss}))


async def _measure_lists(admin_kubeconfig: str, target: str, count: int, samples: int) -> dict[str, list[float]]:
    api = KubeApi.from_kubeconfig(Path(admin_kubeconfig))
    try:
        cursor = await seed(api, count)
        async with grpc.aio.insecure_channel(target) as channel:
            stub = WukongServiceStub(channel)
            listed = await stub.ListWukongs(
                service_pb2.ListWukongsRequest(namespace=NAMESPACE, page_size=1, cursor=str(cursor)),
                timeout=120,
            )
            assert listed.total == count + 1, listed.total
            return await list_latencies(api, stub, samples)
    finally:
        await api.close()


if __name__ == "__main__":
    main()
