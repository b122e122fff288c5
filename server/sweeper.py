"""The leader's housekeeping: objects nothing can use any more are deleted — login sessions and API keys past their
expiry, console sessions an hour (NOVASPHERE_CONSOLE_TTL_SECONDS) after they ended, the console Leases of deleted
VMs. Every replica keeps the first two in memory until they go, so none of them may pile up."""

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
    due: Callable[[datetime.datetime], Awaitable[list[str]]]
    """The names of the objects to delete now."""
    delete: Callable[[str], Awaitable[None]]
    ready: Callable[[], bool]
    """Whether the cache `due` reads is synced."""


def from_cache(due: Callable[[datetime.datetime], list[str]]) -> Callable[[datetime.datetime], Awaitable[list[str]]]:
    """A `due` answered from a cache, as the awaitable a `Sweep` takes."""

    async def read(now: datetime.datetime) -> list[str]:
        return due(now)

    return read


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
            try:
                names = await sweep.due(timestamps.now())
                for name in names:
                    with contextlib.suppress(kube_errors.NotFound):
                        await sweep.delete(name)
            except kube_errors.KubeError as error:
                log.warning("deleting %s failed: %s; retrying", sweep.what, error)
                continue
            if names:
                log.info("deleted %d %s", len(names), sweep.what)
