"""`make bench-floor`: the fan-out floor of Python gRPC (grpcio asyncio) on this machine, without NovaSphere.

A bare grpc.aio server serves `WukongService/WatchWukong` to the same Node receivers `make bench` uses
(tests/browser/watch_receiver.mjs): each stream has its own queue, and each change is one message of the size of a
real event, serialised once and put into every queue, as the API's watch hub does. The delay runs from the moment the
server has the event in hand (no kube-apiserver, no informer, no filtering before it) until the last stream received
it. Whatever this floor costs, the API's WatchWukong costs at least as much on top of kube-apiserver's own watch
delay, so it bounds what `make bench`'s "500 streams / one direct watch" ratio can reach here.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc

from bench import percentile
from bench.__main__ import CHANGES, SPACING_SECONDS
from devcluster import stack as devstack
from novasphere.v1 import wukong_pb2

NAMESPACE = "bench"
RECEIVER = devstack.REPO_ROOT / "tests" / "browser" / "watch_receiver.mjs"


def _event(sequence: int) -> bytes:
    """A MODIFIED event about as large as the API's (about 800 bytes)."""
    event = wukong_pb2.WukongEvent(type=wukong_pb2.WukongEvent.MODIFIED, cursor=str(1_000_000 + sequence))
    event.wukong.name, event.wukong.namespace = "probe", NAMESPACE
    event.wukong.labels.update({"seq": str(sequence), "role": "probe"})
    event.wukong.labels.update({f"padding-{index}": "x" * 60 for index in range(10)})
    return event.SerializeToString()


class Fanout:
    def __init__(self) -> None:
        self.queues: set[asyncio.Queue[bytes]] = set()

    async def watch(self, request: bytes, context: Any) -> AsyncIterator[bytes]:
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        self.queues.add(queue)
        try:
            yield wukong_pb2.WukongEvent(type=wukong_pb2.WukongEvent.BOOKMARK, cursor="1").SerializeToString()
            while True:
                yield await queue.get()
        finally:
            self.queues.discard(queue)

    def publish(self, payload: bytes) -> None:
        for queue in self.queues:
            queue.put_nowait(payload)


def _as_is(payload: bytes) -> bytes:
    return payload


async def measure(streams: int) -> list[float]:
    fanout = Fanout()
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    method = grpc.unary_stream_rpc_method_handler(fanout.watch, request_deserializer=_as_is, response_serializer=_as_is)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("novasphere.v1.WukongService", {"WatchWukong": method}),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    command = ["node", str(RECEIVER), str(devstack.DESCRIPTOR), f"127.0.0.1:{port}", str(streams), NAMESPACE, "x"]
    receiver = await asyncio.create_subprocess_exec(*command, stdout=subprocess.PIPE)
    assert receiver.stdout is not None
    try:
        if (await receiver.stdout.readline()).decode().strip() != "ready":
            raise RuntimeError("the receiver did not start")
        sent: dict[int, float] = {}
        for sequence in range(CHANGES):
            payload = _event(sequence)
            sent[sequence] = time.monotonic()
            fanout.publish(payload)
            await asyncio.sleep(SPACING_SECONDS)
        delays = []
        for _ in range(CHANGES):
            received, arrived = (await receiver.stdout.readline()).decode().split()
            delays.append((float(arrived) - sent[int(received)]) * 1000)
        return delays
    finally:
        receiver.kill()
        await receiver.wait()
        await server.stop(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=500)
    args = parser.parse_args()
    print(
        f"\nBare grpc.aio fan-out, {CHANGES} changes {SPACING_SECONDS * 1000:.0f} ms apart (delay to the last stream)"
    )
    print(f"  {'':24} {'p50 ms':>9} {'p99 ms':>9}")
    for streams in (1, args.streams):
        delays = asyncio.run(measure(streams))
        print(f"  {f'{streams} stream(s)':24} {statistics.median(delays):9.2f} {percentile(delays, 0.99):9.2f}")


if __name__ == "__main__":
    main()
