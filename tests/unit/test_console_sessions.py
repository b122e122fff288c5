"""Console session rules without a cluster: the ticket is stored only as a digest and matched in constant time, a
session holds the console while connected or while its ticket is usable, and ended sessions are found for sweeping."""

from __future__ import annotations

import datetime
from typing import Any

from server import timestamps
from server.console import sessions
from server.kube import console_sessions

NOW = datetime.datetime(2026, 11, 22, 12, 0, tzinfo=datetime.UTC)


def _item(phase: str | None, *, ticket: str = "t0k3n", ticket_seconds: float = 30, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "console-abc", "resourceVersion": "42", "creationTimestamp": "2026-11-22T11:59:00Z"},
        "spec": {
            "protocol": "serial",
            "target": {"namespace": "demo", "name": "web-1", "uid": "u-1", "vmi": "web-1-vm"},
            "requestedBy": {"user": "ada", "tenant": "demo"},
            "ticketDigest": sessions.ticket_digest(ticket),
            "ticketExpireTime": timestamps.format_micro(NOW + datetime.timedelta(seconds=ticket_seconds)),
            "expireTime": timestamps.format_micro(NOW + datetime.timedelta(hours=1)),
        },
        "status": {**({"phase": phase} if phase else {}), **status},
    }


def test_only_the_digest_is_kept_and_only_the_ticket_matches_it() -> None:
    record = sessions.record_from(_item(None))
    assert "t0k3n" not in repr(record)
    assert sessions.ticket_matches(record, "t0k3n")
    assert not sessions.ticket_matches(record, "t0k3m")
    assert not sessions.ticket_matches(record, "")


def test_a_session_holds_the_console_while_connected_or_while_its_ticket_is_usable() -> None:
    issued = sessions.record_from(_item(None))  # no status yet: just issued
    assert (issued.phase, issued.protocol, issued.vmi) == ("Issued", "serial", "web-1-vm")
    assert issued.active(NOW)
    assert not issued.active(NOW + datetime.timedelta(seconds=31))  # the ticket ran out unused
    asked = sessions.record_from(_item("Issued", disconnect={"by": "bob", "reason": "taken over by bob", "code": 4001}))
    assert not asked.active(NOW)
    connected = sessions.record_from(_item("Connected", ticket_seconds=-60, connectTime="2026-11-22T11:59:30Z"))
    assert connected.active(NOW)  # long after its ticket expired
    closed = sessions.record_from(_item("Closed", closeTime="2026-11-22T11:59:50Z", closeCode=4000))
    assert not closed.active(NOW)


def test_ended_sessions_are_swept_after_the_ttl() -> None:
    cache = sessions.ConsoleCache()
    closed = _item("Closed", closeTime="2026-11-22T11:00:00Z")
    unused = _item(None, ticket_seconds=-7200)
    unused["metadata"] = {**unused["metadata"], "name": "console-unused"}
    live = _item("Connected")
    live["metadata"] = {**live["metadata"], "name": "console-live"}
    cache.replace(console_sessions.kind("ns"), [closed, unused, live], 1)
    assert cache.ended_before(NOW - datetime.timedelta(minutes=30)) == ["console-abc", "console-unused"]
    assert cache.ended_before(NOW - datetime.timedelta(hours=3)) == []
