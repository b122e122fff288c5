"""The notifications being delivered, as the cluster holds them: one ConfigMap per batch, written before its first send
and deleted when every destination has answered (delivered, gone or failed for good). A leader that dies between the
two leaves the entry behind; the next leader sends it again under the same event id and collapse key, so a provider
or receiver that already has it drops the copy (at least once, never silently lost).

An entry holds the events themselves (not the texts): a new leader renders the same words from them, in each
destination's locale, and the ids derive from the events alone.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from server import timestamps
from server.notifications.coalesce import Batch
from server.notifications.events import Event, EventKind
from server.tasks.model import Operation

DATA_KEY = "batch.json"
NAME_PREFIX = "notification-outbox-"


@dataclass(frozen=True)
class Destination:
    """A device (`kind` "device", `id` its device id) or a tenant webhook (`kind` "webhook", `id` tenant/name)."""

    kind: str
    id: str


@dataclass(frozen=True)
class Entry:
    batch: Batch
    destinations: tuple[Destination, ...]
    written: datetime.datetime
    attempts: int = 0

    @property
    def name(self) -> str:
        return entry_name(self.batch)


def entry_name(batch: Batch) -> str:
    """The batch's event id with the recipient: the same events for two people are two entries."""
    digest = hashlib.sha256(f"{batch.user}\n{batch.event_id}".encode()).hexdigest()[:32]
    return NAME_PREFIX + digest


def dumps(entry: Entry) -> str:
    return json.dumps(
        {
            "recipient": entry.batch.user,
            "events": [_event_record(event) for event in entry.batch.events],
            "destinations": [{"kind": d.kind, "id": d.id} for d in entry.destinations],
            "written": timestamps.format_micro(entry.written),
            "attempts": entry.attempts,
        },
        ensure_ascii=False,
        sort_keys=True,
    )


def loads(text: str) -> Entry:
    """ValueError (or KeyError) for an entry this server cannot read."""
    raw = json.loads(text)
    written = timestamps.parse(raw["written"])
    if written is None:
        raise ValueError("an outbox entry without its time")
    return Entry(
        batch=Batch(str(raw["recipient"]), tuple(_event_from(record) for record in raw["events"])),
        destinations=tuple(Destination(str(d["kind"]), str(d["id"])) for d in raw["destinations"]),
        written=written,
        attempts=int(raw.get("attempts", 0)),
    )


def _event_record(event: Event) -> dict[str, Any]:
    return {
        "id": event.id,
        "kind": str(event.kind),
        "tenant": event.tenant,
        "namespace": event.namespace,
        "occurred_at": timestamps.format_micro(event.occurred_at),
        "wukong": event.wukong,
        "wukong_uid": event.wukong_uid,
        "labels": dict(event.labels),
        "task_id": event.task_id,
        "task_operation": str(event.task_operation) if event.task_operation is not None else "",
        "owner": event.owner,
        "details": dict(event.details),
    }


def _event_from(record: Mapping[str, Any]) -> Event:
    occurred = timestamps.parse(record["occurred_at"])
    if occurred is None:
        raise ValueError("an event without its time")
    operation = record.get("task_operation") or ""
    return Event(
        id=str(record["id"]),
        kind=EventKind(record["kind"]),
        tenant=str(record["tenant"]),
        namespace=str(record["namespace"]),
        occurred_at=occurred,
        wukong=str(record.get("wukong", "")),
        wukong_uid=str(record.get("wukong_uid", "")),
        labels={str(k): str(v) for k, v in (record.get("labels") or {}).items()},
        task_id=str(record.get("task_id", "")),
        task_operation=Operation(operation) if operation else None,
        owner=str(record.get("owner", "")),
        details={str(k): str(v) for k, v in (record.get("details") or {}).items()},
    )
