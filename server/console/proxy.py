"""The console WebSocket endpoint (`/ws/v1/consoles/{session}`, routed by Envoy with upgrade): checks the Origin
against the allow-list, claims the session's one-time ticket (once, on whichever replica gets it first), opens
KubeVirt's `vnc` or `console` websocket through kube-apiserver with the API's own credentials, and pipes bytes both
ways. Back-pressure is end to end: a frame is read from one side only after the previous one was written to the other.

Every refusal comes before the upgrade, as an HTTP status with a `google.rpc.Status` JSON body, so nothing is
proxied for a request that fails a check. Once connected, the socket ends with a close code saying why
(`sessions.CloseCode`): a disconnect asked on any replica, a take-over, expiry, the VM stopping, KubeVirt closing.
The ticket arrives as the subprotocol `ticket.novasphere.dev.<ticket>` or, for clients that cannot set one, as the
`ticket` query parameter; neither is ever logged (Envoy's access log drops the query).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

from server import logs, timestamps, tracing
from server.auth.store import AuthStore
from server.config import ListenAddress
from server.console import rights, sessions
from server.console.sessions import CONNECTED, CloseCode, ConsoleCache, ConsoleRecord, ConsoleSessions
from server.kube import console_sessions as objects
from server.kube import errors as kube_errors
from server.kube import kubevirt
from server.kube.client import KubeClient
from server.kube.console_streams import ConsoleDialer, ConsoleRefused
from server.metrics import Metrics
from server.tenancy import Tenancy
from server.transport import edge, listeners

log = logging.getLogger(__name__)

TICKET_PROTOCOL = "ticket.novasphere.dev."
CONSOLE_PROTOCOLS = ("binary", "plain.kubevirt.io")
"""Subprotocols a client may offer beside its ticket (noVNC offers `binary`); the first offered is echoed. Both mean
raw bytes in binary frames; nothing else is spoken (no base64 framing, as in KubeVirt)."""
MAX_FRAME = 1 << 20
HEARTBEAT_SECONDS = 30.0
VM_CHECK_SECONDS = 3.0
"""After KubeVirt closes a console, how long to look for the VM having stopped (its VMI ending)."""
RIGHTS_CHECK_SECONDS = 1.0


@dataclass
class _Live:
    """A console this replica proxies right now."""

    record: ConsoleRecord
    credential_seen: bool = False
    """Whether this replica has held the console's login session or API key since it connected."""
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when the socket must close (code and reason say why)."""
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    """Set once both sockets are closed and the end is recorded."""
    code: int = 0
    reason: str = ""

    def end(self, code: int, reason: str) -> None:
        if not self.ended.is_set():
            self.code, self.reason = code, reason
            self.ended.set()


@dataclass(frozen=True)
class ProxySettings:
    namespace: str
    replica: str
    origins: frozenset[str]
    development_user: str = ""
    """The development identity's user, when that identity is on: not a stored user, so not looked up."""


