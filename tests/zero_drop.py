"""A zero-drop check for restarts and upgrades under load: clients that never retry a unary call, WatchWukong streams
that resume from their last cursor as they are told to, a writer changing Wukongs all the while, and an independent
kube-apiserver watch to diff every stream's view against (none may miss a change or go backwards)."""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import grpc
import kubernetes.client
import kubernetes.watch
import urllib3

from novasphere.v1 import wukong_pb2
from novasphere.v1 import wukong_service_pb2 as service_pb2
from novasphere.v1.wukong_service_pb2_grpc import WukongServiceStub
from tests import kube_helpers
from tests.status_helpers import details_of_status

Event = wukong_pb2.WukongEvent
# Each channel its own connection (grpc would otherwise share one among channels to the same address).
OWN_CONNECTION = (("grpc.use_local_subchannel_pool", 1),)
Metadata = tuple[tuple[str, str], ...]
RESYNC_REQUIRED = "RESYNC_REQUIRED"
RECONNECT_SECONDS = 0.05
MAX_BACKOFF_SECONDS = 2.0


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
    errors: list[str] = field(default_factory=list)
    """Each status that ended the stream, with its details and when: what explains an unexpected reason."""
    resyncs: int = 0
    """Times the stream was told its cursor is too old for the replica it reached, and listed again."""

    def relist(self) -> None:
        """The resume contract's RESYNC_REQUIRED: start over from a list (no cursor)."""
        self.cursor = ""
        self.resyncs += 1


@dataclass
class Load:
    ok: int = 0
    failures: list[str] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)


UNARY_CALLS_PER_SECOND = 10
"""Per unary client: a few of them stay well inside Envoy's default 100 requests/s per client address (all test
clients share 127.0.0.1). Unpaced, the clients met that limit once reads got fast, and a rate-limited call is the
load generator's doing, not a dropped call."""


async def unary_load(channel: grpc.aio.Channel, namespace: str, load: Load, metadata: Metadata = ()) -> None:
    """One client calling UNARY_CALLS_PER_SECOND times a second (or as fast as it gets answers, when slower),
    without ever retrying; `metadata`: its credentials."""
    stub = WukongServiceStub(channel)
    next_call = time.monotonic()
    while not load.stop.is_set():
        await asyncio.sleep(max(0.0, next_call - time.monotonic()))
        next_call = max(next_call + 1 / UNARY_CALLS_PER_SECOND, time.monotonic())
        try:
            if load.ok % 2:
                await stub.ListWukongs(
                    service_pb2.ListWukongsRequest(namespace=namespace, page_size=5), timeout=10, metadata=metadata
                )
            else:
                await stub.GetWukong(
                    service_pb2.GetWukongRequest(namespace=namespace, name="w-00"), timeout=10, metadata=metadata
                )
            load.ok += 1
        except grpc.aio.AioRpcError as error:
            load.failures.append(f"{error.code().name}: {error.details()}")


async def follow(
    channel: grpc.aio.Channel, namespace: str, view: StreamView, load: Load, metadata: Metadata = ()
) -> None:
    """One watching client: resumes from its last cursor whenever its stream ends (in-band ERROR or a status), as
    soon as it was told to go, and backing off (up to 2 s) while attempts keep failing: a client that retried every
    failure at once would only meet Envoy's rate limit."""
    stub = WukongServiceStub(channel)
    backoff = RECONNECT_SECONDS
    while not load.stop.is_set():
        call = stub.WatchWukong(
            service_pb2.WatchWukongRequest(namespace=namespace, cursor=view.cursor), metadata=metadata
        )
        try:
            async for event in call:
                backoff = RECONNECT_SECONDS
                if event.type == Event.ERROR:
                    reason = details_of_status(event.error).reason
                    view.reasons.append(reason)
                    if reason == RESYNC_REQUIRED:
                        view.relist()
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
            view.errors.append(f"{datetime.now(UTC):%H:%M:%S.%f} {error.code().name}: {error.details()}")
            if error.code() == grpc.StatusCode.OUT_OF_RANGE:  # the cursor is too old here: RESYNC_REQUIRED
                view.relist()
            backoff = min(2 * backoff, MAX_BACKOFF_SECONDS)
        view.reconnects += 1
        await asyncio.sleep(backoff)


