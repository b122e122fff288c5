"""Bursts become one notification per person: a batch stop of 50 VMs, or a node taking 20 VMs down with it, is one
message, not 50. Driven by the caller's `now` (no clock, no timers): the notifier adds events as they come and
flushes when `next_due` says.

A person's pending events are due once `window` passes without another one for them, and at the latest `longest`
after the first (a steady trickle still gets through), but never before the `not_before` given with any of them:
quiet hours hold the whole batch, which keeps gathering until they end.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from server.notifications.events import Event


@dataclass(frozen=True)
class Batch:
    """What one person is told at once, oldest event first (events of one moment by namespace and name)."""

    user: str
    events: tuple[Event, ...]

    @functools.cached_property
    def event_id(self) -> str:
        """Stable for the same set of events, whoever gathered them: a re-send after a leader change that gathered
        the same events is the same notification (idempotency id), and providers collapse the copies."""
        ids = "\n".join(sorted(event.id for event in self.events))
        return hashlib.sha256(ids.encode()).hexdigest()[:32]

    @property
    def collapse_key(self) -> str:
        """The event id: only a copy of this very batch may replace it at a provider, never a different batch."""
        return self.event_id


@dataclass
class _Pending:
    events: dict[str, Event]
    first: datetime.datetime
    last: datetime.datetime
    not_before: datetime.datetime | None

    def due(self, window: datetime.timedelta, longest: datetime.timedelta) -> datetime.datetime:
        due = min(self.last + window, self.first + longest)
        return due if self.not_before is None else max(due, self.not_before)


class Coalescer:
    def __init__(
        self,
        *,
        window: datetime.timedelta = datetime.timedelta(seconds=10),
        longest: datetime.timedelta = datetime.timedelta(minutes=1),
    ) -> None:
        self._window = window
        self._longest = longest
        self._pending: dict[str, _Pending] = {}

    def add(
        self, user: str, event: Event, *, now: datetime.datetime, not_before: datetime.datetime | None = None
    ) -> None:
        """Holds `event` for `user`; one they already hold (the same id) is not news and changes nothing."""
        pending = self._pending.get(user)
        if pending is None:
            self._pending[user] = _Pending({event.id: event}, now, now, not_before)
            return
        if event.id in pending.events:
            return
        pending.events[event.id] = event
        pending.last = now
        if not_before is not None:
            pending.not_before = not_before if pending.not_before is None else max(pending.not_before, not_before)

    def next_due(self) -> datetime.datetime | None:
        """When the next batch is due (flush then), None if nothing is pending."""
        return min((p.due(self._window, self._longest) for p in self._pending.values()), default=None)

    def flush(self, now: datetime.datetime) -> list[Batch]:
        """The batches due by `now`, by user; they are no longer held."""
        due = sorted(user for user, p in self._pending.items() if p.due(self._window, self._longest) <= now)
        return [Batch(user, _oldest_first(self._pending.pop(user).events.values())) for user in due]


def _oldest_first(events: Iterable[Event]) -> tuple[Event, ...]:
    return tuple(sorted(events, key=lambda e: (e.occurred_at, e.namespace, e.wukong, e.id)))
