"""Consoles end to end: two API processes without the development identity (the first behind Envoy, reached over
TLS, so console URLs are wss://), the simulator's KubeVirt consoles behind kube-apiserver. A serial session logs in
and runs a command through Envoy; noVNC in chromium renders the VM's screen from exactly the console URL the API
returned; a ticket works once, not after it expired, not from a page of another origin; another tenant cannot see or
open the console; status shows the live session; a second session is refused naming the holder, or takes over and
closes the holder with a reason naming the taker; a disconnect on the second API process closes the socket the first
one holds; stopping the VM closes the console."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import json
import ssl
import time
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import httpx
import kubernetes.client
import pytest
from prometheus_client.parser import text_string_to_metric_families

from devcluster import accounts, procs
from devcluster import stack as devstack
from novasphere.v1 import auth_service_pb2 as auth_pb2
from novasphere.v1 import console_service_pb2 as pb
from novasphere.v1 import wukong_service_pb2 as service_pb2
from novasphere.v1.auth_service_pb2_grpc import AuthServiceStub
from novasphere.v1.console_service_pb2_grpc import ConsoleServiceStub
from novasphere.v1.wukong_service_pb2_grpc import WukongServiceStub
from server.auth import store
from tests import kube_helpers
from tests.conftest import TENANT
from tests.e2e.test_auth import PASSWORD, SECURE_ENV, bearer, encodings
from tests.e2e.test_tasks import Power, wait_power
from tests.status_helpers import details_of
from tests.vnc import run_novnc
from tests.web_browser import spki_sha256

TICKET_SECONDS = 3
GUEST_USER, GUEST_PASSWORD = "ops", "s3cret"
TICKET = "ticket.novasphere.dev."
PAGE_ORIGIN = "http://console.localhost"
"""Where the noVNC page is served from in chromium (by interception: no port to pick) and the origin consoles allow."""


@dataclass(frozen=True)
class Consoles:
    first: ConsoleServiceStub
    second: ConsoleServiceStub
    second_auth: AuthServiceStub
    """The second API process's AuthService, straight (no Envoy, so no per-address login limit)."""
    wukongs: WukongServiceStub
    http: httpx.Client
    tls: ssl.SSLContext
    """Trusts the edge CA, for wss:// console URLs."""
    spki: str
    """The SHA-256 of Envoy's serving key (base64), which chromium is told to accept."""
    login: Callable[..., tuple[tuple[str, str]]]
    metrics_url: str
    """The first API process's Prometheus `/metrics`."""
    logs: tuple[Path, ...]
    """Both API processes' logs (the first at DEBUG) and Envoy's, with its access log."""


@pytest.fixture(scope="module")
def consoles(
    stack: devstack.Stack, kube: kubernetes.client.ApiClient, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Consoles]:
    state = tmp_path_factory.mktemp("consoles")
    env = {
        **SECURE_ENV,
        "NOVASPHERE_CONSOLE_ORIGINS": PAGE_ORIGIN,
        "NOVASPHERE_CONSOLE_TICKET_SECONDS": str(TICKET_SECONDS),
    }
    apis = [
        devstack.start_api_server(
            api_kubeconfig=stack.api_kubeconfig,
            log_path=state / f"api-{n}.log",
            extra_env={**env, "NOVASPHERE_LOG_LEVEL": level},
        )
        for n, level in ((0, "DEBUG"), (1, "INFO"))
    ]
    envoy = devstack.start_front(apis[0], tls=stack.tls, state_dir=state)
    made: list[str] = []

    def login(role: str = "operator", tenant: str = TENANT, *, name: str = "") -> tuple[tuple[str, str]]:
        if not name:
            name = f"c-{uuid.uuid4().hex[:10]}"
            accounts.create_user(kube, name, PASSWORD, tenant=tenant, role=role)
            made.append(name)

        def attempt() -> str | None:
            response = http.post("/api/v1/auth/login", json={"username": name, "password": PASSWORD})
            return str(response.json()["accessToken"]) if response.status_code == 200 else None

        return bearer(kube_helpers.eventually(attempt, timeout=20, what=f"login of {name}"))

    with (
        procs.stopping([*(api.process for api in apis), envoy.process]),
        envoy.edge.channel() as first,
        grpc.insecure_channel(apis[1].target) as second,
        envoy.edge.http_client() as http,
    ):
        yield Consoles(
            ConsoleServiceStub(first),
            ConsoleServiceStub(second),
            AuthServiceStub(second),
            WukongServiceStub(first),
            http,
            envoy.edge.ssl_context(),
            spki_sha256(stack.tls.serving_cert),
            login,
            apis[0].metrics_url,
            (state / "api-0.log", state / "api-1.log", state / "logs" / "envoy.log"),
        )
    for name in made:
        accounts.unbind(kube, name)