class ConsoleProxy:
    def __init__(
        self,
        *,
        kube: KubeClient,
        cache: ConsoleCache,
        sessions_: ConsoleSessions,
        auth_store: AuthStore,
        tenancy: Tenancy,
        metrics: Metrics,
        settings: ProxySettings,
    ) -> None:
        self._kube = kube
        self._cache = cache
        self._sessions = sessions_
        self._auth_store = auth_store
        self._tenancy = tenancy
        self._recheck_due = False
        self._metrics = metrics
        self._settings = settings
        self._dialer = ConsoleDialer(kube)
        self._live: dict[str, _Live] = {}
        self._runner: web.AppRunner | None = None
        self.url = ""
        """ws://host:port of the listener once started."""
        cache.listeners.append(self._changed)
        auth_store.listeners.append(self._recheck_soon)
        tenancy.listeners.append(self._recheck_soon)

    async def keep_checking_rights(self, stop: asyncio.Event) -> None:
        """Re-checks every console held here each second too: login sessions and API keys expire with no event."""
        while not stop.is_set():
            self._recheck()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=RIGHTS_CHECK_SECONDS)

    def _recheck_soon(self) -> None:
        """Users, sessions, keys, roles or tenants changed: once the loop is free (many changes may come at once),
        every console held here is checked against them."""
        if self._live and not self._recheck_due:
            self._recheck_due = True
            asyncio.get_running_loop().call_soon(self._recheck)

    def _recheck(self) -> None:
        self._recheck_due = False
        now = timestamps.now()
        for live in list(self._live.values()):
            live.credential_seen = live.credential_seen or rights.credential_present(live.record, self._auth_store)
            ended = rights.right_ended(
                live.record,
                store=self._auth_store,
                tenancy=self._tenancy,
                development_user=self._settings.development_user,
                now=now,
                credential_seen=live.credential_seen,
            )
            if ended is not None:
                if not live.ended.is_set():
                    log.info("console %s: the right to it ended (%s)", live.record.id, ended.reason)
                live.end(ended.code, ended.reason)

    async def start(self, listen: ListenAddress, pages: Sequence[web.RouteDef] = ()) -> int | None:
        """Listens on `listen` (port 0: any); returns the TCP port, None for a unix socket. `pages`: routes served
        beside the consoles (the web console's files), tried after the console path."""
        app = web.Application()
        app.router.add_get(sessions.WEBSOCKET_PATH + "{session}", self._connect)
        app.router.add_routes(pages)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        port = await listeners.start_site(self._runner, listen)
        self.url = listeners.direct_url("ws", listen, port)
        return port

    async def stop(self) -> None:
        """Closes every console this replica holds (code 4005), then the listener."""
        lives = list(self._live.values())
        for live in lives:
            live.end(CloseCode.SHUTDOWN, "the API server is shutting down; reconnect with a new console link")
        if lives:
            await asyncio.wait([asyncio.create_task(live.finished.wait()) for live in lives], timeout=5)
        if self._runner is not None:
            await self._runner.cleanup()
        await self._dialer.close()

    def _changed(self, record: ConsoleRecord | None, session_id: str) -> None:
        """A session changed anywhere: a disconnect asked for one held here closes its socket."""
        live = self._live.get(session_id)
        if live is None:
            return
        if record is None:
            live.end(CloseCode.DISCONNECTED, "the console session was deleted")
        elif record.disconnect is not None:
            live.end(record.disconnect.code or CloseCode.DISCONNECTED, record.disconnect.reason)

    # ---- one connection ---------------------------------------------------------------------------------------

    async def _connect(self, request: web.Request) -> web.StreamResponse:
        """The WebSocket request as a SERVER span (continuing Envoy's trace), the proxied session as its child."""
        carrier = {key: value for key in tracing.CARRIED if (value := request.headers.get(key))}
        attributes = {"novasphere.console.session": request.match_info["session"][:64]}
        with tracing.span("console connect", kind=tracing.Kind.SERVER, carrier=carrier, attributes=attributes) as span:
            response = await self._open(request)
            span.set("http.response.status_code", response.status)
            return response

    async def _open(self, request: web.Request) -> web.StreamResponse:
        session_id = request.match_info["session"]
        logs.request_id.set(logs.well_formed_request_id(request.headers.get("x-request-id")))  # this handler's task
        origin = request.headers.get("Origin", "").rstrip("/")
        own_page = edge.origin_from_envoy(request.headers.get(edge.PUBLIC_ORIGIN_HEADER, ""), _peer(request))
        if origin and origin not in self._settings.origins and origin != own_page:
            log.info("console %s refused: origin %s is not allowed", session_id[:64], origin[:100])
            self._metrics.console_failures.labels("refused").inc()
            return _refusal(
                403,
                7,
                "this page's origin may not open consoles (the web console's own and NOVASPHERE_CONSOLE_ORIGINS may)",
            )
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return _refusal(400, 3, "open the console URL as a WebSocket")
        offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
        ticket = next((p[len(TICKET_PROTOCOL) :] for p in offered if p.startswith(TICKET_PROTOCOL)), "")
        ticket = ticket or request.query.get("ticket", "")
        record, why = await self._claim(session_id, ticket, _client_ip(request))
        if record is None:
            log.info("console %s refused: %s", session_id[:64], why)
            self._metrics.console_failures.labels("refused").inc()
            return _refusal(401, 16, "the console ticket is invalid, used or expired; ask for a new console link")
        try:
            backend = await self._dialer.open(
                namespace=record.namespace,
                vmi=record.vmi,
                subresource="vnc" if record.protocol == "vnc" else "console",
                preserve_session=True,  # a client outside NovaSphere cannot silently take the screen (kubevirt.md §2.5)
            )
        except (ConsoleRefused, aiohttp.ClientError, OSError) as error:
            status, message = _backend_refusal(error)
            log.warning("console %s: KubeVirt's console could not be opened: %r", record.id, error)
            self._metrics.console_failures.labels("backend").inc()
            await self._finish(record, CloseCode.BACKEND_CLOSED, message, 0, 0)
            return _refusal(status, 9 if status == 409 else 14, message)
        chosen = next((p for p in offered if p in CONSOLE_PROTOCOLS), None)
        if chosen is None and offered:  # a browser offered only its ticket: it must hear one of its own back
            chosen = offered[0]
        # autoclose off: aiohttp would answer a client's close frame at once, while the pipe to the client may still
        # write a data frame after it (browsers fail such a socket); `_proxy` stops that pipe first, then closes
        client = web.WebSocketResponse(
            protocols=(chosen,) if chosen else (),
            max_msg_size=MAX_FRAME,
            heartbeat=HEARTBEAT_SECONDS,
            autoclose=False,
        )
        await client.prepare(_with_websocket_key(request))
        attributes = {"novasphere.console.protocol": record.protocol, "novasphere.wukong.namespace": record.namespace}
        with tracing.span("console session", attributes=attributes) as span:
            await self._proxy(record, client, backend, span)
        return client

    async def _claim(self, session_id: str, ticket: str, client_ip: str) -> tuple[ConsoleRecord | None, str]:
        """Moves the session from Issued to Connected under its resourceVersion: the ticket works once, anywhere."""
        if not ticket:
            return None, "no ticket"
        record = await self._sessions.session(session_id, client=client_ip)
        if record is None:
            return None, "no such session"
        now = timestamps.now()
        if not sessions.ticket_matches(record, ticket):
            return None, "wrong ticket"
        if record.phase != sessions.ISSUED or record.disconnect is not None:
            return None, f"ticket already used (session {record.phase})"
        if now >= record.ticket_expires:
            return None, "ticket expired"
        ended = rights.right_ended(
            record,
            store=self._auth_store,
            tenancy=self._tenancy,
            development_user=self._settings.development_user,
            now=now,
        )
        if ended is not None:
            return None, ended.reason
        if not await self._sessions.holds_lock(record):
            return None, "the console was taken by another session"
        status = {"phase": CONNECTED, "connectTime": timestamps.format_micro(now), "clientIp": client_ip}
        status["replica"] = self._settings.replica
        try:
            claimed = await objects.patch_status(
                self._kube,
                namespace=self._settings.namespace,
                name=session_id,
                status=status,
                resource_version=record.resource_version,
            )
        except (kube_errors.Conflict, kube_errors.NotFound):
            return None, "ticket claimed by another connection"
        record = sessions.record_from(claimed)
        self._cache.put(record)
        return record, ""

    async def _proxy(
        self,
        record: ConsoleRecord,
        client: web.WebSocketResponse,
        backend: aiohttp.ClientWebSocketResponse,
        span: tracing.Span,
    ) -> None:
        live = _Live(record, credential_seen=rights.credential_present(record, self._auth_store))
        self._live[record.id] = live
        self._changed(self._cache.get(record.id), record.id)  # a disconnect asked between the claim and now
        protocol = record.protocol
        self._metrics.console_sessions.labels(protocol).inc()
        counted = {"to_client": 0, "from_client": 0}
        started = time.monotonic()
        logs.event(
            log,
            "console.connected",
            f"console {record.id} connected: {protocol} of {record.namespace}/{record.name} for {record.user}",
            session=record.id,
            protocol=str(protocol),
            namespace=record.namespace,
            name=record.name,
            user=record.user,
            tenant=record.tenant,
            peer=record.client_ip,
        )

        async def pipe(
            source: Callable[[], Awaitable[aiohttp.WSMessage]], send: Callable[[bytes], Awaitable[None]], direction: str
        ) -> None:
            while True:
                message = await source()
                if message.type == aiohttp.WSMsgType.BINARY:
                    data = message.data
                elif message.type == aiohttp.WSMsgType.TEXT:  # terminals often send text; KubeVirt wants binary
                    data = str(message.data).encode()
                else:
                    return
                await send(data)
                counted[direction] += len(data)
                self._metrics.console_bytes.labels(protocol, direction).inc(len(data))

        to_client = asyncio.create_task(pipe(backend.receive, client.send_bytes, "to_client"))
        from_client = asyncio.create_task(pipe(client.receive, backend.send_bytes, "from_client"))
        asked = asyncio.create_task(live.ended.wait())
        seconds_left = (record.expires - timestamps.now()).total_seconds()
        expiry = asyncio.create_task(asyncio.sleep(max(0.0, seconds_left)))
        tasks = (to_client, from_client, asked, expiry)
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            if asked in done:
                code, reason = live.code, live.reason
            elif expiry in done:
                code, reason = CloseCode.EXPIRED, "the console session expired; ask for a new console link"
            elif from_client in done:
                code, reason = client.close_code or 1000, "closed by the client"
            elif await self._vm_stopped(record):
                code, reason = CloseCode.VM_STOPPED, "the VM stopped"
            else:
                code, reason = CloseCode.BACKEND_CLOSED, "KubeVirt closed the console"
        except Exception:
            log.exception("console %s failed", record.id)
            self._metrics.console_failures.labels("internal").inc()
            code, reason = CloseCode.INTERNAL, "internal error in the console proxy"
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            with contextlib.suppress(Exception):
                await backend.close()
            if not client.closed:
                with contextlib.suppress(Exception):
                    await client.close(code=code, message=reason.encode()[:120])
            del self._live[record.id]
            self._metrics.console_sessions.labels(protocol).dec()
            self._metrics.console_duration.labels(protocol).observe(time.monotonic() - started)
        logs.event(
            log,
            "console.closed",
            f"console {record.id} closed ({code} {reason})",
            session=record.id,
            protocol=str(protocol),
            namespace=record.namespace,
            name=record.name,
            user=record.user,
            tenant=record.tenant,
            close_code=int(code),
            close_reason=reason,
            duration_ms=round((time.monotonic() - started) * 1000, 1),
            bytes_to_client=counted["to_client"],
            bytes_from_client=counted["from_client"],
        )
        span.set("novasphere.console.close_code", code)
        for direction, count in counted.items():
            span.set(f"novasphere.console.bytes_{direction}", count)
        await self._finish(record, code, reason, counted["to_client"], counted["from_client"])
        live.finished.set()

    async def _finish(self, record: ConsoleRecord, code: int, reason: str, to_client: int, from_client: int) -> None:
        status = sessions.closed_status(code, reason, bytes_to_client=to_client, bytes_from_client=from_client)
        try:
            updated = await objects.patch_status(
                self._kube, namespace=self._settings.namespace, name=record.id, status=status
            )
            self._cache.put(sessions.record_from(updated))
        except kube_errors.KubeError as error:  # the session is then swept as expired; nothing else depends on it
            log.warning("console %s: could not record its end: %s", record.id, error)

    async def _vm_stopped(self, record: ConsoleRecord) -> bool:
        """KubeVirt closes a console when the VM stops; its VMI then ends or goes (checked for a few seconds)."""
        deadline = time.monotonic() + VM_CHECK_SECONDS
        while True:
            try:
                vmi = await kubevirt.get_instance(self._kube, namespace=record.namespace, name=record.vmi)
            except kube_errors.KubeError:
                return False
            if vmi is None or vmi["metadata"].get("deletionTimestamp"):
                return True
            if (vmi.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.25)


