"""Kubernetes timestamps: RFC 3339 in UTC, read leniently (a malformed one is None, not an error) and written with
microseconds (`MicroTime`), so events of one second keep their order."""

from __future__ import annotations

import datetime


def parse(text: object) -> datetime.datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.datetime.fromisoformat(text)
    except ValueError:
        return None


def format_micro(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)
