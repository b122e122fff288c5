"""`make bench-console`: what the console proxy adds, as ratios against connecting to kube-apiserver's console
directly, measured in the same run against the same simulated VM.

Reference: KubeVirt's `console` and `vnc` websockets straight through kube-apiserver with cluster credentials (what
`virtctl` does). Measured: the console URL the API returns, through Envoy → API server → kube-apiserver.
- Latency: one keystroke on the serial console until its echo comes back (the guest's tty echoes), sequentially.
- Throughput: full-screen VNC updates (720x400, 32-bit pixels, RFB Raw) requested back to back, in MB/s.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import struct
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import grpc
import httpx
import kubernetes.client

import devcluster
from bench import percentile
from devcluster import stack as devstack
from novasphere.v1 import wukong_pb2
from novasphere.v1 import wukong_service_pb2 as service_pb2
from novasphere.v1.wukong_service_pb2_grpc import WukongServiceStub
from sim.kubeapi import Credentials

NAMESPACE = "bench-console"
TENANT = "bench"
VM = "console-bench"
KUBEVIRT_PROTOCOL = "plain.kubevirt.io"

Opener = Callable[[aiohttp.ClientSession, str], Awaitable[aiohttp.ClientWebSocketResponse]]


async def _receive(socket_: aiohttp.ClientWebSocketResponse, buffer: bytearray, count: int) -> bytes:
    while len(buffer) < count:
        message = await socket_.receive()
        if message.type != aiohttp.WSMsgType.BINARY:
            raise RuntimeError(f"the console closed: {message.type} {message.extra}")
        buffer += message.data
    chunk = bytes(buffer[:count])
    del buffer[:count]
    return chunk


async def keystroke_latencies(socket_: aiohttp.ClientWebSocketResponse, samples: int, warmup: int) -> list[float]:
    """Milliseconds from sending one character at the login prompt to reading its echo. The guest's tty outlives
    connections, so Ctrl-C first clears whatever the previous path typed."""
    buffer = bytearray()
    await socket_.send_bytes(b"\x03")
    while b"login: " not in buffer:
        buffer += (await socket_.receive()).data
    buffer.clear()
    latencies = []
    for index in range(warmup + samples):
        started = time.perf_counter()
        await socket_.send_bytes(b"x")
        await _receive(socket_, buffer, 1)
        if index >= warmup:
            latencies.append((time.perf_counter() - started) * 1000)
    await socket_.send_bytes(b"\x03")
    return latencies


async def vnc_throughput(socket_: aiohttp.ClientWebSocketResponse, updates: int) -> float:
    """MB/s of full-screen updates, each requested when the previous one has arrived."""
    buffer = bytearray()
    version = await _receive(socket_, buffer, 12)
    await socket_.send_bytes(version)
    count = (await _receive(socket_, buffer, 1))[0]
    await _receive(socket_, buffer, count)
    await socket_.send_bytes(b"\x01")  # security type None
    await _receive(socket_, buffer, 4)
    await socket_.send_bytes(b"\x01")  # ClientInit: shared
    width, height = struct.unpack(">HH", await _receive(socket_, buffer, 4))
    pixel_format = await _receive(socket_, buffer, 16)
    bytes_per_pixel = pixel_format[0] // 8
    (name_length,) = struct.unpack(">I", await _receive(socket_, buffer, 4))
    await _receive(socket_, buffer, name_length)
    update_size = 4 + 12 + width * height * bytes_per_pixel
    request = struct.pack(">BBHHHH", 3, 0, 0, 0, width, height)
    received = 0
    started = time.perf_counter()
    for _ in range(updates):
        await socket_.send_bytes(request)
        received += len(await _receive(socket_, buffer, update_size))
    return received / (time.perf_counter() - started) / 1e6


async def measure(open_socket: Opener, *, samples: int, warmup: int, updates: int) -> tuple[list[float], float]:
    async with aiohttp.ClientSession() as session:
        serial = await open_socket(session, "serial")
        try:
            latencies = await keystroke_latencies(serial, samples, warmup)
        finally:
            await serial.close()
        vnc = await open_socket(session, "vnc")
        try:
            throughput = await vnc_throughput(vnc, updates)
        finally:
            await vnc.close()
    return latencies, throughput


def direct_opener(credentials: Credentials) -> Opener:
    base = credentials.server.replace("https://", "wss://", 1)
    path = f"/apis/subresources.kubevirt.io/v1/namespaces/{NAMESPACE}/virtualmachineinstances/{VM}-vm"

    async def open_socket(session: aiohttp.ClientSession, protocol: str) -> aiohttp.ClientWebSocketResponse:
        url = f"{base}{path}/console" if protocol == "serial" else f"{base}{path}/vnc?preserveSession=true"
        return await session.ws_connect(
            url, protocols=(KUBEVIRT_PROTOCOL,), headers=dict(credentials.headers), ssl=credentials.tls, max_msg_size=0
        )

    return open_socket


def proxy_opener(edge: devstack.Edge) -> Opener:
    """Through Envoy's TLS listener, as a client would: a link over REST, then its wss:// console URL."""
    tls = edge.ssl_context()

    async def open_socket(session: aiohttp.ClientSession, protocol: str) -> aiohttp.ClientWebSocketResponse:
        async with httpx.AsyncClient(base_url=edge.url, timeout=30, verify=tls) as http:
            response = await http.post(
                f"/api/v1/wukongs/{VM}/console",
                params={"namespace": NAMESPACE},
                json={"protocol": protocol.upper(), "takeOver": True},
            )
        response.raise_for_status()
        link = response.json()
        return await session.ws_connect(
            link["consoleUrl"],
            protocols=(f"ticket.novasphere.dev.{link['ticket']}", "binary"),
            max_msg_size=0,
            ssl=tls,
        )

    return open_socket


