"""What a cache keeps of an object: the fields its readers use, in the object's own JSON shape (readers stay as they
are), with repeated values shared.

A launcher Pod arrives as ~10 KB of JSON (managedFields, containers, volumes, env) of which the API reads a name, a
phase and a node; a VirtualMachineInstance as ~8 KB of which it reads a status summary. Each resource module's `keep`
(the informer's transform on receipt) builds its small copy with these helpers. Strings that recur across thousands
of objects (namespaces, label keys and values, phases, node names) are interned, and small recurring parts such as a
condition list are one shared object: the copies are never mutated, only read.
"""

from __future__ import annotations

import sys
from collections.abc import Hashable, Iterable, Mapping
from typing import Any, TypeVar

JsonObject = dict[str, Any]
T = TypeVar("T")

SHARED_LIMIT = 4096
"""How many distinct shared parts are remembered: they are few in practice (a handful of condition sets); the cap keeps
a cluster with unusual values from growing the table without bound (beyond it, parts are simply not shared)."""

_shared: dict[Hashable, Any] = {}


def text(value: object) -> str:
    """A short recurring string, interned (one object however many objects carry it)."""
    return sys.intern(value) if isinstance(value, str) else ""


def shared(key: Hashable, build: T) -> T:
    """The one object for `key`: the first `build` given for it (later ones are dropped)."""
    existing = _shared.get(key)
    if existing is not None:
        return existing  # type: ignore[no-any-return]
    if len(_shared) < SHARED_LIMIT:
        _shared[key] = build
    return build


def metadata(raw: Mapping[str, Any], *, labels: Iterable[str] | None = (), annotation_prefix: str = "") -> JsonObject:
    """Identity and lifecycle metadata: name, namespace, uid, resourceVersion, generation, creation and deletion
    times; the labels named in `labels` (all of them when None) and the annotations under `annotation_prefix`. Never
    managedFields."""
    kept: JsonObject = {"name": raw.get("name", ""), "namespace": text(raw.get("namespace", ""))}
    for field in ("uid", "resourceVersion", "generation", "creationTimestamp", "deletionTimestamp"):
        if field in raw:
            kept[field] = raw[field]
    raw_labels: Mapping[str, Any] = raw.get("labels") or {}
    chosen = raw_labels if labels is None else {k: raw_labels[k] for k in labels if k in raw_labels}
    if chosen:
        kept["labels"] = {text(k): text(v) for k, v in chosen.items()}
    if annotation_prefix:
        annotations = {k: v for k, v in (raw.get("annotations") or {}).items() if k.startswith(annotation_prefix)}
        if annotations:
            kept["annotations"] = annotations
    return kept


def conditions(raw: object) -> tuple[JsonObject, ...]:
    """A condition list as `type` and `status` only (what readers test), shared among every object with the same."""
    if not isinstance(raw, list):
        return ()
    pairs = tuple((text(c.get("type")), text(c.get("status"))) for c in raw if isinstance(c, Mapping) and "type" in c)
    return shared(("conditions", pairs), tuple({"type": t, "status": s} for t, s in pairs))


def pick(raw: Mapping[str, Any], *fields: str) -> JsonObject:
    """The named fields that are present, as they are."""
    return {field: raw[field] for field in fields if field in raw}


def texts(raw: Mapping[str, Any], *fields: str) -> JsonObject:
    """The named fields that are present, for values that recur across objects (a phase, a node, a size): strings
    interned."""
    return {field: text(raw[field]) if isinstance(raw[field], str) else raw[field] for field in fields if field in raw}