@pytest.fixture(scope="module")
def vm(grpc_direct: WukongServiceStub, kube: kubernetes.client.ApiClient) -> Iterator[tuple[str, str]]:
    """A running Wukong whose guest has the user ops/s3cret on its serial console."""
    namespace = f"t-{uuid.uuid4().hex[:10]}"
    kube_helpers.create_namespace(kube, namespace, {"novasphere.dev/tenant": TENANT})
    spec = {**kube_helpers.MINIMAL_SPEC, "cloudInitUser": {"name": GUEST_USER, "password": GUEST_PASSWORD}}
    kube_helpers.create_wukong(kube, namespace, "console-vm", spec)
    wait_power(grpc_direct, namespace, "console-vm", Power.RUNNING)
    yield namespace, "console-vm"
    kube_helpers.delete_namespace(kube, namespace)


def issue(
    consoles: Consoles,
    who: tuple[tuple[str, str]],
    vm: tuple[str, str],
    protocol: pb.ConsoleProtocol.ValueType = pb.SERIAL,
    **options: Any,
) -> pb.ConsoleSession:
    namespace, name = vm
    request = pb.CreateConsoleSessionRequest(name=name, namespace=namespace, protocol=protocol, **options)
    response: pb.ConsoleSession = consoles.first.CreateConsoleSession(request, metadata=who)
    return response


_SESSIONS: dict[int, aiohttp.ClientSession] = {}
"""Each test socket's own client session, closed with it."""


async def connect(
    url: str, ticket: str, *, tls: ssl.SSLContext | bool = True, origin: str | None = None, via_query: bool = False
) -> aiohttp.ClientWebSocketResponse:
    """`tls`: how a wss:// URL's certificate is checked (the edge CA's context)."""
    session = aiohttp.ClientSession()
    headers = {"Origin": origin} if origin else {}
    try:
        if via_query:
            socket_ = await session.ws_connect(f"{url}?ticket={ticket}", headers=headers, max_msg_size=0, ssl=tls)
        else:
            socket_ = await session.ws_connect(
                url, protocols=(TICKET + ticket, "binary"), headers=headers, max_msg_size=0, ssl=tls
            )
    except BaseException:
        await session.close()
        raise
    _SESSIONS[id(socket_)] = session
    return socket_


async def close(socket_: aiohttp.ClientWebSocketResponse) -> None:
    """Closes the socket and its client session (again is a no-op)."""
    await socket_.close()
    session = _SESSIONS.pop(id(socket_), None)
    if session is not None:
        await session.close()


async def refused_with(url: str, ticket: str, **options: Any) -> int:
    try:
        socket_ = await connect(url, ticket, **options)
    except aiohttp.WSServerHandshakeError as error:
        return error.status
    await close(socket_)
    raise AssertionError("the console accepted the connection")


async def read_until(socket_: aiohttp.ClientWebSocketResponse, wanted: bytes, *, within: float = 10) -> bytes:
    seen = b""
    async with asyncio.timeout(within):
        while wanted not in seen:
            message = await socket_.receive()
            assert message.type == aiohttp.WSMsgType.BINARY, message
            seen += message.data
    return seen


async def closed_with(socket_: aiohttp.ClientWebSocketResponse, *, within: float = 10) -> tuple[int, str]:
    """The close code and reason the server ended the socket with (console output before it is skipped)."""
    async with asyncio.timeout(within):
        while True:
            message = await socket_.receive()
            if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
                code = socket_.close_code or 0
                await close(socket_)
                return int(code), str(message.extra or "")


def status(
    consoles: Consoles,
    who: tuple[tuple[str, str]],
    vm: tuple[str, str],
    protocol: pb.ConsoleProtocol.ValueType = pb.SERIAL,
) -> pb.ConsoleSession:
    request = pb.GetConsoleStatusRequest(name=vm[1], namespace=vm[0], protocol=protocol)
    response: pb.ConsoleSession = consoles.second.GetConsoleStatus(request, metadata=who)
    return response