def _with_websocket_key(request: web.Request) -> web.Request:
    """A browser's WebSocket over HTTP/2 (RFC 8441, which Envoy allows so a console shares the page's connection) has
    no Sec-WebSocket-Key, and Envoy's HTTP/1.1 upgrade towards this server adds none; aiohttp's handshake needs one
    (it only derives the Accept header from it, which Envoy drops on the way back to HTTP/2)."""
    if request.headers.get("Sec-WebSocket-Key"):
        return request
    key = base64.b64encode(os.urandom(16)).decode()
    return request.clone(headers={**request.headers, "Sec-WebSocket-Key": key})


def _peer(request: web.Request) -> str:
    """The peer's address, or `unix:` for one that came over a unix socket (aiohttp reports no address for it)."""
    sockname = request.transport.get_extra_info("sockname") if request.transport is not None else None
    return edge.UNIX_PEER if isinstance(sockname, str) else request.remote or ""


def _client_ip(request: web.Request) -> str:
    """The client's address as Envoy reports it (see `transport.edge`), else the peer's."""
    peer = _peer(request)
    if edge.from_envoy(peer):
        return (request.headers.get(edge.CLIENT_ADDRESS_HEADER) or peer)[: edge.MAX_ADDRESS]
    return peer[: edge.MAX_ADDRESS]


def _backend_refusal(error: Exception) -> tuple[int, str]:
    if isinstance(error, ConsoleRefused):
        if error.status == 400:
            return 409, "the VM is not running (or has no such console device)"
        if error.status == 404:
            return 409, "the VM has no running instance"
        # A 500 with preserveSession is most often another VNC client (kubevirt.md §2.5); the handshake error does
        # not carry KubeVirt's message, so the status is all that can be said.
        return 502, f"KubeVirt refused the console ({error.status})"
    return 503, "KubeVirt's console is not reachable right now; retry"


def _refusal(status: int, code: int, message: str) -> web.Response:
    """An HTTP error before any upgrade, with the `google.rpc.Status` body the REST API uses."""
    return web.Response(
        status=status,
        text=json.dumps({"code": code, "message": message, "details": []}),
        content_type="application/json",
    )
