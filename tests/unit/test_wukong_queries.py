"""The cache, list paging and the watch hub, fed with objects as the informers deliver them (no cluster: these are the
pure rules; the integration tests run the same code against kube-apiserver). Reads are served from caches only: no
Kubernetes client is given to them."""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import pytest

from novasphere.v1 import wukong_service_pb2
from server import errors
from server.auth import Caller
from server.kube import events, kubevirt, storage, wukongs
from server.kube.informer import Handler, Kind
from server.metrics import Metrics
from server.tenancy import NAMESPACES, Tenancy
from server.transport import convert
from server.wukongs.cache import KINDS, Change, ChangeType, WukongCache, WukongState
from server.wukongs.detail import View
from server.wukongs.detail_sources import MAX_EVENTS_PER_OBJECT, DetailSources, Events
from server.wukongs.queries import ListRequest, Page, WukongQueries
from server.wukongs.watch import WatchHub, WatchSettings

CALLER = Caller("dev", "acme", frozenset({"vm:query"}))
revisions = itertools.count(100)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def namespace_item(name: str, tenant: str, default: bool = False) -> dict[str, Any]:
    labels = {"novasphere.dev/tenant": tenant} | ({"novasphere.dev/default-namespace": "true"} if default else {})
    return {"metadata": {"name": name, "labels": labels}}


def wukong_item(namespace: str, name: str, cpu: int = 1, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "metadata": {
            "namespace": namespace,
            "name": name,
            "uid": f"uid-{namespace}-{name}",
            "resourceVersion": str(next(revisions)),
            "creationTimestamp": f"2026-01-01T00:{cpu:02d}:00Z",
            "labels": labels or {},
        },
        "spec": {"cpu": cpu, "memory": f"{cpu}Gi", "disks": [{"name": "root", "size": "1Gi", "storageClassName": "x"}]},
    }


def vm_item(namespace: str, wukong: str, printable: str) -> dict[str, Any]:
    return {
        "metadata": {"namespace": namespace, "name": kubevirt.vm_name(wukong), "resourceVersion": str(next(revisions))},
        "status": {"printableStatus": printable},
    }


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def cache(clock: FakeClock) -> WukongCache:
    cache = WukongCache(tombstone_seconds=600, clock=clock)
    for kind in KINDS:
        cache.replace(kind, [], next(revisions))
    return cache


@pytest.fixture
def tenancy() -> Tenancy:
    tenancy = Tenancy(None)
    items = [namespace_item("a", "acme", default=True), namespace_item("b", "acme"), namespace_item("z", "other")]
    tenancy.replace(NAMESPACES, items, 1)
    return tenancy


@pytest.fixture
def sources() -> DetailSources:
    return DetailSources()


@pytest.fixture
def hub(cache: WukongCache) -> WatchHub:
    return WatchHub(cache, WatchSettings(buffer=8, bookmark_seconds=0.05), metrics=Metrics())


@pytest.fixture
def queries(cache: WukongCache, sources: DetailSources, hub: WatchHub, tenancy: Tenancy) -> WukongQueries:
    return WukongQueries(
        cache=cache,
        detail_sources=sources,
        hub=hub,
        tenancy=tenancy,
        cursor_wait_seconds=0.2,
    )


def add(cache: WukongCache, item: dict[str, Any]) -> None:
    cache.apply(wukongs.KIND, "ADDED", item, int(item["metadata"]["resourceVersion"]))


def delete(cache: WukongCache, namespace: str, name: str) -> None:
    state = cache.get((namespace, name))
    assert state is not None
    cache.apply(wukongs.KIND, "DELETED", dict(state.wukong), next(revisions))


async def all_pages(queries: WukongQueries, request: ListRequest) -> list[Page]:
    pages = [await queries.list(CALLER, request)]
    while pages[-1].next_page_token:
        pages.append(
            await queries.list(CALLER, ListRequest(**{**vars(request), "page_token": pages[-1].next_page_token}))
        )
    return pages