async def test_a_serial_session_logs_in_and_runs_a_command_through_envoy(
    consoles: Consoles, vm: tuple[str, str]
) -> None:
    who = consoles.login()
    response = consoles.http.post(
        f"/api/v1/wukongs/{vm[1]}/console",
        params={"namespace": vm[0]},
        json={"protocol": "SERIAL"},
        headers=dict(who),
    )
    assert response.status_code == 200, response.text
    link = response.json()
    public = str(consoles.http.base_url).rstrip("/")
    assert public.startswith("https://")
    assert link["consoleUrl"].startswith(public.replace("https://", "wss://", 1) + "/ws/v1/consoles/")
    assert link["ticket"] not in link["consoleUrl"]
    socket_ = await connect(link["consoleUrl"], link["ticket"], tls=consoles.tls)
    try:
        await socket_.send_bytes(b"\r")
        await read_until(socket_, b"login: ")
        await socket_.send_str(f"{GUEST_USER}\r")  # a terminal's text frame works too
        await read_until(socket_, b"Password: ")
        await socket_.send_bytes(f"{GUEST_PASSWORD}\r".encode())
        await read_until(socket_, b"$ ")
        await socket_.send_bytes(b"echo hello from novasphere\r")
        assert b"hello from novasphere\r\n" in await read_until(socket_, b"hello from novasphere\r\n")

        live = status(consoles, who, vm)  # asked of the other replica
        assert (live.state, live.connected, live.client_ip) == (pb.ConsoleSession.CONNECTED, True, "127.0.0.1")
        assert (live.session_id, bool(live.user)) == (link["sessionId"], True)
        assert live.connect_time.seconds > 0
        rest = consoles.http.get(
            f"/api/v1/wukongs/{vm[1]}/console/status",
            params={"namespace": vm[0], "protocol": "SERIAL"},
            headers=dict(who),
        ).json()
        assert (rest["connected"], rest.get("ticket", "")) == (True, "")  # the ticket is shown once only
        await socket_.send_bytes(b"exit\r")  # the guest's tty outlives the connection: leave it logged out
        await read_until(socket_, b"login: ")
    finally:
        await close(socket_)

    def ended() -> pb.ConsoleSession | None:
        latest = status(consoles, who, vm)
        return latest if latest.state == pb.ConsoleSession.CLOSED else None

    over = kube_helpers.eventually(ended, timeout=10, what="the session recorded as closed")
    assert over.close_code == 1000
    assert min(over.bytes_to_client, over.bytes_from_client) > 0
    events = [json.loads(line) for line in consoles.logs[0].read_text().splitlines() if line.startswith("{")]
    logged = [e for e in events if e.get("session") == link["sessionId"]]
    assert [e["event"] for e in logged] == ["console.connected", "console.closed"]
    assert (logged[1]["close_code"], logged[1]["bytes_to_client"] > 0) == (1000, True)
    assert logged[0]["request_id"] == logged[1]["request_id"] != ""  # the WebSocket request's, from Envoy
    async with httpx.AsyncClient() as client:
        exposed = (await client.get(consoles.metrics_url)).text
    metrics = {
        sample.name + str(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(exposed)
        for sample in family.samples
    }
    assert metrics["novasphere_console_bytes_total[('direction', 'to_client'), ('protocol', 'serial')]"] > 0
    assert metrics["novasphere_console_sessions[('protocol', 'serial')]"] == 0  # closed
    assert metrics["novasphere_console_session_duration_seconds_count[('protocol', 'serial')]"] >= 1


async def test_a_ticket_works_once_in_time_from_an_allowed_origin_only(consoles: Consoles, vm: tuple[str, str]) -> None:
    who = consoles.login()
    link = issue(consoles, who, vm)
    assert await refused_with(link.console_url, link.ticket, tls=consoles.tls, origin="http://evil.example") == 403
    assert await refused_with(link.console_url, "not-the-ticket", tls=consoles.tls) == 401
    socket_ = await connect(link.console_url, link.ticket, tls=consoles.tls, origin=PAGE_ORIGIN, via_query=True)
    assert await refused_with(link.console_url, link.ticket, tls=consoles.tls) == 401  # used
    await close(socket_)
    assert await refused_with(link.console_url, link.ticket, tls=consoles.tls) == 401  # still used after it closed

    # the web console's own page (the origin the link was made for, reached through Envoy) needs no setting
    own = await free_link(consoles, who, vm)
    page = urllib.parse.urlsplit(own.console_url.replace("wss://", "https://", 1))
    socket_ = await connect(own.console_url, own.ticket, tls=consoles.tls, origin=f"{page.scheme}://{page.netloc}")
    await close(socket_)

    stale = await free_link(consoles, who, vm)
    await asyncio.sleep(TICKET_SECONDS + 0.5)
    assert await refused_with(stale.console_url, stale.ticket, tls=consoles.tls) == 401  # expired

    logged = "".join(path.read_text(errors="replace") for path in consoles.logs)  # the first API at DEBUG
    assert link.session_id in logged  # the logs do speak of the sessions...
    for ticket in (link.ticket, stale.ticket):  # ...never of their tickets, though one came in a query string
        assert not [form for form in encodings(ticket) if form in logged]


async def test_another_tenant_can_neither_see_nor_open_the_console(consoles: Consoles, vm: tuple[str, str]) -> None:
    stranger = consoles.login("operator", tenant=f"elsewhere-{uuid.uuid4().hex[:6]}")
    for call in (
        lambda: issue(consoles, stranger, vm),
        lambda: status(consoles, stranger, vm),
        lambda: consoles.first.ListConsoleSessions(
            pb.ListConsoleSessionsRequest(name=vm[1], namespace=vm[0]), metadata=stranger
        ),
    ):
        with pytest.raises(grpc.RpcError) as raised:
            call()
        assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    viewer = consoles.login("viewer")
    with pytest.raises(grpc.RpcError) as raised:
        issue(consoles, viewer, vm)
    assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_a_second_session_is_refused_naming_the_holder_or_takes_over(
    consoles: Consoles, vm: tuple[str, str]
) -> None:
    first_user, second_user = consoles.login(), consoles.login()
    held = issue(consoles, first_user, vm, pb.VNC)
    socket_ = await connect(held.console_url, held.ticket, tls=consoles.tls)
    assert (await read_until(socket_, b"RFB 003.008\n")).startswith(b"RFB")
    with pytest.raises(grpc.RpcError) as raised:
        issue(consoles, second_user, vm, pb.VNC)
    assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert details_of(raised.value).reason == "CONSOLE_IN_USE"
    assert held.user in str(raised.value.details())

    with pytest.raises(grpc.RpcError) as not_theirs:  # taking over another user's console needs vm:console:manage
        issue(consoles, second_user, vm, pb.VNC, take_over=True)
    assert not_theirs.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "vm:console:manage" in str(not_theirs.value.details())
    admin = consoles.login("tenant-admin")
    taker = issue(consoles, admin, vm, pb.VNC, take_over=True)
    assert taker.took_over == held.session_id
    code, reason = await closed_with(socket_)
    assert (code, reason) == (4001, f"taken over by {taker.user}")
    socket_ = await connect(taker.console_url, taker.ticket, tls=consoles.tls)
    assert (await read_until(socket_, b"RFB 003.008\n")).startswith(b"RFB")
    sessions = consoles.first.ListConsoleSessions(
        pb.ListConsoleSessionsRequest(name=vm[1], namespace=vm[0]), metadata=first_user
    ).sessions
    assert [s.session_id for s in sessions][:2] == [taker.session_id, held.session_id]  # newest first
    mine_again = issue(consoles, admin, vm, pb.VNC, take_over=True)  # one's own: no permission beyond access
    assert mine_again.took_over == taker.session_id
    assert (await closed_with(socket_))[0] == 4001


async def test_a_disconnect_on_the_second_api_process_closes_the_socket_the_first_holds(
    consoles: Consoles, vm: tuple[str, str]
) -> None:
    owner, admin = consoles.login(), consoles.login("tenant-admin")
    link = issue(consoles, owner, vm)
    socket_ = await connect(link.console_url, link.ticket, tls=consoles.tls)
    await socket_.send_bytes(b"\x03")
    await read_until(socket_, b"login: ")
    stranger = consoles.login()
    with pytest.raises(grpc.RpcError) as raised:  # not their session, and no vm:console:manage
        consoles.second.DisconnectConsole(
            pb.DisconnectConsoleRequest(name=vm[1], namespace=vm[0], protocol=pb.SERIAL), metadata=stranger
        )
    assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED

    started = time.monotonic()
    consoles.second.DisconnectConsole(
        pb.DisconnectConsoleRequest(name=vm[1], namespace=vm[0], protocol=pb.SERIAL, reason="maintenance"),
        metadata=admin,
    )
    code, reason = await closed_with(socket_)
    assert (code, reason) == (4000, "maintenance")
    assert time.monotonic() - started < 5

    def ended_() -> pb.ConsoleSession | None:
        latest = status(consoles, owner, vm)
        return latest if latest.state == pb.ConsoleSession.CLOSED else None

    ended = kube_helpers.eventually(ended_, timeout=10, what="the session recorded as closed")
    assert (ended.close_code, ended.close_reason) == (4000, "maintenance")


@contextlib.contextmanager
def vm_of_its_own(
    kube: kubernetes.client.ApiClient, grpc_direct: WukongServiceStub, name: str
) -> Iterator[tuple[str, str]]:
    """A running Wukong in a namespace of the tests' tenant made for one test, gone afterwards."""
    namespace = f"t-{uuid.uuid4().hex[:10]}"
    kube_helpers.create_namespace(kube, namespace, {"novasphere.dev/tenant": TENANT})
    try:
        kube_helpers.create_wukong(kube, namespace, name, kube_helpers.MINIMAL_SPEC)
        wait_power(grpc_direct, namespace, name, Power.RUNNING)
        yield namespace, name
    finally:
        kube_helpers.delete_namespace(kube, namespace)


async def test_stopping_the_vm_closes_its_console(
    consoles: Consoles, kube: kubernetes.client.ApiClient, grpc_direct: WukongServiceStub
) -> None:
    with vm_of_its_own(kube, grpc_direct, "stopping") as (namespace, _):
        who = consoles.login()
        link = issue(consoles, who, (namespace, "stopping"))
        socket_ = await connect(link.console_url, link.ticket, tls=consoles.tls)
        await socket_.send_bytes(b"\x03")
        await read_until(socket_, b"login: ")
        grpc_direct.StopWukong(service_pb2.StopWukongRequest(namespace=namespace, name="stopping"))
        code, reason = await closed_with(socket_, within=60)
        assert (code, reason) == (4003, "the VM stopped")
        with pytest.raises(grpc.RpcError) as raised:
            issue(consoles, who, (namespace, "stopping"))
        assert details_of(raised.value).reason == "VM_NOT_RUNNING"

        # The VM's console Lease goes with the VM (the leader's sweep), so Leases do not pile up.
        uid = kube_helpers.json_object(
            kubernetes.client.CustomObjectsApi(kube).get_namespaced_custom_object(
                "vm.novasphere.dev", "v1alpha1", namespace, "wukongs", "stopping"
            )
        )["metadata"]["uid"]
        lock = f"console-{uid}-serial"
        coordination = kubernetes.client.CoordinationV1Api(kube)
        assert coordination.read_namespaced_lease(lock, accounts.API_NAMESPACE).metadata is not None
        kubernetes.client.CustomObjectsApi(kube).delete_namespaced_custom_object(
            "vm.novasphere.dev", "v1alpha1", namespace, "wukongs", "stopping"
        )

        def lock_gone() -> bool | None:
            try:
                coordination.read_namespaced_lease(lock, accounts.API_NAMESPACE)
            except kubernetes.client.ApiException as error:
                return True if error.status == 404 else None
            return None

        kube_helpers.eventually(lock_gone, timeout=30, what="the deleted VM's console Lease swept")


def test_console_links_are_limited_to_5_a_minute_per_user(consoles: Consoles, vm: tuple[str, str]) -> None:
    who = consoles.login()
    for _ in range(5):
        issue(consoles, who, vm, pb.SERIAL, take_over=True)
    with pytest.raises(grpc.RpcError) as raised:
        issue(consoles, who, vm, pb.SERIAL, take_over=True)
    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert details_of(raised.value).retry_seconds


def test_novnc_in_chromium_renders_the_screen_from_the_console_url(
    consoles: Consoles, vm: tuple[str, str], tmp_path: Path
) -> None:
    who = consoles.login()

    def link() -> tuple[str, list[str]]:  # issued once chromium runs: the ticket lives TICKET_SECONDS
        issued = issue(consoles, who, vm, pb.VNC, take_over=True)
        return issued.console_url, [f"{TICKET}{issued.ticket}", "binary"]

    seen = run_novnc(link, tmp_path / "novnc.png", page_origin=PAGE_ORIGIN, accept_spki=consoles.spki)
    assert seen["connected"] is True
    assert seen["marker"] == f"{vm[1]}-vm"  # the VMI's name, read from the canvas noVNC drew


# The right to a console: it closes, on the replica holding it and within 5 s, when any part of that right ends.


@dataclasses.dataclass
class Holder:
    """A user with a serial console open."""

    name: str
    who: tuple[tuple[str, str]]
    socket: aiohttp.ClientWebSocketResponse


@pytest.fixture
async def holder(consoles: Consoles, kube: kubernetes.client.ApiClient, vm: tuple[str, str]) -> AsyncIterator[Holder]:
    name = f"r-{uuid.uuid4().hex[:10]}"
    accounts.create_user(kube, name, PASSWORD, tenant=TENANT, role="operator")
    try:
        who = consoles.login(name=name)
        socket_ = await open_serial(consoles, who, vm)
        try:
            yield Holder(name, who, socket_)
        finally:
            await close(socket_)  # at once, even when the test failed before the server closed it
    finally:
        accounts.unbind(kube, name)


async def free_link(consoles: Consoles, who: tuple[tuple[str, str]], vm: tuple[str, str]) -> pb.ConsoleSession:
    """A serial console link of `vm`, once the console last used has been let go (the server sees a client's close a
    moment after the client; unused tickets expire in seconds)."""

    def link() -> pb.ConsoleSession | None:
        try:
            return issue(consoles, who, vm, pb.SERIAL)
        except grpc.RpcError as error:
            if details_of(error).reason == "CONSOLE_IN_USE":
                return None
            raise

    deadline = time.monotonic() + 20
    while (issued := link()) is None:  # each try spends one of the user's 5 console links a minute: not too often
        assert time.monotonic() < deadline, "timed out waiting for the serial console to be free"
        await asyncio.sleep(1)
    return issued


async def open_serial(
    consoles: Consoles, who: tuple[tuple[str, str]], vm: tuple[str, str]
) -> aiohttp.ClientWebSocketResponse:
    """A serial console of `vm`, once the last test's has been let go."""
    issued = await free_link(consoles, who, vm)
    socket_ = await connect(issued.console_url, issued.ticket, tls=consoles.tls)
    await socket_.send_bytes(b"\x03")
    await read_until(socket_, b"login: ")
    return socket_


async def closes_within_5_s(socket_: aiohttp.ClientWebSocketResponse) -> tuple[int, str]:
    started = time.monotonic()
    ended = await closed_with(socket_, within=10)
    assert time.monotonic() - started < 5, ended
    return ended


def own_sessions(consoles: Consoles, who: tuple[tuple[str, str]]) -> list[dict[str, Any]]:
    response = consoles.http.get("/api/v1/auth/sessions", headers=dict(who))
    assert response.status_code == 200, response.text
    return list(response.json()["sessions"])


async def test_logging_out_closes_the_console(consoles: Consoles, holder: Holder) -> None:
    assert consoles.http.post("/api/v1/auth/logout", json={}, headers=dict(holder.who)).status_code == 200
    assert await closes_within_5_s(holder.socket) == (4006, "the user logged out")


async def test_revoking_the_login_session_closes_the_console(consoles: Consoles, holder: Holder) -> None:
    phone = consoles.login(name=holder.name)  # the same user, from another device
    console_session = next(s["id"] for s in own_sessions(consoles, phone) if not s["current"])
    revoked = consoles.http.delete(f"/api/v1/auth/sessions/{console_session}", headers=dict(phone))
    assert revoked.status_code == 200, revoked.text
    assert await closes_within_5_s(holder.socket) == (4006, "its login session was revoked")


async def test_the_login_session_expiring_closes_the_console(
    consoles: Consoles, holder: Holder, kube: kubernetes.client.ApiClient
) -> None:
    session = next(s["id"] for s in own_sessions(consoles, holder.who) if s["current"])
    soon = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    kubernetes.client.CoreV1Api(kube).patch_namespaced_secret(
        f"session-{session}", accounts.API_NAMESPACE, {"metadata": {"annotations": {store.EXPIRES_ANNOTATION: soon}}}
    )
    code, reason = await closed_with(holder.socket, within=10)
    # "ended" when the leader's sweep deleted the expired session before this replica looked
    assert (code, reason) in {(4006, "its login session expired"), (4006, "its login session ended")}


async def test_disabling_the_user_closes_the_console(
    consoles: Consoles, holder: Holder, kube: kubernetes.client.ApiClient
) -> None:
    kubernetes.client.CoreV1Api(kube).patch_namespaced_secret(
        f"user-{holder.name}",
        accounts.API_NAMESPACE,
        {"metadata": {"annotations": {store.DISABLED_ANNOTATION: "true"}}},
    )
    assert await closes_within_5_s(holder.socket) == (4007, f"user {holder.name} was disabled")


async def test_deleting_the_user_closes_the_console(
    consoles: Consoles, holder: Holder, kube: kubernetes.client.ApiClient
) -> None:
    kubernetes.client.CoreV1Api(kube).delete_namespaced_secret(f"user-{holder.name}", accounts.API_NAMESPACE)
    assert await closes_within_5_s(holder.socket) == (4007, f"user {holder.name} was deleted")


async def test_removing_the_role_binding_closes_the_console(
    consoles: Consoles, holder: Holder, kube: kubernetes.client.ApiClient
) -> None:
    accounts.unbind(kube, holder.name)
    code, reason = await closes_within_5_s(holder.socket)
    assert (code, reason) == (4007, f"{holder.name} no longer holds vm:console:access in tenant {TENANT}")


async def test_the_twenty_first_login_closes_the_oldest_sessions_console(consoles: Consoles, holder: Holder) -> None:
    def log_in_20_times() -> None:
        for _ in range(20):
            consoles.second_auth.Login(auth_pb2.LoginRequest(username=holder.name, password=PASSWORD))

    await asyncio.to_thread(log_in_20_times)  # the loop goes on answering the console's pings meanwhile
    code, reason = await closes_within_5_s(holder.socket)
    assert (code, reason) == (4008, "its login session ended: the user logged in more than 20 times since")


async def test_the_namespace_leaving_the_tenant_closes_the_console(
    consoles: Consoles, kube: kubernetes.client.ApiClient, grpc_direct: WukongServiceStub
) -> None:
    with vm_of_its_own(kube, grpc_direct, "leaving") as (namespace, name):
        socket_ = await open_serial(consoles, consoles.login(), (namespace, name))
        kubernetes.client.CoreV1Api(kube).patch_namespace(
            namespace, {"metadata": {"labels": {"novasphere.dev/tenant": "someone-else"}}}
        )
        assert await closes_within_5_s(socket_) == (4007, f"namespace {namespace} left tenant {TENANT}")


async def test_the_console_closes_when_its_lifetime_ends(consoles: Consoles, vm: tuple[str, str]) -> None:
    link = issue(consoles, consoles.login(), vm, pb.SERIAL, lifetime_seconds=60, take_over=True)
    socket_ = await connect(link.console_url, link.ticket, tls=consoles.tls)
    code, reason = await closed_with(socket_, within=75)
    assert (code, reason) == (4002, "the console session expired; ask for a new console link")


async def test_the_development_identity_gets_a_console_too(stack: devstack.Stack, vm: tuple[str, str]) -> None:
    """`make run`'s calls without credentials run as the development identity, which is no stored user."""
    with stack.edge.channel() as channel:
        request = pb.CreateConsoleSessionRequest(name=vm[1], namespace=vm[0], protocol=pb.SERIAL, take_over=True)
        link = ConsoleServiceStub(channel).CreateConsoleSession(request)
    assert link.console_url.startswith(f"{stack.edge.ws_url}/ws/")
    socket_ = await connect(link.console_url, link.ticket, tls=stack.edge.ssl_context())
    await socket_.send_bytes(b"\x03")
    await read_until(socket_, b"login: ")
    await close(socket_)
