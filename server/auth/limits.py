"""Per-user rate limits on the RPCs that cost the cluster most, and a cap on the streams one user (or, for streams
that need no caller, one client address) holds open.

A rate is "at most N a minute, in bursts of at most B": the minute is counted over every replica (`tally.py`, so N
replicas do not allow N times the rate), the burst by each replica's own token bucket. Open streams are counted per
replica. Envoy's per-address limits sit in front of all of this. The development identity is not limited: it is one
shared caller of tests and demos.

An operator may multiply one tenant's limits (NOVASPHERE_RATE_LIMIT_FACTORS, e.g. `fuzz=100`): a tenant of its own for
a fuzzing or load-test run, whose cases would otherwise mostly meet RATE_LIMITED. It is a setting of the deployment,
not a label any tenant namespace's editor could set, and it applies to that tenant only.
"""

from __future__ import annotations

import collections
import contextlib
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from server import errors
from server.auth import Caller
from server.metrics import Metrics
from server.tally import Tally, key_of

MAX_TRACKED = 100_000
"""Buckets kept at most (the least recently used go first), so many callers cannot exhaust memory."""


@dataclass(frozen=True)
class Rate:
    bucket: str
    per_minute: float
    burst: int


_OPERATIONS = Rate("vm-operations", per_minute=120, burst=30)
RATES: dict[str, Rate] = {
    "/novasphere.v1.WukongService/CreateWukong": Rate("vm-create", per_minute=60, burst=20),
    "/novasphere.v1.WukongService/StartWukong": _OPERATIONS,
    "/novasphere.v1.WukongService/StopWukong": _OPERATIONS,
    "/novasphere.v1.WukongService/RestartWukong": _OPERATIONS,
    "/novasphere.v1.WukongService/PauseWukong": _OPERATIONS,
    "/novasphere.v1.WukongService/ResumeWukong": _OPERATIONS,
    "/novasphere.v1.WukongService/DeleteWukong": _OPERATIONS,
    "/novasphere.v1.WukongService/BatchWukongOperation": Rate("vm-batch", per_minute=10, burst=5),
    "/novasphere.v1.AccessService/CreateAccessService": Rate("access-services", per_minute=30, burst=10),
    "/novasphere.v1.AuthService/CreateApiKey": Rate("api-keys", per_minute=10, burst=5),
    "/novasphere.v1.ConsoleService/CreateConsoleSession": Rate("console-tickets", per_minute=5, burst=5),
    # Each sends to every device of the caller's: push providers throttle the sender, not the user.
    "/novasphere.v1.NotificationService/SendTestNotification": Rate("notification-tests", per_minute=10, burst=5),
    "/novasphere.v1.NotificationService/RegisterDevice": Rate("notification-devices", per_minute=30, burst=10),
    "/novasphere.v1.NotificationService/CreateWebhook": Rate("notification-webhooks", per_minute=10, burst=5),
}
MAX_STREAMS_PER_USER = 50


class RateLimits:
    def __init__(
        self,
        *,
        tally: Tally,
        metrics: Metrics,
        factors: Mapping[str, float] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._tally = tally
        self._metrics = metrics
        self._factors = dict(factors or {})
        self._clock = clock
        self._buckets: collections.OrderedDict[tuple[str, str, str], tuple[float, float]] = collections.OrderedDict()
        self._streams: collections.Counter[tuple[str, str]] = collections.Counter()

    def charge(self, caller: Caller, method: str) -> None:
        """Takes one token for `method` from the caller's bucket; `errors.RateLimited` when it is empty."""
        rate = RATES.get(method)
        if rate is None or caller.development:
            return
        factor = self._factors.get(caller.tenant)
        if factor is not None:
            rate = Rate(rate.bucket, rate.per_minute * factor, round(rate.burst * factor))
        minute = key_of("rate", caller.tenant, caller.user, rate.bucket)
        if self._tally.count(minute, within=60) >= rate.per_minute:
            self._metrics.rate_limited.labels(rate.bucket).inc()
            wait = self._tally.retry_after(minute, within=60, limit=round(rate.per_minute))
            raise errors.RateLimited(
                f"too many {rate.bucket} requests: at most {rate.per_minute:g} a minute per user; retry in "
                f"{max(1, round(wait))} s",
                retry_after_seconds=max(wait, 1.0),
            )
        key = (caller.tenant, caller.user, rate.bucket)
        now = self._clock()
        tokens, at = self._buckets.pop(key, (float(rate.burst), now))
        tokens = min(float(rate.burst), tokens + (now - at) * rate.per_minute / 60)
        if tokens < 1:
            self._metrics.rate_limited.labels(rate.bucket).inc()
            self._buckets[key] = (tokens, now)
            wait = (1 - tokens) * 60 / rate.per_minute
            raise errors.RateLimited(
                f"too many {rate.bucket} requests: at most {rate.per_minute:g} a minute per user (bursts of "
                f"{rate.burst}); retry in {max(1, round(wait))} s",
                retry_after_seconds=wait,
            )
        self._buckets[key] = (tokens - 1, now)
        self._tally.add(minute)
        while len(self._buckets) > MAX_TRACKED:
            self._buckets.popitem(last=False)

    @contextlib.contextmanager
    def stream(self, caller: Caller) -> Iterator[None]:
        """Holds one of the caller's stream slots while a server stream runs."""
        if caller.development:
            yield
            return
        limit = round(MAX_STREAMS_PER_USER * self._factors.get(caller.tenant, 1.0))
        with self._slot((caller.tenant, caller.user), "per user", limit):
            yield

    @contextlib.contextmanager
    def public_stream(self, client_address: str) -> Iterator[None]:
        """Holds one of a client address's slots for a stream that needs no caller (the health service's Watch)."""
        with self._slot(("", client_address), "per client address", MAX_STREAMS_PER_USER):
            yield

    @contextlib.contextmanager
    def _slot(self, key: tuple[str, str], per: str, limit: int) -> Iterator[None]:
        if self._streams[key] >= limit:
            self._metrics.rate_limited.labels("streams").inc()
            raise errors.RateLimited(
                f"too many open streams: at most {limit} {per}; close one first",
                retry_after_seconds=5.0,
            )
        self._streams[key] += 1
        try:
            yield
        finally:
            self._streams[key] -= 1
            if self._streams[key] <= 0:
                del self._streams[key]