# -- the cache


def test_a_vm_change_alone_modifies_the_wukong_and_raises_its_cursor(cache: WukongCache) -> None:
    changes: list[Change] = []
    cache.subscribe(changes.append)
    add(cache, wukong_item("a", "w"))
    vm = vm_item("a", "w", "Running")
    cache.apply(kubevirt.VIRTUAL_MACHINES, "ADDED", vm, int(vm["metadata"]["resourceVersion"]))

    assert [c.type for c in changes] == [ChangeType.ADDED, ChangeType.MODIFIED]
    assert changes[-1].cursor == int(vm["metadata"]["resourceVersion"])
    state = cache.get(("a", "w"))
    assert state is not None
    assert (state.status.power_state.name, state.cursor) == ("RUNNING", changes[-1].cursor)


def test_a_change_nobody_can_see_is_absorbed(cache: WukongCache) -> None:
    add(cache, wukong_item("a", "w"))
    vm = vm_item("a", "w", "Stopped")
    cache.apply(kubevirt.VIRTUAL_MACHINES, "ADDED", vm, 500)
    changes: list[Change] = []
    cache.subscribe(changes.append)
    cache.apply(
        kubevirt.VIRTUAL_MACHINES, "MODIFIED", dict(vm, metadata=dict(vm["metadata"], resourceVersion="501")), 501
    )
    assert changes == []
    state = cache.get(("a", "w"))
    assert state is not None
    assert state.cursor == 500


def test_deletions_are_resumable_until_their_tombstones_expire(cache: WukongCache, clock: FakeClock) -> None:
    add(cache, wukong_item("a", "keep"))
    add(cache, wukong_item("a", "gone"))
    resume_from = cache.cursor
    delete(cache, "a", "gone")
    add(cache, wukong_item("a", "new"))

    missed = cache.changes_since(resume_from)
    assert [(c.type, c.state.name) for c in missed] == [(ChangeType.DELETED, "gone"), (ChangeType.ADDED, "new")]

    clock.now += 601
    assert cache.oldest_cursor > resume_from  # the tombstone is gone, so is the ability to resume before it


# -- paging


async def test_pages_stay_consistent_while_wukongs_come_and_go(cache: WukongCache, queries: WukongQueries) -> None:
    rng = random.Random(7)  # noqa: S311 - test data, not secrets
    for index in range(230):
        add(cache, wukong_item(rng.choice("ab"), f"vm-{index:03d}", cpu=rng.randint(1, 8)))
    request = ListRequest(page_size=25, sort_by="cpu", sort_order="desc")
    seen: list[WukongState] = []
    page = await queries.list(CALLER, request)
    survivors = {s.key for s in cache.states()}
    while True:
        seen += page.wukongs
        if not page.next_page_token:
            break
        # Between pages: remove one Wukong not yet shown and add a few that sort anywhere.
        unseen = sorted({s.key for s in cache.states()} - {s.key for s in seen})
        if unseen:
            victim = rng.choice(unseen)
            delete(cache, *victim)
            survivors.discard(victim)
        for _ in range(3):
            add(cache, wukong_item("b", f"late-{next(revisions)}", cpu=rng.randint(1, 8)))
        page = await queries.list(CALLER, ListRequest(**{**vars(request), "page_token": page.next_page_token}))

    keys = [s.key for s in seen]
    assert len(keys) == len(set(keys)), "a Wukong was shown twice"
    assert survivors <= set(keys), "a Wukong present throughout was skipped"
    order = [(s.status.cpu, s.namespace, s.name) for s in seen]
    assert order == sorted(order, reverse=True)


