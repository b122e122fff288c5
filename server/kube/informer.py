"""List+watch of one kind of object, delivered to the event loop: the process's one reader of that kind.

Each informer owns a thread that lists the kind (in pages), then watches from the list's resourceVersion with
bookmarks, re-watching from the last version seen when a watch ends, and listing again when kube-apiserver says that
version is gone (410). Every list and event is handed to the loop through `call_soon_threadsafe`, so the handler runs
on the loop and needs no locks.

Failures are bounded and visible: a watch asks kube-apiserver to end it after a few minutes and gives up reading
shortly after that (a connection gone silent is noticed), failed attempts back off exponentially with jitter (so
replicas do not retry in step), and `cut_off_seconds` tells readiness how long this informer has been unable to
reach kube-apiserver. A handler that raises loses no event: the informer lists again, so the handler's state is
rebuilt from what the cluster holds.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from server.kube import errors
from server.kube.client import JsonObject, KubeClient, Stream, json_object

log = logging.getLogger(__name__)

LIST_PAGE = 500
WATCH_SECONDS = (240, 300)
"""kube-apiserver ends a watch after a time drawn from this range (informers of a replica do not re-watch in step);
the informer then watches again from where it was."""
READ_MARGIN_SECONDS = 15.0
"""How long past its end a watch may stay silent before the connection is taken for dead."""
BACKOFF_FIRST_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 30.0
DECODING = threading.Lock()
"""Held while one list page is decoded and trimmed: one page at a time in the process. Decoding holds the GIL anyway,
and a page's whole objects are many times their kept copies, so pages decoded side by side (every informer lists at
start-up and after kube-apiserver restarts) would add up to the process's peak memory, which the allocator keeps."""


def whole(item: JsonObject) -> JsonObject:
    return item


@dataclass(frozen=True)
class Kind:
    """A kind to mirror: its collection path across namespaces, optional label and field selectors, and `keep`: what the
    replica keeps of each object, applied as it arrives (client-go's transform on receipt), so that a cache holds only
    the fields its readers use and no list or event is ever held whole longer than its decoding."""

    name: str
    path: str
    label_selector: str = ""
    field_selector: str = ""
    keep: Callable[[JsonObject], JsonObject] = whole
    reuse_on_relist: bool = False
    """A list after a 410 hands on the kept copy it already has of each object whose resourceVersion is unchanged
    (most of them) instead of keeping the object again: the new state shares the old one's objects, so the process
    never holds two copies of a big kind at once, and the relist skips trimming what did not change. The informer
    then holds a reference to every object's latest kept copy; for kinds whose handler keeps only some of them
    (Events), that would keep the rest alive."""


class Handler(Protocol):
    """Receives one kind's state on the event loop."""

    def replace(self, kind: Kind, items: list[JsonObject], resource_version: int) -> None:
        """The whole current set (after a list)."""

    def apply(self, kind: Kind, event_type: str, item: JsonObject, resource_version: int) -> None:
        """One change: `ADDED`, `MODIFIED` or `DELETED`."""

    def progress(self, kind: Kind, resource_version: int) -> None:
        """A bookmark: nothing of this kind changed up to `resource_version`."""


def backoff_seconds(failures: int) -> float:
    """Exponential backoff with equal jitter: half the step fixed, half random."""
    step = min(BACKOFF_MAX_SECONDS, BACKOFF_FIRST_SECONDS * 2.0 ** max(0, failures - 1))
    jitter: float = random.uniform(0, step / 2)  # noqa: S311 - jitter, not a secret
    return step / 2 + jitter


