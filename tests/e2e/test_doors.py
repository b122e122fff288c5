"""The same API through every door Envoy offers: REST/JSON (transcoded), gRPC-Web, native gRPC, and reflection for
grpcurl; plus Envoy's own replies, which REST clients get as google.rpc.Status JSON too."""

from __future__ import annotations

import datetime
import json
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import kubernetes.client
import pytest

from devcluster import binaries
from devcluster import stack as devstack
from novasphere.v1 import wukong_pb2
from novasphere.v1 import wukong_service_pb2 as service_pb2
from novasphere.v1.wukong_service_pb2_grpc import WukongServiceStub
from tests import grpc_web, kube_helpers
from tests.conftest import ALLOWED_ORIGIN
from tests.status_helpers import details_of, details_of_status

GET_WUKONG = "/novasphere.v1.WukongService/GetWukong"
LIST_WUKONGS = "/novasphere.v1.WukongService/ListWukongs"

WEBSOCKET_UPGRADE = {
    "Connection": "Upgrade",
    "Upgrade": "websocket",
    "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
}
"""A WebSocket handshake's request headers, without a ticket."""


@pytest.fixture
def http(stack: devstack.Stack) -> Iterator[httpx.Client]:
    with stack.edge.http_client() as client:
        yield client


@pytest.fixture
def two_wukongs(kube: kubernetes.client.ApiClient, grpc_direct: WukongServiceStub, namespace: str) -> str:
    """Two Wukongs, which the API server's cache has once a read with the last write's cursor returns."""
    kube_helpers.create_wukong(kube, namespace, "alpha", labels={"app": "web"})
    created = kube_helpers.create_wukong(
        kube, namespace, "beta", {**kube_helpers.MINIMAL_SPEC, "cpu": 2, "startStrategy": {"autoStart": True}}
    )
    cursor = created["metadata"]["resourceVersion"]
    grpc_direct.ListWukongs(service_pb2.ListWukongsRequest(namespace=namespace, cursor=cursor))
    return namespace


# REST / JSON


def test_rest_get_returns_the_wukong_as_camel_case_json(http: httpx.Client, two_wukongs: str) -> None:
    response = http.get("/api/v1/wukongs/beta", params={"namespace": two_wukongs})

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert (body["name"], body["namespace"]) == ("beta", two_wukongs)
    assert body["spec"]["cpu"] == 2
    assert body["spec"]["disks"] == [
        {"name": "root", "size": "10Gi", "storageClassName": "local-path", "boot": False, "image": ""}
    ]
    assert body["spec"]["startStrategy"] == {"runStrategy": "", "autoStart": True}
    assert body["createTime"].endswith("Z")
    assert body["etag"].startswith("1-")
    assert "code" not in body
    assert "data" not in body


def test_rest_list_pages_with_camel_case_query_parameters(http: httpx.Client, two_wukongs: str) -> None:
    first = http.get("/api/v1/wukongs", params={"namespace": two_wukongs, "pageSize": 1}).json()
    second = http.get(
        "/api/v1/wukongs", params={"namespace": two_wukongs, "pageSize": 1, "pageToken": first["nextPageToken"]}
    ).json()

    assert [w["name"] for w in first["wukongs"]] == ["alpha"]
    assert [w["name"] for w in second["wukongs"]] == ["beta"]
    assert second["nextPageToken"] == ""
    assert first["wukongs"][0]["labels"] == {"app": "web"}


def test_rest_not_found_is_404_with_a_google_rpc_status_body(http: httpx.Client, namespace: str) -> None:
    response = http.get("/api/v1/wukongs/ghost", params={"namespace": namespace})

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["code"] == grpc.StatusCode.NOT_FOUND.value[0]
    assert "ghost" in body["message"]
    error_info = next(d for d in body["details"] if d["@type"].endswith("google.rpc.ErrorInfo"))
    assert (error_info["reason"], error_info["domain"]) == ("WUKONG_NOT_FOUND", "novasphere.dev")


def test_rest_bad_argument_is_400_with_the_field_violation(http: httpx.Client) -> None:
    response = http.get("/api/v1/wukongs", params={"pageSize": 501})

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    bad_request = next(d for d in body["details"] if d["@type"].endswith("google.rpc.BadRequest"))
    assert bad_request["fieldViolations"][0]["field"] == "pageSize"  # the JSON name the client sent


@pytest.mark.parametrize(
    ("method", "path"),
    # (a GET outside /api/ is the web console's: see test_web_console)
    # (a known path with another method is a 405: see test_rest_edge)
    [("GET", "/api/v1/no-such-thing"), ("DELETE", "/api/v2/tasks/x"), ("POST", "/")],
)
def test_envoy_own_404_is_json_status_too(http: httpx.Client, method: str, path: str) -> None:
    response = http.request(method, path)

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["code"] == grpc.StatusCode.NOT_FOUND.value[0]
    assert body["message"]


