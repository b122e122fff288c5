"""A replica from start to exit, and the probe contract every deployment relies on.

    STARTING ──(caches synced)──► SERVING ──(SIGTERM)──► DRAINING ──(calls finished)──► STOPPED

- alive (`/livez` on the admin port): the process and its event loop answer. Never tied to kube-apiserver, so an
  outage of the control plane restarts no pod.
- ready (`/readyz` on the admin port, and the gRPC health service, which report the same value): SERVING, and no
  informer cut off from kube-apiserver for longer than `stale_after_seconds`.
- fresh: every request checks it as well (but the health service's). While STARTING, calls answer UNAVAILABLE
  (`REPLICA_STARTING`): a client that reaches a replica before it is ready (a long-lived connection to its pod's
  Envoy, a port several Envoys share) is told to retry, never that its token or cursor is unknown. Past
  `stale_after_seconds` without kube-apiserver, calls answer UNAVAILABLE (`REPLICA_STALE`, with a retry hint) instead
  of serving data that may be old, and watch streams end in-band, so their clients resume from their cursor once a
  replica is fresh again.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from server import errors

log = logging.getLogger(__name__)


class Phase(enum.Enum):
    STARTING = "starting"
    """Listening, but caches not synced yet: not ready."""
    SERVING = "serving"
    DRAINING = "draining"
    """SIGTERM received: not ready, so traffic moves away, while calls already here finish."""
    STOPPED = "stopped"


_NEXT = {
    Phase.STARTING: {Phase.SERVING, Phase.DRAINING},
    Phase.SERVING: {Phase.DRAINING},
    Phase.DRAINING: {Phase.STOPPED},
}


class Source(Protocol):
    """One mirrored kind (an informer): how long it has been unable to reach kube-apiserver."""

    def cut_off_seconds(self, now: float) -> float: ...


@dataclass(frozen=True)
class Readiness:
    ready: bool
    reason: str
    """Why not, in words for the probe's log ("" when ready)."""


class Lifecycle:
    def __init__(self, *, stale_after_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.phase = Phase.STARTING
        self._sources: Sequence[Source] = ()
        self._stale_after = stale_after_seconds
        self._clock = clock

    def track(self, sources: Sequence[Source]) -> None:
        """The informers whose freshness readiness depends on."""
        self._sources = sources

    def move_to(self, phase: Phase) -> None:
        if phase not in _NEXT.get(self.phase, set()):
            raise RuntimeError(f"a replica {self.phase.value} cannot become {phase.value}")
        log.info("replica %s (was %s)", phase.value, self.phase.value)
        self.phase = phase

    def stale_seconds(self) -> float:
        """How long the longest cut-off informer has been without kube-apiserver."""
        now = self._clock()
        return max((source.cut_off_seconds(now) for source in self._sources), default=0.0)

    @property
    def stale(self) -> bool:
        return self.stale_seconds() > self._stale_after

    def readiness(self) -> Readiness:
        if self.phase is not Phase.SERVING:
            return Readiness(False, f"the replica is {self.phase.value}")
        stale = self.stale_seconds()
        if stale > self._stale_after:
            return Readiness(False, f"cut off from kube-apiserver for {stale:.0f} s")
        return Readiness(True, "")

    def check_fresh(self) -> None:
        """Raises `errors.Starting` before this replica's caches are synced, `errors.Stale` once they may be out of
        date."""
        if self.phase is Phase.STARTING:
            raise errors.Starting()
        stale = self.stale_seconds()
        if stale > self._stale_after:
            raise errors.Stale(seconds=stale)
