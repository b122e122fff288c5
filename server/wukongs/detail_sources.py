"""What the full view of a Wukong reads besides the Wukong itself, mirrored by informers so that a detail page calls no
one: whether each StorageClass lets its volumes grow, the disks' claims, and recent Events about the Wukong, its
VirtualMachine and instance (each informer keeps only what the detail shows; see the kinds' `keep`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from server.kube import events, storage
from server.kube.client import JsonObject
from server.kube.informer import Kind

Raw = Mapping[str, Any]
MAX_EVENTS_PER_OBJECT = 100
"""Kubernetes folds repeats into one Event's `count`, so an object rarely has more in the hour Events live; beyond
this the oldest are forgotten (the detail shows the newest 50)."""


class _ByName:
    """One informer kind's objects by (namespace, name)."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], Raw] = {}
        self.synced = False

    def replace(self, kind: Kind, items: list[JsonObject], resource_version: int) -> None:
        self.items = {_key(item): item for item in items}
        self.synced = True

    def apply(self, kind: Kind, event_type: str, item: JsonObject, resource_version: int) -> None:
        if event_type == "DELETED":
            self.items.pop(_key(item), None)
        else:
            self.items[_key(item)] = item

    def progress(self, kind: Kind, resource_version: int) -> None:
        """Bookmarks carry nothing the detail needs."""


class StorageClasses(_ByName):
    def expandable(self, name: str) -> bool:
        """False for a class that does not exist (the claim cannot be grown either)."""
        return bool((self.items.get(("", name)) or {}).get("allowVolumeExpansion"))


class Claims(_ByName):
    def get(self, namespace: str, name: str) -> Raw | None:
        return self.items.get((namespace, name))


class Events:
    """Events by the namespace and name of the object they are about, fed by one informer per involved kind."""

    def __init__(self) -> None:
        self._by_object: dict[tuple[str, str], dict[str, Raw]] = {}
        self._synced: set[str] = set()

    @property
    def synced(self) -> bool:
        return self._synced.issuperset(kind.name for kind in events.KINDS)

    def about(self, namespace: str, name: str) -> list[Raw]:
        """Every Event about an object of this name (a VM and its instance share one)."""
        return list((self._by_object.get((namespace, name)) or {}).values())

    def replace(self, kind: Kind, items: list[JsonObject], resource_version: int) -> None:
        involved = kind.field_selector.rpartition("=")[2]
        for known in self._by_object.values():
            for uid in [uid for uid, event in known.items() if _involved(event)[0] == involved]:
                del known[uid]
        for item in items:
            self._add(item)
        self._by_object = {key: known for key, known in self._by_object.items() if known}
        self._synced.add(kind.name)

    def apply(self, kind: Kind, event_type: str, item: JsonObject, resource_version: int) -> None:
        if event_type != "DELETED":
            self._add(item)
            return
        key = _involved(item)[1:]
        known = self._by_object.get(key) or {}
        known.pop(str(item["metadata"].get("uid") or ""), None)
        if not known:
            self._by_object.pop(key, None)

    def progress(self, kind: Kind, resource_version: int) -> None:
        """Bookmarks carry nothing the detail needs."""

    def _add(self, item: Raw) -> None:
        known = self._by_object.setdefault(_involved(item)[1:], {})
        known[str(item["metadata"].get("uid") or "")] = item
        if len(known) > MAX_EVENTS_PER_OBJECT:
            del known[min(known, key=lambda uid: _last_time(known[uid]))]


def _key(item: Raw) -> tuple[str, str]:
    metadata = item["metadata"]
    return str(metadata.get("namespace") or ""), str(metadata["name"])


def _involved(event: Raw) -> tuple[str, str, str]:
    """(kind, namespace, name) of the object an Event is about (an Event lives in its object's namespace)."""
    involved = event.get("involvedObject") or {}
    return (
        str(involved.get("kind") or ""),
        str(event["metadata"].get("namespace") or ""),
        str(involved.get("name") or ""),
    )


def _last_time(event: Raw) -> str:
    """RFC 3339 in UTC: compares as text."""
    return str(event.get("lastTimestamp") or event.get("eventTime") or event["metadata"].get("creationTimestamp") or "")


class DetailSources:
    """The handlers, for wiring (each kind to its informer) and readiness."""

    def __init__(self) -> None:
        self.storage_classes = StorageClasses()
        self.claims = Claims()
        self.events = Events()

    def informed(self) -> list[tuple[Kind, Any]]:
        """(kind, handler) for each informer these sources need."""
        return [
            (storage.STORAGE_CLASSES, self.storage_classes),
            (storage.CLAIMS, self.claims),
            *((kind, self.events) for kind in events.KINDS),
        ]

    @property
    def synced(self) -> bool:
        return self.storage_classes.synced and self.claims.synced and self.events.synced
