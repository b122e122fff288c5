"""A rolling restart with the topology the chart runs on one node: two API server + Envoy pairs whose Envoys share the
public port (SO_REUSEPORT, as two pods behind one Service). Under a steady load of unary calls and 200 WatchWukong
streams, each pair is restarted in turn the way the kubelet does it: SIGTERM to the API server, the Envoy drained by
its preStop (`python -m novasphere_envoy.drain`), then SIGTERM to it, then a new pair on the same port.

The load generator never retries a unary call: not one may fail. Streams do reconnect, as clients are told to (an
in-band ERROR, or a status saying UNAVAILABLE), from the last cursor they got; every stream's view is then compared
with an independent kube-apiserver watch of the same Wukongs: none missed a change (each ends at the final value of
every Wukong, saw the one created and the one deleted meanwhile, and never went backwards)."""

from __future__ import annotations

import asyncio
import signal
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import kubernetes.client
import pytest

from devcluster import procs
from devcluster import stack as devstack
from novasphere.v1 import wukong_pb2
from novasphere.v1 import wukong_service_pb2 as service_pb2
from novasphere.v1.wukong_service_pb2_grpc import WukongServiceStub
from novasphere_envoy import drain as envoy_drain
from novasphere_envoy import launch
from tests import kube_helpers
from tests.conftest import API_ENV, TENANT_LABELS, fronted_api
from tests.status_helpers import details_of, details_of_status
from tests.zero_drop import (
    OWN_CONNECTION,
    Event,
    KubeTruth,
    Load,
    StreamView,
    assert_no_drop,
    caught_up,
    eventually,
    follow,
    unary_load,
    write_changes,
)

WUKONGS = 20
STREAMS = 200
STREAM_CHANNELS = 10
UNARY_CHANNELS = 8
ENVOY_DRAIN_SECONDS = launch.DRAIN_SECONDS
PAIR_ENV = {
    **API_ENV,
    "NOVASPHERE_DRAIN_SECONDS": str(ENVOY_DRAIN_SECONDS + 2),  # the API server outlasts its Envoy's listener
    "NOVASPHERE_SHUTDOWN_GRACE_SECONDS": "10",
}


@dataclass
class Pair:
    api: devstack.ApiServer
    envoy: devstack.Envoy


class Pairs:
    """The two pairs behind one public port; replaced pairs' processes are stopped with the rest at the end."""

    def __init__(self, stack: devstack.Stack, state_dir: Path) -> None:
        self._stack = stack
        self._state_dir = state_dir
        self.port = 0
        self.pairs: list[Pair] = []
        self.processes: list[procs.Process] = []
        self.started = 0

    def start_pair(self) -> Pair:
        self.started += 1
        name = f"pair-{self.started}"
        api = devstack.start_api_server(
            api_kubeconfig=self._stack.api_kubeconfig,
            log_path=self._state_dir / f"{name}-api.log",
            extra_env=PAIR_ENV,
        )
        self.processes.append(api.process)
        envoy = devstack.start_front(
            api, tls=self._stack.tls, state_dir=self._state_dir, name=f"{name}-envoy", listen_port=self.port
        )
        self.processes.append(envoy.process)
        self.port = envoy.edge.port
        return Pair(api, envoy)

    def restart(self, index: int) -> None:
        """As the kubelet ends a pod: the API server gets SIGTERM while the Envoy's preStop drains it; when that hook
        returns, the Envoy gets SIGTERM. Then the replacement pair starts on the same public port."""
        old = self.pairs[index]
        old.api.process.popen.send_signal(signal.SIGTERM)
        drained = envoy_drain.drain(old.envoy.admin, timeout=60)
        old.envoy.process.stop()
        assert old.api.process.popen.wait(60) == 0, old.api.process.log_tail()
        assert drained, "the Envoy still had requests in flight after 60 s"
        self.pairs[index] = self.start_pair()


@pytest.fixture
def pairs(stack: devstack.Stack, tmp_path: Path) -> Iterator[Pairs]:
    started = Pairs(stack, tmp_path)
    try:
        started.pairs = [started.start_pair(), started.start_pair()]
        yield started
    finally:
        stopping = [threading.Thread(target=process.stop) for process in started.processes]
        for thread in stopping:
            thread.start()
        for thread in stopping:
            thread.join()


