"""List+watch of one kind of object, delivered to the event loop: the process's one reader of that kind.

Each informer owns a thread that lists the kind (in pages), then watches from the list's resourceVersion with
bookmarks, re-watching from the last version seen when a watch ends, and listing again when kube-apiserver says that
version is gone (410). Every list and event is handed to the loop through `call_soon_threadsafe`, so the handler runs
on the loop and needs no locks.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from server.kube import errors
from server.kube.client import JsonObject, KubeClient

log = logging.getLogger(__name__)

LIST_PAGE = 500
# kube-apiserver ends a watch after this long; the informer then watches again from where it was.
WATCH_SECONDS = 300
RETRY_SECONDS = 1.0


@dataclass(frozen=True)
class Kind:
    """A kind to mirror: its collection path across namespaces, and an optional label selector."""

    name: str
    path: str
    label_selector: str = ""


class Handler(Protocol):
    """Receives one kind's state on the event loop."""

    def replace(self, kind: Kind, items: list[JsonObject], resource_version: int) -> None:
        """The whole current set (after a list)."""

    def apply(self, kind: Kind, event_type: str, item: JsonObject, resource_version: int) -> None:
        """One change: `ADDED`, `MODIFIED` or `DELETED`."""

    def progress(self, kind: Kind, resource_version: int) -> None:
        """A bookmark: nothing of this kind changed up to `resource_version`."""


class Informer:
    def __init__(self, client: KubeClient, kind: Kind, handler: Handler, loop: asyncio.AbstractEventLoop) -> None:
        self.kind = kind
        self._client = client
        self._handler = handler
        self._loop = loop
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"informer-{kind.name}", daemon=True)
        self.lists = 0
        self.watches = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Asks the thread to end; it does at its next event or watch timeout (it is a daemon: exit never waits)."""
        self._stop.set()

    def _run(self) -> None:
        resource_version = 0
        while not self._stop.is_set():
            try:
                if resource_version == 0:
                    resource_version = self._list()
                resource_version = self._watch(resource_version)
            except errors.Gone:
                log.info("%s: resourceVersion %d expired; listing again", self.kind.name, resource_version)
                resource_version = 0
            except Exception as error:  # noqa: BLE001 - an informer must outlive any one failure
                log.warning("%s: %s; retrying in %.0f s", self.kind.name, error, RETRY_SECONDS)
                self._stop.wait(RETRY_SECONDS)

    def _list(self) -> int:
        items: list[JsonObject] = []
        continue_token = ""
        while True:
            query: dict[str, str | int] = {"limit": LIST_PAGE, **self._selector()}
            if continue_token:
                query["continue"] = continue_token
            page = self._client.request_blocking("GET", self.kind.path, query=query)
            items += page.get("items") or []
            metadata = page.get("metadata") or {}
            continue_token = metadata.get("continue") or ""
            if not continue_token:
                break
        self.lists += 1
        resource_version = int(metadata.get("resourceVersion") or 0)
        self._loop.call_soon_threadsafe(self._handler.replace, self.kind, items, resource_version)
        return resource_version

    def _watch(self, resource_version: int) -> int:
        query: dict[str, str | int] = {
            "watch": "true",
            "allowWatchBookmarks": "true",
            "resourceVersion": str(resource_version),
            "timeoutSeconds": WATCH_SECONDS,
            **self._selector(),
        }
        self.watches += 1
        for line in self._client.stream_lines(self.kind.path, query=query, read_timeout=WATCH_SECONDS + 30):
            if self._stop.is_set():
                break
            event = json.loads(line)
            event_type, item = event.get("type"), event.get("object") or {}
            if event_type == "ERROR":
                raise _watch_error(item)
            resource_version = max(resource_version, _resource_version(item))
            if event_type == "BOOKMARK":
                self._loop.call_soon_threadsafe(self._handler.progress, self.kind, resource_version)
            else:
                self._loop.call_soon_threadsafe(
                    self._handler.apply, self.kind, event_type, item, _resource_version(item)
                )
        return resource_version

    def _selector(self) -> dict[str, str | int]:
        return {"labelSelector": self.kind.label_selector} if self.kind.label_selector else {}


def _resource_version(item: Mapping[str, Any]) -> int:
    return int((item.get("metadata") or {}).get("resourceVersion") or 0)


def _watch_error(status: Mapping[str, Any]) -> errors.KubeError:
    """A watch's ERROR event carries a Status; 410 means the version is too old to resume from."""
    code = int(status.get("code") or 0)
    message = str(status.get("message") or "watch error")
    return errors.Gone(message, status=code) if code == 410 else errors.Unreachable(message, status=code)
