"""The server limits glibc's malloc arenas itself (server/allocator.py), unless the operator chose a limit."""

from __future__ import annotations

import pytest

from server import allocator


def test_the_arena_limit_is_set_on_glibc() -> None:
    assert allocator.limit_arenas()


def test_an_operators_malloc_arena_max_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert not allocator.limit_arenas()