def write_changes(
    kube: kubernetes.client.ApiClient,
    namespace: str,
    wukongs: int,
    stop: threading.Event,
    written: list[int],
    start: int = 0,
) -> None:
    """Keeps changing the `seq` label of Wukongs w-00 … w-<wukongs - 1>, ten patches a second."""
    api = kubernetes.client.CustomObjectsApi(kube)
    sequence = start  # values only grow: a stream that goes backwards missed or reordered a change
    while not stop.is_set():
        sequence += 1
        name = f"w-{random.randrange(wukongs):02d}"  # noqa: S311 - test data
        patch = {"metadata": {"labels": {"seq": str(sequence)}}}
        api.patch_namespaced_custom_object("vm.novasphere.dev", "v1alpha1", namespace, "wukongs", name, patch)
        written.append(sequence)
        stop.wait(0.1)


async def eventually(condition: Callable[[], bool], what: str, within: float = 60) -> None:
    """Polls `condition` (the streams' views, written by other tasks: nothing to await on)."""
    try:
        async with asyncio.timeout(within):
            while not condition():  # noqa: ASYNC110
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"timed out after {within:.0f} s waiting for {what}") from None


SHUTDOWN_REASONS = frozenset({"REPLICA_SHUTTING_DOWN", "UNAVAILABLE"})
"""Why a stream may end when replicas go in order (drained): told in-band, or its Envoy gone."""


def assert_no_drop(
    load: Load,
    views: list[StreamView],
    truth: KubeTruth,
    *,
    created: str | None,
    streams: int,
    reasons: frozenset[str] = SHUTDOWN_REASONS,
) -> None:
    """No unary call failed; every stream ended at kube-apiserver's final value of each Wukong, saw `created` (made
    and deleted during the disruption), never went backwards, and ended only for `reasons`."""
    assert load.failures == [], f"{len(load.failures)} unary calls failed: {load.failures[:5]}"
    reconnected = [view for view in views if view.reconnects]
    ended = Counter(reason for view in views for reason in view.reasons)
    print(  # the test's measure of the disruption, kept in the report
        f"{load.ok} unary calls, {sum(view.reconnects for view in views)} stream reconnections by "
        f"{len(reconnected)} of {streams} streams ({dict(ended)}), {sum(view.resyncs for view in views)} relists"
    )
    assert reconnected, "no stream was ever told to reconnect: the disruption did not happen under load"
    unexpected = sorted({error for view in views for error in view.errors if error.split()[1][:-1] not in reasons})
    assert set(ended) <= reasons, f"{ended}; first unexpected: {unexpected[:5]}"
    for view in views:
        assert {name for name in view.values if name != created} == set(truth.last) - {created}
        for name, seen in view.values.items():
            assert seen == sorted(seen), f"{name} went backwards on a stream: {seen}"
        if created is not None:
            assert view.values[created], f"a stream never saw {created}, the Wukong created during the disruption"


def caught_up(views: list[StreamView], truth: KubeTruth, *, created: str | None) -> bool:
    """Every stream has the final value of every Wukong and saw `created` deleted."""
    return not lag(views, truth, created=created)


def lag(views: list[StreamView], truth: KubeTruth, *, created: str | None) -> list[str]:
    """Why `caught_up` is False: the streams that miss a final value or the deletion of `created`."""
    found = [] if created is None or created in truth.deleted else [f"kube-apiserver has not seen {created} deleted"]
    for index, view in enumerate(views):
        behind = {
            name: (view.values.get(name, [None])[-1], value)
            for name, value in truth.last.items()
            if name != created and view.values.get(name, [None])[-1] != value
        }
        missed = created is not None and created not in view.deleted
        if behind or missed:
            found.append(
                f"stream {index} (cursor {view.cursor!r}, {view.reconnects} reconnections, {view.reasons[-3:]}): "
                f"(seen, final) {behind}, missed the deletion of {created}: {missed}"
            )
    return found
