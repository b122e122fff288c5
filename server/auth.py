"""Who is calling: the `Caller` every RPC runs as, and where it comes from.

Until tokens exist (the authentication issue), every call runs as one static development identity from the settings;
the servicers already ask a `CallerSource` for each call, so tokens replace it without touching them.
"""

from __future__ import annotations

import contextvars
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

ADMIN = "admin"
"""A permission that implies every other."""


@dataclass(frozen=True)
class Caller:
    user: str
    tenant: str
    permissions: frozenset[str]

    def may(self, permission: str) -> bool:
        return permission in self.permissions or ADMIN in self.permissions


class CallerSource(Protocol):
    def caller(self, metadata: Sequence[tuple[str, str | bytes]]) -> Caller:
        """The caller of a request with this metadata."""


@dataclass(frozen=True)
class DevelopmentIdentity:
    """Every request is this one caller (settings NOVASPHERE_DEV_*); never use it where callers must be told apart."""

    identity: Caller

    def caller(self, metadata: Sequence[tuple[str, str | bytes]]) -> Caller:
        return self.identity


_CURRENT: contextvars.ContextVar[Caller] = contextvars.ContextVar("caller")


def current() -> Caller:
    """The caller of the RPC being served, as the authorisation interceptor established it."""
    return _CURRENT.get()


def acting_as(caller: Caller) -> contextvars.Token[Caller]:
    return _CURRENT.set(caller)


def done_acting(token: contextvars.Token[Caller]) -> None:
    _CURRENT.reset(token)
