"""Per-user preferences: which events and VMs, quiet hours that defer (across midnight, in the user's zone), and the
checks a future API runs on them (server/notifications/preferences.py)."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from server import errors
from server.notifications.events import EventKind
from server.notifications.preferences import (
    Preferences,
    QuietHours,
    VmScope,
    parse_preferences,
    quiet,
    quiet_until,
    wants,
)
from tests.unit.test_notification_events import task_event, vm_event

UTC = datetime.UTC
NIGHTS = QuietHours(datetime.time(22, 0), datetime.time(7, 0), "Asia/Shanghai")  # UTC+8 all year


def test_by_default_everything_but_ones_own_finished_tasks() -> None:
    assert Preferences().events == frozenset(EventKind) - {EventKind.TASK_ENDED}
    assert wants(Preferences(), vm_event())
    assert wants(Preferences(), task_event(state="Failed"))
    assert not wants(Preferences(), task_event(state="Succeeded"))


def test_kinds_names_and_labels_choose_what_one_hears() -> None:
    web = vm_event("prod", "web-1", labels={"app": "web", "env": "prod"})
    db = vm_event("prod", "db-1", labels={"app": "db", "env": "prod"})
    staging_web = vm_event("staging", "web-1", labels={"app": "web", "env": "staging"})
    vms = [web, db, staging_web]

    def heard(prefs: Preferences) -> list[tuple[str, str]]:
        return [(e.namespace, e.wukong) for e in vms if wants(prefs, e)]

    assert heard(Preferences(vms=VmScope(names=frozenset({"web-1"})))) == [("prod", "web-1"), ("staging", "web-1")]
    assert heard(Preferences(vms=VmScope(names=frozenset({"prod/web-1", "db-1"})))) == [
        ("prod", "web-1"),
        ("prod", "db-1"),
    ]
    assert heard(Preferences(vms=VmScope(labels={"app": "web", "env": "prod"}))) == [("prod", "web-1")]
    assert heard(Preferences(vms=VmScope(labels={"env": "prod"}))) == [("prod", "web-1"), ("prod", "db-1")]
    assert heard(Preferences(events=frozenset({EventKind.VM_FAILED}))) == []
    failed = vm_event(printable="CrashLoopBackOff")
    assert wants(Preferences(events=frozenset({EventKind.VM_FAILED})), failed)


def test_a_scope_is_names_or_labels() -> None:
    with pytest.raises(ValueError, match="not both"):
        VmScope(names=frozenset({"web-1"}), labels={"app": "web"})


@pytest.mark.parametrize(
    ("at", "until"),
    [
        # 23:30 in Shanghai: quiet until 07:00 there the next morning, 23:00 UTC the same day.
        (datetime.datetime(2026, 11, 22, 15, 30, tzinfo=UTC), datetime.datetime(2026, 11, 22, 23, 0, tzinfo=UTC)),
        # 04:00 in Shanghai: quiet until 07:00 that morning.
        (datetime.datetime(2026, 11, 22, 20, 0, tzinfo=UTC), datetime.datetime(2026, 11, 22, 23, 0, tzinfo=UTC)),
        # 22:00 sharp starts them; 07:00 sharp ends them; 21:59 and midday are not quiet.
        (datetime.datetime(2026, 11, 22, 14, 0, tzinfo=UTC), datetime.datetime(2026, 11, 22, 23, 0, tzinfo=UTC)),
        (datetime.datetime(2026, 11, 22, 23, 0, tzinfo=UTC), None),
        (datetime.datetime(2026, 11, 22, 13, 59, tzinfo=UTC), None),
        (datetime.datetime(2026, 11, 22, 4, 0, tzinfo=UTC), None),
    ],
)
def test_quiet_hours_cross_midnight_in_the_users_zone(at: datetime.datetime, until: datetime.datetime | None) -> None:
    prefs = Preferences(quiet_hours=NIGHTS)
    assert quiet_until(prefs, at) == until
    assert quiet(prefs, at) is (until is not None)


def test_quiet_hours_within_a_day_and_none_at_all() -> None:
    lunch = Preferences(quiet_hours=QuietHours(datetime.time(12, 0), datetime.time(13, 30), "Europe/Berlin"))
    at = datetime.datetime(2026, 7, 1, 10, 15, tzinfo=UTC)  # 12:15 summer time in Berlin
    assert quiet_until(lunch, at) == datetime.datetime(2026, 7, 1, 11, 30, tzinfo=UTC)
    assert quiet_until(lunch, at + datetime.timedelta(hours=2)) is None
    assert quiet_until(Preferences(), at) is None
    with pytest.raises(ValueError, match="aware"):
        quiet(Preferences(quiet_hours=NIGHTS), datetime.datetime(2026, 7, 1, 10, 15))


def test_valid_preferences_parse() -> None:
    prefs = parse_preferences(
        events=["VM_FAILED", "TASK_FAILED", "VM_FAILED"],
        vm_names=["web-1", "prod/db-1"],
        quiet_start="22:00",
        quiet_end="07:00",
        time_zone="Asia/Shanghai",
        locale="zh-CN",
    )
    assert prefs == Preferences(
        events=frozenset({EventKind.VM_FAILED, EventKind.TASK_FAILED}),
        vms=VmScope(names=frozenset({"web-1", "prod/db-1"})),
        quiet_hours=NIGHTS,
        locale="zh-CN",
    )
    assert parse_preferences() == Preferences()
    assert parse_preferences(events=[]).events == frozenset()
    assert parse_preferences(vm_labels={"example.com/tier": "web"}).vms == VmScope(labels={"example.com/tier": "web"})


def violations(**fields: Any) -> dict[str, str]:
    with pytest.raises(errors.InvalidArgument) as caught:
        parse_preferences(**fields)
    return {v.field: v.description for v in caught.value.violations}


@pytest.mark.parametrize(
    ("fields", "path", "says"),
    [
        ({"quiet_start": "22:00", "quiet_end": "07:00", "time_zone": "Mars/Olympus"}, "time_zone", "IANA"),
        ({"quiet_start": "22:00", "quiet_end": "07:00", "time_zone": "../../etc/passwd"}, "time_zone", "IANA"),
        ({"quiet_start": "22:00", "quiet_end": "07:00", "time_zone": ""}, "time_zone", "IANA"),
        ({"quiet_start": "22:00", "quiet_end": "22:00", "time_zone": "UTC"}, "end", "differ"),
        ({"quiet_start": "24:00", "quiet_end": "07:00", "time_zone": "UTC"}, "start", "22:00"),
        ({"quiet_start": "22:00", "time_zone": "UTC"}, "end", "22:00"),
    ],
)
def test_bad_quiet_hours_name_their_field(fields: dict[str, str], path: str, says: str) -> None:
    found = violations(**fields)
    assert list(found) == [f"preferences.quiet_hours.{path}"]
    assert says in found[f"preferences.quiet_hours.{path}"]


def test_every_bad_field_is_named_at_once() -> None:
    found = violations(
        events=["VM_FAILED", "VM_EXPLODED"],
        vm_names=["web-1", "Web_1", "a/b/c"],
        locale="chinese please",
        field="notification_preferences",
    )
    assert sorted(found) == [
        "notification_preferences.events[1]",
        "notification_preferences.locale",
        "notification_preferences.vm_names[1]",
        "notification_preferences.vm_names[2]",
    ]
    assert "VM_STOPPED_UNEXPECTEDLY" in found["notification_preferences.events[1]"]


def test_names_are_at_most_a_hundred_and_labels_are_kubernetes_labels() -> None:
    assert list(violations(vm_names=[f"vm-{i}" for i in range(101)])) == ["preferences.vm_names"]
    parse_preferences(vm_names=[f"vm-{i}" for i in range(100)])
    assert list(violations(vm_labels={"bad key!": "x"})) == ["preferences.vm_labels[bad key!]"]
    assert list(violations(vm_labels={"app": "-x-"})) == ["preferences.vm_labels[app]"]
    assert list(violations(vm_names=["web-1"], vm_labels={"app": "web"})) == ["preferences.vm_labels"]


@pytest.mark.parametrize("zone", ["Asia", "Asia/" + "x" * 300, "a" * 5000, "Asia/Shang\x00hai", "/etc/localtime"])
def test_a_zone_name_is_never_more_than_a_name_in_the_tz_database(zone: str) -> None:
    found = violations(quiet_start="22:00", quiet_end="07:00", time_zone=zone)
    assert list(found) == ["preferences.quiet_hours.time_zone"]
