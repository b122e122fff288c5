"""What each person wants to hear about, and when.

Preferences filter, quiet hours defer: an event a user does not want is never sent to them; an event that arrives
during their quiet hours waits until the hours end (`quiet_until`) and is then sent with whatever else gathered
meanwhile, so a night's failures are in the morning's notification, not lost.
"""

from __future__ import annotations

import datetime
import re
import zoneinfo
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from server import errors, names
from server.notifications.events import Event, EventKind
from server.wukongs import validation

DEFAULT_EVENTS = frozenset(EventKind) - {EventKind.TASK_ENDED}
"""Everything but the end of one's own tasks, which one usually watches happen anyway."""
DEFAULT_LOCALE = "en-US"
MAX_NAMES = 100
_CLOCK_TIME = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")
_ZONE_NAME = re.compile(r"[A-Za-z][-+\w]*(/[-+\w]+)*", re.ASCII)
_LOCALE = re.compile(r"[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8}){0,3}")


@dataclass(frozen=True)
class VmScope:
    """Which VMs' events a user hears: every VM (both empty), the VMs named (`name` in any of the tenant's namespaces,
    or `namespace/name`), or those whose labels include every pair of `labels`. Events not about a VM (quotas) are
    not a matter of scope."""

    names: frozenset[str] = frozenset()
    labels: Mapping[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if self.names and self.labels:
            raise ValueError("a VM scope is names or labels, not both")

    def covers(self, event: Event) -> bool:
        if not event.wukong:
            return True
        if self.names:
            return event.wukong in self.names or f"{event.namespace}/{event.wukong}" in self.names
        return all(event.labels.get(key) == value for key, value in self.labels.items())


@dataclass(frozen=True)
class QuietHours:
    """From `start` to `end` local time in `time_zone` (an IANA name); crosses midnight when `end` is earlier."""

    start: datetime.time
    end: datetime.time
    time_zone: str

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)  # ZoneInfo keeps one instance per name


@dataclass(frozen=True)
class Preferences:
    events: frozenset[EventKind] = DEFAULT_EVENTS
    vms: VmScope = VmScope()
    quiet_hours: QuietHours | None = None
    locale: str = DEFAULT_LOCALE
    """For the user's devices that do not say their own."""


def wants(prefs: Preferences, event: Event) -> bool:
    return event.kind in prefs.events and prefs.vms.covers(event)


def quiet(prefs: Preferences, at: datetime.datetime) -> bool:
    return quiet_until(prefs, at) is not None


def quiet_until(prefs: Preferences, at: datetime.datetime) -> datetime.datetime | None:
    """When the quiet hours `at` falls in end (UTC), or None outside them. `at` must be aware. An end that a clock
    change skips (spring forward) is read with the offset before the change, so the hours end up to an hour late."""
    hours = prefs.quiet_hours
    if hours is None:
        return None
    if at.tzinfo is None:
        raise ValueError("quiet hours need an aware datetime")
    local = at.astimezone(hours.zone)
    now = local.time()
    crosses_midnight = hours.end < hours.start
    inside = (now >= hours.start or now < hours.end) if crosses_midnight else hours.start <= now < hours.end
    if not inside:
        return None
    day = local.date() if now < hours.end else local.date() + datetime.timedelta(days=1)
    return datetime.datetime.combine(day, hours.end, tzinfo=hours.zone).astimezone(datetime.UTC)


