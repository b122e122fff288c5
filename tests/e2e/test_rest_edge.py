"""What a REST client (a mobile or desktop app, a browser page) meets at Envoy: one error shape whoever answers,
field paths as the JSON names it sent, 405 with `Allow`, cache-busters ignored, no gRPC headers, no banner, the
security and caching headers, and the origins `make run` lets call the API."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import kubernetes.client
import pytest

from devcluster import accounts, procs
from devcluster import stack as devstack
from novasphere.v1 import auth_service_pb2 as auth_pb2
from novasphere.v1 import wukong_service_pb2 as service_pb2
from novasphere.v1.wukong_service_pb2_grpc import WukongServiceStub
from tests import grpc_web, kube_helpers
from tests.conftest import ALLOWED_ORIGIN, TENANT
from tests.status_helpers import details_of

GRPC_HEADERS = ("grpc-status", "grpc-message", "grpc-status-details-bin", "grpc-accept-encoding")
PASSWORD = "correct horse battery staple"


@pytest.fixture
def http(stack: devstack.Stack) -> Iterator[httpx.Client]:
    with stack.edge.http_client() as client:
        yield client


def error_info(reason: str) -> dict[str, Any]:
    return {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": reason,
        "domain": "novasphere.dev",
        "metadata": {},
    }


def request_info(response: httpx.Response) -> dict[str, Any]:
    """The detail every error ends with, Envoy's own replies included: the id the response's header names too."""
    return {
        "@type": "type.googleapis.com/google.rpc.RequestInfo",
        "requestId": response.headers["x-request-id"],
        "servingData": "",
    }


def with_request_info(expected: dict[str, Any], response: httpx.Response) -> dict[str, Any]:
    return {**expected, "details": [*expected["details"], request_info(response)]}


def bad_request(field: str, description: str) -> dict[str, Any]:
    return {
        "@type": "type.googleapis.com/google.rpc.BadRequest",
        "fieldViolations": [{"field": field, "description": description, "reason": ""}],
    }


def assert_rest_headers(response: httpx.Response) -> None:
    """What every REST response carries, and what none does."""
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "server" not in response.headers
    for name in GRPC_HEADERS:
        assert name not in response.headers, (name, response.headers)


# Errors: the transcoder's, in the API's shape


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "expected"),
    [
        pytest.param(
            "POST",
            "/api/v1/wukongs",
            '{"spec":{"cpu":"abc"}}',
            400,
            {
                "code": 3,
                "message": 'spec.cpu: invalid value "abc" for type TYPE_INT32',
                "details": [
                    error_info("INVALID_ARGUMENT"),
                    bad_request("spec.cpu", 'invalid value "abc" for type TYPE_INT32'),
                ],
            },
            id="bad integer in the body: its path in the body the client sent, not the request's (wukong.spec.cpu)",
        ),
        pytest.param(
            "PATCH",
            "/api/v1/wukongs/x",
            '{"spec":{"disks":[{"storageClassName":5}]}}',
            400,
            {
                "code": 3,
                "message": "spec.disks[0].storageClassName: invalid value 5 for type TYPE_STRING",
                "details": [
                    error_info("INVALID_ARGUMENT"),
                    bad_request("spec.disks[0].storageClassName", "invalid value 5 for type TYPE_STRING"),
                ],
            },
            id="wrong type deep in the body: JSON names, index kept",
        ),
        pytest.param(
            "GET",
            "/api/v1/wukongs?pageSize=abc",
            None,
            400,
            {
                "code": 3,
                "message": 'pageSize: invalid value "abc" for type TYPE_INT32',
                "details": [
                    error_info("INVALID_ARGUMENT"),
                    bad_request("pageSize", 'invalid value "abc" for type TYPE_INT32'),
                ],
            },
            id="bad integer in the query",
        ),
        pytest.param(
            "POST",
            "/api/v1/wukongs/x/console",
            '{"protocol":"BOGUS"}',
            400,
            {
                "code": 3,
                "message": 'protocol: invalid value "BOGUS" for type type.googleapis.com/novasphere.v1.ConsoleProtocol',
                "details": [
                    error_info("INVALID_ARGUMENT"),
                    bad_request(
                        "protocol", 'invalid value "BOGUS" for type type.googleapis.com/novasphere.v1.ConsoleProtocol'
                    ),
                ],
            },
            id="unknown enum value",
        ),
        pytest.param(
            "GET",
            "/api/v1/wukongs?pagesize=5",
            None,
            400,
            {
                "code": 3,
                "message": "pagesize: no such query parameter",
                "details": [error_info("INVALID_ARGUMENT"), bad_request("pagesize", "no such query parameter")],
            },
            id="misspelt query parameter",
        ),
        pytest.param(
            "POST",
            "/api/v1/wukongs",
            "notjson",
            400,
            {
                "code": 3,
                "message": "the request body is not JSON of this method's request: Unexpected token.\nnotjson\n^",
                "details": [error_info("MALFORMED_REQUEST")],
            },
            id="body not JSON",
        ),
        pytest.param(
            "POST",
            "/api/v1/wukongs/x/console",
            '{"protocol":["SERIAL"]}',
            400,
            {
                "code": 3,
                "message": "the request body is not JSON of this method's request: "
                "Proto field is not repeating, cannot start list.",
                "details": [error_info("MALFORMED_REQUEST")],
            },
            id="JSON of another shape",
        ),
        pytest.param(
            "GET",
            "/api/v1/no-such-thing",
            None,
            404,
            {
                "code": 5,
                "message": "Could not resolve /api/v1/no-such-thing to a method.",
                "details": [error_info("ROUTE_NOT_FOUND")],
            },
            id="no route",
        ),
        *(
            pytest.param(
                "GET",
                path,
                None,
                404,
                {
                    "code": 5,
                    "message": f"the path {path} has an empty segment: fill in the identifier",
                    "details": [error_info("ROUTE_NOT_FOUND")],
                },
                id=f"empty segment {path}",
            )
            # The first would otherwise be ListTasks: a link from a validate-only delete's task, whose id is "".
            for path in ("/api/v1/tasks/", "/api/v1/wukongs//stats")
        ),
    ],
)
def test_envoy_errors_have_the_api_error_shape(
    http: httpx.Client, method: str, path: str, body: str | None, status: int, expected: dict[str, Any]
) -> None:
    response = http.request(method, path, content=body)

    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert response.json() == with_request_info(expected, response)
    assert_rest_headers(response)


def test_an_unknown_json_field_is_ignored_not_refused(http: httpx.Client, namespace: str) -> None:
    """The transcoder drops unknown JSON fields (no option refuses them): the API validates what is left."""
    response = http.post(
        "/api/v1/wukongs",
        json={"name": "Bad_Name", "namespace": namespace, "cpuCount": 4, "spec": dict(kube_helpers.MINIMAL_SPEC)},
    )

    assert response.status_code == 400
    violations = response.json()["details"][1]["fieldViolations"]
    assert [v["field"] for v in violations] == ["name"]


# Errors: the API's own, with JSON names for REST


def test_the_api_field_paths_are_json_names_for_rest_and_proto_paths_for_grpc(
    http: httpx.Client, grpc_envoy: WukongServiceStub
) -> None:
    response = http.get("/api/v1/wukongs", params={"pageSize": 501})

    description = "must be between 1 and 500 (or 0 for 50); got 501"
    assert response.status_code == 400
    assert response.json() == {
        "code": 3,
        "message": f"invalid request: pageSize: {description}",
        "details": [
            error_info("INVALID_ARGUMENT"),
            bad_request("pageSize", description),
            request_info(response),
        ],
    }
    assert_rest_headers(response)

    with pytest.raises(grpc.RpcError) as raised:
        grpc_envoy.ListWukongs(service_pb2.ListWukongsRequest(page_size=501))
    assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert details_of(raised.value).field_violations == {"page_size": description}


def test_the_api_field_paths_are_relative_to_the_body_sent(http: httpx.Client, namespace: str) -> None:
    """CreateWukong's body is the request's `wukong` field: the API names `wukong.spec.ssh_key_secret`, the client
    sent `spec.sshKeySecret`. Map keys keep their spelling."""
    spec = {**kube_helpers.MINIMAL_SPEC, "sshKeySecret": "Bad_Secret!"}
    response = http.post("/api/v1/wukongs", json={"name": "w", "namespace": namespace, "spec": spec})
    labelled = http.post(
        "/api/v1/wukongs",
        json={"name": "w", "namespace": namespace, "labels": {"odd_key": "-x-"}, "spec": kube_helpers.MINIMAL_SPEC},
    )

    assert response.status_code == 400
    assert response.json()["message"] == "invalid request: spec.sshKeySecret: 'Bad_Secret!' is not a Secret name"
    assert response.json()["details"][1] == bad_request("spec.sshKeySecret", "'Bad_Secret!' is not a Secret name")
    assert labelled.json()["details"][1]["fieldViolations"][0]["field"] == "labels[odd_key]"


# 405


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", "/api/v1/tasks/x", "GET"),
        ("PUT", "/api/v1/wukongs/x", "DELETE, GET, PATCH"),
        ("GET", "/api/v1/wukongs:batch", "POST"),
        ("OPTIONS", "/api/v1/wukongs", "GET, POST"),  # not a preflight: no Origin
    ],
)
def test_a_method_the_path_does_not_have_is_405_with_allow(
    http: httpx.Client, method: str, path: str, allow: str
) -> None:
    response = http.request(method, path)

    assert response.status_code == 405
    assert response.headers["allow"] == allow
    assert response.json() == {
        "code": 12,
        "message": f"{method} is not a method of this path; it has {allow}",
        "details": [error_info("METHOD_NOT_ALLOWED"), request_info(response)],
    }
    assert_rest_headers(response)


def test_a_browser_can_read_a_405_and_its_preflight_still_passes(http: httpx.Client) -> None:
    origin = ALLOWED_ORIGIN
    preflight = http.options("/api/v1/wukongs/x", headers={"Origin": origin, "Access-Control-Request-Method": "PUT"})
    refused = http.put("/api/v1/wukongs/x", headers={"Origin": origin})

    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == origin
    assert refused.status_code == 405
    assert refused.headers["access-control-allow-origin"] == origin


# Query parameters


def test_a_cache_buster_is_ignored(http: httpx.Client, namespace: str) -> None:
    plain = http.get("/api/v1/wukongs", params={"namespace": namespace})
    busted = http.get("/api/v1/wukongs", params={"namespace": namespace, "_": "1733212345"})

    assert busted.status_code == 200
    assert busted.json() == plain.json()


# Headers


def test_rest_responses_carry_no_grpc_headers_but_grpc_web_keeps_them(
    stack: devstack.Stack, http: httpx.Client, namespace: str
) -> None:
    listed = http.get("/api/v1/wukongs", params={"namespace": namespace})
    with stack.edge.http_client() as client:
        web = grpc_web.call(
            client,
            stack.http,
            "/novasphere.v1.WukongService/GetWukong",
            service_pb2.GetWukongRequest(namespace=namespace, name="ghost"),
        )

    assert listed.status_code == 200
    assert_rest_headers(listed)
    assert web.headers["grpc-status"] == "5"
    assert "grpc-status-details-bin" in web.headers


def test_a_rest_stream_carries_no_grpc_headers(stack: devstack.Stack, namespace: str) -> None:
    with (
        stack.edge.http_client() as client,
        client.stream("GET", "/api/v1/watch/wukongs", params={"namespace": namespace}) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream"
        assert_rest_headers(response)


@pytest.fixture
def operator(kube: kubernetes.client.ApiClient) -> Iterator[str]:
    name = f"u-{uuid.uuid4().hex[:10]}"
    accounts.create_user(kube, name, PASSWORD, tenant=TENANT, role="operator")
    yield name
    accounts.unbind(kube, name)


def test_auth_responses_are_never_stored(stack: devstack.Stack, http: httpx.Client, operator: str) -> None:
    def login() -> httpx.Response | None:
        response = http.post("/api/v1/auth/login", json={"username": operator, "password": PASSWORD})
        return response if response.status_code == 200 else None

    logged_in = kube_helpers.eventually(login, timeout=30, what="the API server to know the new user")
    token = logged_in.json()["accessToken"]
    me = http.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    key = http.post(
        "/api/v1/auth/api-keys",
        json={"name": "ci", "permissions": ["vm:query"]},
        headers={"Authorization": f"Bearer {token}"},
    )
    with stack.edge.http_client() as client:
        web = grpc_web.call(
            client,
            stack.http,
            "/novasphere.v1.AuthService/Login",
            auth_pb2.LoginRequest(username=operator, password=PASSWORD),
        )
    wukongs = http.get("/api/v1/wukongs")

    for response in (logged_in, me, key):
        assert response.status_code == 200, response.text
        assert (response.headers["cache-control"], response.headers["pragma"]) == ("no-store", "no-cache")
        assert_rest_headers(response)
    assert (web.grpc_status, web.headers["cache-control"]) == (0, "no-store")
    assert "cache-control" not in wukongs.headers


def test_no_banner_and_nosniff_on_every_kind_of_response(http: httpx.Client) -> None:
    page = http.get("/")
    own_error = http.post("/")
    websocket = http.get("/ws/v1/consoles/console-0000")

    for response in (page, own_error, websocket):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "server" not in response.headers
    assert page.headers["content-type"].startswith("text/html")
    assert own_error.status_code == 404


@pytest.mark.parametrize("path", ["/stats", "/server_info", "/clusters", "/config_dump", "/metrics"])
def test_envoy_admin_and_metrics_are_not_on_the_public_listener(http: httpx.Client, path: str) -> None:
    """Envoy's admin interface listens on 127.0.0.1 on a port of its own and the API server's metrics on another:
    the public listener serves such a path as one of the web console's (its page), or refuses it."""
    page = http.get(path)
    admin_post = http.post("/quitquitquit")

    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert '<div id="root">' in page.text
    assert "envoy" not in page.text.lower()
    assert "novasphere_grpc_requests_total" not in page.text
    assert admin_post.status_code == 404
    assert admin_post.json()["details"] == [error_info("ROUTE_NOT_FOUND"), request_info(admin_post)]


