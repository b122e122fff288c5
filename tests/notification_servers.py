"""Local stand-ins for the notification providers, on 127.0.0.1 only. Each checks a request as its provider does
(method, path, headers, JSON shape, JWT signature and claims, HMAC signature; a Web Push payload is decrypted as the
browser would) and answers as the provider does: with its own error for a request that fails a check, which is also
recorded in `problems` so a test can assert there was none, else with what the test put in `script`, else success.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import hashlib
import hmac
import ipaddress
import json
import re
import secrets
import ssl
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import jwt
from aiohttp import web
from cryptography import x509
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import NameOID

from server.notifications.webpush import WebPushSubscription

FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


class Clock:
    """A wall clock the test moves on, shared by a sender and the server that checks its tokens' times."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Scripted:
    """An answer a test wants instead of success, for the next request that passes the checks."""

    status: int
    body: Any = None  # JSON
    headers: dict[str, str] = field(default_factory=dict)


class Refused(Exception):
    """A request failed a check: `answer` is what the provider says to it."""

    def __init__(self, problem: str, answer: web.Response) -> None:
        super().__init__(problem)
        self.answer = answer


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def uncompressed(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@dataclass(frozen=True)
class Tls:
    """A self-signed certificate for 127.0.0.1, made for the test run: the servers present it, clients trust it."""

    certificate: Path
    key: Path

    @classmethod
    def create(cls, directory: Path) -> Tls:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
        now = datetime.datetime.now(datetime.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        tls = cls(directory / "server.crt", directory / "server.key")
        tls.certificate.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        tls.key.write_text(pem(key))
        return tls

    def server_context(self, *, alpn: list[str]) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.certificate, self.key)
        context.set_alpn_protocols(alpn)
        return context

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.certificate))


def _expect(condition: object, problem: str, answer: web.Response) -> None:
    if not condition:
        raise Refused(problem, answer)


def _answer(scripted: Scripted) -> web.Response:
    body = None if scripted.body is None else json.dumps(scripted.body)
    return web.Response(status=scripted.status, text=body, headers=scripted.headers, content_type="application/json")


