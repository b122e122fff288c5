"""Which Wukongs a list or watch selects: the caller's namespaces, then the request's filters."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from server import errors, names
from server.wukongs import selectors
from server.wukongs.cache import WukongState
from server.wukongs.status import PowerState

NAME_LIKE_MAX = 63
STATUS_MAX = 256
"""`status` lists power states: a few words."""


@dataclass(frozen=True)
class WukongFilter:
    namespaces: frozenset[str]
    name: str = ""
    states: frozenset[PowerState] = frozenset()
    name_like: str = ""
    selector: selectors.Selector = selectors.EVERYTHING

    @classmethod
    def parse(
        cls, *, namespaces: frozenset[str], name: str = "", status: str, name_like: str, label_selector: str
    ) -> WukongFilter:
        """Validates every filter at once, so one answer names every bad field."""
        violations: list[errors.FieldViolation] = []
        if name:
            try:
                names.check_wukong_name("name", name)
            except errors.InvalidArgument as error:
                violations += error.violations
        states: set[PowerState] = set()
        if len(status) > STATUS_MAX:
            violations.append(errors.FieldViolation("status", f"must be at most {STATUS_MAX} characters"))
            status = ""
        for word in filter(None, (part.strip() for part in status.split(","))):
            try:
                states.add(PowerState[word.upper()])
            except KeyError:
                known = ", ".join(state.name.lower() for state in PowerState)
                violations.append(errors.FieldViolation("status", f"unknown power state '{word}'; use any of {known}"))
        if len(name_like) > NAME_LIKE_MAX:
            violations.append(errors.FieldViolation("name_like", f"must be at most {NAME_LIKE_MAX} characters"))
        selector = selectors.EVERYTHING
        try:
            selector = selectors.parse(label_selector)
        except ValueError as error:
            violations.append(errors.FieldViolation("label_selector", str(error)))
        if violations:
            raise errors.InvalidArgument(violations)
        return cls(namespaces, name, frozenset(states), name_like.lower(), selector)

    def matches(self, state: WukongState) -> bool:
        return (
            state.namespace in self.namespaces
            and (not self.name or state.name == self.name)
            and (not self.states or state.status.power_state in self.states)
            and (not self.name_like or self.name_like in state.name)
            and self.selector.matches(state.labels)
        )

    def fingerprint(self) -> str:
        """The same on every replica for the same filter: page tokens carry it to refuse reuse with another one."""
        canonical = json.dumps(
            [
                sorted(self.namespaces),
                self.name,
                sorted(s.name for s in self.states),
                self.name_like,
                str(self.selector),
            ]
        )
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]