def parse_preferences(
    *,
    events: Sequence[str] | None = None,
    vm_names: Sequence[str] = (),
    vm_labels: Mapping[str, str] | None = None,
    quiet_start: str = "",
    quiet_end: str = "",
    time_zone: str = "",
    locale: str = "",
    field: str = "preferences",
) -> Preferences:
    """Preferences from a request's fields, or InvalidArgument naming every bad field (`preferences.vm_names[3]`,
    as the request's fields are named).

    `events` None: the default set (an empty list: none). Quiet hours are "HH:MM" 24-hour times and an IANA zone, all
    three or none. An empty locale is the default one."""
    violations: list[errors.FieldViolation] = []  # each part adds its own, so the client sees all at once
    kinds = _event_kinds(events, f"{field}.events", violations)
    vms = _vm_scope(vm_names, vm_labels or {}, field, violations)
    quiet_hours = _quiet_hours(quiet_start, quiet_end, time_zone, f"{field}.quiet_hours", violations)
    if locale and (len(locale) > 35 or not _LOCALE.fullmatch(locale)):
        violations.append(errors.FieldViolation(f"{field}.locale", f"'{locale[:40]}' is not a language tag like zh-CN"))
    if violations:
        raise errors.InvalidArgument(violations)
    return Preferences(kinds, vms, quiet_hours, locale or DEFAULT_LOCALE)


def _event_kinds(
    events: Sequence[str] | None, path: str, violations: list[errors.FieldViolation]
) -> frozenset[EventKind]:
    if events is None:
        return DEFAULT_EVENTS
    known = {str(kind) for kind in EventKind}
    for index, kind in enumerate(events):
        if kind not in known:
            violations.append(
                errors.FieldViolation(
                    f"{path}[{index}]", f"'{kind[:64]}' is not an event kind; use one of {', '.join(sorted(known))}"
                )
            )
    return frozenset(EventKind(kind) for kind in events if kind in known)


def _vm_scope(
    vm_names: Sequence[str], vm_labels: Mapping[str, str], path: str, violations: list[errors.FieldViolation]
) -> VmScope:
    found = len(violations)
    if vm_names and vm_labels:
        violations.append(
            errors.FieldViolation(f"{path}.vm_labels", "give vm_names or vm_labels, not both (neither: every VM)")
        )
    if len(vm_names) > MAX_NAMES:
        violations.append(
            errors.FieldViolation(f"{path}.vm_names", f"at most {MAX_NAMES} names, got {len(vm_names)}; use labels")
        )
    else:
        for index, entry in enumerate(vm_names):
            violations += _name_violations(entry, f"{path}.vm_names[{index}]")
    violations += validation.check_labels(vm_labels, f"{path}.vm_labels")
    return VmScope(frozenset(vm_names), dict(vm_labels)) if len(violations) == found else VmScope()


def _name_violations(entry: str, path: str) -> list[errors.FieldViolation]:
    """`name` or `namespace/name`, checked as the API checks each."""
    namespace, slash, name = entry.rpartition("/")
    found = validation.check_name(name, path)
    if slash:
        try:
            names.check_namespace(path, namespace)
        except errors.InvalidArgument as error:
            found += error.violations
    return found


def _quiet_hours(
    start: str, end: str, time_zone: str, path: str, violations: list[errors.FieldViolation]
) -> QuietHours | None:
    if not (start or end or time_zone):
        return None
    found = len(violations)
    for name, value in (("start", start), ("end", end)):
        if not _CLOCK_TIME.fullmatch(value):
            violations.append(errors.FieldViolation(f"{path}.{name}", f"'{value[:16]}' is not a time like 22:00"))
    if start and start == end:
        violations.append(errors.FieldViolation(f"{path}.end", "must differ from start"))
    if not _known_zone(time_zone):
        violations.append(
            errors.FieldViolation(
                f"{path}.time_zone", f"'{time_zone[:64]}' is not an IANA time zone like Asia/Shanghai"
            )
        )
    if len(violations) > found:
        return None
    return QuietHours(datetime.time.fromisoformat(start), datetime.time.fromisoformat(end), time_zone)


def _known_zone(name: str) -> bool:
    """Names shaped like IANA's only: the name becomes a path under the tz database (`Asia` is a directory there)."""
    if len(name) > 64 or not _ZONE_NAME.fullmatch(name):
        return False
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True
