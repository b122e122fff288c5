"""The leader's housekeeping: objects nothing can use any more are deleted — login sessions and API keys past their
expiry, console sessions an hour (NOVASPHERE_CONSOLE_TTL_SECONDS) after they ended. Every replica keeps them in
memory until they go, so they must not pile up."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from server import timestamps
from server.kube import errors as kube_errors
from server.leader import LeaderElection

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sweep:
    what: str
    due: Callable[[datetime.datetime], list[str]]
    """The names of the objects to delete now."""
    delete: Callable[[str], Awaitable[None]]
    ready: Callable[[], bool]
    """Whether the cache `due` reads is synced."""


class Sweeper:
    def __init__(self, *, leader: LeaderElection, sweeps: list[Sweep], every_seconds: float) -> None:
        self._leader = leader
        self._sweeps = sweeps
        self._every = every_seconds

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self._every)
            if self._leader.leading:
                await self.sweep_once()

    async def sweep_once(self) -> None:
        for sweep in self._sweeps:
            if not sweep.ready():
                continue
            names = sweep.due(timestamps.now())
            try:
                for name in names:
                    with contextlib.suppress(kube_errors.NotFound):
                        await sweep.delete(name)
            except kube_errors.KubeError as error:
                log.warning("deleting %s failed: %s; retrying", sweep.what, error)
                continue
            if names:
                log.info("deleted %d %s", len(names), sweep.what)
