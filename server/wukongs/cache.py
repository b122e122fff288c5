"""This replica's view of every Wukong: the Wukong joined with its VirtualMachine, VirtualMachineInstance and launcher
Pod, fed by one informer per kind and shared by every request and watch.

Each joined Wukong carries a cursor: the highest resourceVersion among the changes that made it what it is, compared
as integers (etcd revisions; DESIGN §3's deliberate exception to treating them as opaque). A change of any of the
four objects that alters what the API shows is published once as a `Change`; changes that alter nothing visible
(a Pod's probe timestamps, vmoperator's status echo) are absorbed. Deleted Wukongs leave a tombstone for
`tombstone_seconds` (and only the newest `max_tombstones` of them, so that churn cannot fill memory), so a watch can
resume across a deletion; `oldest_cursor` is the oldest cursor this replica can resume from.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime
import enum
import functools
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from server import timestamps
from server.kube import kubevirt, pods, wukongs
from server.kube.informer import Kind
from server.wukongs import status as derived

Raw = Mapping[str, Any]
Key = tuple[str, str]
"""(namespace, Wukong name)."""

KINDS = (wukongs.KIND, kubevirt.VIRTUAL_MACHINES, kubevirt.INSTANCES, pods.LAUNCHERS)
# A cursor of another kind can be ahead of the Wukong informer without the Wukong kind having anything newer; a
# reader waiting for a cursor accepts that after this settling time (see `caught_up`).
SETTLE_SECONDS = 0.2


class ChangeType(enum.Enum):
    ADDED = "ADDED"
    MODIFIED = "MODIFIED"
    DELETED = "DELETED"


@dataclass(frozen=True, eq=False)
class WukongState:
    """One Wukong as this replica sees it. Immutable, compared and hashed by identity (a new state is a new object),
    so derived forms can be cached per state. Names and labels are cached: lists filter thousands per request."""

    wukong: Raw
    vm: Raw | None
    vmi: Raw | None
    pod: Raw | None
    status: derived.DerivedStatus
    cursor: int
    created_cursor: int
    """The cursor at which this replica saw the Wukong appear; 0 if it existed when the replica started."""

    @functools.cached_property
    def namespace(self) -> str:
        return str(self.wukong["metadata"]["namespace"])

    @functools.cached_property
    def name(self) -> str:
        return str(self.wukong["metadata"]["name"])

    @functools.cached_property
    def key(self) -> Key:
        return self.namespace, self.name

    @property
    def uid(self) -> str:
        return str(self.wukong["metadata"].get("uid", ""))

    @functools.cached_property
    def labels(self) -> Mapping[str, str]:
        labels: Mapping[str, str] = self.wukong["metadata"].get("labels") or {}
        return labels

    @functools.cached_property
    def annotations(self) -> Mapping[str, str]:
        annotations: Mapping[str, str] = self.wukong["metadata"].get("annotations") or {}
        return annotations

    @property
    def create_time(self) -> datetime.datetime | None:
        return timestamps.parse(self.wukong["metadata"].get("creationTimestamp"))


@dataclass(frozen=True)
class Change:
    type: ChangeType
    before: WukongState | None
    after: WukongState | None
    cursor: int

    @property
    def state(self) -> WukongState:
        """The state the change leaves, or the last one for a deletion."""
        state = self.after or self.before
        assert state is not None
        return state


@dataclass(frozen=True)
class Tombstone:
    state: WukongState
    cursor: int
    at: float


@dataclass
class _Components:
    """The KubeVirt side of one Wukong key, in whatever order the informers deliver it."""

    vm: Raw | None = None
    vmi: Raw | None = None
    pods: dict[str, Raw] = field(default_factory=dict)

    def empty(self) -> bool:
        return self.vm is None and self.vmi is None and not self.pods


class WukongCache:
    """The informers' `Handler` for the four kinds; runs on the event loop only."""

    def __init__(
        self,
        *,
        tombstone_seconds: float = 600.0,
        max_tombstones: int = 5000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`clock` times tombstones (tests pass their own)."""
        self._states: dict[Key, WukongState] = {}
        self._wukongs: dict[Key, Raw] = {}
        self._components: dict[Key, _Components] = {}
        self._by_uid: dict[str, Key] = {}
        self._tombstones: collections.deque[Tombstone] = collections.deque()
        self._tombstone_seconds = tombstone_seconds
        self._max_tombstones = max_tombstones
        self._clock = clock
        self._listeners: list[Callable[[Change], None]] = []
        self._seen: dict[str, int] = {}
        self._synced: set[str] = set()
        self._oldest = 0
        self._moved = asyncio.Event()

    # -- reading

    def subscribe(self, listener: Callable[[Change], None]) -> None:
        """Calls `listener`, on the event loop, with every change from now on (the process's lifetime)."""
        self._listeners.append(listener)

    def states(self) -> Iterator[WukongState]:
        return iter(self._states.values())

    def get(self, key: Key) -> WukongState | None:
        return self._states.get(key)

    def by_uid(self, uid: str) -> WukongState | None:
        key = self._by_uid.get(uid)
        return None if key is None else self._states.get(key)

    @property
    def synced(self) -> bool:
        return self._synced.issuperset(kind.name for kind in KINDS)

    @property
    def cursor(self) -> int:
        """The newest revision this replica has seen, of any kind."""
        return max(self._seen.values(), default=0)

    @property
    def oldest_cursor(self) -> int:
        """A watch can resume from this cursor or a later one: every change after it is in the states or a tombstone."""
        self.prune()
        return self._oldest

    def changes_since(self, cursor: int) -> list[Change]:
        """What a watch that saw everything up to `cursor` has missed, oldest first; `cursor` ≥ `oldest_cursor`."""
        self.prune()
        missed = [
            Change(
                ChangeType.ADDED if state.created_cursor > cursor else ChangeType.MODIFIED, None, state, state.cursor
            )
            for state in self._states.values()
            if state.cursor > cursor
        ]
        missed += [
            Change(ChangeType.DELETED, tombstone.state, None, tombstone.cursor)
            for tombstone in self._tombstones
            if tombstone.cursor > cursor
        ]
        return sorted(missed, key=lambda change: change.cursor)

    async def wait_for(self, cursor: int, *, key: Key | None, within: float) -> bool:
        """Waits until this replica has caught up with `cursor` (for one Wukong, or for all), at most `within` seconds.

        For one Wukong: its state (or tombstone) is at least `cursor`, or the Wukong informer has passed `cursor`
        without it. For all: every kind has passed `cursor`, or the Wukong kind has (a write's cursor). Either way,
        also once some kind has passed it for `SETTLE_SECONDS` (the cursor of a VM/VMI/Pod change, or of another
        Wukong's: the other kinds may simply be idle, and a Wukong that does not exist has no state to catch up)."""
        deadline = time.monotonic() + within
        ahead_since: float | None = None
        while not self._caught_up(cursor, key):
            now = time.monotonic()
            if self.cursor >= cursor:
                ahead_since = now if ahead_since is None else ahead_since
                if now - ahead_since >= SETTLE_SECONDS:
                    return True
            if now >= deadline:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._moved.wait(), timeout=min(deadline - now, SETTLE_SECONDS / 2))
        return True

    def _caught_up(self, cursor: int, key: Key | None) -> bool:
        seen_wukongs = self._seen.get(wukongs.KIND.name, 0)
        if key is not None:
            state = self._states.get(key)
            if state is not None and state.cursor >= cursor:
                return True
            if any(t.state.key == key and t.cursor >= cursor for t in self._tombstones):
                return True
            return state is None and seen_wukongs >= cursor
        return seen_wukongs >= cursor or min(self._seen.get(kind.name, 0) for kind in KINDS) >= cursor

    # -- informer.Handler

    def replace(self, kind: Kind, items: list[dict[str, Any]], resource_version: int) -> None:
        """A fresh list: what is not in it was deleted meanwhile (cursor: the list's revision)."""
        initial = kind.name not in self._synced
        listed: dict[Key, list[Raw]] = {}
        for item in items:
            key = self._key(kind, item)
            if key is not None:
                listed.setdefault(key, []).append(item)
        for key in [k for k in self._keys_of(kind) if k not in listed]:
            self._store(kind, key, None, reset=True)
            self._refresh(key, resource_version, initial=initial)
        for key, key_items in listed.items():
            self._store(kind, key, None, reset=True)
            for listed_item in key_items:
                self._store(kind, key, listed_item)
            self._refresh(key, max(_revision(i) for i in key_items), initial=initial)
        self._synced.add(kind.name)
        self._advance(kind, resource_version)
        if initial and self.synced:
            self._oldest = self.cursor

    def apply(self, kind: Kind, event_type: str, item: dict[str, Any], resource_version: int) -> None:
        key = self._key(kind, item)
        if key is not None:
            if event_type == "DELETED":
                self._store(kind, key, None, deleted=item)
            else:
                self._store(kind, key, item)
            self._refresh(key, resource_version, initial=False)
        self._advance(kind, resource_version)

    def progress(self, kind: Kind, resource_version: int) -> None:
        self._advance(kind, resource_version)

    # -- internals

    def _advance(self, kind: Kind, resource_version: int) -> None:
        self._seen[kind.name] = max(self._seen.get(kind.name, 0), resource_version)
        self._moved.set()
        self._moved = asyncio.Event()

    def _key(self, kind: Kind, item: Raw) -> Key | None:
        metadata = item.get("metadata") or {}
        namespace, name = metadata.get("namespace", ""), metadata.get("name", "")
        if kind is pods.LAUNCHERS:
            name = (metadata.get("labels") or {}).get(pods.VMI_NAME_LABEL, "")
        if kind is wukongs.KIND:
            return namespace, name
        wukong = kubevirt.wukong_of(name)
        return None if wukong is None else (namespace, wukong)

    def _keys_of(self, kind: Kind) -> list[Key]:
        if kind is wukongs.KIND:
            return list(self._wukongs)
        return [key for key, parts in self._components.items() if self._part(kind, parts)]

    @staticmethod
    def _part(kind: Kind, parts: _Components) -> bool:
        if kind is kubevirt.VIRTUAL_MACHINES:
            return parts.vm is not None
        if kind is kubevirt.INSTANCES:
            return parts.vmi is not None
        return bool(parts.pods)

    def _store(
        self, kind: Kind, key: Key, item: Raw | None, *, deleted: Raw | None = None, reset: bool = False
    ) -> None:
        """Records `item` for `key`; None with `deleted` removes that object, None with `reset` all of this kind."""
        if kind is wukongs.KIND:
            if item is None:
                self._wukongs.pop(key, None)
            else:
                self._wukongs[key] = item
            return
        parts = self._components.setdefault(key, _Components())
        if kind is kubevirt.VIRTUAL_MACHINES:
            parts.vm = item
        elif kind is kubevirt.INSTANCES:
            parts.vmi = item
        elif item is not None:
            parts.pods[str(item["metadata"]["name"])] = item
        elif reset:
            parts.pods.clear()
        elif deleted is not None:
            parts.pods.pop(str(deleted["metadata"]["name"]), None)
        if parts.empty():
            del self._components[key]

    def _refresh(self, key: Key, resource_version: int, *, initial: bool) -> None:
        before = self._states.get(key)
        wukong = self._wukongs.get(key)
        if before is not None and (wukong is None or before.uid != wukong["metadata"].get("uid")):
            # Deleted, or deleted and created again between two observations: the old one is gone either way.
            del self._states[key]
            self._by_uid.pop(before.uid, None)
            cursor = max(before.cursor, resource_version)
            self._tombstones.append(Tombstone(before, cursor, self._clock()))
            self.prune()
            self._publish(Change(ChangeType.DELETED, before, None, cursor))
            before = None
        if wukong is None:
            return
        parts = self._components.get(key) or _Components()
        pod = pods.active_launcher(parts.pods.values(), parts.vmi)
        status = derived.derive(wukong, parts.vm, parts.vmi, pod)
        if before is not None and _revision(before.wukong) == _revision(wukong) and before.status == status:
            # Nothing visible changed: keep the cursor, refresh the objects (the detail view reads them).
            self._states[key] = WukongState(
                wukong, parts.vm, parts.vmi, pod, status, before.cursor, before.created_cursor
            )
            return
        cursor = max(before.cursor if before else 0, resource_version)
        created = before.created_cursor if before else (0 if initial else resource_version)
        after = WukongState(wukong, parts.vm, parts.vmi, pod, status, cursor, created)
        self._states[key] = after
        self._by_uid[after.uid] = key
        self._publish(Change(ChangeType.ADDED if before is None else ChangeType.MODIFIED, before, after, cursor))

    def _publish(self, change: Change) -> None:
        for listener in self._listeners:
            listener(change)

    def prune(self) -> None:
        """Forgets tombstones older than the retention, and the oldest beyond the cap; resuming from before them is
        then a resync. Called on every deletion and on a timer (`keep_pruning`), not only when a watch resumes."""
        horizon = self._clock() - self._tombstone_seconds
        while self._tombstones and (self._tombstones[0].at < horizon or len(self._tombstones) > self._max_tombstones):
            self._oldest = max(self._oldest, self._tombstones.popleft().cursor)

    @property
    def tombstones(self) -> int:
        return len(self._tombstones)

    async def keep_pruning(self, stop: asyncio.Event) -> None:
        """Ages tombstones out even while nothing is deleted and no watch resumes."""
        while not stop.is_set():
            self.prune()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=max(1.0, self._tombstone_seconds / 10))


def _revision(item: Raw) -> int:
    return int((item.get("metadata") or {}).get("resourceVersion") or 0)
