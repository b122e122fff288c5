"""Counts of recent events per key, summed over every replica, so that the login lockout and the per-user rate limits
hold for the whole installation and not N times over for N replicas.

Each replica counts its own events in `SLOT_SECONDS` slots and, at most once every `PUBLISH_SECONDS` when they
changed, writes its counts of the last `WINDOW_SECONDS` into a ConfigMap of its own (`kube/counts.py`) that every
replica watches (this class is that informer's handler). A replica's view of the others is about a second old, so
replicas agree within a second: N replicas allow at most a second's worth of extra events, not N times the limit.

Keys are hashed before they are kept or written: an attempted username (which may be a password typed into the
wrong field) never reaches the cluster. A reset (a successful login) is published too, and counts before the newest
reset of a key, on any replica, no longer count.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from typing import Any

from server import timestamps
from server.kube import counts as count_objects
from server.kube import errors as kube_errors
from server.kube.client import KubeClient
from server.kube.informer import Kind

log = logging.getLogger(__name__)

SLOT_SECONDS = 5
WINDOW_SECONDS = 300
"""The longest window anything counts over (the lockout's five minutes)."""
PUBLISH_SECONDS = 1.0
HEARTBEAT_SECONDS = WINDOW_SECONDS / 2
UPDATED_ANNOTATION = "novasphere.dev/updated"
MAX_KEYS = 50_000
"""Keys a replica keeps at most (the oldest activity is forgotten first), so that distinct keys cannot fill memory."""

Slots = dict[int, int]
"""Slot start (Unix seconds, a multiple of SLOT_SECONDS) -> events."""


def key_of(*parts: str) -> str:
    """The stored form of a key: a hash, so what it is made of is never written down."""
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:32]