async def test_filters_sort_and_totals_match_an_independent_computation(
    cache: WukongCache, queries: WukongQueries
) -> None:
    for index in range(60):
        add(
            cache,
            wukong_item(
                "ab"[index % 2], f"vm-{index:02d}", cpu=index % 5 + 1, labels={"tier": "web" if index % 3 else "db"}
            ),
        )
    add(cache, wukong_item("z", "other-tenant"))

    request = ListRequest(page_size=3, label_selector="tier=web", name_like="VM-1", sort_by="memory")
    pages = await all_pages(queries, request)

    expected = sorted(
        (s for s in cache.states() if s.namespace in "ab" and s.labels.get("tier") == "web" and "vm-1" in s.name),
        key=lambda s: (s.status.memory_bytes, s.namespace, s.name),
    )
    assert [s.key for p in pages for s in p.wukongs] == [s.key for s in expected]
    assert {(p.total, p.pages) for p in pages} == {(len(expected), -(-len(expected) // 3))}
    assert [p.page for p in pages] == list(range(1, len(pages) + 1))
    by_number = await queries.list(CALLER, ListRequest(**{**vars(request), "page": 2}))
    assert by_number.wukongs == pages[1].wukongs


@pytest.mark.parametrize(
    ("request_fields", "field"),
    [
        ({"page_size": 501}, "page_size"),
        ({"page_size": -1}, "page_size"),
        ({"sort_by": "colour"}, "sort_by"),
        ({"sort_order": "up"}, "sort_order"),
        ({"status": "running,sleepy"}, "status"),
        ({"label_selector": "app in x"}, "label_selector"),
        ({"page_token": "garbage!"}, "page_token"),
        ({"page": -2}, "page"),
        ({"cursor": "12abc"}, "cursor"),
        ({"namespace": "Bad_NS"}, "namespace"),
    ],
)
async def test_bad_list_requests_name_the_field(
    queries: WukongQueries, request_fields: dict[str, Any], field: str
) -> None:
    with pytest.raises(errors.InvalidArgument) as raised:
        await queries.list(CALLER, ListRequest(**request_fields))
    assert field in [v.field for v in raised.value.violations]


async def test_a_page_token_is_refused_with_other_filters(cache: WukongCache, queries: WukongQueries) -> None:
    for index in range(5):
        add(cache, wukong_item("a", f"vm-{index}"))
    first = await queries.list(CALLER, ListRequest(page_size=2))
    with pytest.raises(errors.InvalidArgument) as raised:
        await queries.list(CALLER, ListRequest(page_size=2, sort_by="cpu", page_token=first.next_page_token))
    assert "was issued for other filters" in raised.value.violations[0].description


async def test_other_tenants_namespaces_do_not_exist(cache: WukongCache, queries: WukongQueries) -> None:
    add(cache, wukong_item("z", "secret"))
    with pytest.raises(errors.NotFound):
        await queries.get(CALLER, namespace="z", name="secret", vm_id="", cursor="")
    with pytest.raises(errors.NotFound):
        await queries.get(CALLER, namespace="", name="", vm_id="uid-z-secret", cursor="")
    with pytest.raises(errors.NamespaceNotFound):
        await queries.list(CALLER, ListRequest(namespace="z"))


async def test_a_cursor_from_the_future_waits_then_fails_clearly(cache: WukongCache, queries: WukongQueries) -> None:
    with pytest.raises(errors.CursorNotReached):
        await queries.list(CALLER, ListRequest(cursor=str(cache.cursor + 1000)))


async def test_a_read_with_a_cursor_waits_for_the_write(cache: WukongCache, queries: WukongQueries) -> None:
    item = wukong_item("a", "late")
    cursor = item["metadata"]["resourceVersion"]
    asyncio.get_running_loop().call_later(0.05, add, cache, item)
    state = await queries.get(CALLER, namespace="a", name="late", vm_id="", cursor=cursor)
    assert state.name == "late"


async def test_a_missing_wukong_read_at_another_objects_cursor_is_not_found_not_unavailable(
    cache: WukongCache, hub: WatchHub, tenancy: Tenancy
) -> None:
    """The cursor of a VM change the replica has seen, on a Wukong that does not exist (found by schemathesis: it
    was 503 CURSOR_NOT_REACHED, "seen up to cursor N, not yet N", as the Wukong informer itself had not moved)."""
    add(cache, wukong_item("a", "w"))
    vm = vm_item("a", "w", "Running")
    cache.apply(kubevirt.VIRTUAL_MACHINES, "ADDED", vm, int(vm["metadata"]["resourceVersion"]))
    queries = WukongQueries(
        cache=cache, detail_sources=DetailSources(), hub=hub, tenancy=tenancy, cursor_wait_seconds=2
    )
    with pytest.raises(errors.WukongNotFound):
        await queries.get(CALLER, namespace="a", name="missing", vm_id="", cursor=vm["metadata"]["resourceVersion"])


# -- GetWukong's views


@pytest.mark.parametrize(
    ("value", "view"),
    [
        (wukong_service_pb2.WUKONG_VIEW_UNSPECIFIED, View.FULL),  # what every client got before `view`
        (wukong_service_pb2.WUKONG_VIEW_BASIC, View.BASIC),
        (wukong_service_pb2.WUKONG_VIEW_FULL, View.FULL),
    ],
)
def test_each_view_of_the_request_maps_to_one_of_the_domain(value: int, view: View) -> None:
    assert convert.view_of(value) is view


def test_a_view_this_server_does_not_know_is_refused_naming_the_field() -> None:
    with pytest.raises(errors.InvalidArgument) as raised:
        convert.view_of(7)
    assert "WUKONG_VIEW_BASIC" in str(raised.value)
    assert [v.field for v in raised.value.violations] == ["view"]


async def test_the_basic_view_is_the_cached_wukong_and_calls_no_one(cache: WukongCache, queries: WukongQueries) -> None:
    add(cache, wukong_item("a", "w", cpu=3))
    vm = vm_item("a", "w", "Running")
    cache.apply(kubevirt.VIRTUAL_MACHINES, "ADDED", vm, int(vm["metadata"]["resourceVersion"]))

    state, detail = await queries.get_with_detail(CALLER, namespace="a", name="w", vm_id="", cursor="", view=View.BASIC)

    assert (state.name, state.status.cpu, state.status.power_state.name, detail) == ("w", 3, "RUNNING", None)
    with pytest.raises(errors.WukongNotFound):
        await queries.get_with_detail(CALLER, namespace="b", name="w", vm_id="", cursor="", view=View.BASIC)


async def test_the_full_view_reads_claims_classes_and_events_from_their_informers(
    cache: WukongCache, sources: DetailSources, queries: WukongQueries
) -> None:
    item = wukong_item("a", "w")
    item["spec"]["disks"] = [{"name": "root", "size": "10Gi", "storageClassName": "grows"}]
    add(cache, item)
    informed: list[tuple[Kind, Handler, list[dict[str, Any]]]] = [
        (
            storage.STORAGE_CLASSES,
            sources.storage_classes,
            [{"metadata": {"name": "grows"}, "allowVolumeExpansion": True}],
        ),
        (storage.CLAIMS, sources.claims, [claim_item("a", "w-root", phase="Bound", capacity="10Gi")]),
        *((kind, sources.events, []) for kind in events.KINDS),
    ]
    for kind, handler, raw in informed:
        handler.replace(kind, [kind.keep(r) for r in raw], 5)
    event = event_item("a", "Wukong", "w", uid="e1", reason="Created", at="2026-12-01T10:00:00Z")
    sources.events.apply(events.KINDS[0], "ADDED", events.keep(event), 6)
    assert sources.synced

    _, detail = await queries.get_with_detail(CALLER, namespace="a", name="w", vm_id="", cursor="", view=View.FULL)

    assert detail is not None
    disk = detail.disks[0]
    assert (disk.claim_name, disk.claim_phase, disk.capacity, disk.expandable) == ("w-root", "Bound", "10Gi", True)
    assert [(e.object_kind, e.reason) for e in detail.events] == [("Wukong", "Created")]


def test_events_are_kept_by_the_object_they_are_about_per_involved_kind() -> None:
    mirror = Events()
    wukong_kind, vm_kind, _ = events.KINDS
    mirror.replace(wukong_kind, [events.keep(event_item("a", "Wukong", "w", uid="1", reason="Created"))], 5)
    mirror.replace(vm_kind, [events.keep(event_item("a", "VirtualMachine", "w-vm", uid="2", reason="Started"))], 5)
    assert not mirror.synced  # one involved kind has not listed yet

    # A list of one kind replaces that kind's Events only.
    mirror.replace(wukong_kind, [events.keep(event_item("a", "Wukong", "w", uid="3", reason="Updated"))], 6)
    assert [e["reason"] for e in mirror.about("a", "w")] == ["Updated"]
    assert [e["reason"] for e in mirror.about("a", "w-vm")] == ["Started"]

    mirror.apply(vm_kind, "DELETED", events.keep(event_item("a", "VirtualMachine", "w-vm", uid="2")), 7)
    assert mirror.about("a", "w-vm") == []

    for index in range(MAX_EVENTS_PER_OBJECT + 5):
        at = f"2026-12-01T10:{index // 60:02d}:{index % 60:02d}Z"
        mirror.apply(wukong_kind, "ADDED", events.keep(event_item("a", "Wukong", "w", uid=f"n{index}", at=at)), 8)
    kept = mirror.about("a", "w")
    assert len(kept) == MAX_EVENTS_PER_OBJECT
    assert min(e["lastTimestamp"] for e in kept) == "2026-12-01T10:00:05Z"  # the oldest went first


def claim_item(namespace: str, name: str, *, phase: str, capacity: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": namespace, "uid": "c-" + name, "managedFields": [{"manager": "x"}]},
        "spec": {
            "resources": {"requests": {"storage": capacity}},
            "storageClassName": "grows",
            "volumeMode": "Filesystem",
        },
        "status": {"phase": phase, "capacity": {"storage": capacity}, "accessModes": ["ReadWriteOnce"]},
    }


def event_item(
    namespace: str, kind: str, name: str, *, uid: str, reason: str = "Seen", at: str = "2026-12-01T09:00:00Z"
) -> dict[str, Any]:
    return {
        "metadata": {"name": f"{name}.{uid}", "namespace": namespace, "uid": uid, "creationTimestamp": at},
        "involvedObject": {"kind": kind, "name": name, "namespace": namespace, "uid": "x", "apiVersion": "v1"},
        "type": "Normal",
        "reason": reason,
        "message": "something happened",
        "count": 1,
        "lastTimestamp": at,
        "source": {"component": "virt-controller", "host": "node-1"},
    }


def test_storage_classes_follow_their_informer() -> None:
    classes = DetailSources().storage_classes
    kind = storage.STORAGE_CLASSES
    raw: list[dict[str, Any]] = [
        {
            "metadata": {"name": "grows", "resourceVersion": "5", "annotations": {"a": "b"}},
            "allowVolumeExpansion": True,
        },
        {"metadata": {"name": "fixed"}, "provisioner": "x"},
    ]
    classes.replace(kind, [kind.keep(item) for item in raw], 5)
    assert [kind.keep(item) for item in raw] == [
        {"metadata": {"name": "grows"}, "allowVolumeExpansion": True},
        {"metadata": {"name": "fixed"}, "allowVolumeExpansion": False},
    ]
    assert (classes.synced, classes.expandable("grows"), classes.expandable("fixed")) == (True, True, False)
    assert not classes.expandable("missing")

    classes.apply(kind, "MODIFIED", kind.keep({"metadata": {"name": "fixed"}, "allowVolumeExpansion": True}), 6)
    classes.apply(kind, "DELETED", kind.keep(raw[0]), 7)
    assert (classes.expandable("grows"), classes.expandable("fixed")) == (False, True)


# -- the watch hub


class CountingEncoder:
    def __init__(self) -> None:
        self.encoded = 0

    def change(self, change_type: ChangeType, state: WukongState, cursor: int) -> object:
        self.encoded += 1
        return (change_type.value, state.name, cursor)

    def bookmark(self, cursor: int) -> object:
        return ("BOOKMARK", "", cursor)

    def error(self, error: errors.NovaError) -> object:
        return ("ERROR", error.reason.value, 0)


async def watch(
    queries: WukongQueries, *, namespace: str = "", status: str = "", cursor: str = "", encoder: Any = None
) -> AsyncGenerator[object, None]:
    return await queries.watch(
        CALLER,
        name="",
        namespace=namespace,
        status=status,
        name_like="",
        label_selector="",
        cursor=cursor,
        encoder=encoder or CountingEncoder(),
    )


async def take(stream: AsyncIterator[object], count: int) -> list[Any]:
    return [await anext(stream) for _ in range(count)]


async def test_each_change_is_encoded_once_for_all_streams_of_a_filter(
    cache: WukongCache, queries: WukongQueries
) -> None:
    encoder = CountingEncoder()
    streams = [await watch(queries, namespace="a", encoder=encoder) for _ in range(3)]
    for stream in streams:
        assert (await take(stream, 1))[0][0] == "BOOKMARK"  # empty initial state
    add(cache, wukong_item("a", "one"))
    add(cache, wukong_item("b", "elsewhere"))
    for stream in streams:
        assert [event[:2] for event in await take(stream, 1)] == [("ADDED", "one")]
    assert encoder.encoded == 1
    for stream in streams:
        await stream.aclose()


async def test_a_wukong_leaving_the_filter_is_deleted_for_that_watch(
    cache: WukongCache, queries: WukongQueries
) -> None:
    add(cache, wukong_item("a", "w"))
    stream = await watch(queries, status="stopped")
    assert [e[0] for e in await take(stream, 1)] == ["BOOKMARK"]  # provisioning: not stopped
    vm = vm_item("a", "w", "Stopped")
    cache.apply(kubevirt.VIRTUAL_MACHINES, "ADDED", vm, int(vm["metadata"]["resourceVersion"]))
    running = vm_item("a", "w", "Running")
    cache.apply(kubevirt.VIRTUAL_MACHINES, "MODIFIED", running, int(running["metadata"]["resourceVersion"]))
    assert [e[:2] for e in await take(stream, 2)] == [("ADDED", "w"), ("DELETED", "w")]
    await stream.aclose()


async def test_a_slow_stream_is_dropped_in_band_and_the_others_go_on(
    cache: WukongCache, queries: WukongQueries
) -> None:
    slow, fast = await watch(queries), await watch(queries)
    await take(slow, 1)
    await take(fast, 1)
    received = []
    for index in range(20):  # the buffer holds 8
        add(cache, wukong_item("a", f"w{index}"))
        received += await take(fast, 1)
    assert len(received) == 20
    assert await take(slow, 1) == [("ERROR", "SLOW_CONSUMER", 0)]
    with pytest.raises(errors.SlowConsumer):
        await anext(slow)
    await fast.aclose()


async def test_resume_sends_what_was_missed_and_refuses_a_cursor_too_old(
    cache: WukongCache, queries: WukongQueries, clock: FakeClock
) -> None:
    add(cache, wukong_item("a", "stays"))
    add(cache, wukong_item("a", "goes"))
    cursor = cache.cursor
    delete(cache, "a", "goes")
    add(cache, wukong_item("a", "arrives"))

    resumed = await watch(queries, cursor=str(cursor))
    assert [e[:2] for e in await take(resumed, 3)] == [("DELETED", "goes"), ("ADDED", "arrives"), ("BOOKMARK", "")]
    await resumed.aclose()

    clock.now += 601
    too_old = await watch(queries, cursor=str(cursor))
    assert await take(too_old, 1) == [("ERROR", "RESYNC_REQUIRED", 0)]
    with pytest.raises(errors.ResyncRequired):
        await anext(too_old)
