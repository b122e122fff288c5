"""Every notification sender against a local stand-in of its provider on 127.0.0.1 (tests/notification_servers.py):
the servers check the wire format as the providers do (an empty `problems` is part of every success), and the tests
check what each sender makes of the providers' answers, and that no detail quotes a token, key or secret."""

from __future__ import annotations

import asyncio
import dataclasses
import email.utils
import hashlib
import json
import secrets
import socket
from collections.abc import AsyncIterator, Iterable

import aiohttp
import jwt
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from server.notifications import webpush
from server.notifications.apns import ApnsSender
from server.notifications.delivery import Delivery, Notification
from server.notifications.fcm import FcmSender, ServiceAccount
from server.notifications.webhooks import DingTalkSender, FeishuSender, GenericWebhookSender, Webhook, WeComSender
from server.notifications.webpush import WebPushSender, WebPushSubscription
from tests.notification_servers import (
    Clock,
    FakeApns,
    FakeFcm,
    FakePushService,
    FakeRobots,
    RobotCredentials,
    Scripted,
    Tls,
    b64url,
    decrypt_web_push,
    pem,
    unb64url,
    uncompressed,
)

pytestmark = pytest.mark.timeout(60)

SEND_SECONDS = 5.0
NOTE = Notification(
    event_id="evt-0001",
    title="VM web-1 is running",
    body="Started in 12 s",
    data={"vm": "web-1", "namespace": "team"},
    collapse_key="vm/team/web-1",
)
PROJECT = "novasphere-test"
CLIENT_EMAIL = "fcm-sender@novasphere-test.iam.gserviceaccount.com"
PRIVATE_KEY_ID = "5d1e7c0ffee0"
TEAM_ID = "TEAM123456"
KEY_ID = "KEY7890ABC"
BUNDLE_ID = "dev.novasphere.console"
FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"


def _quotes_none(deliveries: Iterable[Delivery], *secret_values: str) -> None:
    for delivery in deliveries:
        for value in secret_values:
            assert value not in delivery.detail, delivery