class _HttpServer:
    """An aiohttp.web server on 127.0.0.1 (HTTPS when given a context) whose one handler sees every request."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.problems: list[str] = []
        self.script: list[Scripted] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def start(self, context: ssl.SSLContext | None = None) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=context).start()
        port = self._runner.addresses[0][1]
        self.url = f"{'https' if context else 'http'}://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        try:
            return await self.handle(request)
        except Refused as refused:
            self.problems.append(str(refused))
            return refused.answer

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raise NotImplementedError

    def scripted_or(self, success: web.Response) -> web.Response:
        return _answer(self.script.pop(0)) if self.script else success


# --- FCM -----------------------------------------------------------------------------------------------------------


def _fcm_error(status: int, code: str, message: str) -> web.Response:
    error = {
        "code": status,
        "message": message,
        "status": code,
        "details": [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code}],
    }
    return web.json_response({"error": error}, status=status)


class FakeFcm(_HttpServer):
    """Google's OAuth2 token endpoint (`/token`, the JWT bearer grant) and FCM HTTP v1 `messages:send`, which
    answers 401 to a token it did not issue or has revoked."""

    def __init__(
        self, clock: Clock, *, project_id: str, client_email: str, key_id: str, public_key: rsa.RSAPublicKey
    ) -> None:
        super().__init__(clock)
        self.project_id = project_id
        self.client_email = client_email
        self.key_id = key_id
        self.public_key = public_key
        self.token_requests = 0
        self.token_script: list[Scripted] = []  # answers of the token endpoint, as `script` of messages:send
        self.unauthorized = 0
        self.messages: list[dict[str, Any]] = []  # the `message` of each accepted send
        self.bearers: list[str] = []  # the access token of each accepted send
        self._issued: set[str] = set()

    @property
    def token_uri(self) -> str:
        return f"{self.url}/token"

    def revoke_tokens(self) -> None:
        self._issued.clear()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.raw_path == "/token":
            return await self._token(request)
        not_found = _fcm_error(404, "NOT_FOUND", "no such method")
        _expect(request.method == "POST", f"FCM: method {request.method}", not_found)
        path = f"/v1/projects/{self.project_id}/messages:send"
        _expect(request.raw_path == path, f"FCM: path {request.raw_path}", not_found)
        bearer = request.headers.get("Authorization", "")
        if not bearer.startswith("Bearer ") or bearer.removeprefix("Bearer ") not in self._issued:
            self.unauthorized += 1
            return _fcm_error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
        invalid = _fcm_error(400, "INVALID_ARGUMENT", "invalid message")
        _expect(request.content_type == "application/json", f"FCM: content type {request.content_type}", invalid)
        body = await request.json()
        _expect(set(body) == {"message"}, f"FCM: body fields {sorted(body)}", invalid)
        message = body["message"]
        fields = {"token", "notification", "data", "android", "apns"}
        _expect(set(message) == fields, f"FCM: message fields {sorted(message)}", invalid)
        notification = message["notification"]
        _expect(
            set(notification) == {"title", "body"} and all(isinstance(v, str) for v in notification.values()),
            f"FCM: notification {notification}",
            invalid,
        )
        data = message["data"]
        _expect(all(isinstance(v, str) for v in data.values()), "FCM: data values must be strings", invalid)
        collapse_key = message["android"].get("collapse_key")
        _expect(
            message["android"] == {"collapse_key": collapse_key, "priority": "high"},
            f"FCM: android {message['android']}",
            invalid,
        )
        _expect(
            message["apns"] == {"headers": {"apns-collapse-id": collapse_key}}, f"FCM: apns {message['apns']}", invalid
        )
        success = web.json_response({"name": f"projects/{self.project_id}/messages/{len(self.messages)}"})
        answer = self.scripted_or(success)
        if answer is success:
            self.messages.append(message)
            self.bearers.append(bearer.removeprefix("Bearer "))
        return answer

    async def _token(self, request: web.Request) -> web.StreamResponse:
        def invalid_grant(description: str) -> web.Response:
            return web.json_response({"error": "invalid_grant", "error_description": description}, status=400)

        _expect(request.method == "POST", f"token: method {request.method}", invalid_grant("POST only"))
        _expect(
            request.content_type == "application/x-www-form-urlencoded",
            f"token: content type {request.content_type}",
            invalid_grant("form expected"),
        )
        form = await request.post()
        _expect(
            set(form) == {"grant_type", "assertion"} and form["grant_type"] == JWT_BEARER_GRANT,
            f"token: form {sorted(form)}",
            invalid_grant("unsupported grant"),
        )
        assertion = str(form["assertion"])
        header = jwt.get_unverified_header(assertion)
        _expect(
            header == {"alg": "RS256", "typ": "JWT", "kid": self.key_id},
            f"token: header {header}",
            invalid_grant("kid"),
        )
        try:
            claims = jwt.decode(
                assertion,
                self.public_key,
                algorithms=["RS256"],
                audience=self.token_uri,
                issuer=self.client_email,
                options={"verify_exp": False, "verify_iat": False, "require": ["iss", "scope", "aud", "iat", "exp"]},
            )
        except jwt.InvalidTokenError as error:
            raise Refused(f"token: {error!r}", invalid_grant("Invalid JWT Signature.")) from error
        _expect(claims["scope"] == FCM_SCOPE, f"token: scope {claims['scope']}", invalid_grant("scope"))
        _expect(abs(claims["iat"] - self.clock()) <= 60, "token: iat is not now", invalid_grant("iat"))
        _expect(claims["exp"] == claims["iat"] + 3600, "token: exp is not iat + 3600", invalid_grant("exp"))
        self.token_requests += 1
        token = f"ya29.test-{self.token_requests}-{secrets.token_hex(8)}"
        self._issued.add(token)
        if self.token_script:
            return _answer(self.token_script.pop(0))
        return web.json_response({"access_token": token, "expires_in": 3599, "token_type": "Bearer"})


# --- APNs ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApnsRequest:
    device_token: str
    headers: dict[str, str]
    payload: dict[str, Any]
    provider_token: str
    claims: dict[str, Any]


class _ApnsRefused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"APNs {status} {reason}")
        self.status = status
        self.reason = reason


APNS_HEADERS = {
    ":method",
    ":scheme",
    ":authority",
    ":path",
    "authorization",
    "apns-topic",
    "apns-push-type",
    "apns-priority",
    "apns-collapse-id",
    "apns-id",
    "apns-expiration",
}


class FakeApns:
    """APNs' provider API: HTTP/2 only, over TLS with ALPN h2. Like APNs it first allows one concurrent stream and
    raises the limit after a successful request; h2 itself refuses a client that opens more (a problem)."""

    def __init__(
        self, clock: Clock, *, team_id: str, key_id: str, public_key: ec.EllipticCurvePublicKey, bundle_id: str
    ) -> None:
        self.clock = clock
        self.team_id = team_id
        self.key_id = key_id
        self.public_key = public_key
        self.bundle_id = bundle_id
        self.problems: list[str] = []
        self.script: list[Scripted] = []
        self.requests: list[ApnsRequest] = []
        self.connections = 0
        self.goaway_after_each = False  # drain every connection after one answer, as APNs may at any time
        self.url = ""
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self, context: ssl.SSLContext) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=context)
        self.url = f"https://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in self._connections:
                task.cancel()
            await asyncio.gather(*self._connections, return_exceptions=True)
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        self.connections += 1
        ssl_object = writer.get_extra_info("ssl_object")
        if ssl_object is None or ssl_object.selected_alpn_protocol() != "h2":
            self.problems.append("APNs: the client did not negotiate h2")
            writer.close()
            return
        connection = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding=None))
        connection.local_settings = h2.settings.Settings(
            client=False, initial_values={h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 1}
        )
        connection.initiate_connection()
        writer.write(connection.data_to_send())
        streams: dict[int, tuple[list[tuple[bytes, bytes]], bytearray]] = {}
        limited = True
        try:
            while data := await reader.read(65536):
                for event in connection.receive_data(data):
                    if isinstance(event, h2.events.RequestReceived):
                        streams[event.stream_id] = ([(bytes(n), bytes(v)) for n, v in event.headers], bytearray())
                    elif isinstance(event, h2.events.DataReceived):
                        streams[event.stream_id][1].extend(event.data)
                        connection.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                    elif isinstance(event, h2.events.StreamEnded):
                        headers, body = streams.pop(event.stream_id)
                        status = self._answer(connection, event.stream_id, headers, bytes(body))
                        if self.goaway_after_each:
                            connection.close_connection(last_stream_id=event.stream_id)
                        elif limited and status == 200:
                            connection.update_settings({h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 100})
                            limited = False
                writer.write(connection.data_to_send())
        except h2.exceptions.ProtocolError as error:
            self.problems.append(f"APNs: HTTP/2 protocol error {error!r}")
        except OSError:
            pass
        finally:
            writer.close()
            self._connections.discard(task)

    def _answer(
        self, connection: h2.connection.H2Connection, stream_id: int, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> int:
        fields = {name.decode(): value.decode() for name, value in headers}
        try:
            request = self._check(fields, body)
        except _ApnsRefused as refused:
            self.problems.append(str(refused))
            reply = Scripted(refused.status, {"reason": refused.reason})
        else:
            reply = self.script.pop(0) if self.script else Scripted(200)
            self.requests.append(request)
        status = reply.status
        response = [(b":status", str(status).encode()), (b"apns-id", fields.get("apns-id", str(uuid.uuid4())).encode())]
        response += [(name.lower().encode(), value.encode()) for name, value in reply.headers.items()]
        if reply.body is None:
            connection.send_headers(stream_id, response, end_stream=True)
        else:
            connection.send_headers(stream_id, response)
            connection.send_data(stream_id, json.dumps(reply.body).encode(), end_stream=True)
        return status

    def _check(self, fields: dict[str, str], body: bytes) -> ApnsRequest:
        def expect(condition: object, status: int, reason: str) -> None:
            if not condition:
                raise _ApnsRefused(status, reason)

        expect(set(fields) <= APNS_HEADERS, 400, f"UnexpectedHeaders {sorted(set(fields) - APNS_HEADERS)}")
        expect(fields.get(":method") == "POST", 405, "MethodNotAllowed")
        expect(fields.get(":scheme") == "https", 400, "BadScheme")
        expect(fields.get(":authority") == self.url.removeprefix("https://"), 400, "BadAuthority")
        path = re.fullmatch(r"/3/device/([0-9a-f]{64})", fields.get(":path", ""))
        expect(path, 404, "BadPath")
        assert path is not None
        authorization = fields.get("authorization", "")
        expect(authorization.startswith("bearer "), 403, "MissingProviderToken")
        token = authorization.removeprefix("bearer ")
        try:
            header = jwt.get_unverified_header(token)
            claims = jwt.decode(
                token,
                self.public_key,
                algorithms=["ES256"],
                issuer=self.team_id,
                options={"verify_iat": False, "require": ["iss", "iat"]},
            )
        except jwt.InvalidTokenError:
            raise _ApnsRefused(403, "InvalidProviderToken") from None
        expect(header == {"alg": "ES256", "kid": self.key_id}, 403, "InvalidProviderToken")
        expect(set(claims) == {"iss", "iat"}, 403, "InvalidProviderToken")
        expect(self.clock() - 3600 < claims["iat"] <= self.clock() + 60, 403, "ExpiredProviderToken")
        expect(fields.get("apns-topic") == self.bundle_id, 400, "BadTopic")
        expect(fields.get("apns-push-type") == "alert", 400, "InvalidPushType")
        expect(fields.get("apns-priority") == "10", 400, "BadPriority")
        expect(0 < len(fields.get("apns-collapse-id", "").encode()) <= 64, 400, "BadCollapseId")
        expect(len(body) <= 4096, 413, "PayloadTooLarge")
        try:
            payload = json.loads(body)
        except ValueError:
            raise _ApnsRefused(400, "BadPayload") from None
        alert = payload.get("aps", {}).get("alert", {}) if isinstance(payload, dict) else None
        expect(
            isinstance(alert, dict) and set(alert) == {"title", "body"} and set(payload["aps"]) == {"alert"},
            400,
            "BadPayload",
        )
        return ApnsRequest(path.group(1), fields, payload, token, claims)


# --- Web Push ------------------------------------------------------------------------------------------------------


def decrypt_web_push(body: bytes, ua_private: ec.EllipticCurvePrivateKey, auth_secret: bytes) -> bytes:
    """The user agent's side of RFC 8291 §3 and RFC 8188 §2, written out with HMAC (not the sender's HKDF class):
    one record of at most `rs` bytes, ending in the 0x02 delimiter and zero padding."""
    salt, rs, idlen = body[:16], int.from_bytes(body[16:20], "big"), body[20]
    if idlen != 65 or rs != 4096:
        raise ValueError(f"header: idlen {idlen}, rs {rs}")
    keyid, record = body[21 : 21 + idlen], body[21 + idlen :]
    if len(record) > rs:
        raise ValueError("more than one record")
    as_public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), keyid)
    shared = ua_private.exchange(ec.ECDH(), as_public)

    def mac(key: bytes, message: bytes) -> bytes:
        return hmac.new(key, message, hashlib.sha256).digest()

    ua_public = uncompressed(ua_private.public_key())
    ikm = mac(mac(auth_secret, shared), b"WebPush: info\x00" + ua_public + keyid + b"\x01")
    prk = mac(salt, ikm)
    key = mac(prk, b"Content-Encoding: aes128gcm\x00\x01")[:16]
    nonce = mac(prk, b"Content-Encoding: nonce\x00\x01")[:12]
    padded = AESGCM(key).decrypt(nonce, record, None).rstrip(b"\x00")
    if not padded.endswith(b"\x02"):
        raise ValueError("no last-record delimiter")
    return padded[:-1]


@dataclass(frozen=True)
class WebPushRequest:
    headers: dict[str, str]
    vapid_token: str
    vapid_key: str
    claims: dict[str, Any]
    keyid: bytes
    plaintext: bytes


@dataclass
class _Browser:
    private_key: ec.EllipticCurvePrivateKey
    auth_secret: bytes
    subscribed: bool = True


class FakePushService(_HttpServer):
    """An RFC 8030 push service (HTTPS): subscriptions made by `subscribe` for one application server key, answering
    201 to a valid push, 404 to an unknown subscription and 410 to one the browser dropped."""

    def __init__(self, clock: Clock, *, application_server_key: bytes) -> None:
        super().__init__(clock)
        self.application_server_key = application_server_key
        self.received: list[WebPushRequest] = []
        self._browsers: dict[str, _Browser] = {}

    def subscribe(self) -> WebPushSubscription:
        """What a browser's pushManager.subscribe() gives the application: its own key pair and auth secret."""
        browser = _Browser(ec.generate_private_key(ec.SECP256R1()), secrets.token_bytes(16))
        name = secrets.token_urlsafe(16)
        self._browsers[name] = browser
        return WebPushSubscription(
            endpoint=f"{self.url}/push/{name}",
            p256dh=b64url(uncompressed(browser.private_key.public_key())),
            auth=b64url(browser.auth_secret),
        )

    def unsubscribe(self, subscription: WebPushSubscription) -> None:
        self._browsers[subscription.endpoint.rsplit("/", 1)[1]].subscribed = False

    async def handle(self, request: web.Request) -> web.StreamResponse:
        bad = web.Response(status=400, text="bad request")
        forbidden = web.Response(status=403, text="VAPID check failed")
        _expect(request.method == "POST", f"push: method {request.method}", web.Response(status=405))
        match = re.fullmatch(r"/push/([A-Za-z0-9_-]+)", request.raw_path)
        browser = self._browsers.get(match.group(1)) if match else None
        if browser is None:
            return web.Response(status=404, text="no such subscription")
        if not browser.subscribed:
            return web.Response(status=410, text="subscription expired")
        headers = request.headers
        _expect(headers.get("TTL", "").isdigit(), f"push: TTL {headers.get('TTL')}", bad)
        urgency = headers.get("Urgency")
        _expect(urgency in {"very-low", "low", "normal", "high"}, f"push: Urgency {urgency}", bad)
        _expect(re.fullmatch(r"[A-Za-z0-9_-]{1,32}", headers.get("Topic", "")), "push: Topic", bad)
        _expect(headers.get("Content-Encoding") == "aes128gcm", "push: Content-Encoding", bad)
        _expect(headers.get("Content-Type") == "application/octet-stream", "push: Content-Type", bad)
        scheme, _, parameters = headers.get("Authorization", "").partition(" ")
        vapid = dict(p.strip().split("=", 1) for p in parameters.split(",") if "=" in p)
        _expect(scheme == "vapid" and set(vapid) == {"t", "k"}, "push: Authorization is not vapid t, k", forbidden)
        _expect(unb64url(vapid["k"]) == self.application_server_key, "push: k is not the subscription's", forbidden)
        key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(vapid["k"]))
        try:
            claims = jwt.decode(
                vapid["t"],
                key,
                algorithms=["ES256"],
                audience=self.url,
                options={"verify_exp": False, "require": ["aud", "exp", "sub"]},
            )
        except jwt.InvalidTokenError as error:
            raise Refused(f"push: VAPID JWT {error!r}", forbidden) from error
        header = jwt.get_unverified_header(vapid["t"])
        _expect(header == {"typ": "JWT", "alg": "ES256"}, f"push: JWT header {header}", forbidden)
        _expect(self.clock() < claims["exp"] <= self.clock() + 24 * 3600, "push: exp not within 24 h", forbidden)
        _expect(str(claims["sub"]).startswith(("mailto:", "https:")), "push: sub", forbidden)
        body = await request.read()
        _expect(len(body) <= 4096, "push: over 4096 bytes", web.Response(status=413))
        try:
            plaintext = decrypt_web_push(body, browser.private_key, browser.auth_secret)
        except (ValueError, IndexError, InvalidTag) as error:
            raise Refused(f"push: cannot decrypt {error!r}", bad) from error
        answer = self.scripted_or(web.Response(status=201, headers={"Location": f"{self.url}/message/{uuid.uuid4()}"}))
        if answer.status == 201:
            self.received.append(WebPushRequest(dict(headers), vapid["t"], vapid["k"], claims, body[21:86], plaintext))
        return answer


