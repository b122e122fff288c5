"""The log format (server/logs.py): what a log pipeline relies on."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from server import logs
from server.transport.interceptors import door


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    logs.configure(log_format="json", level="INFO", stream=stream)
    try:
        yield stream
    finally:
        logging.basicConfig(force=True, handlers=[logging.NullHandler()])


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_an_event_is_one_json_object_per_line_with_its_fields(captured: io.StringIO) -> None:
    token = logs.request_id.set("req-1")
    try:
        logs.event(logging.getLogger("novasphere.test"), "task.state", "two\nlines", task="t-1", logger="spoofed")
    finally:
        logs.request_id.reset(token)
    logging.getLogger("novasphere.test").warning("plain %s", "call")

    first, second = _lines(captured)
    assert set(first) == {"time", "level", "logger", "event", "message", "request_id", "task"}
    assert (first["event"], first["message"], first["request_id"], first["task"]) == (
        "task.state",
        "two\nlines",
        "req-1",
        "t-1",
    )
    assert (first["level"], first["logger"]) == ("INFO", "novasphere.test")  # fields never override the base keys
    assert str(first["time"]).endswith("+00:00")
    assert (second["event"], second["level"], second["message"]) == ("log", "WARNING", "plain call")
    assert "request_id" not in second  # written outside a request


def test_an_exception_is_in_its_line(captured: io.StringIO) -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("novasphere.test").exception("failed")

    (line,) = _lines(captured)
    assert "RuntimeError: boom" in str(line["exception"])


def test_the_text_format_keeps_the_classic_line() -> None:
    stream = io.StringIO()
    logs.configure(log_format="text", level="INFO", stream=stream)
    try:
        logs.event(logging.getLogger("novasphere.access"), "access", "/x/Y OK grpc 1.0ms peer=127.0.0.1", code="OK")
    finally:
        logging.basicConfig(force=True, handlers=[logging.NullHandler()])
    assert stream.getvalue().endswith(" INFO novasphere.access: /x/Y OK grpc 1.0ms peer=127.0.0.1\n")


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("0b6c1f4e-3f7d-4a52-9a1e-5c2d7e8f9a10", True),
        ("client.trace_42", True),
        ("x" * 64, True),
        ("x" * 65, False),
        ("", False),
        (None, False),
        ('a", "user": "admin', False),
        ("a\nb", False),
        ("é", False),
    ],
)
def test_only_a_well_formed_request_id_is_kept(sent: str | None, kept: bool) -> None:
    result = logs.well_formed_request_id(sent)
    assert (result == sent) is kept
    assert logs.REQUEST_ID_PATTERN.fullmatch(result)


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ((), "grpc"),
        ((("x-novasphere-door", "ct=application/grpc"),), "grpc"),
        ((("x-novasphere-door", "ct=application/grpc-web-text"),), "grpc-web"),
        ((("x-novasphere-door", "ct="),), "rest"),
        ((("x-novasphere-door", "ct=application/json"), ("x-client-type", "cli")), "rest"),
    ],
)
def test_the_door_is_the_one_envoy_names(metadata: tuple[tuple[str, str], ...], expected: str) -> None:
    assert door(metadata) == expected
