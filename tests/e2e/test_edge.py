"""Envoy's public listener as clients meet it: TLS with ALPN offering h2 and http/1.1, HSTS on its answers, plain HTTP
refused on the TLS port; and behind a proxy, X-Forwarded-For believed exactly as far as the trusted hops setting says
(the login limit and the console's recorded address follow the real client; a client cannot spoof its way around)."""

from __future__ import annotations

import socket
import ssl
import uuid
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import kubernetes.client
import pytest

from devcluster import procs
from devcluster import stack as devstack
from novasphere.v1 import console_service_pb2 as console_pb
from novasphere.v1 import wukong_pb2
from novasphere.v1.console_service_pb2_grpc import ConsoleServiceStub
from novasphere.v1.wukong_service_pb2_grpc import WukongServiceStub
from tests import kube_helpers
from tests.e2e.test_tasks import wait_power

Power = wukong_pb2.WukongStatus.PowerState
TICKET = "ticket.novasphere.dev."


def _alpn(edge: devstack.Edge, offered: list[str]) -> str | None:
    context = edge.ssl_context()
    context.set_alpn_protocols(offered)
    with (
        socket.create_connection((edge.host, edge.port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=edge.host) as tls,
    ):
        return tls.selected_alpn_protocol()


def test_the_listener_offers_h2_and_http11_over_tls(stack: devstack.Stack) -> None:
    assert stack.edge.url.startswith("https://")
    assert _alpn(stack.edge, ["h2", "http/1.1"]) == "h2"
    assert _alpn(stack.edge, ["http/1.1"]) == "http/1.1"


def test_a_client_that_does_not_trust_the_edge_ca_is_refused(stack: devstack.Stack) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        _alpn(devstack.Edge(stack.edge.port, Path(ssl.get_default_verify_paths().cafile or "/dev/null")), ["h2"])


def test_plain_http_on_the_tls_port_gets_no_api(stack: devstack.Stack) -> None:
    with socket.create_connection((stack.edge.host, stack.edge.port), timeout=10) as plain:
        plain.sendall(b"GET /api/v1/wukongs HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        answer = b""
        try:
            while chunk := plain.recv(4096):
                answer += chunk
        except ConnectionResetError:
            pass
    assert b'"wukongs"' not in answer
    assert not answer.startswith(b"HTTP/1.1 200")


def test_answers_carry_hsts_errors_included(stack: devstack.Stack, namespace: str) -> None:
    with stack.edge.http_client() as http:
        found = http.get("/api/v1/wukongs", params={"namespace": namespace})
        missing = http.get("/api/v1/wukongs/nope", params={"namespace": namespace})
        unrouted = http.post("/no/such/path")
        page = http.get("/vms")  # the web console's
    for response in (found, missing, unrouted, page):
        assert response.headers["strict-transport-security"] == "max-age=300", response.status_code
    assert (found.status_code, missing.status_code, unrouted.status_code, page.status_code) == (200, 404, 404, 200)


# Behind a proxy: the trusted hops setting.


@pytest.fixture(scope="module")
def fronts(stack: devstack.Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[int, devstack.Envoy]]:
    """Two more Envoys in front of the session's API server, each allowing 2 logins a minute per client address: one
    trusting one proxy hop (as behind an ingress), one trusting none (Envoy at the edge)."""
    state = tmp_path_factory.mktemp("fronts")
    started = {
        hops: devstack.start_front(
            stack.api,
            tls=stack.tls,
            state_dir=state,
            name=f"envoy-{hops}",
            xff_num_trusted_hops=hops,
            logins_per_minute_per_ip=2,
        )
        for hops in (0, 1)
    }
    with procs.stopping([envoy.process for envoy in started.values()]):
        yield started


def _login_codes(envoy: devstack.Envoy, forwarded_for: list[str]) -> list[int]:
    with envoy.edge.http_client() as http:
        return [
            http.post(
                "/api/v1/auth/login",
                json={"username": f"nobody-{uuid.uuid4().hex[:8]}", "password": "wrong"},
                headers={"X-Forwarded-For": address},
            ).status_code
            for address in forwarded_for
        ]


def test_with_a_trusted_hop_the_login_limit_follows_the_real_client(fronts: dict[int, devstack.Envoy]) -> None:
    codes = _login_codes(fronts[1], ["203.0.113.1", "203.0.113.1", "203.0.113.1", "203.0.113.2", "203.0.113.2"])
    assert codes == [401, 401, 429, 401, 401]


def test_without_a_trusted_hop_a_forged_forwarded_for_is_ignored(fronts: dict[int, devstack.Envoy]) -> None:
    codes = _login_codes(fronts[0], ["198.51.100.1", "198.51.100.2", "198.51.100.3", "198.51.100.4"])
    assert codes == [401, 401, 429, 429]


async def _client_ip_of_a_console(
    envoy: devstack.Envoy, grpc_direct: WukongServiceStub, namespace: str, forwarded_for: str
) -> str:
    """Opens a serial console through `envoy` as a client behind `forwarded_for`; the address the API recorded."""
    with envoy.edge.channel() as channel:
        stub = ConsoleServiceStub(channel)
        request = console_pb.CreateConsoleSessionRequest(
            name="edge", namespace=namespace, protocol=console_pb.SERIAL, take_over=True
        )
        link = stub.CreateConsoleSession(request)
        assert link.console_url.startswith(f"{envoy.edge.ws_url}/ws/")
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(
                link.console_url,
                protocols=(TICKET + link.ticket,),
                # Envoy's own header for the API server, which a client must not be able to set either
                headers={"X-Forwarded-For": forwarded_for, "X-Novasphere-Client-Address": "192.0.2.66"},
                ssl=envoy.edge.ssl_context(),
            ) as console,
        ):
            status = stub.GetConsoleStatus(
                console_pb.GetConsoleStatusRequest(name="edge", namespace=namespace, protocol=console_pb.SERIAL)
            )
            await console.close()
    assert status.connected
    return status.client_ip


async def test_the_console_records_the_address_the_trusted_hop_reports(
    fronts: dict[int, devstack.Envoy],
    grpc_direct: WukongServiceStub,
    kube: kubernetes.client.ApiClient,
    namespace: str,
) -> None:
    kube_helpers.create_wukong(
        kube, namespace, "edge", {**kube_helpers.MINIMAL_SPEC, "startStrategy": {"autoStart": True}}
    )
    wait_power(grpc_direct, namespace, "edge", Power.RUNNING)

    assert await _client_ip_of_a_console(fronts[1], grpc_direct, namespace, "203.0.113.9") == "203.0.113.9"
    assert await _client_ip_of_a_console(fronts[0], grpc_direct, namespace, "203.0.113.9") == "127.0.0.1"