class Informer:
    def __init__(self, client: KubeClient, kind: Kind, handler: Handler, loop: asyncio.AbstractEventLoop) -> None:
        self.kind = kind
        self._client = client
        self._handler = handler
        self._loop = loop
        self._stop = threading.Event()
        self._relist = threading.Event()
        self._stream: Stream | None = None
        self._thread = threading.Thread(target=self._run, name=f"informer-{kind.name}", daemon=True)
        self._cut_off_since: float | None = None
        """When the informer lost kube-apiserver (monotonic), or None while it is in touch."""
        self._heard_at = time.monotonic()
        """When kube-apiserver last told this informer something (a list, a watch accepted or ended on time, an event,
        a bookmark), monotonic."""
        self.lists = 0
        self.watches = 0
        self._latest: dict[str, JsonObject] = {}
        """By uid, the kept copy of each object as last delivered (kinds that `reuse_on_relist` only); the thread's."""

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Asks the thread to end, interrupting a watch it is blocked in (it is a daemon: exit never waits)."""
        self._stop.set()
        self._interrupt()

    def cut_off_seconds(self, now: float) -> float:
        """How long this informer has been unable to list or watch (0 while in touch); `now` is monotonic."""
        since = self._cut_off_since
        return 0.0 if since is None else max(0.0, now - since)

    def staleness_seconds(self) -> float:
        """Seconds since kube-apiserver last told this informer something. A quiet kind may get no event or bookmark
        for a whole watch, but each watch ends and is accepted again within `WATCH_SECONDS`: past that (plus a
        margin), the informer's view is going stale."""
        return max(0.0, time.monotonic() - self._heard_at)

    def _run(self) -> None:
        resource_version = 0
        failures = 0
        while not self._stop.is_set():
            try:
                if resource_version == 0 or self._relist.is_set():
                    self._relist.clear()
                    resource_version = self._list()
                    self._cut_off_since = None
                resource_version = self._watch(resource_version)
                failures = 0
            except errors.Gone:
                log.info("%s: resourceVersion %d expired; listing again", self.kind.name, resource_version)
                resource_version = 0
            except Exception as error:  # noqa: BLE001 - an informer must outlive any one failure
                if self._stop.is_set():
                    return
                if self._relist.is_set():
                    continue  # the watch was interrupted on purpose, to list again
                failures += 1
                if self._cut_off_since is None:
                    self._cut_off_since = time.monotonic()
                wait = backoff_seconds(failures)
                log.warning("%s: %s; retrying in %.1f s", self.kind.name, error, wait)
                self._stop.wait(wait)

    def _list(self) -> int:
        items: list[JsonObject] = []
        continue_token = ""
        previous = self._latest
        while True:
            query: dict[str, str | int] = {"limit": LIST_PAGE, **self._selector()}
            if continue_token:
                query["continue"] = continue_token
            payload = self._client.read_blocking(self.kind.path, query=query)
            with DECODING:
                page = json_object(payload, "GET", self.kind.path)
                del payload
                items += (self._kept(item, previous) for item in page.get("items") or [])
                metadata = page.get("metadata") or {}
                del page
            continue_token = metadata.get("continue") or ""
            if not continue_token:
                break
        self.lists += 1
        self._heard_at = time.monotonic()
        resource_version = int(metadata.get("resourceVersion") or 0)
        if self.kind.reuse_on_relist:
            self._latest = {_uid(item): item for item in items}
        self._deliver(self._handler.replace, self.kind, items, resource_version)
        return resource_version

    def _kept(self, item: JsonObject, previous: Mapping[str, JsonObject]) -> JsonObject:
        """What to keep of a listed object: the copy kept before if the object has not changed since."""
        metadata = item.get("metadata") or {}
        before = previous.get(metadata.get("uid") or "")
        if before is not None and (before.get("metadata") or {}).get("resourceVersion") == metadata.get(
            "resourceVersion"
        ):
            return before
        return self.kind.keep(item)

    def _watch(self, resource_version: int) -> int:
        seconds = random.randint(*WATCH_SECONDS)  # noqa: S311 - spreading, not a secret
        query: dict[str, str | int] = {
            "watch": "true",
            "allowWatchBookmarks": "true",
            "resourceVersion": str(resource_version),
            "timeoutSeconds": seconds,
            **self._selector(),
        }
        self.watches += 1
        self._stream = self._client.stream_lines(
            self.kind.path, query=query, read_timeout=seconds + READ_MARGIN_SECONDS
        )
        self._cut_off_since = None
        self._heard_at = time.monotonic()
        try:
            for line in self._stream:
                if self._stop.is_set() or self._relist.is_set():
                    break
                event = json.loads(line)
                self._heard_at = time.monotonic()
                event_type, item = event.get("type"), event.get("object") or {}
                if event_type == "ERROR":
                    raise _watch_error(item)
                resource_version = max(resource_version, _resource_version(item))
                if event_type == "BOOKMARK":
                    self._deliver(self._handler.progress, self.kind, resource_version)
                else:
                    kept = self.kind.keep(item)
                    if self.kind.reuse_on_relist:
                        if event_type == "DELETED":
                            self._latest.pop(_uid(kept), None)
                        else:
                            self._latest[_uid(kept)] = kept
                    self._deliver(self._handler.apply, self.kind, event_type, kept, _resource_version(item))
            self._heard_at = time.monotonic()  # the watch ended as asked (or was stopped): nothing was missed
        finally:
            self._stream = None
        return resource_version

    def _deliver(self, method: Callable[..., None], *args: Any) -> None:
        self._loop.call_soon_threadsafe(self._handle, method, args)

    def _handle(self, method: Callable[..., None], args: tuple[Any, ...]) -> None:
        """On the loop. A handler that raises has missed this event: list again and let it rebuild."""
        try:
            method(*args)
        except Exception:
            log.exception("%s: handling a change failed; listing again so that nothing is lost", self.kind.name)
            self._relist.set()
            self._interrupt()

    def _interrupt(self) -> None:
        stream = self._stream
        if stream is not None:
            stream.close()

    def _selector(self) -> dict[str, str | int]:
        selectors = {"labelSelector": self.kind.label_selector, "fieldSelector": self.kind.field_selector}
        return {name: value for name, value in selectors.items() if value}


def _uid(item: Mapping[str, Any]) -> str:
    return str((item.get("metadata") or {}).get("uid") or "")


def _resource_version(item: Mapping[str, Any]) -> int:
    return int((item.get("metadata") or {}).get("resourceVersion") or 0)


def _watch_error(status: Mapping[str, Any]) -> errors.KubeError:
    """A watch's ERROR event carries a Status; 410 means the version is too old to resume from."""
    code = int(status.get("code") or 0)
    message = str(status.get("message") or "watch error")
    return errors.Gone(message, status=code) if code == 410 else errors.Unreachable(message, status=code)