async def test_restarting_each_pair_in_turn_drops_no_call_and_misses_no_change(
    pairs: Pairs, stack: devstack.Stack, kube: kubernetes.client.ApiClient
) -> None:
    namespace = f"t-{uuid.uuid4().hex[:10]}"
    kube_helpers.create_namespace(kube, namespace, TENANT_LABELS)
    try:
        for index in range(WUKONGS):
            kube_helpers.create_wukong(kube, namespace, f"w-{index:02d}", labels={"seq": "0"})
        truth = KubeTruth(kube, namespace)
        edge = devstack.Edge(pairs.port, stack.tls.ca_cert)
        load = Load()
        views = [StreamView() for _ in range(STREAMS)]
        stream_channels = [edge.aio_channel(OWN_CONNECTION) for _ in range(STREAM_CHANNELS)]
        unary_channels = [edge.aio_channel(OWN_CONNECTION) for _ in range(UNARY_CHANNELS)]
        tasks = [asyncio.create_task(unary_load(channel, namespace, load)) for channel in unary_channels]
        tasks += [
            asyncio.create_task(follow(stream_channels[index % STREAM_CHANNELS], namespace, view, load))
            for index, view in enumerate(views)
        ]
        stop_writing, written = threading.Event(), list[int]()
        writer = threading.Thread(
            target=write_changes, args=(kube, namespace, WUKONGS, stop_writing, written), daemon=True
        )
        try:
            await eventually(lambda: all(len(view.values) == WUKONGS for view in views), "every stream's first list")
            writer.start()
            calls_before = load.ok
            await asyncio.to_thread(pairs.restart, 0)
            kube_helpers.create_wukong(kube, namespace, "w-new", labels={"seq": "0"})
            await asyncio.to_thread(pairs.restart, 1)
            kubernetes.client.CustomObjectsApi(kube).delete_namespaced_custom_object(
                "vm.novasphere.dev", "v1alpha1", namespace, "wukongs", "w-new"
            )
            await asyncio.sleep(1)  # load keeps going through the new pairs
            stop_writing.set()
            writer.join(10)
            calls_during = load.ok - calls_before

            await eventually(lambda: caught_up(views, truth, created="w-new"), "every stream to reach the final state")
        finally:
            load.stop.set()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for channel in (*stream_channels, *unary_channels):
                await channel.close()
            stop_writing.set()
            truth.stop()

        assert calls_during > 100, calls_during
        assert len(written) > 50
        print(f"{calls_during} unary calls during the restarts, {len(written)} changes written")
        assert_no_drop(load, views, truth, created="w-new", streams=STREAMS)
    finally:
        kube_helpers.delete_namespace(kube, namespace)


async def test_a_stream_told_to_reconnect_is_refused_where_it_was_and_sent_elsewhere(
    stack: devstack.Stack, namespace: str, tmp_path: Path
) -> None:
    """A client told to reconnect comes back on the same HTTP/2 connection: its stream ended with trailers, and a
    draining Envoy sends GOAWAY only with a response's headers. The stopping replica refuses the new stream (it used
    to serve it until its grpc server stopped, then cancel it); that refusal carries the GOAWAY, so the attempt after
    it opens a new connection: here none, as this Envoy's listener is closed and there is no other pair."""
    env = {**PAIR_ENV, "NOVASPHERE_DRAIN_SECONDS": str(ENVOY_DRAIN_SECONDS + 1)}
    with fronted_api(stack, tmp_path, env) as (api, envoy):
        channel = envoy.edge.aio_channel(OWN_CONNECTION)
        stub = WukongServiceStub(channel)
        watch = stub.WatchWukong(service_pb2.WatchWukongRequest(namespace=namespace))
        await _past_bookmarks(watch, until=Event.BOOKMARK)  # the initial list: none
        api.process.popen.send_signal(signal.SIGTERM)
        drained = asyncio.create_task(asyncio.to_thread(envoy_drain.drain, envoy.admin, timeout=60))

        told = await _past_bookmarks(watch)  # the in-band end, then the status
        assert (told.type, details_of_status(told.error).reason) == (Event.ERROR, "REPLICA_SHUTTING_DOWN")
        with pytest.raises(grpc.aio.AioRpcError) as ended:
            await watch.read()
        assert ended.value.code() == grpc.StatusCode.UNAVAILABLE

        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.WatchWukong(service_pb2.WatchWukongRequest(namespace=namespace)).read()
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        assert details_of(refused.value).reason == "REPLICA_SHUTTING_DOWN", refused.value.details()

        with pytest.raises(grpc.aio.AioRpcError) as elsewhere:
            await stub.WatchWukong(service_pb2.WatchWukongRequest(namespace=namespace)).read()
        assert elsewhere.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "shutting down" not in (elsewhere.value.details() or ""), "still on the stopping replica's connection"
        print("the attempt after the refusal:", elsewhere.value.details())

        await channel.close()
        assert await drained, "the Envoy still had requests in flight"
        assert await asyncio.to_thread(api.process.popen.wait, 60) == 0, api.process.log_tail()


async def _past_bookmarks(
    call: grpc.aio.UnaryStreamCall[Any, wukong_pb2.WukongEvent], until: int | None = None
) -> wukong_pb2.WukongEvent:
    """The stream's next event other than a BOOKMARK (the first BOOKMARK with `until`)."""
    while True:
        event = await call.read()
        assert isinstance(event, wukong_pb2.WukongEvent), "the stream ended"
        if event.type != Event.BOOKMARK or until == Event.BOOKMARK:
            return event
