"""One request id end to end (issue 24): Envoy's JSON access log and the API server's JSON access events name the same
id for a call through each door, with the caller, its tenant and its client type; the id comes back to the client on
the response and in an error's `RequestInfo`, and is stamped on the Task the call created."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import kubernetes.client
import pytest

from devcluster import accounts
from devcluster import stack as devstack
from novasphere.v1 import wukong_service_pb2 as service_pb2
from novasphere.v1.wukong_service_pb2_grpc import WukongServiceStub
from server import logs
from tests import grpc_web, kube_helpers
from tests.conftest import TENANT
from tests.e2e.test_auth import PASSWORD
from tests.status_helpers import details_of, details_of_status

LIST_WUKONGS = "/novasphere.v1.WukongService/ListWukongs"
GET_WUKONG = "/novasphere.v1.WukongService/GetWukong"
LOGIN = "/novasphere.v1.AuthService/Login"
DEV_USER = "developer"  # the stack's development identity
REQUEST_INFO = "type.googleapis.com/google.rpc.RequestInfo"


@pytest.fixture
def http(stack: devstack.Stack) -> Iterator[httpx.Client]:
    with stack.edge.http_client() as client:
        yield client


def json_lines(path: Path) -> list[dict[str, Any]]:
    """The JSON objects among a log's lines (Envoy's log also has its own text diagnostics)."""
    return [json.loads(line) for line in path.read_text(errors="replace").splitlines() if line.startswith("{")]


def lines_of(stack: devstack.Stack, request_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The access lines of Envoy and of the API server for `request_id`, once both are written (Envoy flushes its
    access log every second)."""
    envoy_log = next(p for p in stack.processes if p.name == "envoy").log_path

    def both() -> tuple[dict[str, Any], dict[str, Any]] | None:
        envoy = [line for line in json_lines(envoy_log) if line.get("request_id") == request_id]
        api = [
            line
            for line in json_lines(stack.api.process.log_path)
            if line.get("event") == "access" and line.get("request_id") == request_id
        ]
        if not envoy or not api:
            return None
        assert len(envoy) == len(api) == 1, (envoy, api)
        return envoy[0], api[0]

    return kube_helpers.eventually(both, timeout=15, what=f"the access lines of request {request_id}")


def assert_joined(
    stack: devstack.Stack, request_id: str, *, door: str, client_type: str, method: str, code: str, reason: str = ""
) -> dict[str, Any]:
    envoy, api = lines_of(stack, request_id)
    assert (envoy["logger"], envoy["event"]) == ("envoy.access", "access")
    assert envoy["door"] == door  # the same word in both logs
    assert api["logger"] == "novasphere.access"
    assert {key: api[key] for key in ("method", "door", "client_type", "user", "tenant", "code", "reason")} == {
        "method": method,
        "door": door,
        "client_type": client_type,
        "user": DEV_USER,
        "tenant": TENANT,
        "code": code,
        "reason": reason,
    }
    assert api["latency_ms"] >= 0
    assert api["bytes_out"] >= 0
    assert api["peer"] == "127.0.0.1"
    assert envoy["peer"] == "127.0.0.1"
    assert envoy["duration_ms"] >= 0
    return envoy


@pytest.fixture
def wukong(kube: kubernetes.client.ApiClient, grpc_direct: WukongServiceStub, namespace: str) -> str:
    created = kube_helpers.create_wukong(kube, namespace, "alpha")
    cursor = created["metadata"]["resourceVersion"]
    grpc_direct.ListWukongs(service_pb2.ListWukongsRequest(namespace=namespace, cursor=cursor))
    return "alpha"


def test_rest_calls_share_their_request_id_with_both_logs_the_error_and_the_task(
    stack: devstack.Stack, http: httpx.Client, namespace: str, wukong: str
) -> None:
    sent = f"mobile-{uuid.uuid4().hex[:12]}"  # a client's own well-formed id is kept
    listed = http.get(
        "/api/v1/wukongs", params={"namespace": namespace}, headers={"x-request-id": sent, "User-Agent": "Dart/3.5"}
    )
    assert listed.status_code == 200
    assert listed.headers["x-request-id"] == sent
    envoy = assert_joined(stack, sent, door="rest", client_type="flutter", method=LIST_WUKONGS, code="OK")
    assert (envoy["method"], envoy["path"], envoy["code"]) == ("GET", "/api/v1/wukongs", 200)

    missing = http.get("/api/v1/wukongs/nowhere", params={"namespace": namespace})
    assert missing.status_code == 404
    generated = missing.headers["x-request-id"]  # none sent: Envoy made one
    uuid.UUID(generated)
    assert {"@type": REQUEST_INFO, "requestId": generated, "servingData": ""} in missing.json()["details"]
    assert_joined(
        stack,
        generated,
        door="rest",
        client_type="rest",
        method=GET_WUKONG,
        code="NOT_FOUND",
        reason="WUKONG_NOT_FOUND",
    )

    started = http.post(
        f"/api/v1/wukongs/{wukong}/stop", json={"namespace": namespace}, headers={"x-request-id": sent + "-stop"}
    )
    assert started.status_code == 200, started.text
    task = started.json()
    assert task["originRequestId"] == sent + "-stop"
    assert http.get(f"/api/v1/tasks/{task['id']}").json()["originRequestId"] == sent + "-stop"
    accepted = kube_helpers.eventually(
        lambda: [
            line
            for line in json_lines(stack.api.process.log_path)
            if line.get("event") == "task.state" and line.get("task") == task["id"]
        ],
        timeout=15,
        what="the task's state event",
    )
    assert (accepted[0]["state"], accepted[0]["request_id"], accepted[0]["user"]) == (
        "Pending",
        sent + "-stop",
        DEV_USER,
    )


