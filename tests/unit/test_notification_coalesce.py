"""Bursts become one notification per person, with ids that do not depend on who gathered them
(server/notifications/coalesce.py). Time is only what the tests say it is."""

from __future__ import annotations

import datetime

from server.notifications.coalesce import Batch, Coalescer
from server.notifications.events import Event
from tests.unit.test_notification_events import NOW, task_event, vm_event


def seconds(n: float) -> datetime.datetime:
    return NOW + datetime.timedelta(seconds=n)


def batch_stop(count: int) -> list[Event]:
    """The ends of the child tasks of a batch stop of `count` VMs requested by ada."""
    return [task_event(f"web-{i:02d}", state="Succeeded") for i in range(count)]


def test_a_batch_stop_of_fifty_vms_is_one_batch_for_its_owner() -> None:
    coalescer = Coalescer(window=datetime.timedelta(seconds=10))
    stops = batch_stop(50)
    for i, event in enumerate(stops):
        coalescer.add("ada", event, now=seconds(i * 0.1))
    assert coalescer.flush(seconds(14.8)) == []
    assert coalescer.next_due() == seconds(14.9)
    (batch,) = coalescer.flush(seconds(14.9))
    assert batch.user == "ada"
    assert [e.wukong for e in batch.events] == [f"web-{i:02d}" for i in range(50)]
    assert coalescer.flush(seconds(60)) == []
    assert coalescer.next_due() is None


def test_the_same_events_give_the_same_short_ids_whoever_gathered_them_and_in_whatever_order() -> None:
    stops = batch_stop(50)
    first, second = Coalescer(), Coalescer()
    for event in stops:
        first.add("ada", event, now=NOW)
    for event in reversed(stops):  # another leader, seeing them in another order
        second.add("ada", event, now=NOW)
    (one,) = first.flush(seconds(60))
    (other,) = second.flush(seconds(60))
    assert (one.event_id, one.collapse_key) == (other.event_id, other.collapse_key)
    assert len(one.collapse_key) <= 64
    assert one.collapse_key.isalnum()
    assert Batch("ada", tuple(stops[:49])).collapse_key != one.collapse_key


def test_each_person_has_their_own_batch_and_a_repeated_event_is_not_news() -> None:
    coalescer = Coalescer()
    failed, stopped = vm_event(printable="CrashLoopBackOff"), vm_event()
    coalescer.add("tina", failed, now=NOW)
    coalescer.add("ada", failed, now=NOW)
    coalescer.add("ada", stopped, now=seconds(1))
    coalescer.add("ada", stopped, now=seconds(9))  # the same event again: does not hold the batch longer
    batches = coalescer.flush(seconds(11))
    assert [(b.user, {e.id for e in b.events}) for b in batches] == [
        ("ada", {failed.id, stopped.id}),
        ("tina", {failed.id}),
    ]


def test_a_steady_trickle_still_gets_through_after_the_longest_wait() -> None:
    coalescer = Coalescer(window=datetime.timedelta(seconds=10), longest=datetime.timedelta(seconds=30))
    stops = batch_stop(10)
    for i, event in enumerate(stops):
        coalescer.add("ada", event, now=seconds(i * 5))  # never 10 s of silence
    assert coalescer.next_due() == seconds(30)
    (batch,) = coalescer.flush(seconds(30))
    assert len(batch.events) == 10


def test_quiet_hours_hold_the_batch_which_keeps_gathering_until_they_end() -> None:
    coalescer = Coalescer()
    morning = seconds(7 * 3600)
    stops = batch_stop(3)
    coalescer.add("ada", stops[0], now=NOW, not_before=morning)
    coalescer.add("ada", stops[1], now=seconds(3600), not_before=morning)
    assert coalescer.flush(seconds(3 * 3600)) == []
    coalescer.add("ada", stops[2], now=seconds(6 * 3600))
    assert coalescer.next_due() == morning
    (batch,) = coalescer.flush(morning)
    assert len(batch.events) == 3
