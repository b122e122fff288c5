"""APNs' provider API over HTTP/2 (RFC 9113, ALPN h2) with an ES256 provider token, on one multiplexed connection.
aiohttp speaks HTTP/1.1 only, so the HTTP/2 client (on the h2 state machine) is here too."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import ssl
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from server.notifications.delivery import (
    MAX_ANSWER_BYTES,
    TIMEOUT_SECONDS,
    Clock,
    Delivery,
    Notification,
    error_code,
    https_origin,
    json_bytes,
    json_object,
    retry_after,
    transient,
)

APNS_PRODUCTION = "https://api.push.apple.com"
APNS_DEVELOPMENT = "https://api.sandbox.push.apple.com"
# APNs refuses a provider token older than an hour and one refreshed more often than every 20 minutes.
PROVIDER_TOKEN_SECONDS = 50 * 60
MAX_APNS_PAYLOAD = 4096
APNS_GONE_REASONS = frozenset({"BadDeviceToken", "DeviceTokenNotForTopic"})
CLOSE_SECONDS = 2.0


class _Unsent(Exception):
    """The server certainly did not process the request (refused stream, GOAWAY before its stream, a connection
    that closed before it was sent): sending it again on a new connection is safe."""


@dataclass
class _Response:
    status: int = 0
    headers: dict[bytes, bytes] = field(default_factory=dict)
    body: bytearray = field(default_factory=bytearray)


class _Stream:
    def __init__(self) -> None:
        self.response = _Response()
        self.done: asyncio.Future[_Response] = asyncio.get_running_loop().create_future()


_READERS: set[asyncio.Task[None]] = set()  # keeps every connection's reader alive until it ends


class _Http2Connection:
    """One HTTP/2 connection over TLS: requests on concurrent streams within the server's
    SETTINGS_MAX_CONCURRENT_STREAMS and flow-control windows; one reader task dispatches the server's frames."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._h2 = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding=None))
        self._streams: dict[int, _Stream] = {}
        self._settled = asyncio.Event()  # the server's first SETTINGS (its stream limit) arrived
        self._pulse = asyncio.Event()  # set and replaced whenever something a waiting request may need changed
        self.accepting = True  # new streams allowed: false after GOAWAY, retirement or close
        self.closed = False

    @classmethod
    async def open(cls, host: str, port: int, context: ssl.SSLContext) -> _Http2Connection:
        reader, writer = await asyncio.open_connection(host, port, ssl=context, server_hostname=host)
        ssl_object = writer.get_extra_info("ssl_object")
        if not isinstance(ssl_object, ssl.SSLObject) or ssl_object.selected_alpn_protocol() != "h2":
            writer.close()
            raise ConnectionError("the server did not negotiate HTTP/2 (ALPN h2)")
        connection = cls(reader, writer)
        connection._h2.initiate_connection()
        connection._flush()
        task = asyncio.create_task(connection._read())
        _READERS.add(task)
        task.add_done_callback(_READERS.discard)
        try:
            await connection._settled.wait()
        except BaseException:
            task.cancel()
            raise
        if connection.closed:
            raise ConnectionError("the server closed the connection before its settings")
        return connection

    async def request(self, headers: list[tuple[bytes, bytes]], body: bytes) -> _Response:
        try:
            await self._until(lambda: not self.accepting or self._h2.open_outbound_streams < self._max_streams())
        except ConnectionError:
            raise _Unsent from None
        if not self.accepting:
            raise _Unsent
        try:
            stream_id = self._h2.get_next_available_stream_id()
        except h2.exceptions.NoAvailableStreamIDError:
            self.retire()
            raise _Unsent from None
        stream = self._streams[stream_id] = _Stream()
        try:
            self._h2.send_headers(stream_id, headers, end_stream=not body)
            self._flush()
            await self._send_body(stream_id, stream, body)
            await self._writer.drain()
            return await stream.done
        finally:
            if self._streams.pop(stream_id, None) is not None and not self.closed:  # given up on (timeout)
                with contextlib.suppress(h2.exceptions.ProtocolError):
                    self._h2.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
                    self._flush()
                self._retire_when_idle()

    def retire(self) -> None:
        """No new streams; the connection closes once its last stream ends."""
        self.accepting = False
        self._retire_when_idle()

    async def close(self) -> None:
        self.accepting = False
        if not self.closed:
            with contextlib.suppress(h2.exceptions.ProtocolError):
                self._h2.close_connection()
                self._flush()
        self._writer.close()
        with contextlib.suppress(OSError, TimeoutError):
            async with asyncio.timeout(CLOSE_SECONDS):
                await self._writer.wait_closed()

    def _max_streams(self) -> int:
        return self._h2.remote_settings.max_concurrent_streams

    async def _send_body(self, stream_id: int, stream: _Stream, body: bytes) -> None:
        view = memoryview(body)
        while view:
            await self._until(lambda: stream.done.done() or self._h2.local_flow_control_window(stream_id) > 0)
            if stream.done.done():  # answered or reset early: the rest is not wanted
                return
            size = min(len(view), self._h2.local_flow_control_window(stream_id), self._h2.max_outbound_frame_size)
            self._h2.send_data(stream_id, view[:size], end_stream=size == len(view))
            self._flush()
            view = view[size:]

    async def _until(self, ready: Callable[[], bool]) -> None:
        while not self.closed and not ready():
            await self._pulse.wait()
        if self.closed:
            raise ConnectionError("the HTTP/2 connection closed")

    def _wake(self) -> None:
        self._pulse.set()
        self._pulse = asyncio.Event()

    def _flush(self) -> None:
        if data := self._h2.data_to_send():
            self._writer.write(data)

    def _retire_when_idle(self) -> None:
        if not self.accepting and not self._streams:
            self._writer.close()

    async def _read(self) -> None:
        try:
            while data := await self._reader.read(65536):
                for event in self._h2.receive_data(data):
                    self._on(event)
                self._flush()
                self._wake()
        except (OSError, h2.exceptions.ProtocolError):
            pass  # as good as closed: the requests in flight learn it below
        finally:
            self.closed = True
            self.accepting = False
            for stream in self._streams.values():
                if not stream.done.done():
                    stream.done.set_exception(ConnectionError("the HTTP/2 connection closed"))
            self._streams.clear()
            self._settled.set()
            self._wake()
            self._writer.close()

    def _on(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.RemoteSettingsChanged):
            self._settled.set()
        elif isinstance(event, h2.events.ResponseReceived):
            if stream := self._streams.get(event.stream_id):
                stream.response.headers = {bytes(name): bytes(value) for name, value in event.headers}
                stream.response.status = int(stream.response.headers.get(b":status", b"0"))
        elif isinstance(event, h2.events.DataReceived):
            self._h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            if (stream := self._streams.get(event.stream_id)) and len(stream.response.body) < MAX_ANSWER_BYTES:
                stream.response.body += event.data
        elif isinstance(event, h2.events.StreamEnded):
            self._finish(event.stream_id, None)
        elif isinstance(event, h2.events.StreamReset):
            refused = event.error_code == h2.errors.ErrorCodes.REFUSED_STREAM
            self._finish(event.stream_id, _Unsent() if refused else ConnectionError("the server reset the stream"))
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.accepting = False
            last = event.last_stream_id or 0
            for stream_id in [s for s in self._streams if s > last]:
                self._finish(stream_id, _Unsent())
            self._retire_when_idle()

    def _finish(self, stream_id: int, error: Exception | None) -> None:
        stream = self._streams.pop(stream_id, None)
        if stream is not None and not stream.done.done():
            if error is None:
                stream.done.set_result(stream.response)
            else:
                stream.done.set_exception(error)
        self._retire_when_idle()


