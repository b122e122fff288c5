"""Controller plumbing for the simulator: informers (list + watch into a cache), deduplicating work queues, and one
timer heap for delayed requeues (vmoperator's 10 s polling, boot delays) instead of a sleeping task per object.

Everything is level-triggered: controllers read the caches and the objects' own timestamps, so a simulator killed
and started again picks up where the cluster is.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import heapq
import itertools
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sim import kubeapi
from sim.kubeapi import Body, KubeApi, Resource

log = logging.getLogger("sim")

Key = tuple[str, str]  # (namespace, name); namespace "" for cluster-scoped objects
Handler = Callable[[Body | None, Body | None], None]  # (old, new); new None on delete
IndexFunction = Callable[[Body], Iterable[str]]


def key_of(obj: Body) -> Key:
    metadata = obj["metadata"]
    return metadata.get("namespace", ""), metadata["name"]


class Informer:
    """One list+watch of a resource kept in memory. Handlers run on the event loop for every change."""

    def __init__(self, api: KubeApi, resource: Resource) -> None:
        self.api = api
        self.resource = resource
        self.synced = asyncio.Event()
        self._cache: dict[Key, Body] = {}
        self._handlers: list[Handler] = []
        self._indexes: dict[str, tuple[IndexFunction, dict[str, set[Key]]]] = {}

    def on_change(self, handler: Handler) -> None:
        self._handlers.append(handler)

    def add_index(self, name: str, function: IndexFunction) -> None:
        self._indexes[name] = (function, defaultdict(set))

    def get(self, namespace: str, name: str) -> Body | None:
        return self._cache.get((namespace, name))

    def items(self) -> list[Body]:
        return list(self._cache.values())

    def by_index(self, name: str, value: str) -> list[Body]:
        _, index = self._indexes[name]
        return [self._cache[key] for key in index.get(value, ()) if key in self._cache]

    def __len__(self) -> int:
        return len(self._cache)

    async def run(self) -> None:
        backoff = 0.2
        resource_version = ""
        while True:
            try:
                if not resource_version:
                    resource_version = await self._list()
                async for event in self.api.watch(self.resource, resource_version):
                    obj = event["object"]
                    resource_version = obj["metadata"].get("resourceVersion", resource_version)
                    if event["type"] != "BOOKMARK":
                        self._apply(obj if event["type"] != "DELETED" else None, key_of(obj))
                backoff = 0.2
            except kubeapi.Gone:
                resource_version = ""  # too old: list again
            except asyncio.CancelledError:
                raise
            except Exception as error:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise asyncio.CancelledError from error  # the client turned our cancellation into an error
                log.warning("watch %s failed (%s); retrying in %.1f s", self.resource.plural, error, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)

    async def _list(self) -> str:
        listing = await self.api.list(self.resource)
        fresh = {key_of(obj): obj for obj in listing.get("items", [])}
        for key in set(self._cache) - set(fresh):
            self._apply(None, key)
        for key, obj in fresh.items():
            self._apply(obj, key)
        self.synced.set()
        return str(listing["metadata"]["resourceVersion"])

    def _apply(self, new: Body | None, key: Key) -> None:
        old = self._cache.get(key)
        if new is None:
            self._cache.pop(key, None)
        else:
            if old is not None and old["metadata"].get("resourceVersion") == new["metadata"].get("resourceVersion"):
                return
            self._cache[key] = new
        for function, index in self._indexes.values():
            for value in function(old) if old is not None else ():
                index[value].discard(key)
            for value in function(new) if new is not None else ():
                index[value].add(key)
        for handler in self._handlers:
            handler(old, new)


@dataclass
class _Queue:
    pending: set[Key] = field(default_factory=set)
    running: set[Key] = field(default_factory=set)
    dirty: set[Key] = field(default_factory=set)
    ready: asyncio.Queue[Key] = field(default_factory=asyncio.Queue)
    failures: dict[Key, int] = field(default_factory=dict)


Reconcile = Callable[[Key], Awaitable[float | None]]


class Controller:
    """A named reconcile function over keys; at most one reconcile per key at a time, duplicates merged.

    `reconcile(key)` returns seconds (simulated time, divided by the speed factor here) after which to look again, or
    None. An exception requeues the key with exponential backoff.
    """

    def __init__(self, name: str, reconcile: Reconcile, *, clock: Clock, workers: int = 8) -> None:
        self.name = name
        self._reconcile = reconcile
        self._clock = clock
        self._workers = workers
        self._queue = _Queue()
        self.retries = 0
        """Reconciles that failed and were requeued with backoff (conflicts with a newer version, mostly)."""

    def enqueue(self, key: Key) -> None:
        queue = self._queue
        if key in queue.running:
            queue.dirty.add(key)
        elif key not in queue.pending:
            queue.pending.add(key)
            queue.ready.put_nowait(key)

    def enqueue_after(self, key: Key, simulated_seconds: float) -> None:
        self._clock.call_later(simulated_seconds, lambda: self.enqueue(key))

    async def run(self) -> None:
        async with asyncio.TaskGroup() as workers:
            for _ in range(self._workers):
                workers.create_task(self._work())

    async def _work(self) -> None:
        queue = self._queue
        while True:
            key = await queue.ready.get()
            queue.pending.discard(key)
            queue.running.add(key)
            try:
                again = await self._reconcile(key)
                queue.failures.pop(key, None)
                if again is not None:
                    self.enqueue_after(key, again)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - one object's failure must not stop the controller
                self.retries += 1
                failures = queue.failures[key] = queue.failures.get(key, 0) + 1
                delay = min(0.05 * 2**failures, 30.0)
                if not isinstance(error, kubeapi.Conflict | kubeapi.NotFound):
                    # The first failure of a key is worth a warning; its retries (a namespace being deleted
                    # refuses new claims for a while, say) only at debug level.
                    level = logging.WARNING if failures == 1 else logging.DEBUG
                    log.log(level, "%s %s/%s: %r; retry %d in %.2f s", self.name, *key, error, failures, delay)
                self._clock.call_later_real(delay, functools.partial(self.enqueue, key))
            finally:
                queue.running.discard(key)
                if key in queue.dirty:
                    queue.dirty.discard(key)
                    self.enqueue(key)


class Clock:
    """Simulated time: delays are divided by `speed`. One heap of timers, served by one task."""

    def __init__(self, speed: float) -> None:
        self.speed = speed
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._sequence = itertools.count()
        self._wakeup = asyncio.Event()

    def scaled(self, simulated_seconds: float) -> float:
        return max(simulated_seconds, 0.0) / self.speed

    def call_later(self, simulated_seconds: float, callback: Callable[[], None]) -> None:
        self.call_later_real(self.scaled(simulated_seconds), callback)

    def call_later_real(self, seconds: float, callback: Callable[[], None]) -> None:
        heapq.heappush(self._heap, (time.monotonic() + seconds, next(self._sequence), callback))
        self._wakeup.set()

    async def run(self) -> None:
        while True:
            now = time.monotonic()
            while self._heap and self._heap[0][0] <= now:
                _, _, callback = heapq.heappop(self._heap)
                callback()
            self._wakeup.clear()
            timeout = self._heap[0][0] - now if self._heap else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout)


def simulated_seconds_since(timestamp: str, clock: Clock) -> float:
    """How much simulated time has passed since an RFC 3339 timestamp written by the simulator."""
    then = epoch_seconds(timestamp)
    if then is None:
        raise ValueError(f"not an RFC 3339 timestamp: {timestamp!r}")
    return (time.time() - then) * clock.speed


def epoch_seconds(timestamp: str) -> float | None:
    """An RFC 3339 timestamp as seconds since the epoch; None if it is empty or malformed."""
    from datetime import datetime

    try:
        return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def rfc3339_at(epoch: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_rfc3339() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def deep_get(obj: Any, *path: str | int, default: Any = None) -> Any:
    for part in path:
        try:
            obj = obj[part]
        except (KeyError, IndexError, TypeError):
            return default
    return default if obj is None else obj
