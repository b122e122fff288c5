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
import contextlib
import random
import signal
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import kubernetes.client
import kubernetes.watch
import pytest
import urllib3

from devcluster import procs
from devcluster import stack as devstack
from novasphere.v1 import wukong_pb2
from novasphere.v1 import wukong_service_pb2 as service_pb2
from novasphere.v1.wukong_service_pb2_grpc import WukongServiceStub
from novasphere_envoy import drain as envoy_drain
from tests import kube_helpers
from tests.conftest import API_ENV, TENANT_LABELS
from tests.status_helpers import details_of_status

WUKONGS = 20
STREAMS = 200
STREAM_CHANNELS = 10
UNARY_CHANNELS = 8
ENVOY_DRAIN_SECONDS = devstack.DRAIN_SECONDS
PAIR_ENV = {
    **API_ENV,
    "NOVASPHERE_DRAIN_SECONDS": str(ENVOY_DRAIN_SECONDS + 2),  # the API server outlasts its Envoy's listener
    "NOVASPHERE_SHUTDOWN_GRACE_SECONDS": "10",
}
# Each channel its own connection (grpc would otherwise share one among channels to the same address).
OWN_CONNECTION = (("grpc.use_local_subchannel_pool", 1),)
Event = wukong_pb2.WukongEvent


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
        drained = envoy_drain.drain(f"127.0.0.1:{old.envoy.admin}", timeout=60)
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


class KubeTruth:
    """An independent watch of the namespace's Wukongs straight from kube-apiserver: the last `seq` label of each, and
    which were deleted."""

    def __init__(self, kube: kubernetes.client.ApiClient, namespace: str) -> None:
        self.last: dict[str, int] = {}
        self.deleted: set[str] = set()
        self._watch = kubernetes.watch.Watch()
        self._stopped = False
        api = kubernetes.client.CustomObjectsApi(kube)
        listed = kube_helpers.json_object(
            api.list_namespaced_custom_object("vm.novasphere.dev", "v1alpha1", namespace, "wukongs")
        )
        for item in listed["items"]:
            self._record("ADDED", item)
        self._thread = threading.Thread(
            target=self._run, args=(api, namespace, listed["metadata"]["resourceVersion"]), daemon=True
        )
        self._thread.start()

    def _record(self, kind: str, item: dict[str, object]) -> None:
        metadata = item["metadata"]
        assert isinstance(metadata, dict)
        if kind == "DELETED":
            self.deleted.add(metadata["name"])
        else:
            self.last[metadata["name"]] = int((metadata.get("labels") or {}).get("seq", "0"))

    def _run(self, api: kubernetes.client.CustomObjectsApi, namespace: str, version: str) -> None:
        with contextlib.suppress(urllib3.exceptions.ProtocolError):  # how a watch cut short by `stop` ends
            for event in self._watch.stream(
                api.list_namespaced_custom_object,
                "vm.novasphere.dev",
                "v1alpha1",
                namespace,
                "wukongs",
                resource_version=version,
                timeout_seconds=300,
            ):
                self._record(event["type"], event["object"])

    def stop(self) -> None:
        self._stopped = True
        self._watch.stop()


@dataclass
class StreamView:
    """What one WatchWukong stream (with its reconnections) saw."""

    values: defaultdict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    deleted: set[str] = field(default_factory=set)
    cursor: str = ""
    reconnects: int = 0
    reasons: list[str] = field(default_factory=list)


@dataclass
class Load:
    ok: int = 0
    failures: list[str] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)


async def _unary_load(channel: grpc.aio.Channel, namespace: str, load: Load) -> None:
    """One client calling as fast as it gets answers, without ever retrying."""
    stub = WukongServiceStub(channel)
    while not load.stop.is_set():
        try:
            if load.ok % 2:
                await stub.ListWukongs(service_pb2.ListWukongsRequest(namespace=namespace, page_size=5), timeout=10)
            else:
                await stub.GetWukong(service_pb2.GetWukongRequest(namespace=namespace, name="w-00"), timeout=10)
            load.ok += 1
        except grpc.aio.AioRpcError as error:
            load.failures.append(f"{error.code().name}: {error.details()}")
        await asyncio.sleep(0.01)


