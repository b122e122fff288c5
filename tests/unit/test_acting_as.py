"""The caller of an RPC, set for its handler and restored after it."""

from __future__ import annotations

import contextvars

import pytest

from server import auth

ADA = auth.Caller(user="ada", tenant="t", permissions=frozenset({"vm:query"}))


def test_the_caller_is_set_for_the_handler_and_gone_after() -> None:
    def handler() -> None:
        token = auth.acting_as(ADA)
        assert auth.current() == ADA
        auth.done_acting(token)
        with pytest.raises(LookupError):
            auth.current()

    contextvars.copy_context().run(handler)


def test_a_stream_closed_by_the_event_loops_finaliser_in_another_context_does_not_raise() -> None:
    """grpc abandons the generator of a cancelled stream; asyncio closes it later in a context of its own."""
    token = contextvars.copy_context().run(auth.acting_as, ADA)

    contextvars.copy_context().run(auth.done_acting, token)  # raised ValueError before