# --- Chat robots and the generic webhook ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RobotCredentials:
    dingtalk_token: str = field(default_factory=lambda: secrets.token_hex(32))
    dingtalk_secret: str = field(default_factory=lambda: "SEC" + secrets.token_hex(32))
    feishu_hook: str = field(default_factory=lambda: str(uuid.uuid4()))
    feishu_secret: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    wecom_key: str = field(default_factory=lambda: str(uuid.uuid4()))
    webhook_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))


class FakeRobots(_HttpServer):
    """DingTalk's `/robot/send`, Feishu's `/open-apis/bot/v2/hook/<id>`, WeCom's `/cgi-bin/webhook/send` and a
    generic receiver at `/hooks/novasphere`, each checking its credential, signature and message shape."""

    def __init__(self, clock: Clock, credentials: RobotCredentials) -> None:
        super().__init__(clock)
        self.credentials = credentials
        self.received: list[tuple[str, dict[str, Any], dict[str, str]]] = []  # (robot, body, headers)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        _expect(request.method == "POST", f"robots: method {request.method}", web.Response(status=405))
        if request.path == "/robot/send":
            return await self._dingtalk(request)
        if request.path.startswith("/open-apis/bot/v2/hook/"):
            return await self._feishu(request)
        if request.path == "/cgi-bin/webhook/send":
            return await self._wecom(request)
        if request.path == "/hooks/novasphere":
            return await self._generic(request)
        return web.Response(status=404)

    async def _json(self, request: web.Request, refusal: web.Response) -> dict[str, Any]:
        _expect(request.content_type == "application/json", f"content type {request.content_type}", refusal)
        body = await request.json()
        _expect(isinstance(body, dict), "body is not a JSON object", refusal)
        return dict(body)

    def _accept(self, robot: str, body: dict[str, Any], request: web.Request, success: web.Response) -> web.Response:
        answer = self.scripted_or(success)
        if answer is success:
            self.received.append((robot, body, dict(request.headers)))
        return answer

    async def _dingtalk(self, request: web.Request) -> web.StreamResponse:
        def refusal(errmsg: str) -> web.Response:
            return web.json_response({"errcode": 310000, "errmsg": errmsg})

        raw = dict(p.split("=", 1) for p in request.query_string.split("&") if "=" in p)
        _expect(set(raw) == {"access_token", "timestamp", "sign"}, f"DingTalk: query {sorted(raw)}", refusal("query"))
        _expect(raw["access_token"] == self.credentials.dingtalk_token, "DingTalk: token", refusal("token"))
        timestamp = raw["timestamp"]
        _expect(
            timestamp.isdigit() and abs(int(timestamp) - self.clock() * 1000) <= 3600 * 1000,
            "DingTalk: timestamp is not milliseconds within an hour",
            refusal("timestamp"),
        )
        secret = self.credentials.dingtalk_secret
        expected = base64.b64encode(
            hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
        ).decode()
        # Percent-encoded once, so that a server decoding + as a space still reads the signature.
        _expect("+" not in raw["sign"], "DingTalk: sign is not urlencoded", refusal("sign not match"))
        _expect(urllib.parse.unquote_plus(raw["sign"]) == expected, "DingTalk: sign", refusal("sign not match"))
        body = await self._json(request, refusal("content type"))
        markdown = body.get("markdown", {})
        _expect(
            set(body) == {"msgtype", "markdown"}
            and body["msgtype"] == "markdown"
            and set(markdown) == {"title", "text"},
            f"DingTalk: message {body}",
            refusal("bad message"),
        )
        return self._accept("dingtalk", body, request, web.json_response({"errcode": 0, "errmsg": "ok"}))

    async def _feishu(self, request: web.Request) -> web.StreamResponse:
        def refusal(code: int, msg: str) -> web.Response:
            return web.json_response({"code": code, "data": {}, "msg": msg})

        hook = request.path.removeprefix("/open-apis/bot/v2/hook/")
        if hook != self.credentials.feishu_hook:
            return refusal(19001, "param invalid: incoming webhook access token invalid")
        body = await self._json(request, refusal(9499, "Bad Request"))
        _expect(
            set(body) == {"timestamp", "sign", "msg_type", "content"},
            f"Feishu: fields {sorted(body)}",
            refusal(9499, "Bad Request"),
        )
        timestamp = body["timestamp"]
        secret = self.credentials.feishu_secret
        expected = base64.b64encode(hmac.new(f"{timestamp}\n{secret}".encode(), b"", hashlib.sha256).digest()).decode()
        sign_fail = refusal(19021, "sign match fail or timestamp is not within one hour from current time")
        if not (
            isinstance(timestamp, str)
            and timestamp.isdigit()
            and abs(int(timestamp) - self.clock()) <= 3600
            and body["sign"] == expected
        ):
            return sign_fail  # what Feishu says to a wrong secret: a test may cause it on purpose
        post = body["content"].get("post", {}).get("zh_cn", {}) if isinstance(body["content"], dict) else {}
        _expect(
            body["msg_type"] == "post"
            and set(body["content"]) == {"post"}
            and set(post) == {"title", "content"}
            and all(e.keys() == {"tag", "text"} and e["tag"] == "text" for line in post["content"] for e in line),
            f"Feishu: message {body}",
            refusal(9499, "Bad Request"),
        )
        success = web.json_response(
            {"StatusCode": 0, "StatusMessage": "success", "code": 0, "data": {}, "msg": "success"}
        )
        return self._accept("feishu", body, request, success)

    async def _wecom(self, request: web.Request) -> web.StreamResponse:
        if request.query.get("key") != self.credentials.wecom_key or set(request.query) != {"key"}:
            return web.json_response({"errcode": 93000, "errmsg": "invalid webhook url"})
        refusal = web.json_response({"errcode": 40008, "errmsg": "invalid message type"})
        body = await self._json(request, refusal)
        markdown = body.get("markdown", {})
        _expect(
            set(body) == {"msgtype", "markdown"} and body["msgtype"] == "markdown" and set(markdown) == {"content"},
            f"WeCom: message {body}",
            refusal,
        )
        return self._accept("wecom", body, request, web.json_response({"errcode": 0, "errmsg": "ok"}))

    async def _generic(self, request: web.Request) -> web.StreamResponse:
        unauthorized = web.Response(status=401, text="bad signature")
        raw = await request.read()
        timestamp = request.headers.get("X-NovaSphere-Timestamp", "")
        _expect(timestamp.isdigit() and abs(int(timestamp) - self.clock()) <= 300, "webhook: timestamp", unauthorized)
        mac = hmac.new(self.credentials.webhook_secret.encode(), f"{timestamp}.".encode() + raw, hashlib.sha256)
        signature = request.headers.get("X-NovaSphere-Signature", "")
        _expect(hmac.compare_digest(signature, f"sha256={mac.hexdigest()}"), "webhook: signature", unauthorized)
        body = await self._json(request, web.Response(status=415))
        _expect(
            set(body) == {"id", "title", "body", "data"}, f"webhook: fields {sorted(body)}", web.Response(status=400)
        )
        _expect(
            request.headers.get("X-NovaSphere-Event-Id") == body["id"], "webhook: event id", web.Response(status=400)
        )
        return self._accept("webhook", body, request, web.Response(status=204))
