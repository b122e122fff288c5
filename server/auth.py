"""Who is calling: the `Caller` every RPC runs as, and where it comes from.

Until tokens exist (the authentication issue), every call runs as one static development identity from the settings;
the servicers already ask a `CallerSource` for each call, so tokens replace it without touching them.
"""

from __future__ import annotations

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