def test_api_server_down_is_503_json_for_rest_and_unavailable_for_grpc(stack: devstack.Stack, tmp_path: Path) -> None:
    with socket.socket() as down:  # bound, never listening: connections to it are refused, and no one else gets it
        down.bind(("127.0.0.1", 0))
        port = down.getsockname()[1]
        settings = devstack.envoy_settings(grpc=port, console=port, tls=stack.tls)
        envoy = devstack.start_envoy(settings, state_dir=tmp_path, ca_cert=stack.tls.ca_cert)
        try:
            with envoy.edge.http_client() as http:
                response = http.get("/api/v1/wukongs/x")
            assert response.status_code == 503
            assert response.headers["content-type"] == "application/json"
            assert response.json()["code"] == grpc.StatusCode.UNAVAILABLE.value[0]

            with envoy.edge.channel() as channel, pytest.raises(grpc.RpcError) as raised:
                WukongServiceStub(channel).GetWukong(service_pb2.GetWukongRequest(name="x"), timeout=30)
            assert raised.value.code() is grpc.StatusCode.UNAVAILABLE
        finally:
            envoy.process.stop()


def test_oversized_headers_get_a_json_status(http: httpx.Client) -> None:
    response = http.get("/api/v1/wukongs", headers={"x-padding": "a" * 40_000})

    assert response.status_code == 431
    assert response.headers["content-type"] == "application/json"
    assert response.json()["code"] == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]


def test_websocket_route_bypasses_the_transcoder(http: httpx.Client) -> None:
    """The console WebSocket route goes to the API server's console endpoint, not to the transcoder (which would
    answer 404 'Could not resolve'): an upgrade without a ticket is refused there with a google.rpc.Status body."""
    response = http.get(
        "/ws/v1/consoles/console-0000",
        headers=WEBSOCKET_UPGRADE,
    )

    assert response.status_code == 401
    assert response.json()["code"] == grpc.StatusCode.UNAUTHENTICATED.value[0]
    assert "ticket" in response.json()["message"]


def test_envoy_access_log_leaves_out_query_strings(stack: devstack.Stack, http: httpx.Client) -> None:
    http.get("/api/v1/wukongs", params={"pageToken": "should-not-be-logged"})

    log = next(p for p in stack.processes if p.name == "envoy").log_path

    def logged() -> bool:
        lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
        return any((line["method"], line["path"]) == ("GET", "/api/v1/wukongs") for line in lines)

    kube_helpers.eventually(logged, timeout=10, what="the access log line")
    assert "should-not-be-logged" not in log.read_text()


def test_a_hung_api_server_gets_a_timeout_not_a_hang(stack: devstack.Stack, tmp_path: Path) -> None:
    """REST calls carry no grpc-timeout, so the route timeout is all that bounds them: 504 with a JSON status."""
    with socket.create_server(("127.0.0.1", 0)) as hung:  # accepts connections, never answers
        port = hung.getsockname()[1]
        settings = devstack.envoy_settings(
            grpc=port, console=port, tls=stack.tls, unary_timeout=datetime.timedelta(seconds=2)
        )
        envoy = devstack.start_envoy(settings, state_dir=tmp_path, ca_cert=stack.tls.ca_cert)
        try:
            with envoy.edge.http_client() as http:
                started = time.monotonic()
                response = http.get("/api/v1/wukongs/x")
                elapsed = time.monotonic() - started
        finally:
            envoy.process.stop()

    assert response.status_code == 504
    assert response.json()["code"] == grpc.StatusCode.DEADLINE_EXCEEDED.value[0]
    assert 1.9 <= elapsed < 15  # Envoy's timers run on its loop's cached clock: they may fire a few ms early


# gRPC-Web


def test_grpc_web_get_decodes_to_the_wukong(stack: devstack.Stack, two_wukongs: str) -> None:
    with stack.edge.http_client() as client:
        response = grpc_web.call(
            client, stack.http, GET_WUKONG, service_pb2.GetWukongRequest(namespace=two_wukongs, name="alpha")
        )

    assert response.http_status == 200
    assert response.grpc_status == 0
    wukong = wukong_pb2.Wukong.FromString(response.messages[0])
    assert (wukong.name, wukong.namespace, dict(wukong.labels)) == ("alpha", two_wukongs, {"app": "web"})


def test_grpc_web_list(stack: devstack.Stack, two_wukongs: str) -> None:
    with stack.edge.http_client() as client:
        response = grpc_web.call(
            client, stack.http, LIST_WUKONGS, service_pb2.ListWukongsRequest(namespace=two_wukongs)
        )

    listed = service_pb2.ListWukongsResponse.FromString(response.messages[0])
    assert [w.name for w in listed.wukongs] == ["alpha", "beta"]


def test_grpc_web_error_carries_the_rich_status(stack: devstack.Stack, namespace: str) -> None:
    with stack.edge.http_client() as client:
        response = grpc_web.call(
            client, stack.http, GET_WUKONG, service_pb2.GetWukongRequest(namespace=namespace, name="ghost")
        )

    assert response.grpc_status == grpc.StatusCode.NOT_FOUND.value[0]
    assert response.messages == []
    assert details_of_status(response.status()).reason == "WUKONG_NOT_FOUND"


