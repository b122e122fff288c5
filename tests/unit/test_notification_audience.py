"""Who hears of an event: the event's tenant only, those who may see its VMs, the owner of a task or console, the
tenant's administrators for a quota; each as their preferences say (server/notifications/audience.py)."""

from __future__ import annotations

import dataclasses

import pytest

from server.notifications import events
from server.notifications.audience import Recipient, recipients
from server.notifications.events import Event, EventKind
from server.notifications.preferences import Preferences, VmScope
from tests.unit.test_notification_events import NOW, Replica, task_event, vm_event
from tests.unit.test_wukong_queries import wukong_item

VIEWER = frozenset({"vm:query", "task:query"})
TENANT_ADMIN = VIEWER | {"vm:stop", "vm:console:manage", "binding:manage"}
EVERYTHING = frozenset(EventKind)


def person(
    user: str, permissions: frozenset[str], *, tenant: str = "acme", prefs: Preferences | None = None
) -> Recipient:
    return Recipient(user, tenant, permissions, prefs or Preferences(events=EVERYTHING))


ADA = person("ada", VIEWER)
BOB = person("bob", frozenset({"task:query"}))  # may see tasks, not VMs
TINA = person("tina", TENANT_ADMIN)
ROOT = person("root", frozenset({"admin"}))
EVE = person("eve", frozenset({"admin"}), tenant="other")  # an administrator, of another tenant
ADA_ELSEWHERE = person("ada", VIEWER, tenant="other")
EVERYONE = [ADA, BOB, TINA, ROOT, EVE, ADA_ELSEWHERE]


def users(event: Event, candidates: list[Recipient] = EVERYONE) -> list[tuple[str, str]]:
    return [(r.user, r.tenant) for r in recipients(event, candidates)]


def console_event(holder: str) -> Event:
    state = Replica().see(wukong_item("prod", "web-1")).state
    event = events.console_taken_over(
        state, tenant="acme", session_id="cs-1", protocol="vnc", holder=holder, taken_by="root", at=NOW
    )
    assert event is not None
    return event


def quota_event() -> Event:
    event = events.quota_nearly_used(
        tenant="acme",
        namespace="prod",
        resource="count/wukongs",
        used="19",
        hard="20",
        used_before="17",
        quota_uid="q-1",
        resource_version="5",
        at=NOW,
    )
    assert event is not None
    return event


def test_a_vm_event_goes_to_everyone_of_its_tenant_who_may_see_vms() -> None:
    assert users(vm_event()) == [("ada", "acme"), ("tina", "acme"), ("root", "acme")]


def test_task_and_console_events_go_to_their_owner_only_while_they_may_see_the_vm() -> None:
    assert users(task_event(state="Failed", user="ada")) == [("ada", "acme")]
    assert users(console_event("ada")) == [("ada", "acme")]
    assert users(task_event(state="Failed", user="bob")) == []
    assert users(console_event("bob")) == []


def test_a_quota_event_goes_to_the_tenants_administrators() -> None:
    assert users(quota_event()) == [("tina", "acme"), ("root", "acme")]


@pytest.mark.parametrize(
    "event",
    [
        vm_event(),
        vm_event(printable="CrashLoopBackOff"),
        task_event(state="Succeeded", user="eve"),
        task_event(state="Failed", user="ada"),
        console_event("eve"),
        quota_event(),
    ],
    ids=lambda event: str(event.kind),
)
def test_no_one_of_another_tenant_ever_hears_whatever_their_permissions(event: Event) -> None:
    assert ("eve", "other") not in users(event)
    assert ("ada", "other") not in users(event)
    assert users(dataclasses.replace(event, tenant="")) == []  # a namespace no tenant owns: no one


def test_preferences_are_each_recipients_own() -> None:
    only_db = person("ada", VIEWER, prefs=Preferences(vms=VmScope(names=frozenset({"db-1"}))))
    defaults = person("tina", TENANT_ADMIN, prefs=Preferences())
    no_vms = person("root", frozenset({"admin"}), prefs=Preferences(events=frozenset({EventKind.QUOTA_NEARLY_USED})))
    candidates = [only_db, defaults, no_vms]
    assert users(vm_event("prod", "web-1"), candidates) == [("tina", "acme")]
    assert users(vm_event("prod", "db-1"), candidates) == [("ada", "acme"), ("tina", "acme")]
    assert users(task_event(state="Succeeded", user="tina"), candidates) == []  # TASK_ENDED is off by default
    assert users(quota_event(), candidates) == [("tina", "acme"), ("root", "acme")]