class ApnsSender:
    """APNs' HTTP/2 provider API with token-based authentication for one app (`bundle_id`, the topic). Requests
    share one connection, as Apple asks; a connection the server drains (GOAWAY) is replaced. The provider token is
    reused for 50 minutes, and renewed once when APNs calls it expired."""

    def __init__(
        self,
        *,
        team_id: str,
        key_id: str,
        private_key: str,
        bundle_id: str,
        base_url: str = APNS_PRODUCTION,
        ssl_context: ssl.SSLContext | None = None,
        timeout: float = TIMEOUT_SECONDS,
        clock: Clock = time.time,
    ) -> None:
        """`private_key`: the PEM of the .p8 signing key (P-256). `ssl_context`: whom to trust (default: the system's
        CAs); the sender sets ALPN h2 on it."""
        key = serialization.load_pem_private_key(private_key.encode(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
            raise ValueError("an APNs signing key must be a P-256 EC key")
        parts = urllib.parse.urlsplit(base_url)
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError("APNs base_url must be https://host[:port]")
        self._host, self._port = parts.hostname, parts.port or 443
        self._authority = https_origin(base_url).removeprefix("https://")  # host[:port], as in the URL
        self._context = ssl_context or ssl.create_default_context()
        self._context.set_alpn_protocols(["h2"])
        self._team_id = team_id
        self._key_id = key_id
        self._key = key
        self._bundle_id = bundle_id
        self._timeout = timeout
        self._clock = clock
        self._token: str | None = None
        self._token_issued = 0.0
        self._connection: _Http2Connection | None = None
        self._connecting = asyncio.Lock()

    async def send(self, device_token: str, notification: Notification) -> Delivery:
        if not re.fullmatch(r"[0-9A-Fa-f]{64,200}", device_token):
            return Delivery("gone", "APNs device token is not a hexadecimal token")
        payload = json_bytes(
            {**notification.data, "aps": {"alert": {"title": notification.title, "body": notification.body}}}
        )
        if len(payload) > MAX_APNS_PAYLOAD:
            return Delivery("failed", f"APNs payload is {len(payload)} bytes, over {MAX_APNS_PAYLOAD}")
        try:
            async with asyncio.timeout(self._timeout):
                response = await self._exchange(device_token, notification.collapse_key, payload)
                if response.status == 403 and _apns_reason(response) == "ExpiredProviderToken":
                    self._token = None
                    response = await self._exchange(device_token, notification.collapse_key, payload)
        except TimeoutError:
            return Delivery("retry", f"APNs did not answer in {self._timeout:g} s")
        except (_Unsent, OSError, h2.exceptions.ProtocolError) as error:
            return Delivery("retry", f"APNs connection failed: {type(error).__name__}")
        return _apns_outcome(response, self._clock())

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
            self._connection = None

    async def _exchange(self, device_token: str, collapse_key: str, payload: bytes) -> _Response:
        connection = await self._connected()
        try:
            return await connection.request(self._headers(device_token, collapse_key), payload)
        except _Unsent:  # never processed: once more, on a new connection
            connection = await self._connected()
            return await connection.request(self._headers(device_token, collapse_key), payload)

    async def _connected(self) -> _Http2Connection:
        async with self._connecting:
            if self._connection is None or not self._connection.accepting:
                if self._connection is not None:
                    self._connection.retire()
                self._connection = await _Http2Connection.open(self._host, self._port, self._context)
            return self._connection

    def _headers(self, device_token: str, collapse_key: str) -> list[tuple[bytes, bytes]]:
        return [
            (b":method", b"POST"),
            (b":scheme", b"https"),
            (b":authority", self._authority.encode()),
            (b":path", f"/3/device/{device_token}".encode()),
            (b"authorization", f"bearer {self._provider_token()}".encode()),
            (b"apns-topic", self._bundle_id.encode()),
            (b"apns-push-type", b"alert"),
            (b"apns-priority", b"10"),
            (b"apns-collapse-id", apns_collapse_id(collapse_key).encode()),
        ]

    def _provider_token(self) -> str:
        now = self._clock()
        if self._token is None or now - self._token_issued >= PROVIDER_TOKEN_SECONDS:
            self._token = jwt.encode(
                {"iss": self._team_id, "iat": int(now)},
                self._key,
                algorithm="ES256",
                headers={"kid": self._key_id, "typ": None},  # Apple's header: alg and kid only
            )
            self._token_issued = now
        return self._token


def apns_collapse_id(collapse_key: str) -> str:
    """APNs takes at most 64 bytes; a longer key becomes its SHA-256 (64 hex digits), stable for the same key. FCM
    passes it on to APNs, so its sender uses this too."""
    if len(collapse_key.encode()) <= 64:
        return collapse_key
    return hashlib.sha256(collapse_key.encode()).hexdigest()


def _apns_reason(response: _Response) -> str:
    return error_code(json_object(bytes(response.body)).get("reason"))


def _apns_outcome(response: _Response, now: float) -> Delivery:
    reason = _apns_reason(response) if response.body else ""
    detail = f"APNs answered {response.status} {reason}".rstrip()
    if response.status == 200:
        return Delivery("delivered", detail)
    if response.status == 410 or (response.status == 400 and reason in APNS_GONE_REASONS):
        return Delivery("gone", detail)
    if transient(response.status):
        header = response.headers.get(b"retry-after")
        return Delivery("retry", detail, retry_after(header.decode("latin-1") if header else None, now))
    return Delivery("failed", detail)