def wait_running(read: Callable[[], wukong_pb2.Wukong], what: str) -> None:
    """Until `read()` (a GetWukong, refusals tolerated while the stack settles) shows the VM running, for 2 minutes."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if read().status.power_state == wukong_pb2.WukongStatus.PowerState.RUNNING:
                return
        except grpc.RpcError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"{what} did not reach Running")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=500, help="keystrokes timed per path")
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--updates", type=int, default=40, help="full-screen VNC updates per path")
    args = parser.parse_args()

    with (
        tempfile.TemporaryDirectory(prefix="novasphere-bench-") as scratch,
        devcluster.running(Path(scratch) / "cluster") as cluster,
        devstack.running(
            cluster, Path(scratch) / "stack", api_env={"NOVASPHERE_DEV_TENANT": TENANT}, sim_speed=20.0
        ) as stack,
        devstack.admin_client(cluster) as admin,
        grpc.insecure_channel(stack.grpc_direct) as channel,
    ):
        core = kubernetes.client.CoreV1Api(admin)
        metadata = kubernetes.client.V1ObjectMeta(name=NAMESPACE, labels={"novasphere.dev/tenant": TENANT})
        core.create_namespace(kubernetes.client.V1Namespace(metadata=metadata))
        spec = {
            "cpu": 1,
            "memory": "1Gi",
            "disks": [{"name": "root", "size": "10Gi", "storageClassName": "local-path"}],
            "cloudInitUser": {"name": "bench", "password": uuid.uuid4().hex},
        }
        kubernetes.client.CustomObjectsApi(admin).create_namespaced_custom_object(
            "vm.novasphere.dev",
            "v1alpha1",
            NAMESPACE,
            "wukongs",
            {"apiVersion": "vm.novasphere.dev/v1alpha1", "kind": "Wukong", "metadata": {"name": VM}, "spec": spec},
        )
        stub = WukongServiceStub(channel)
        wait_running(lambda: stub.GetWukong(service_pb2.GetWukongRequest(namespace=NAMESPACE, name=VM)), VM)
        credentials = Credentials.from_kubeconfig(Path(cluster.kubeconfig))
        options = {"samples": args.samples, "warmup": args.warmup, "updates": args.updates}
        results = {
            "kube-apiserver direct (reference)": asyncio.run(measure(direct_opener(credentials), **options)),
            "console URL via Envoy + API": asyncio.run(measure(proxy_opener(stack.edge), **options)),
        }
    print(f"\nSerial keystroke echo: {args.samples} sequential keystrokes per path, after {args.warmup} warm-up")
    print(f"VNC full-screen updates: {args.updates} back to back per path\n")
    print(f"  {'path':36} {'p50 ms':>8} {'p99 ms':>8} {'p99 ratio':>10} {'MB/s':>8} {'MB/s ratio':>11}")
    reference: tuple[float, float] | None = None
    for name, (latencies, throughput) in results.items():
        p50, p99 = statistics.median(latencies), percentile(latencies, 0.99)
        reference = reference or (p99, throughput)
        print(
            f"  {name:36} {p50:8.2f} {p99:8.2f} {p99 / reference[0]:9.2f}x {throughput:8.1f} "
            f"{throughput / reference[1]:10.2f}x"
        )
    direct_p99, proxied_p99 = (percentile(r[0], 0.99) for r in results.values())
    print(f"\n  added latency p99: {proxied_p99 - direct_p99:.2f} ms")


if __name__ == "__main__":
    main()
