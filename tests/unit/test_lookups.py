"""The one bounded way past a cache miss (`server/lookups.py`): old and made-up identifiers never reach kube-apiserver,
concurrent misses share one read, an absent answer is remembered, and each client (and the replica) has a budget."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable

from server import lookups
from server.lookups import Budget, Lookups


class Reads:
    """A stand-in for the GET: counts calls, answers after a pause, finds only what it holds."""

    def __init__(self, *found: str) -> None:
        self.calls = 0
        self._found = set(found)

    def of(self, name: str) -> Callable[[], Awaitable[str | None]]:
        async def fetch() -> str | None:
            self.calls += 1
            await asyncio.sleep(0.01)
            return name if name in self._found else None

        return fetch


def _unseen(
    table: Lookups, reads: Reads, name: str, client: str = "198.51.100.1", *, minted: bool = True
) -> Awaitable[str | None]:
    return table.unseen("thing", name, client=client, fetch=reads.of(name), minted=minted)


def test_minted_identifiers_carry_their_second() -> None:
    made = lookups.mint(32)
    assert len(made) == 32
    assert int(made, 16) >= 0
    minted = lookups.minted_at(made)
    assert minted is not None
    assert abs(minted - time.time()) < 5
    assert lookups.minted_at("zzzzzzzz") is None


async def test_an_identifier_minted_long_ago_or_made_up_costs_nothing() -> None:
    table, reads = Lookups(), Reads()
    old = f"{int(time.time()) - 3600:08x}{secrets.token_hex(12)}"
    future = f"{int(time.time()) + 3600:08x}{secrets.token_hex(12)}"
    random_ones = [secrets.token_hex(16) for _ in range(1000)]
    for name in (old, future, *random_ones):
        assert await _unseen(table, reads, name) is None
    assert reads.calls == 0  # a random id looks minted in the last 90 s once in 2^32 / 90 tries
    assert table.refused == 1002


async def test_a_recent_identifier_is_read_once_for_all_who_ask_and_its_absence_remembered() -> None:
    table, reads = Lookups(), Reads()
    name = lookups.mint(32)
    answers = await asyncio.gather(*(_unseen(table, reads, name) for _ in range(20)))
    assert answers == [None] * 20
    assert reads.calls == 1
    assert await _unseen(table, reads, name) is None
    assert reads.calls == 1  # remembered as absent for a few seconds


async def test_one_created_a_moment_ago_elsewhere_is_found() -> None:
    name = lookups.mint(32)
    table, reads = Lookups(), Reads(name)
    assert await _unseen(table, reads, name) == name


async def test_each_client_and_the_replica_have_a_budget() -> None:
    table = Lookups(per_client=Budget(per_second=0.0, burst=3), overall=Budget(per_second=0.0, burst=5))
    reads = Reads()
    for _ in range(10):
        await _unseen(table, reads, lookups.mint(32), client="198.51.100.1")
    assert reads.calls == 3
    for _ in range(10):
        await _unseen(table, reads, lookups.mint(32), client="198.51.100.2")
    assert reads.calls == 5  # the replica's own budget is spent too
    assert table.refused == 15


async def test_names_without_a_time_skip_the_recency_test_only() -> None:
    table, reads = Lookups(per_client=Budget(per_second=0.0, burst=2)), Reads("web")
    assert await _unseen(table, reads, "web", minted=False) == "web"
    assert await _unseen(table, reads, "db", minted=False) is None
    assert await _unseen(table, reads, "ci", minted=False) is None  # over the client's budget
    assert reads.calls == 2
