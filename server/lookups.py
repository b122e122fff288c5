"""Reading what this replica's caches do not hold yet: the one way every part of the API asks kube-apiserver about an
object its informer has not shown it, bounded once for all of them.

A cache miss almost always means "no such object". Only for an object created on another replica a moment ago, whose
watch event has not arrived here, does a GET tell more. But the names in requests are the client's to choose: if
every unknown session, API key, console ticket or task cost a GET, anyone could turn a flood of made-up credentials
into a flood of kube-apiserver requests (a negative cache does not help against distinct values). So a miss reaches
kube-apiserver only when all of these hold:

- the name may be recent: identifiers the API mints carry the second they were minted (`mint`), and one minted more
  than `RECENT_SECONDS` ago (far beyond any watch latency) or in the future is absent if the cache lacks it; names
  chosen by people (users, namespaces) carry no time and skip this test;
- the same lookup is not already in flight (concurrent misses share one GET) and was not answered "absent" in the
  last `NEGATIVE_SECONDS`;
- the client's budget (per client address) and the replica's overall budget allow it.

Otherwise the miss is answered from the cache: absent. A real identifier minted a moment ago on another replica is
then refused once, while this replica is being flooded, until its watch event arrives (well under a second).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar, cast

log = logging.getLogger(__name__)

T = TypeVar("T")
RECENT_SECONDS = 60.0
CLOCK_SKEW_SECONDS = 30.0
NEGATIVE_SECONDS = 5.0
MAX_REMEMBERED = 10_000
TIME_HEX = 8
"""Hex digits of a minted identifier that hold its second (big-endian Unix time; good until 2106)."""


def mint(hex_digits: int) -> str:
    """A new identifier of `hex_digits` hex digits: the current second, then randomness."""
    if hex_digits < TIME_HEX + 8:
        raise ValueError(f"an identifier needs at least {TIME_HEX + 8} hex digits")
    return f"{int(time.time()):0{TIME_HEX}x}{secrets.token_hex((hex_digits - TIME_HEX + 1) // 2)}"[:hex_digits]


def minted_at(identifier: str) -> float | None:
    """The Unix second a `mint`ed identifier was made, from its leading hex digits (None if they are not hex)."""
    head = identifier[:TIME_HEX]
    if len(head) < TIME_HEX or not all(c in "0123456789abcdef" for c in head):
        return None
    return float(int(head, 16))


@dataclass(frozen=True)
class Budget:
    per_second: float
    burst: int


PER_CLIENT = Budget(per_second=5 / 60, burst=5)
"""Lookups one client address may cause: a freshly minted credential or two, not a flood."""
OVERALL = Budget(per_second=20, burst=40)
"""Lookups of every client together, per replica."""


class _Bucket:
    def __init__(self, budget: Budget, now: float) -> None:
        self.tokens, self.at, self.budget = float(budget.burst), now, budget

    def take(self, now: float) -> bool:
        self.tokens = min(float(self.budget.burst), self.tokens + (now - self.at) * self.budget.per_second)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class Lookups:
    def __init__(
        self,
        *,
        per_client: Budget = PER_CLIENT,
        overall: Budget = OVERALL,
        wall_clock: Callable[[], float] = time.time,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._per_client = per_client
        self._wall_clock = wall_clock
        self._clock = clock
        self._overall = _Bucket(overall, clock())
        self._clients: collections.OrderedDict[str, _Bucket] = collections.OrderedDict()
        self._absent: collections.OrderedDict[tuple[str, str], float] = collections.OrderedDict()
        self._in_flight: dict[tuple[str, str], asyncio.Future[object]] = {}
        self.fetched = 0
        """GETs made, for tests and metrics."""
        self.refused = 0
        """Misses answered "absent" without a GET."""

    async def unseen(
        self,
        kind: str,
        name: str,
        *,
        client: str,
        fetch: Callable[[], Awaitable[T | None]],
        minted: bool = False,
    ) -> T | None:
        """What `fetch()` (which answers None when kube-apiserver has no such object) finds for a name the cache lacks,
        or None without asking when asking cannot help or is over budget. `minted`: the name came from `mint`."""
        key = (kind, name)
        if minted and not self._may_be_recent(name):
            self.refused += 1
            return None
        now = self._clock()
        absent_until = self._absent.get(key)
        if absent_until is not None and now < absent_until:
            self.refused += 1
            return None
        pending = self._in_flight.get(key)
        if pending is not None:
            shared = await asyncio.shield(pending)
            return cast("T | None", shared)
        if not self._afford(client, now):
            self.refused += 1
            log.debug("not looking up %s %s for %s: over budget", kind, name[:64], client)
            return None
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self._in_flight[key] = future
        try:
            self.fetched += 1
            found = await fetch()
        except BaseException as error:
            future.set_exception(error)
            future.exception()  # retrieved: a lookup nobody shared must not warn
            raise
        finally:
            del self._in_flight[key]
        if found is None:
            self._remember_absent(key, now)
        future.set_result(found)
        return found

    def _may_be_recent(self, name: str) -> bool:
        minted = minted_at(name)
        if minted is None:
            return False
        age = self._wall_clock() - minted
        return -CLOCK_SKEW_SECONDS <= age <= RECENT_SECONDS

    def _afford(self, client: str, now: float) -> bool:
        bucket = self._clients.pop(client, None) or _Bucket(self._per_client, now)
        self._clients[client] = bucket
        while len(self._clients) > MAX_REMEMBERED:
            self._clients.popitem(last=False)
        return bucket.take(now) and self._overall.take(now)

    def _remember_absent(self, key: tuple[str, str], now: float) -> None:
        self._absent.pop(key, None)
        self._absent[key] = now + NEGATIVE_SECONDS
        while len(self._absent) > MAX_REMEMBERED:
            self._absent.popitem(last=False)