def test_a_logins_access_event_names_the_user_it_authenticated(
    stack: devstack.Stack, kube: kubernetes.client.ApiClient, http: httpx.Client
) -> None:
    user = f"login-{uuid.uuid4().hex[:8]}"
    accounts.create_user(kube, user, PASSWORD, tenant=TENANT, role="operator")
    sent = f"login-{uuid.uuid4().hex[:12]}"
    try:
        answered = http.post(
            "/api/v1/auth/login", json={"username": user, "password": PASSWORD}, headers={"x-request-id": sent}
        )
    finally:
        accounts.unbind(kube, user)
    assert answered.status_code == 200, answered.text
    _, api = lines_of(stack, sent)
    assert (api["method"], api["user"], api["tenant"], api["code"]) == (LOGIN, user, TENANT, "OK")


def test_a_batchs_children_carry_the_batchs_request_id(
    stack: devstack.Stack, http: httpx.Client, namespace: str, wukong: str
) -> None:
    sent = f"batch-{uuid.uuid4().hex[:12]}"
    accepted = http.post(
        "/api/v1/wukongs:batch",
        json={"operation": "RESTART", "namespace": namespace, "names": [wukong]},
        headers={"x-request-id": sent},
    )
    assert accepted.status_code == 200, accepted.text
    batch = accepted.json()
    assert batch["originRequestId"] == sent

    def children() -> list[str] | None:
        ids = http.get(f"/api/v1/tasks/{batch['id']}").json()["batch"]["childIds"]
        return list(ids) or None

    (child,) = kube_helpers.eventually(children, timeout=15, what="the batch's child task")
    assert http.get(f"/api/v1/tasks/{child}").json()["originRequestId"] == sent


def test_a_malformed_request_id_is_replaced_at_the_edge(
    stack: devstack.Stack, http: httpx.Client, namespace: str
) -> None:
    forged = 'x", "user": "admin'
    response = http.get("/api/v1/wukongs/nowhere", params={"namespace": namespace}, headers={"x-request-id": forged})
    replaced = response.headers["x-request-id"]
    assert replaced != forged
    assert logs.REQUEST_ID_PATTERN.fullmatch(replaced)
    assert {"@type": REQUEST_INFO, "requestId": replaced, "servingData": ""} in response.json()["details"]
    assert_joined(
        stack, replaced, door="rest", client_type="rest", method=GET_WUKONG, code="NOT_FOUND", reason="WUKONG_NOT_FOUND"
    )


def test_grpc_web_calls_share_their_request_id_with_both_logs(
    stack: devstack.Stack, http: httpx.Client, namespace: str
) -> None:
    listed = grpc_web.call(http, stack.http, LIST_WUKONGS, service_pb2.ListWukongsRequest(namespace=namespace))
    assert listed.grpc_status == 0
    envoy = assert_joined(
        stack, listed.headers["x-request-id"], door="grpc-web", client_type="grpc-web", method=LIST_WUKONGS, code="OK"
    )
    assert (envoy["method"], envoy["path"]) == ("POST", LIST_WUKONGS)

    missing = grpc_web.call(
        http, stack.http, GET_WUKONG, service_pb2.GetWukongRequest(namespace=namespace, name="nowhere")
    )
    request_id = missing.headers["x-request-id"]
    assert details_of_status(missing.status()).request_id == request_id
    assert_joined(
        stack,
        request_id,
        door="grpc-web",
        client_type="grpc-web",
        method=GET_WUKONG,
        code="NOT_FOUND",
        reason="WUKONG_NOT_FOUND",
    )


def test_native_grpc_calls_through_envoy_share_their_request_id_with_both_logs(
    stack: devstack.Stack, namespace: str
) -> None:
    sent = f"svc-{uuid.uuid4().hex[:12]}"
    with stack.edge.channel() as channel:
        wukongs = WukongServiceStub(channel)
        _, call = wukongs.ListWukongs.with_call(
            service_pb2.ListWukongsRequest(namespace=namespace), metadata=(("x-request-id", sent),)
        )
        assert dict(call.initial_metadata())["x-request-id"] == sent
        with pytest.raises(grpc.RpcError) as missing:
            wukongs.GetWukong(service_pb2.GetWukongRequest(namespace=namespace, name="nowhere"))
    assert_joined(stack, sent, door="grpc", client_type="grpc", method=LIST_WUKONGS, code="OK")
    request_id = details_of(missing.value).request_id
    assert isinstance(missing.value, grpc.Call)
    assert request_id
    # an error before any message is a trailers-only response: its headers are the call's trailers
    assert dict(missing.value.trailing_metadata())["x-request-id"] == request_id
    assert_joined(
        stack,
        request_id,
        door="grpc",
        client_type="grpc",
        method=GET_WUKONG,
        code="NOT_FOUND",
        reason="WUKONG_NOT_FOUND",
    )
