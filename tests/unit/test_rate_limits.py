"""Per-user limits and the login lockout over every replica: token buckets for bursts, minutes counted across replicas
(`tally.py`, each replica's counts handed to another as its informer would), and the open-stream cap; with a clock
the test moves."""

from __future__ import annotations

from typing import Any

import pytest

from server import errors
from server.auth import Caller
from server.auth.limits import MAX_STREAMS_PER_USER, RATES, RateLimits
from server.auth.lockout import MAX_FAILURES, WINDOW_SECONDS, Lockout
from server.kube import counts
from server.kube.informer import Kind
from server.metrics import Metrics
from server.tally import Tally

BATCH = "/novasphere.v1.WukongService/BatchWukongOperation"
CONSOLE = "/novasphere.v1.ConsoleService/CreateConsoleSession"
ADA = Caller("ada", "demo", frozenset({"vm:start"}), session="s1")
KIND = Kind("counts", "")


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def _replica(name: str, clock: Clock) -> Tally:
    return Tally(kube=None, namespace="novasphere-system", replica=name, clock=clock)


def _refused(metrics: Metrics, bucket: str) -> float:
    """novasphere_rate_limited_total for `bucket`, as /metrics shows it."""
    return metrics.registry.get_sample_value("novasphere_rate_limited_total", {"bucket": bucket}) or 0.0


def _hand_over(source: Tally, name: str, to: Tally) -> None:
    """What the counts informer does: `to` sees `source`'s published ConfigMap."""
    item: dict[str, Any] = {"metadata": {"name": counts.name_of(name)}, "data": source.snapshot()}
    to.apply(KIND, "MODIFIED", item, 0)


def test_a_burst_then_the_steady_rate_then_a_retry_delay() -> None:
    clock, metrics = Clock(), Metrics()
    limits = RateLimits(metrics=metrics, tally=_replica("a", clock), clock=clock)
    rate = RATES[BATCH]
    for _ in range(rate.burst):
        limits.charge(ADA, BATCH)
    with pytest.raises(errors.RateLimited) as limited:
        limits.charge(ADA, BATCH)
    assert limited.value.retry_after_seconds == pytest.approx(60 / rate.per_minute)
    assert "vm-batch" in limited.value.message
    assert _refused(metrics, "vm-batch") == 1
    clock.now += 60 / rate.per_minute
    limits.charge(ADA, BATCH)  # one token came back
    limits.charge(Caller("bob", "demo", frozenset()), BATCH)  # others have their own bucket
    limits.charge(ADA, "/novasphere.v1.WukongService/ListWukongs")  # reads are not limited here


def test_a_users_minute_is_counted_over_every_replica() -> None:
    clock = Clock()
    first, second = _replica("a", clock), _replica("b", clock)
    metrics = Metrics()
    on_first, on_second = (
        RateLimits(metrics=Metrics(), tally=first, clock=clock),
        RateLimits(metrics=metrics, tally=second, clock=clock),
    )
    rate = RATES[CONSOLE]  # 5 a minute, bursts of 5
    for _ in range(3):
        on_first.charge(ADA, CONSOLE)
    _hand_over(first, "a", second)
    on_second.charge(ADA, CONSOLE)
    on_second.charge(ADA, CONSOLE)
    with pytest.raises(errors.RateLimited) as limited:  # the sixth in the minute, though the second's bucket is full
        on_second.charge(ADA, CONSOLE)
    assert "a minute per user" in limited.value.message
    assert 0 < limited.value.retry_after_seconds <= 65
    assert _refused(metrics, "console-tickets") == 1
    clock.now += 65
    on_second.charge(ADA, CONSOLE)  # the minute has passed
    assert rate.per_minute == 5


def test_the_development_identity_is_exempt_and_streams_are_capped() -> None:
    developer = Caller("developer", "default", frozenset(), development=True)
    metrics = Metrics()
    limits = RateLimits(metrics=metrics, tally=_replica("a", Clock()), clock=Clock())
    for _ in range(RATES[BATCH].burst * 3):
        limits.charge(developer, BATCH)
    held = [limits.stream(ADA) for _ in range(MAX_STREAMS_PER_USER)]
    for slot in held:
        slot.__enter__()
    with pytest.raises(errors.RateLimited), limits.stream(ADA):
        pass
    assert _refused(metrics, "streams") == 1
    assert _refused(metrics, "vm-batch") == 0
    held[0].__exit__(None, None, None)
    with limits.stream(ADA):
        pass


def test_the_lockout_is_per_name_and_address_and_holds_across_replicas() -> None:
    clock = Clock()
    first, second = _replica("a", clock), _replica("b", clock)
    here, there = Lockout(first), Lockout(second)
    for _ in range(MAX_FAILURES - 1):
        here.failed("admin", "198.51.100.7")
    _hand_over(first, "a", second)
    there.failed("admin", "198.51.100.7")  # the fifth, on another replica
    assert there.retry_after("admin", "198.51.100.7") > 0
    _hand_over(second, "b", first)
    assert here.retry_after("admin", "198.51.100.7") > 0  # and the first replica knows
    assert here.retry_after("admin", "203.0.113.1") == 0  # the administrator at their own address is not locked out
    clock.now += WINDOW_SECONDS + 10
    assert here.retry_after("admin", "198.51.100.7") == 0


def test_a_success_resets_the_failures_everywhere() -> None:
    clock = Clock()
    first, second = _replica("a", clock), _replica("b", clock)
    for _ in range(MAX_FAILURES - 1):
        Lockout(first).failed("ada", "192.0.2.1")
    _hand_over(first, "a", second)
    clock.now += 6
    Lockout(second).succeeded("ada", "192.0.2.1")
    _hand_over(second, "b", first)
    Lockout(first).failed("ada", "192.0.2.1")
    assert Lockout(first).retry_after("ada", "192.0.2.1") == 0  # one failure since the success, not five


def test_what_is_published_names_no_user_or_address() -> None:
    tally = _replica("a", Clock())
    Lockout(tally).failed("hunter2-typed-as-a-username", "198.51.100.7")
    published = "".join(tally.snapshot().values())
    assert "hunter2" not in published
    assert "198.51.100.7" not in published