class Tally:
    def __init__(
        self, *, kube: KubeClient | None, namespace: str, replica: str, clock: Callable[[], float] = time.time
    ) -> None:
        """`kube` None: this replica's counts only (tests of the limits themselves)."""
        self._kube = kube
        self._namespace = namespace
        self._replica = replica
        self._own_name = count_objects.name_of(replica)
        self._clock = clock
        self._mine: dict[str, Slots] = {}
        self._my_resets: dict[str, float] = {}
        self._others: dict[str, tuple[dict[str, Slots], dict[str, float]]] = {}
        """Other replicas' published counts and resets, by ConfigMap name."""
        self._updated: dict[str, float] = {}
        """When each of those was last written (Unix seconds)."""
        self._dirty = asyncio.Event()
        self.synced = kube is None

    def add(self, key: str) -> None:
        slot = self._slot(self._clock())
        slots = self._mine.pop(key, None) or {}
        slots[slot] = slots.get(slot, 0) + 1
        self._mine[key] = slots  # most recently active last
        while len(self._mine) > MAX_KEYS:
            self._mine.pop(next(iter(self._mine)))
        self._dirty.set()

    def reset(self, key: str) -> None:
        """Forgets the key's events so far, on every replica."""
        self._mine.pop(key, None)
        self._my_resets[key] = self._clock()
        self._dirty.set()

    def count(self, key: str, *, within: float) -> int:
        return sum(self._slots_within(key, within).values())

    def retry_after(self, key: str, *, within: float, limit: int) -> float:
        """Seconds until fewer than `limit` events of the key are within the window (0 if already so)."""
        slots = self._slots_within(key, within)
        total, now = sum(slots.values()), self._clock()
        for start in sorted(slots):
            if total < limit:
                break
            total -= slots[start]
            if total < limit:
                return max(0.0, start + SLOT_SECONDS + within - now)
        return 0.0

    def _slots_within(self, key: str, within: float) -> Slots:
        now = self._clock()
        reset = max([self._my_resets.get(key, 0.0), *(resets.get(key, 0.0) for _, resets in self._others.values())])
        oldest = max(now - within, reset)
        merged: defaultdict[int, int] = defaultdict(int)
        for source in (self._mine, *(counts for counts, _ in self._others.values())):
            for start, events in (source.get(key) or {}).items():
                if start + SLOT_SECONDS > oldest:
                    merged[start] += events
        return dict(merged)

    @staticmethod
    def _slot(moment: float) -> int:
        return int(moment) // SLOT_SECONDS * SLOT_SECONDS

    # ---- publishing ---------------------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Publishes this replica's counts whenever they changed, at most once every PUBLISH_SECONDS (and every
        HEARTBEAT_SECONDS anyway, so the leader can tell a live replica's counts from a gone one's); deletes them on
        the way out."""
        if self._kube is None:
            return
        while not stop.is_set():
            changed = asyncio.create_task(self._dirty.wait())
            stopping = asyncio.create_task(stop.wait())
            await asyncio.wait({changed, stopping}, timeout=HEARTBEAT_SECONDS, return_when=asyncio.FIRST_COMPLETED)
            changed.cancel()
            stopping.cancel()
            if stop.is_set():
                break
            self._dirty.clear()
            await self._publish()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=PUBLISH_SECONDS)
        with contextlib.suppress(kube_errors.KubeError):
            await count_objects.delete(self._kube, namespace=self._namespace, name=self._own_name)

    def snapshot(self) -> dict[str, str]:
        """This replica's counts of the window, as its ConfigMap's data (older slots are forgotten here)."""
        horizon = self._slot(self._clock() - WINDOW_SECONDS)
        for key in [k for k, slots in self._mine.items() if max(slots) < horizon]:
            del self._mine[key]
        counts = {
            key: {str(start): n for start, n in slots.items() if start >= horizon} for key, slots in self._mine.items()
        }
        self._my_resets = {key: moment for key, moment in self._my_resets.items() if moment >= horizon}
        return {"counts.json": json.dumps(counts, separators=(",", ":")), "resets.json": json.dumps(self._my_resets)}

    async def _publish(self) -> None:
        assert self._kube is not None
        try:
            await count_objects.publish(
                self._kube,
                namespace=self._namespace,
                replica=self._replica,
                data=self.snapshot(),
                annotations={UPDATED_ANNOTATION: timestamps.format_micro(timestamps.now())},
            )
        except kube_errors.KubeError as error:
            log.warning("could not publish this replica's counts: %s; retrying", error)
            self._dirty.set()

    def stale_objects(self, now: float) -> list[str]:
        """Other replicas' counts not updated for longer than the window: their replicas are gone (the leader's
        sweep deletes them)."""
        return sorted(name for name, updated in self._updated.items() if now - updated > HEARTBEAT_SECONDS * 2 + 60)

    # ---- informer.Handler ---------------------------------------------------------------------------------------

    def replace(self, kind: Kind, items: list[dict[str, Any]], resource_version: int) -> None:
        self._others, self._updated = {}, {}
        for item in items:
            self._take(item)
        self.synced = True

    def apply(self, kind: Kind, event_type: str, item: dict[str, Any], resource_version: int) -> None:
        name = str(item["metadata"]["name"])
        if event_type == "DELETED":
            self._others.pop(name, None)
            self._updated.pop(name, None)
        else:
            self._take(item)

    def progress(self, kind: Kind, resource_version: int) -> None:
        pass

    def _take(self, item: Mapping[str, Any]) -> None:
        metadata = item["metadata"]
        name = str(metadata["name"])
        if name == self._own_name:
            return
        data = item.get("data") or {}
        try:
            raw_counts = json.loads(data.get("counts.json") or "{}")
            raw_resets = json.loads(data.get("resets.json") or "{}")
            counts = {str(k): {int(s): int(n) for s, n in slots.items()} for k, slots in raw_counts.items()}
            resets = {str(k): float(v) for k, v in raw_resets.items()}
        except (ValueError, TypeError, AttributeError) as error:
            log.warning("ignoring unreadable counts in %s: %s", name, error)
            return
        self._others[name] = (counts, resets)
        updated = timestamps.parse((metadata.get("annotations") or {}).get(UPDATED_ANNOTATION))
        self._updated[name] = updated.timestamp() if updated else self._clock()
