"""The leader's housekeeping of authentication objects: login sessions and API keys past their expiry are deleted
(they can no longer be used, and every replica keeps them in memory until they go)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from server import timestamps
from server.auth.store import AuthStore
from server.kube import auth_objects
from server.kube import errors as kube_errors
from server.kube.client import KubeClient
from server.leader import LeaderElection

log = logging.getLogger(__name__)


class Sweeper:
    def __init__(
        self, *, kube: KubeClient, auth_store: AuthStore, leader: LeaderElection, namespace: str, every_seconds: float
    ) -> None:
        self._kube = kube
        self._store = auth_store
        self._leader = leader
        self._namespace = namespace
        self._every = every_seconds

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self._every)
            if self._leader.leading and self._store.synced:
                try:
                    await self.sweep_once()
                except kube_errors.KubeError as error:
                    log.warning("sweeping expired sessions and API keys failed: %s; retrying", error)

    async def sweep_once(self) -> None:
        names = self._store.expired(timestamps.now())
        for name in names:
            with contextlib.suppress(kube_errors.NotFound):
                await auth_objects.delete_secret(self._kube, namespace=self._namespace, name=name)
        if names:
            log.info("deleted %d expired login sessions and API keys", len(names))
