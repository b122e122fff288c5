"""Leader election with a `coordination.k8s.io` Lease, as client-go's leaderelection does it: the holder renews the
lease; another replica takes it only after seeing it unchanged for a whole lease duration (by its own clock, so no
two clocks are compared), and every write is guarded by the lease's resourceVersion, so two replicas never both
win. A leader that cannot renew for a lease duration stops acting as leader before anyone else may start."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

from server import timestamps
from server.kube import errors, leases
from server.kube.client import JsonObject, KubeClient

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LeaseSettings:
    namespace: str
    name: str
    identity: str
    duration_seconds: float
    """How long a lease stays valid without renewal."""

    @property
    def renew_seconds(self) -> float:
        return self.duration_seconds / 3


class LeaderElection:
    def __init__(self, kube: KubeClient, settings: LeaseSettings) -> None:
        self._kube = kube
        self._settings = settings
        self._observed: tuple[str, str] | None = None  # (holder, renewTime) last seen
        self._observed_at = 0.0
        self._renewed_at = 0.0
        self._leading = False
        self._reported = False
        self.changed = asyncio.Event()
        """Set whenever leadership is gained or lost."""

    @property
    def leading(self) -> bool:
        """True while this replica holds a lease it renewed less than a lease duration ago."""
        return self._leading and time.monotonic() - self._renewed_at < self._settings.duration_seconds

    async def run(self, stop: asyncio.Event) -> None:
        """Tries to acquire, then renews, until `stop`; then releases the lease so a successor need not wait."""
        try:
            while not stop.is_set():
                try:
                    await self._try_acquire_or_renew()
                except errors.KubeError as error:
                    log.warning("lease %s: %s", self._settings.name, error)
                self._set_leading(self.leading)
                wait = self._settings.renew_seconds
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=wait)
        finally:
            if self._leading:
                await self._release()

    async def _try_acquire_or_renew(self) -> None:
        settings = self._settings
        try:
            lease = await leases.get(self._kube, namespace=settings.namespace, name=settings.name)
        except errors.NotFound:
            await leases.create(
                self._kube, namespace=settings.namespace, name=settings.name, spec=self._spec(transitions=0)
            )
            self._won()
            return
        spec = lease.get("spec") or {}
        holder = str(spec.get("holderIdentity") or "")
        record = (holder, str(spec.get("renewTime") or ""))
        if record != self._observed:
            self._observed, self._observed_at = record, time.monotonic()
        expired = time.monotonic() - self._observed_at >= float(spec.get("leaseDurationSeconds") or 0)
        if holder and holder != settings.identity and not expired:
            self._leading = False
            return
        transitions = int(spec.get("leaseTransitions") or 0) + (0 if holder == settings.identity else 1)
        renewed = dict(lease, spec=self._spec(transitions, acquired=spec.get("acquireTime"), holder=holder))
        try:
            await leases.replace(self._kube, renewed)
        except errors.Conflict:
            self._leading = False  # another replica wrote first; look again next time
            return
        self._won()

    def _spec(self, transitions: int, acquired: object = None, holder: str = "") -> JsonObject:
        moment = timestamps.format_micro(timestamps.now())
        return {
            "holderIdentity": self._settings.identity,
            "leaseDurationSeconds": max(1, round(self._settings.duration_seconds)),
            "acquireTime": acquired if holder == self._settings.identity and acquired else moment,
            "renewTime": moment,
            "leaseTransitions": transitions,
        }

    def _won(self) -> None:
        self._leading = True
        self._renewed_at = time.monotonic()

    def _set_leading(self, leading: bool) -> None:
        if leading != self._reported:
            self._reported = leading
            log.info("%s leadership of %s", "acquired" if leading else "lost", self._settings.name)
            self.changed.set()

    async def _release(self) -> None:
        try:
            lease = await leases.get(self._kube, namespace=self._settings.namespace, name=self._settings.name)
            if (lease.get("spec") or {}).get("holderIdentity") == self._settings.identity:
                lease["spec"]["holderIdentity"] = ""
                await leases.replace(self._kube, lease)
                log.info("released leadership of %s", self._settings.name)
        except errors.KubeError as error:
            log.warning("could not release lease %s: %s", self._settings.name, error)
        self._leading = False