# CORS as `make run` sets it


@pytest.fixture(scope="module")
def dev_edge(stack: devstack.Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[devstack.Edge]:
    """An Envoy in front of the session's API server allowing what `make run` allows: the origins of the web console
    it serves and of Vite's dev server."""
    state = tmp_path_factory.mktemp("dev-edge")

    def start(ports: list[int]) -> devstack.Envoy:
        origins = (*devstack.VITE_ORIGINS, *devstack.served_origins(ports[0]))
        return devstack.start_front(
            stack.api, tls=stack.tls, state_dir=state, listen_port=ports[0], cors_allowed_origins=origins
        )

    envoy = procs.on_free_ports(1, start)
    with procs.stopping([envoy.process]):
        yield envoy.edge


@pytest.mark.parametrize("origin", ["served-127", "served-localhost", "vite-localhost", "vite-127"])
def test_make_run_lets_the_served_console_and_vite_call_the_api(dev_edge: devstack.Edge, origin: str) -> None:
    allowed = {
        "served-127": f"https://127.0.0.1:{dev_edge.port}",
        "served-localhost": f"https://localhost:{dev_edge.port}",
        "vite-localhost": "http://localhost:5173",
        "vite-127": "http://127.0.0.1:5173",
    }[origin]
    with dev_edge.http_client() as http:
        preflight = http.options(
            "/api/v1/wukongs",
            headers={
                "Origin": allowed,
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "authorization",
            },
        )
        actual = http.get("/api/v1/wukongs", headers={"Origin": allowed})

    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == allowed
    assert actual.status_code == 200
    assert actual.headers["access-control-allow-origin"] == allowed


@pytest.mark.parametrize("origin", ["null", "http://localhost:3001", "https://127.0.0.1"])
def test_make_run_refuses_other_origins(dev_edge: devstack.Edge, origin: str) -> None:
    """`null` is what a page opened from a file (an Electron renderer on file://) sends: any file could claim it."""
    with dev_edge.http_client() as http:
        preflight = http.options("/api/v1/wukongs", headers={"Origin": origin, "Access-Control-Request-Method": "GET"})
        actual = http.get("/api/v1/wukongs", headers={"Origin": origin})

    assert preflight.status_code == 200
    assert "access-control-allow-origin" not in preflight.headers
    assert actual.status_code == 200  # served, but the browser keeps it from the page
    assert "access-control-allow-origin" not in actual.headers
