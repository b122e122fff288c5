"""Per-user token buckets and the open-stream cap, with a clock the test moves."""

from __future__ import annotations

import pytest

from server import errors
from server.auth import Caller
from server.auth.limits import MAX_STREAMS_PER_USER, RATES, RateLimits

BATCH = "/novasphere.v1.WukongService/BatchWukongOperation"
ADA = Caller("ada", "demo", frozenset({"vm:start"}), session="s1")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_the_steady_rate_then_a_retry_delay() -> None:
    clock = Clock()
    limits = RateLimits(exempt=None, clock=clock)
    rate = RATES[BATCH]
    for _ in range(rate.burst):
        limits.charge(ADA, BATCH)
    with pytest.raises(errors.RateLimited) as limited:
        limits.charge(ADA, BATCH)
    assert limited.value.retry_after_seconds == pytest.approx(60 / rate.per_minute)
    assert "vm-batch" in limited.value.message
    clock.now += 60 / rate.per_minute
    limits.charge(ADA, BATCH)  # one token came back
    limits.charge(Caller("bob", "demo", frozenset()), BATCH)  # others have their own bucket
    limits.charge(ADA, "/novasphere.v1.WukongService/ListWukongs")  # reads are not limited here


def test_the_development_identity_is_exempt_and_streams_are_capped() -> None:
    developer = Caller("developer", "default", frozenset())
    limits = RateLimits(exempt=developer, clock=Clock())
    for _ in range(RATES[BATCH].burst * 3):
        limits.charge(developer, BATCH)
    held = [limits.stream(ADA) for _ in range(MAX_STREAMS_PER_USER)]
    for slot in held:
        slot.__enter__()
    with pytest.raises(errors.RateLimited), limits.stream(ADA):
        pass
    held[0].__exit__(None, None, None)
    with limits.stream(ADA):
        pass
