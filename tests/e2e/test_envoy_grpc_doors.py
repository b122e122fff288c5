"""gRPC and gRPC-Web calls skip rest.lua when their x-request-id is well-formed (issue 25: the Lua filter was the
costliest of Envoy's chain for calls that need none of it): their door still reaches Envoy's access log, and a
malformed id is still replaced at the edge, whatever the door."""

from __future__ import annotations

import base64
import json
import struct
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from devcluster import stack as devstack
from novasphere.v1 import auth_service_pb2, auth_service_pb2_grpc
from server import logs

ME = "/novasphere.v1.AuthService/Me"
MALFORMED = 'x", "user": "admin'


def envoy_line(stack: devstack.Stack, request_id: str) -> dict[str, Any]:
    """Envoy's access line of `request_id`, once flushed (every second)."""
    envoy_log: Path = next(p for p in stack.processes if p.name == "envoy").log_path
    deadline = time.monotonic() + 15
    while True:
        for text in envoy_log.read_text(errors="replace").splitlines():
            if text.startswith("{") and request_id in text:
                line: dict[str, Any] = json.loads(text)
                if line.get("request_id") == request_id:
                    return line
        if time.monotonic() > deadline:
            raise AssertionError(f"no access line of {request_id} in {envoy_log}")
        time.sleep(0.25)


def grpc_me(stack: devstack.Stack, request_id: str) -> str:
    """AuthService.Me over native gRPC through Envoy, sending `request_id`; the id Envoy answers with."""
    with stack.edge.channel() as channel:
        _, call = auth_service_pb2_grpc.AuthServiceStub(channel).Me.with_call(
            auth_service_pb2.MeRequest(), metadata=(("x-request-id", request_id),)
        )
    return str(dict(call.initial_metadata())["x-request-id"])


def grpc_web_me(stack: devstack.Stack, request_id: str, content_type: str) -> str:
    frame = struct.pack(">BI", 0, 0)
    with stack.edge.http_client() as http:
        response = http.post(
            ME,
            content=frame if content_type.endswith("proto") else base64.b64encode(frame),
            headers={"content-type": content_type, "x-grpc-web": "1", "x-request-id": request_id},
        )
    assert response.status_code == 200, response.text
    return response.headers["x-request-id"]


@pytest.mark.parametrize("well_formed", [True, False])
def test_native_grpc_through_envoy_is_logged_as_grpc_and_a_malformed_id_replaced(
    stack: devstack.Stack, well_formed: bool
) -> None:
    sent = f"grpc-{uuid.uuid4().hex[:12]}" if well_formed else MALFORMED
    answered = grpc_me(stack, sent)
    if well_formed:
        assert answered == sent
    else:
        assert answered != sent
        assert logs.REQUEST_ID_PATTERN.fullmatch(answered)
    line = envoy_line(stack, answered)
    assert (line["door"], line["path"], line["code"]) == ("grpc", ME, 200)


@pytest.mark.parametrize("content_type", ["application/grpc-web+proto", "application/grpc-web-text"])
@pytest.mark.parametrize("well_formed", [True, False])
def test_grpc_web_through_envoy_is_logged_as_grpc_web_and_a_malformed_id_replaced(
    stack: devstack.Stack, content_type: str, well_formed: bool
) -> None:
    sent = f"web-{uuid.uuid4().hex[:12]}" if well_formed else MALFORMED
    answered = grpc_web_me(stack, sent, content_type)
    assert (answered == sent) is well_formed
    assert logs.REQUEST_ID_PATTERN.fullmatch(answered)
    line = envoy_line(stack, answered)
    assert (line["door"], line["path"]) == ("grpc-web", ME)


def test_envoy_times_where_a_call_went(stack: devstack.Stack) -> None:
    """The access log's timing fields (what bench/doors.py breaks a door's time down with) add up to the call."""
    sent = f"timed-{uuid.uuid4().hex[:12]}"
    grpc_me(stack, sent)
    line = envoy_line(stack, sent)
    parts = [line[field] for field in ("edge_request_us", "upstream_wait_us", "edge_response_us")]
    assert all(isinstance(part, int) and part >= 0 for part in parts), line
    assert sum(parts) <= line["duration_us"] + 1  # each is rounded down to the microsecond
    assert line["duration_us"] <= line["duration_ms"] * 1000 + 1000


def test_a_rest_call_still_runs_rest_lua(stack: devstack.Stack) -> None:
    """REST requests keep the whole of rest.lua (here: 405 with Allow for a method the path does not have)."""
    with stack.edge.http_client() as http:
        response: httpx.Response = http.delete("/api/v1/auth/me")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET"
    line = envoy_line(stack, response.headers["x-request-id"])
    assert line["door"] == "rest"