def _fcm_error(status: int, code: str, message: str, *violations: str, fcm_code: str | None = None) -> object:
    details: list[object] = [{"@type": FCM_ERROR, "errorCode": fcm_code or code}]
    if violations:
        fields = [{"field": f, "description": "invalid"} for f in violations]
        details.append({"@type": BAD_REQUEST, "fieldViolations": fields})
    return {"error": {"code": status, "message": message, "status": code, "details": details}}


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    return Tls.create(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest_asyncio.fixture(loop_scope="session")
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@pytest_asyncio.fixture(loop_scope="session")
async def tls_session(tls: Tls) -> AsyncIterator[aiohttp.ClientSession]:
    """A client that trusts the test certificate (push services are HTTPS only)."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=tls.client_context())) as client:
        yield client


# --- FCM -----------------------------------------------------------------------------------------------------------


@pytest_asyncio.fixture(loop_scope="session")
async def fcm(clock: Clock, rsa_key: rsa.RSAPrivateKey) -> AsyncIterator[FakeFcm]:
    server = FakeFcm(
        clock, project_id=PROJECT, client_email=CLIENT_EMAIL, key_id=PRIVATE_KEY_ID, public_key=rsa_key.public_key()
    )
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def fcm_sender(session: aiohttp.ClientSession, fcm: FakeFcm, rsa_key: rsa.RSAPrivateKey, clock: Clock) -> FcmSender:
    key_file = {
        "type": "service_account",
        "project_id": PROJECT,
        "private_key_id": PRIVATE_KEY_ID,
        "private_key": pem(rsa_key),
        "client_email": CLIENT_EMAIL,
        "token_uri": fcm.token_uri,
    }
    account = ServiceAccount.from_json(json.dumps(key_file))
    return FcmSender(session, account, base_url=fcm.url, timeout=SEND_SECONDS, clock=clock)


async def test_fcm_sends_the_v1_message_with_one_access_token_until_it_nears_expiry(
    fcm: FakeFcm, fcm_sender: FcmSender, clock: Clock
) -> None:
    tokens = [f"fcm-token-{i}-{secrets.token_urlsafe(24)}" for i in range(3)]
    deliveries = await asyncio.gather(*(fcm_sender.send(t, NOTE) for t in tokens))

    assert [d.outcome for d in deliveries] == ["delivered"] * 3
    assert fcm.problems == []
    assert fcm.token_requests == 1  # one token for three concurrent sends
    assert sorted(m["token"] for m in fcm.messages) == sorted(tokens)
    assert fcm.messages[0] == {
        "token": fcm.messages[0]["token"],
        "notification": {"title": NOTE.title, "body": NOTE.body},
        "data": NOTE.data,
        "android": {"collapse_key": NOTE.collapse_key, "priority": "high"},
        "apns": {"headers": {"apns-collapse-id": NOTE.collapse_key}},
    }
    _quotes_none(deliveries, *tokens, *fcm.bearers)

    clock.advance(3599 - 300 - 1)  # still more than the margin left: the same token
    assert (await fcm_sender.send(tokens[0], NOTE)).outcome == "delivered"
    clock.advance(2)  # within the margin of its expiry: a new one
    assert (await fcm_sender.send(tokens[0], NOTE)).outcome == "delivered"
    assert fcm.token_requests == 2
    assert len(set(fcm.bearers)) == 2
    assert fcm.problems == []


async def test_fcm_gets_a_new_access_token_once_when_one_is_refused(fcm: FakeFcm, fcm_sender: FcmSender) -> None:
    assert (await fcm_sender.send("device-a", NOTE)).outcome == "delivered"
    fcm.revoke_tokens()

    delivery = await fcm_sender.send("device-a", NOTE)

    assert delivery.outcome == "delivered"
    assert fcm.unauthorized == 1
    assert fcm.token_requests == 2
    assert fcm.bearers[0] != fcm.bearers[1]
    assert fcm.problems == []


@pytest.mark.parametrize(
    ("answer", "outcome", "retry_after"),
    [
        (
            Scripted(404, _fcm_error(404, "NOT_FOUND", "Requested entity was not found.", fcm_code="UNREGISTERED")),
            "gone",
            None,
        ),
        (
            Scripted(400, _fcm_error(400, "INVALID_ARGUMENT", "Invalid registration token", "message.token")),
            "gone",
            None,
        ),
        (
            Scripted(400, _fcm_error(400, "INVALID_ARGUMENT", "Invalid data payload key", "message.data")),
            "failed",
            None,
        ),
        (
            Scripted(403, _fcm_error(403, "PERMISSION_DENIED", "SenderId mismatch", fcm_code="SENDER_ID_MISMATCH")),
            "failed",
            None,
        ),
        (
            Scripted(503, _fcm_error(503, "UNAVAILABLE", "The service is unavailable."), {"Retry-After": "7"}),
            "retry",
            7.0,
        ),
        (
            Scripted(429, _fcm_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded.", fcm_code="QUOTA_EXCEEDED")),
            "retry",
            None,
        ),
    ],
    ids=["unregistered", "invalid-token", "invalid-data", "sender-mismatch", "unavailable", "quota"],
)
async def test_fcm_answers_decide_the_outcome(
    fcm: FakeFcm, fcm_sender: FcmSender, answer: Scripted, outcome: str, retry_after: float | None
) -> None:
    token = f"stale-{secrets.token_urlsafe(32)}"
    fcm.script.append(answer)

    delivery = await fcm_sender.send(token, NOTE)

    assert (delivery.outcome, delivery.retry_after_seconds) == (outcome, retry_after)
    assert delivery.detail.startswith(f"FCM answered HTTP {answer.status}")
    assert fcm.problems == []
    _quotes_none([delivery], token, *fcm.bearers)


async def test_fcm_credentials_the_token_endpoint_refuses_fail_and_its_outage_is_retried(
    fcm: FakeFcm, fcm_sender: FcmSender
) -> None:
    fcm.token_script.append(Scripted(400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}))
    refused = await fcm_sender.send("device-a", NOTE)
    fcm.token_script.append(Scripted(503, {"error": "backend_error"}, {"Retry-After": "7"}))
    outage = await fcm_sender.send("device-a", NOTE)

    assert (refused.outcome, refused.detail) == ("failed", "FCM token endpoint answered HTTP 400 invalid_grant")
    assert (outage.outcome, outage.retry_after_seconds) == ("retry", 7.0)
    assert fcm.messages == []
    assert fcm.problems == []


# --- APNs ----------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def apns_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest_asyncio.fixture(loop_scope="session")
async def apns(clock: Clock, apns_key: ec.EllipticCurvePrivateKey, tls: Tls) -> AsyncIterator[FakeApns]:
    server = FakeApns(clock, team_id=TEAM_ID, key_id=KEY_ID, public_key=apns_key.public_key(), bundle_id=BUNDLE_ID)
    await server.start(tls.server_context(alpn=["h2"]))
    try:
        yield server
    finally:
        await server.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def apns_sender(
    apns: FakeApns, apns_key: ec.EllipticCurvePrivateKey, tls: Tls, clock: Clock
) -> AsyncIterator[ApnsSender]:
    sender = ApnsSender(
        team_id=TEAM_ID,
        key_id=KEY_ID,
        private_key=pem(apns_key),
        bundle_id=BUNDLE_ID,
        base_url=apns.url,
        ssl_context=tls.client_context(),
        timeout=SEND_SECONDS,
        clock=clock,
    )
    try:
        yield sender
    finally:
        await sender.close()


async def test_apns_sends_over_http2_with_a_provider_token_it_reuses_for_50_minutes(
    apns: FakeApns, apns_sender: ApnsSender, clock: Clock
) -> None:
    devices = [secrets.token_hex(32) for _ in range(3)]
    # APNs allows one stream until a request succeeds: the sender waits for the server's limit rather than exceed it.
    deliveries = await asyncio.gather(*(apns_sender.send(d, NOTE) for d in devices))

    assert [d.outcome for d in deliveries] == ["delivered"] * 3
    assert apns.problems == []
    assert sorted(r.device_token for r in apns.requests) == sorted(devices)
    request = apns.requests[0]
    assert {name: value for name, value in request.headers.items() if name != "authorization"} == {
        ":method": "POST",
        ":scheme": "https",
        ":authority": apns.url.removeprefix("https://"),
        ":path": f"/3/device/{request.device_token}",
        "apns-topic": BUNDLE_ID,
        "apns-push-type": "alert",
        "apns-priority": "10",
        "apns-collapse-id": NOTE.collapse_key,
    }
    assert request.payload == {"aps": {"alert": {"title": NOTE.title, "body": NOTE.body}}, **NOTE.data}
    assert jwt.get_unverified_header(request.provider_token) == {"alg": "ES256", "kid": KEY_ID}
    assert request.claims == {"iss": TEAM_ID, "iat": int(clock())}
    assert len({r.provider_token for r in apns.requests}) == 1
    _quotes_none(deliveries, *devices, request.provider_token)

    clock.advance(49 * 60)
    assert (await apns_sender.send(devices[0], NOTE)).outcome == "delivered"
    assert apns.requests[-1].provider_token == request.provider_token
    clock.advance(2 * 60)
    assert (await apns_sender.send(devices[0], NOTE)).outcome == "delivered"
    assert apns.requests[-1].provider_token != request.provider_token
    assert apns.requests[-1].claims == {"iss": TEAM_ID, "iat": int(clock())}
    assert apns.connections == 1
    assert apns.problems == []


@pytest.mark.parametrize(
    ("answer", "outcome", "retry_after"),
    [
        (Scripted(410, {"reason": "Unregistered", "timestamp": 1700000000000}), "gone", None),
        (Scripted(400, {"reason": "BadDeviceToken"}), "gone", None),
        (Scripted(400, {"reason": "DeviceTokenNotForTopic"}), "gone", None),
        (Scripted(400, {"reason": "BadCollapseId"}), "failed", None),
        (Scripted(403, {"reason": "InvalidProviderToken"}), "failed", None),
        (Scripted(429, {"reason": "TooManyRequests"}), "retry", None),
        (Scripted(503, {"reason": "ServiceUnavailable"}, {"Retry-After": "7"}), "retry", 7.0),
    ],
    ids=["unregistered", "bad-token", "wrong-topic", "bad-collapse-id", "invalid-provider-token", "throttled", "down"],
)
async def test_apns_answers_decide_the_outcome(
    apns: FakeApns, apns_sender: ApnsSender, answer: Scripted, outcome: str, retry_after: float | None
) -> None:
    device = secrets.token_hex(32)
    apns.script.append(answer)

    delivery = await apns_sender.send(device, NOTE)

    assert (delivery.outcome, delivery.retry_after_seconds) == (outcome, retry_after)
    assert delivery.detail == f"APNs answered {answer.status} {answer.body['reason']}"
    assert apns.problems == []
    _quotes_none([delivery], device, *(r.provider_token for r in apns.requests))


async def test_apns_renews_a_provider_token_it_calls_expired_and_sends_again(
    apns: FakeApns, apns_sender: ApnsSender
) -> None:
    apns.script.append(Scripted(403, {"reason": "ExpiredProviderToken"}))

    delivery = await apns_sender.send(secrets.token_hex(32), NOTE)

    assert delivery.outcome == "delivered"
    assert len(apns.requests) == 2
    assert apns.requests[0].provider_token != apns.requests[1].provider_token
    assert apns.problems == []


async def test_apns_opens_a_new_connection_when_the_server_drains_one(apns: FakeApns, apns_sender: ApnsSender) -> None:
    apns.goaway_after_each = True

    deliveries = [await apns_sender.send(secrets.token_hex(32), NOTE) for _ in range(2)]

    assert [d.outcome for d in deliveries] == ["delivered"] * 2
    assert apns.connections == 2
    assert apns.problems == []


async def test_apns_never_sends_a_token_that_is_not_hexadecimal(apns: FakeApns, apns_sender: ApnsSender) -> None:
    delivery = await apns_sender.send("not/a/token", NOTE)

    assert delivery.outcome == "gone"
    assert apns.connections == 0


async def test_an_unreachable_apns_is_retried(apns_key: ec.EllipticCurvePrivateKey, tls: Tls) -> None:
    with socket.socket() as bound:  # bound, not listening: connections are refused
        bound.bind(("127.0.0.1", 0))
        sender = ApnsSender(
            team_id=TEAM_ID,
            key_id=KEY_ID,
            private_key=pem(apns_key),
            bundle_id=BUNDLE_ID,
            base_url=f"https://127.0.0.1:{bound.getsockname()[1]}",
            ssl_context=tls.client_context(),
            timeout=SEND_SECONDS,
        )
        try:
            delivery = await sender.send(secrets.token_hex(32), NOTE)
        finally:
            await sender.close()

    assert (delivery.outcome, delivery.detail) == ("retry", "APNs connection failed: ConnectionRefusedError")


# --- Web Push ------------------------------------------------------------------------------------------------------

# RFC 8291 §5 (Appendix A): the message a user agent with these keys decrypts to the plaintext.
RFC_PLAINTEXT = b"When I grow up, I want to be a watermelon"
RFC_AS_PRIVATE = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw"
RFC_AS_PUBLIC = "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8"
RFC_UA_PRIVATE = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94"
RFC_UA_PUBLIC = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"
RFC_AUTH = "BTBZMqHH6r4Tts7J_aSIgg"
RFC_SALT = "DGv6ra1nlYgDCS1FRnbzlw"
RFC_BODY = (
    "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27ml"
    "mlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPT"
    "pK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN"
)


def _p256(private_value: str) -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(int.from_bytes(unb64url(private_value), "big"), ec.SECP256R1())


def test_web_push_encryption_reproduces_the_rfc_8291_example_and_the_test_browser_reads_it() -> None:
    as_private = _p256(RFC_AS_PRIVATE)
    assert b64url(uncompressed(as_private.public_key())) == RFC_AS_PUBLIC

    body = webpush.encrypt(
        RFC_PLAINTEXT,
        ua_public=unb64url(RFC_UA_PUBLIC),
        auth_secret=unb64url(RFC_AUTH),
        as_private=as_private,
        salt=unb64url(RFC_SALT),
    )

    assert b64url(body) == RFC_BODY
    assert decrypt_web_push(unb64url(RFC_BODY), _p256(RFC_UA_PRIVATE), unb64url(RFC_AUTH)) == RFC_PLAINTEXT


@pytest.fixture(scope="module")
def vapid_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest_asyncio.fixture(loop_scope="session")
async def push(clock: Clock, vapid_key: ec.EllipticCurvePrivateKey, tls: Tls) -> AsyncIterator[FakePushService]:
    server = FakePushService(clock, application_server_key=uncompressed(vapid_key.public_key()))
    await server.start(tls.server_context(alpn=["http/1.1"]))
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def push_sender(
    tls_session: aiohttp.ClientSession, vapid_key: ec.EllipticCurvePrivateKey, clock: Clock
) -> WebPushSender:
    return WebPushSender(
        tls_session,
        vapid_private_key=pem(vapid_key),
        subject="mailto:ops@novasphere.dev",
        ttl_seconds=3600,
        urgency="high",
        timeout=SEND_SECONDS,
        clock=clock,
    )


async def test_web_push_sends_an_encrypted_message_with_a_vapid_token_it_reuses(
    push: FakePushService, push_sender: WebPushSender, vapid_key: ec.EllipticCurvePrivateKey, clock: Clock
) -> None:
    subscription = push.subscribe()

    deliveries = [
        await push_sender.send(subscription, NOTE),
        await push_sender.send(subscription, dataclasses.replace(NOTE, event_id="evt-0002", body="Stopped")),
    ]

    assert [d.outcome for d in deliveries] == ["delivered"] * 2
    assert push.problems == []
    first, second = push.received
    assert json.loads(first.plaintext) == {"id": "evt-0001", "title": NOTE.title, "body": NOTE.body, "data": NOTE.data}
    assert json.loads(second.plaintext)["body"] == "Stopped"
    topic = b64url(hashlib.sha256(NOTE.collapse_key.encode()).digest()[:24])
    for received in (first, second):
        assert {name: received.headers[name] for name in ("TTL", "Urgency", "Topic")} == {
            "TTL": "3600",
            "Urgency": "high",
            "Topic": topic,
        }
    assert len(topic) == 32
    assert first.vapid_token == second.vapid_token
    assert first.vapid_key == b64url(uncompressed(vapid_key.public_key()))
    assert first.claims == {"aud": push.url, "exp": int(clock()) + 12 * 3600, "sub": "mailto:ops@novasphere.dev"}
    # A fresh ECDH key per message, not the VAPID key.
    assert first.keyid != second.keyid
    assert uncompressed(vapid_key.public_key()) not in (first.keyid, second.keyid)
    _quotes_none(deliveries, subscription.endpoint, subscription.auth, first.vapid_token)


async def test_web_push_answers_decide_the_outcome(push: FakePushService, push_sender: WebPushSender) -> None:
    dropped = push.subscribe()
    push.unsubscribe(dropped)
    unknown = dataclasses.replace(push.subscribe(), endpoint=f"{push.url}/push/{secrets.token_urlsafe(16)}")
    live = push.subscribe()

    gone = [await push_sender.send(dropped, NOTE), await push_sender.send(unknown, NOTE)]
    push.script.append(Scripted(503, headers={"Retry-After": "7"}))
    down = await push_sender.send(live, NOTE)
    push.script.append(Scripted(429))
    throttled = await push_sender.send(live, NOTE)
    push.script.append(Scripted(400))
    refused = await push_sender.send(live, NOTE)

    assert [d.outcome for d in gone] == ["gone", "gone"]
    assert [d.detail for d in gone] == ["Web Push answered HTTP 410", "Web Push answered HTTP 404"]
    assert (down.outcome, down.retry_after_seconds) == ("retry", 7.0)
    assert (throttled.outcome, throttled.retry_after_seconds) == ("retry", None)
    assert refused.outcome == "failed"
    assert push.problems == []
    _quotes_none([*gone, down, throttled, refused], dropped.endpoint, unknown.endpoint, live.endpoint)


async def test_web_push_subscriptions_that_can_never_work_are_gone_unsent(
    push: FakePushService, push_sender: WebPushSender
) -> None:
    live = push.subscribe()
    bad_key = dataclasses.replace(live, p256dh=b64url(b"\x04" + bytes(64)))  # not a point on P-256
    plain_http = dataclasses.replace(live, endpoint=live.endpoint.replace("https://", "http://"))
    short_auth = WebPushSubscription(endpoint=live.endpoint, p256dh=live.p256dh, auth=b64url(b"short"))

    deliveries = [await push_sender.send(s, NOTE) for s in (bad_key, plain_http, short_auth)]

    assert [d.outcome for d in deliveries] == ["gone"] * 3
    assert push.received == []


# --- Chat robots and the generic webhook ---------------------------------------------------------------------------


@pytest.fixture
def credentials() -> RobotCredentials:
    return RobotCredentials()


@pytest_asyncio.fixture(loop_scope="session")
async def robots(clock: Clock, credentials: RobotCredentials) -> AsyncIterator[FakeRobots]:
    server = FakeRobots(clock, credentials)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def _secrets_of(credentials: RobotCredentials) -> list[str]:
    return [str(value) for value in dataclasses.asdict(credentials).values()]


async def test_dingtalk_gets_a_signed_markdown_message(
    robots: FakeRobots, credentials: RobotCredentials, session: aiohttp.ClientSession, clock: Clock
) -> None:
    sender = DingTalkSender(session, timeout=SEND_SECONDS, clock=clock)
    url = f"{robots.url}/robot/send?access_token={credentials.dingtalk_token}"

    delivered = await sender.send(Webhook(url, credentials.dingtalk_secret), NOTE)
    robots.script.append(Scripted(200, {"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"}))
    throttled = await sender.send(Webhook(url, credentials.dingtalk_secret), NOTE)
    wrong_secret = await sender.send(Webhook(url, "SEC" + secrets.token_hex(32)), NOTE)

    assert (delivered.outcome, delivered.detail) == ("delivered", "DingTalk answered HTTP 200 errcode 0")
    assert robots.received[0][1] == {
        "msgtype": "markdown",
        "markdown": {"title": NOTE.title, "text": f"**{NOTE.title}**\n\n{NOTE.body}\n\nnamespace: team\n\nvm: web-1"},
    }
    assert (throttled.outcome, throttled.retry_after_seconds) == ("retry", 600.0)
    assert (wrong_secret.outcome, wrong_secret.detail) == ("failed", "DingTalk answered HTTP 200 errcode 310000")
    assert robots.problems == ["DingTalk: sign"]  # the wrong secret's, and only it
    _quotes_none([delivered, throttled, wrong_secret], *_secrets_of(credentials))


async def test_feishu_gets_a_signed_post_message(
    robots: FakeRobots, credentials: RobotCredentials, session: aiohttp.ClientSession, clock: Clock
) -> None:
    sender = FeishuSender(session, timeout=SEND_SECONDS, clock=clock)
    url = f"{robots.url}/open-apis/bot/v2/hook/{credentials.feishu_hook}"

    delivered = await sender.send(Webhook(url, credentials.feishu_secret), NOTE)
    robots.script.append(Scripted(200, {"code": 11232, "data": {}, "msg": "frequency limited"}))
    throttled = await sender.send(Webhook(url, credentials.feishu_secret), NOTE)
    wrong_secret = await sender.send(Webhook(url, secrets.token_urlsafe(16)), NOTE)

    assert (delivered.outcome, delivered.detail) == ("delivered", "Feishu answered HTTP 200 code 0")
    body = robots.received[0][1]
    assert body["msg_type"] == "post"
    assert body["content"] == {
        "post": {
            "zh_cn": {
                "title": NOTE.title,
                "content": [[{"tag": "text", "text": t}] for t in (NOTE.body, "namespace: team", "vm: web-1")],
            }
        }
    }
    assert body["timestamp"] == str(int(clock()))
    assert (throttled.outcome, throttled.retry_after_seconds) == ("retry", None)
    assert (wrong_secret.outcome, wrong_secret.detail) == ("failed", "Feishu answered HTTP 200 code 19021")
    assert robots.problems == []
    _quotes_none([delivered, throttled, wrong_secret], *_secrets_of(credentials))


async def test_wecom_gets_a_markdown_message(
    robots: FakeRobots, credentials: RobotCredentials, session: aiohttp.ClientSession, clock: Clock
) -> None:
    sender = WeComSender(session, timeout=SEND_SECONDS, clock=clock)
    url = f"{robots.url}/cgi-bin/webhook/send?key={credentials.wecom_key}"

    delivered = await sender.send(Webhook(url), NOTE)
    robots.script.append(Scripted(200, {"errcode": 45009, "errmsg": "api freq out of limit"}))
    throttled = await sender.send(Webhook(url), NOTE)
    wrong_key = await sender.send(Webhook(url.replace(credentials.wecom_key, "not-the-key")), NOTE)

    assert (delivered.outcome, delivered.detail) == ("delivered", "WeCom answered HTTP 200 errcode 0")
    assert robots.received[0][1] == {
        "msgtype": "markdown",
        "markdown": {"content": f"**{NOTE.title}**\n\n{NOTE.body}\n\nnamespace: team\n\nvm: web-1"},
    }
    assert (throttled.outcome, throttled.retry_after_seconds) == ("retry", 60.0)
    assert (wrong_key.outcome, wrong_key.detail) == ("failed", "WeCom answered HTTP 200 errcode 93000")
    assert robots.problems == []
    _quotes_none([delivered, throttled, wrong_key], *_secrets_of(credentials), "not-the-key")


async def test_the_generic_webhook_gets_a_signed_json_event(
    robots: FakeRobots, credentials: RobotCredentials, session: aiohttp.ClientSession, clock: Clock
) -> None:
    sender = GenericWebhookSender(session, timeout=SEND_SECONDS, clock=clock)
    webhook = Webhook(f"{robots.url}/hooks/novasphere", credentials.webhook_secret)

    delivered = await sender.send(webhook, NOTE)
    robots.script.append(Scripted(410))
    gone = await sender.send(webhook, NOTE)
    robots.script.append(Scripted(503, headers={"Retry-After": "7"}))
    down = await sender.send(webhook, NOTE)
    robots.script.append(Scripted(429, headers={"Retry-After": email.utils.formatdate(clock() + 30, usegmt=True)}))
    throttled = await sender.send(webhook, NOTE)
    robots.script.append(Scripted(400))
    refused = await sender.send(webhook, NOTE)
    unsigned = await sender.send(Webhook(webhook.url), NOTE)

    assert (delivered.outcome, delivered.detail) == ("delivered", "webhook answered HTTP 204")
    _, body, headers = robots.received[0]
    assert body == {"id": NOTE.event_id, "title": NOTE.title, "body": NOTE.body, "data": NOTE.data}
    assert headers["X-NovaSphere-Event-Id"] == NOTE.event_id
    assert headers["X-NovaSphere-Timestamp"] == str(int(clock()))
    assert gone.outcome == "gone"
    assert (down.outcome, down.retry_after_seconds) == ("retry", 7.0)
    assert (throttled.outcome, throttled.retry_after_seconds) == ("retry", 30.0)
    assert refused.outcome == "failed"
    assert (unsigned.outcome, unsigned.detail) == ("failed", "webhook has no signing secret")
    assert len(robots.received) == 1
    assert robots.problems == []
    _quotes_none([delivered, gone, down, throttled, refused, unsigned], *_secrets_of(credentials))


async def test_an_unreachable_webhook_is_retried(session: aiohttp.ClientSession, credentials: RobotCredentials) -> None:
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{bound.getsockname()[1]}/hooks/novasphere?token={credentials.dingtalk_token}"
        delivery = await GenericWebhookSender(session, timeout=SEND_SECONDS).send(
            Webhook(url, credentials.webhook_secret), NOTE
        )

    assert (delivery.outcome, delivery.detail) == ("retry", "webhook unreachable: ClientConnectorError")
    _quotes_none([delivery], *_secrets_of(credentials))