# native gRPC through Envoy, and reflection


def test_native_grpc_through_envoy(grpc_envoy: WukongServiceStub, two_wukongs: str) -> None:
    listed = grpc_envoy.ListWukongs(service_pb2.ListWukongsRequest(namespace=two_wukongs))
    assert [w.name for w in listed.wukongs] == ["alpha", "beta"]

    with pytest.raises(grpc.RpcError) as raised:
        grpc_envoy.GetWukong(service_pb2.GetWukongRequest(namespace=two_wukongs, name="ghost"))
    assert raised.value.code() is grpc.StatusCode.NOT_FOUND
    assert details_of(raised.value).reason == "WUKONG_NOT_FOUND"


def test_grpcurl_lists_and_calls_the_service_through_reflection(stack: devstack.Stack, two_wukongs: str) -> None:
    grpcurl = str(binaries.ensure_grpcurl(log=False))

    tls = ["-cacert", str(stack.tls.ca_cert)]
    services = _run([grpcurl, *tls, stack.grpc_envoy, "list"]).split()
    described = _run([grpcurl, *tls, stack.grpc_envoy, "describe", "novasphere.v1.WukongService"])
    got = json.loads(
        _run(
            [
                grpcurl,
                *tls,
                "-d",
                json.dumps({"namespace": two_wukongs, "name": "alpha"}),
                stack.grpc_envoy,
                "novasphere.v1.WukongService/GetWukong",
            ]
        )
    )

    assert {"novasphere.v1.WukongService", "grpc.health.v1.Health"} <= set(services)
    assert "rpc GetWukong" in described
    assert "/api/v1/wukongs/{name}" in described
    assert (got["name"], got["namespace"]) == ("alpha", two_wukongs)


def test_grpc_health_through_envoy(stack: devstack.Stack) -> None:
    grpcurl = str(binaries.ensure_grpcurl(log=False))
    tls = ["-cacert", str(stack.tls.ca_cert)]
    health = json.loads(_run([grpcurl, *tls, stack.grpc_envoy, "grpc.health.v1.Health/Check"]))
    assert health == {"status": "SERVING"}


# CORS


def test_cors_preflight_from_an_allowed_origin(http: httpx.Client) -> None:
    response = http.options(
        "/api/v1/wukongs",
        headers={
            "Origin": ALLOWED_ORIGIN,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization, x-api-key, x-client-type",
        },
    )

    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    allowed = {h.strip() for h in response.headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "x-api-key", "x-client-type", "x-grpc-web", "grpc-timeout", "content-type"} <= allowed


def test_cors_preflight_from_another_origin_gets_no_allow_origin(http: httpx.Client) -> None:
    response = http.options(
        "/api/v1/wukongs", headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "GET"}
    )

    # Answered by Envoy's CORS filter itself (the preflight shape, nothing from upstream), without the one header
    # that would let the page read the answer.
    assert response.status_code == 200
    assert "GET" in response.headers["access-control-allow-methods"]
    assert "x-envoy-upstream-service-time" not in response.headers
    assert "grpc-status" not in response.headers
    assert "access-control-allow-origin" not in response.headers


def test_cors_response_exposes_grpc_status_headers(http: httpx.Client, namespace: str) -> None:
    response = http.get("/api/v1/wukongs", params={"namespace": namespace}, headers={"Origin": ALLOWED_ORIGIN})

    assert response.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert "grpc-status-details-bin" in response.headers["access-control-expose-headers"]


def _run(command: list[str]) -> str:
    result = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_metrics_count_requests_by_client_type(stack: devstack.Stack, http: httpx.Client, namespace: str) -> None:
    http.get("/api/v1/wukongs", params={"namespace": namespace})
    with stack.edge.http_client() as client:
        grpc_web.call(client, stack.http, LIST_WUKONGS, service_pb2.ListWukongsRequest(namespace=namespace))
    http.get("/api/v1/wukongs", params={"namespace": namespace}, headers={"x-client-type": "mobile"})

    metrics = httpx.get(stack.metrics_url, timeout=10).text

    for client_type in ("rest", "grpc-web", "mobile"):
        assert (
            f'novasphere_grpc_requests_total{{client_type="{client_type}",code="OK",method="{LIST_WUKONGS}"}}'
            in metrics
        )


def test_an_unknown_query_parameter_is_a_400_not_a_pass_through(http: httpx.Client) -> None:
    """Only cache-busters (`_`) are ignored (test_rest_edge): a misspelt parameter fails loudly."""
    response = http.get("/api/v1/wukongs", params={"pagesize": "5", "_": "1733212345"})  # pageSize, misspelt

    assert response.status_code == 400, (response.status_code, response.headers, response.text)
    assert response.headers["content-type"] == "application/json"
    assert response.json()["code"] == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    bad_request = next(d for d in response.json()["details"] if d["@type"].endswith("google.rpc.BadRequest"))
    assert bad_request["fieldViolations"] == [
        {"field": "pagesize", "description": "no such query parameter", "reason": ""}
    ]