async def _follow(channel: grpc.aio.Channel, namespace: str, view: StreamView, load: Load) -> None:
    """One watching client: resumes from its last cursor whenever its stream ends (in-band ERROR or a status)."""
    stub = WukongServiceStub(channel)
    while not load.stop.is_set():
        call = stub.WatchWukong(service_pb2.WatchWukongRequest(namespace=namespace, cursor=view.cursor))
        try:
            async for event in call:
                if event.type == Event.ERROR:
                    view.reasons.append(details_of_status(event.error).reason)
                    continue
                view.cursor = event.cursor or view.cursor
                name = event.wukong.name
                if event.type == Event.DELETED:
                    view.deleted.add(name)
                elif event.type in (Event.ADDED, Event.MODIFIED):
                    view.values[name].append(int(event.wukong.labels.get("seq", "0")))
        except grpc.aio.AioRpcError as error:
            if load.stop.is_set():
                return
            view.reasons.append(error.code().name)
        view.reconnects += 1
        await asyncio.sleep(0.05)


def _write(kube: kubernetes.client.ApiClient, namespace: str, stop: threading.Event, written: list[int]) -> None:
    """Keeps changing the Wukongs' `seq` label, ten patches a second."""
    api = kubernetes.client.CustomObjectsApi(kube)
    sequence = 0
    while not stop.is_set():
        sequence += 1
        name = f"w-{random.randrange(WUKONGS):02d}"  # noqa: S311 - test data
        patch = {"metadata": {"labels": {"seq": str(sequence)}}}
        api.patch_namespaced_custom_object("vm.novasphere.dev", "v1alpha1", namespace, "wukongs", name, patch)
        written.append(sequence)
        stop.wait(0.1)


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
        tasks = [asyncio.create_task(_unary_load(channel, namespace, load)) for channel in unary_channels]
        tasks += [
            asyncio.create_task(_follow(stream_channels[index % STREAM_CHANNELS], namespace, view, load))
            for index, view in enumerate(views)
        ]
        stop_writing, written = threading.Event(), list[int]()
        writer = threading.Thread(target=_write, args=(kube, namespace, stop_writing, written), daemon=True)
        try:
            await _eventually(lambda: all(len(view.values) == WUKONGS for view in views), "every stream's first list")
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

            def caught_up() -> bool:
                return "w-new" in truth.deleted and all(
                    view.values.get(name, [None])[-1] == value and "w-new" in view.deleted
                    for view in views
                    for name, value in truth.last.items()
                    if name != "w-new"
                )

            await _eventually(caught_up, "every stream to reach the final state")
        finally:
            load.stop.set()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for channel in (*stream_channels, *unary_channels):
                await channel.close()
            stop_writing.set()
            truth.stop()

        assert load.failures == [], f"{len(load.failures)} unary calls failed: {load.failures[:5]}"
        assert calls_during > 100, calls_during
        assert len(written) > 50
        reconnected = [view for view in views if view.reconnects]
        print(  # the test's measure of the restarts, kept in the report
            f"{calls_during} unary calls during the restarts, {len(written)} changes written, "
            f"{sum(view.reconnects for view in views)} stream reconnections by {len(reconnected)} of {STREAMS} streams"
        )
        assert reconnected, "no stream was ever told to reconnect: the restarts did not happen under load"
        assert {reason for view in views for reason in view.reasons} <= {"REPLICA_SHUTTING_DOWN", "UNAVAILABLE"}
        for view in views:
            assert {name for name in view.values if name != "w-new"} == set(truth.last) - {"w-new"}
            for name, seen in view.values.items():
                assert seen == sorted(seen), f"{name} went backwards on a stream: {seen}"
            assert view.values["w-new"], "a stream never saw the Wukong created during the restarts"
    finally:
        kube_helpers.delete_namespace(kube, namespace)


async def _eventually(condition: Callable[[], bool], what: str, within: float = 60) -> None:
    """Polls `condition` (the streams' views, written by other tasks: nothing to await on)."""
    try:
        async with asyncio.timeout(within):
            while not condition():  # noqa: ASYNC110
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"timed out after {within:.0f} s waiting for {what}") from None
