"""`make bench-sim`: how the simulator scales. Creates N Wukongs at once on a fresh local control plane and reports
how long until every VM is Running (KubeVirt's printableStatus) and every Wukong's stored phase is Running, the
simulator's peak memory, and the write rate it puts on kube-apiserver. Events are off, as for any benchmark.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import tempfile
import time
from pathlib import Path

import devcluster
from devcluster import stack as devstack
from sim import kubeapi
from sim.kubeapi import KubeApi

PER_NAMESPACE = 500
STATS = re.compile(r"stats: (\d+) Wukongs, (\d+) writes .* up (\d+) s")


async def _create(api: KubeApi, count: int, concurrency: int) -> None:
    limit = asyncio.Semaphore(concurrency)
    for index in range((count + PER_NAMESPACE - 1) // PER_NAMESPACE):
        await api.create(
            kubeapi.Resource("", "v1", "namespaces", "Namespace", namespaced=False),
            None,
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"scale-{index}"}},
        )

    async def one(index: int) -> None:
        body = {
            "apiVersion": kubeapi.WUKONGS.api_version,
            "kind": "Wukong",
            "metadata": {"name": f"vm-{index:05d}", "namespace": f"scale-{index // PER_NAMESPACE}"},
            "spec": {
                "cpu": 1,
                "memory": "1Gi",
                "disks": [{"name": "root", "size": "10Gi", "storageClassName": "local-path"}],
            },
        }
        async with limit:
            await api.create(kubeapi.WUKONGS, body["metadata"]["namespace"], body)  # type: ignore[index]

    await asyncio.gather(*(one(i) for i in range(count)))


async def _count(api: KubeApi, resource: kubeapi.Resource, path: tuple[str, str], value: str) -> int:
    total, token = 0, ""
    while True:
        params = {"limit": "1000", **({"continue": token} if token else {})}
        page = await api.list(resource, **params)
        total += sum(1 for item in page["items"] if item.get(path[0], {}).get(path[1]) == value)
        token = page["metadata"].get("continue", "")
        if not token:
            return total


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def _measure(cluster: devcluster.ClusterInfo, state: Path, count: int, speed: float, deadline: float) -> None:
    simulator = devstack.start_simulator(cluster, state_dir=state, speed=speed, events=False)
    api = KubeApi.from_kubeconfig(Path(cluster.kubeconfig))
    try:
        started = time.monotonic()
        await _create(api, count, concurrency=32)
        created = time.monotonic() - started
        print(f"created {count} Wukongs in {created:.1f} s", flush=True)
        vms_running = wukongs_running = None
        poll = max(5.0, count / 200)  # listing every object is itself load: poll less often at scale
        while time.monotonic() - started < deadline:
            await asyncio.sleep(poll)
            vms = await _count(api, kubeapi.VIRTUAL_MACHINES, ("status", "printableStatus"), "Running")
            phases = await _count(api, kubeapi.WUKONGS, ("status", "phase"), "Running")
            elapsed = time.monotonic() - started
            print(f"  {elapsed:6.0f} s: VMs Running {vms}/{count}, Wukongs Running {phases}/{count}", flush=True)
            if vms == count and vms_running is None:
                vms_running = elapsed
            if phases == count and wukongs_running is None:
                wukongs_running = elapsed
            if vms_running is not None and wukongs_running is not None:
                break
        await asyncio.sleep(11)  # one more stats line from the simulator
        log = (state / "logs" / "sim.log").read_text()
        stats = STATS.findall(log)
        writes, uptime = (int(stats[-1][1]), int(stats[-1][2])) if stats else (0, 1)
        print(f"\n{count} Wukongs at speed {speed:g}x (vmoperator polls every {10 / speed:g} s real time):")
        print(f"  all VMs printableStatus Running:   {vms_running or float('nan'):.0f} s after the first create")
        print(f"  all Wukongs status.phase Running:  {wukongs_running or float('nan'):.0f} s")
        print(f"  simulator peak memory (VmHWM):     {_peak_rss_mib(simulator.pid):.0f} MiB")
        print(f"  simulator writes:                  {writes} in {uptime} s = {writes / max(uptime, 1):.0f}/s average")
        print(f"  writes per Wukong:                 {writes / count:.1f}")
        breakdown = re.findall(r"requests by kind: (.*)", log)
        if breakdown:
            print(f"  requests by method and resource:   {breakdown[-1]}")
    finally:
        await api.close()
        simulator.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--wukongs", type=int, default=2000)
    parser.add_argument("--speed", type=float, default=10.0)
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait for all Running")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="novasphere-sim-scale-") as scratch,
        devcluster.running(Path(scratch) / "cluster") as cluster,
    ):
        devstack.install(cluster)
        asyncio.run(_measure(cluster, Path(scratch), args.wukongs, args.speed, args.timeout))


if __name__ == "__main__":
    main()
