"""WatchWukong: every client stream is fed from the one cache (one informer per kind), never by a watch of its own.

Streams with the same filter and caller permissions form a group; each change is encoded once per group and the same
payload is queued to every stream in it. Each stream has a bounded queue: a client that does not keep up is dropped
with an in-band ERROR (`SLOW_CONSUMER`) and never slows the others. Idle streams get a BOOKMARK every
`bookmark_seconds` from one shared ticker, which also keeps proxies from closing them.

A stream's namespaces follow tenancy while it is open (`rescope`): when a namespace leaves the caller's tenant its
Wukongs are DELETED from the stream at once (a stream that named that namespace then ends with NAMESPACE_NOT_FOUND),
and a namespace that joins the tenant brings its Wukongs in as ADDED.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncGenerator, Callable, Hashable
from dataclasses import dataclass, field
from typing import Protocol

from server import errors
from server.metrics import Metrics
from server.wukongs.cache import Change, ChangeType, WukongCache, WukongState
from server.wukongs.filters import WukongFilter


class Encoder(Protocol):
    """Turns events into what the transport sends (e.g. serialized messages): called once per group and event."""

    def change(self, change_type: ChangeType, state: WukongState, cursor: int) -> object: ...

    def bookmark(self, cursor: int) -> object: ...

    def error(self, error: errors.NovaError) -> object: ...


@dataclass(eq=False)
class _Stream:
    queue: asyncio.Queue[object]
    dropped: bool = False


@dataclass(frozen=True)
class Scope:
    """The namespaces a stream may see, as tenancy says now; `named`: the one namespace the request named, if any."""

    namespaces: Callable[[], frozenset[str]]
    named: str = ""


@dataclass(eq=False)
class _Group:
    filter: WukongFilter
    encoder: Encoder
    scope: Scope | None = None
    shown: frozenset[tuple[str, str]] = frozenset()
    """The Wukongs whose MODIFIED events the streams want; empty: all of them."""
    streams: set[_Stream] = field(default_factory=set)


@dataclass(frozen=True)
class WatchSettings:
    buffer: int = 256
    """Events queued for one stream before it is dropped."""
    bookmark_seconds: float = 15.0


class WatchHub:
    def __init__(self, cache: WukongCache, settings: WatchSettings, *, metrics: Metrics) -> None:
        self._cache = cache
        self._settings = settings
        self._metrics = metrics
        self._groups: dict[Hashable, _Group] = {}
        self._ticker: asyncio.Task[None] | None = None
        cache.subscribe(self._publish)

    @property
    def streams(self) -> int:
        return sum(len(group.streams) for group in self._groups.values())

    async def watch(
        self,
        wukong_filter: WukongFilter,
        encoder: Encoder,
        group_key: Hashable,
        cursor: int | None,
        scope: Scope | None = None,
        shown: frozenset[tuple[str, str]] = frozenset(),
    ) -> AsyncGenerator[object, None]:
        """The stream's payloads: the initial state (or what was missed since `cursor`), a BOOKMARK, then changes.
        Ends with an ERROR payload and raises when the stream must end abnormally. `scope`: where the stream's
        namespaces come from while it runs (the filter's stay fixed without). `shown`: the only Wukongs whose
        MODIFIED events are sent (membership changes still are for all); empty: all. Part of `group_key`."""
        if cursor is not None and cursor < self._cache.oldest_cursor:
            error = errors.ResyncRequired(cursor=cursor, oldest=self._cache.oldest_cursor)
            yield encoder.error(error)
            raise error
        stream = _Stream(asyncio.Queue(maxsize=self._settings.buffer))
        group = self._groups.setdefault(group_key, _Group(wukong_filter, encoder, scope, shown))
        # Snapshot and subscription happen without an await between them: no change can fall in between. The states
        # are immutable, so they are encoded as they are sent, not all at once (10,000 would stall the loop).
        if cursor is None:
            backlog = [
                Change(ChangeType.ADDED, None, state, state.cursor)
                for state in sorted(self._cache.states(), key=lambda s: s.key)
                if wukong_filter.matches(state)
            ]
        else:
            backlog = self._cache.changes_since(cursor)
        group.streams.add(stream)
        if self._ticker is None or self._ticker.done():
            self._ticker = asyncio.create_task(self._tick())
        try:
            for change in backlog:
                payload = self._encode(group, change)
                if payload is not None:
                    yield payload
            yield encoder.bookmark(max(self._cache.cursor, cursor or 0))
            while True:
                payload = await stream.queue.get()
                if isinstance(payload, _Queued):
                    self._metrics.watch_fanout_lag.observe(time.monotonic() - payload.at)
                    payload = payload.payload
                elif payload is _BOOKMARK:
                    payload = encoder.bookmark(self._cache.cursor)
                elif isinstance(payload, _Ending):
                    yield encoder.error(payload.error)
                    raise payload.error
                if stream.dropped:
                    dropped = errors.SlowConsumer(buffered=self._settings.buffer)
                    yield encoder.error(dropped)
                    raise dropped
                yield payload
        finally:
            group.streams.discard(stream)
            if not group.streams:
                with contextlib.suppress(KeyError):
                    if self._groups[group_key] is group:
                        del self._groups[group_key]

    def rescope(self) -> None:
        """Tenancy changed: every group's namespaces follow, its streams told of each Wukong that entered or left."""
        for group in list(self._groups.values()):
            if group.scope is None:
                continue
            namespaces = group.scope.namespaces()
            if group.scope.named:
                namespaces &= {group.scope.named}
            if namespaces == group.filter.namespaces:
                continue
            before, group.filter = group.filter, dataclasses.replace(group.filter, namespaces=namespaces)
            cursor = self._cache.cursor
            for state in list(self._cache.states()):
                was, now = before.matches(state), group.filter.matches(state)
                if was != now:
                    self._queue(
                        group, group.encoder.change(ChangeType.ADDED if now else ChangeType.DELETED, state, cursor)
                    )
            if group.scope.named and not namespaces:
                self._end(group, errors.NamespaceNotFound(group.scope.named))

    def _queue(self, group: _Group, payload: object) -> None:
        queued = _Queued(payload, time.monotonic())
        for stream in list(group.streams):
            if stream.dropped:
                continue
            try:
                stream.queue.put_nowait(queued)
            except asyncio.QueueFull:
                _drop(stream)

    def _end(self, group: _Group, error: errors.NovaError) -> None:
        ending = _Ending(error)
        for stream in list(group.streams):
            try:
                stream.queue.put_nowait(ending)
            except asyncio.QueueFull:  # it resumes from its cursor all the same
                while not stream.queue.empty():
                    stream.queue.get_nowait()
                stream.queue.put_nowait(ending)

    def end_all(self, error: errors.NovaError) -> int:
        """Ends every stream with an in-band ERROR holding `error` after what it has queued (its client resumes from
        the last cursor it got); returns how many streams there were."""
        for group in self._groups.values():
            self._end(group, error)
        return self.streams

    async def _tick(self) -> None:
        """Queues a BOOKMARK for every idle stream each `bookmark_seconds`; one timer for all streams, so waiting for
        an event costs a stream nothing but its queue. Ends when the last stream does."""
        while self.streams:
            await asyncio.sleep(self._settings.bookmark_seconds)
            for group in list(self._groups.values()):
                for stream in group.streams:
                    if stream.queue.empty() and not stream.dropped:
                        stream.queue.put_nowait(_BOOKMARK)

    def _publish(self, change: Change) -> None:
        for group in list(self._groups.values()):
            payload = self._encode(group, change)
            if payload is not None:
                self._queue(group, payload)

    @staticmethod
    def _encode(group: _Group, change: Change) -> object | None:
        """The event this change is for the group's filter: a Wukong that starts matching is ADDED, one that stops
        matching is DELETED (as Kubernetes does for label-selector watches)."""
        before = change.before is not None and group.filter.matches(change.before)
        after = change.after is not None and group.filter.matches(change.after)
        if after:
            assert change.after is not None
            entered = change.type is ChangeType.ADDED or (change.before is not None and not before)
            if not entered and group.shown and change.after.key not in group.shown:
                return None
            return group.encoder.change(
                ChangeType.ADDED if entered else ChangeType.MODIFIED, change.after, change.cursor
            )
        if before:
            return group.encoder.change(ChangeType.DELETED, change.state, change.cursor)
        return None


@dataclass(frozen=True)
class _Queued:
    """A change's payload for a group's streams, with when it was queued (the fan-out lag metric)."""

    payload: object
    at: float


@dataclass(frozen=True)
class _Ending:
    """Queued by `end_all`: the stream sends `error` in-band and ends."""

    error: errors.NovaError


_BOOKMARK = object()
"""Queued by the ticker: the stream sends a BOOKMARK with the cursor of the moment it is sent."""


def _drop(stream: _Stream) -> None:
    """Frees the queue and wakes the stream, which then ends with the error: its client resumes from its cursor."""
    stream.dropped = True
    while not stream.queue.empty():
        stream.queue.get_nowait()
    stream.queue.put_nowait(None)
