"""Core Events about a Wukong, its VirtualMachine and instance, for the detail view, read through one informer per
involved kind (a field selector each: Events support no OR), so a detail page costs no call (Kubernetes keeps Events
about an hour, so the mirror stays small)."""

from __future__ import annotations

from server.kube import slim
from server.kube.client import JsonObject
from server.kube.informer import Kind

INVOLVED_KINDS = ("Wukong", "VirtualMachine", "VirtualMachineInstance")


def keep(raw: JsonObject) -> JsonObject:
    """What the detail view shows of an Event: what happened, to which object, how often, when and who said so."""
    kept = slim.texts(raw, "type", "reason", "reportingComponent") | slim.pick(
        raw, "message", "count", "lastTimestamp", "eventTime"
    )
    kept["metadata"] = slim.metadata(raw.get("metadata") or {})
    kept["involvedObject"] = slim.texts(raw.get("involvedObject") or {}, "kind") | slim.pick(
        raw.get("involvedObject") or {}, "name"
    )
    kept["source"] = slim.texts(raw.get("source") or {}, "component")
    return kept


KINDS = tuple(
    Kind(f"events-{kind}", "/api/v1/events", field_selector=f"involvedObject.kind={kind}", keep=keep)
    for kind in INVOLVED_KINDS
)
