"""Web Push (RFC 8030): the sender, and the message encryption (RFC 8291: `aes128gcm` of RFC 8188 keyed by ECDH with
the browser's key) and VAPID (RFC 8292) it needs: a push service accepts only a signed request, and only the subscribed
browser can read the message."""

from __future__ import annotations

import base64
import hashlib
import os
import time
from dataclasses import dataclass, field
from typing import Literal

import aiohttp
import jwt
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from server.notifications.delivery import (
    TIMEOUT_SECONDS,
    Clock,
    Delivery,
    Notification,
    answered,
    https_origin,
    json_bytes,
    post,
)

RECORD_SIZE = 4096
# A single record (RFC 8291 §4): the 86-byte header, the 16-byte tag and the padding delimiter leave 3993 bytes of
# plaintext in the 4096 bytes every push service must accept.
MAX_PLAINTEXT = RECORD_SIZE - 86 - 16 - 1
LAST_RECORD_DELIMITER = b"\x02"


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    """Browsers hand out their keys unpadded; padded input is accepted as well."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def uncompressed(key: ec.EllipticCurvePublicKey) -> bytes:
    """The 65-byte X9.62 form both RFCs put on the wire."""
    return key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def encrypt(
    plaintext: bytes,
    *,
    ua_public: bytes,
    auth_secret: bytes,
    as_private: ec.EllipticCurvePrivateKey | None = None,
    salt: bytes | None = None,
) -> bytes:
    """The message body for the browser that holds the private half of `ua_public` (its subscription's `p256dh`)
    and `auth_secret` (its `auth`). A fresh ECDH key and salt per message unless given (the RFC's example gives
    them); raises ValueError for an invalid key or a plaintext over MAX_PLAINTEXT."""
    if len(plaintext) > MAX_PLAINTEXT:
        raise ValueError(f"Web Push plaintext of {len(plaintext)} bytes is over {MAX_PLAINTEXT}")
    if len(ua_public) != 65 or ua_public[0] != 4 or len(auth_secret) != 16:
        raise ValueError("a Web Push subscription needs a 65-byte uncompressed P-256 key and a 16-byte auth secret")
    receiver = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), ua_public)
    as_private = as_private or ec.generate_private_key(ec.SECP256R1())
    as_public = uncompressed(as_private.public_key())
    salt = salt or os.urandom(16)
    shared = as_private.exchange(ec.ECDH(), receiver)
    ikm = _hkdf(shared, salt=auth_secret, info=b"WebPush: info\x00" + ua_public + as_public, length=32)
    key = _hkdf(ikm, salt=salt, info=b"Content-Encoding: aes128gcm\x00", length=16)
    nonce = _hkdf(ikm, salt=salt, info=b"Content-Encoding: nonce\x00", length=12)
    record = AESGCM(key).encrypt(nonce, plaintext + LAST_RECORD_DELIMITER, None)
    return salt + RECORD_SIZE.to_bytes(4, "big") + bytes([len(as_public)]) + as_public + record


def vapid_authorization(key: ec.EllipticCurvePrivateKey, *, audience: str, subject: str, expires: int) -> str:
    """The `Authorization` header of RFC 8292 §3: a JWT for the push service's origin and the key that signed it."""
    token = jwt.encode({"aud": audience, "exp": expires, "sub": subject}, key, algorithm="ES256")
    return f"vapid t={token}, k={b64url_encode(uncompressed(key.public_key()))}"


def _hkdf(secret: bytes, *, salt: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(secret)


VAPID_SECONDS = 12 * 3600  # RFC 8292 allows at most 24 hours
VAPID_MARGIN_SECONDS = 3600  # a cached VAPID JWT is replaced this long before it expires
Urgency = Literal["very-low", "low", "normal", "high"]


@dataclass(frozen=True)
class WebPushSubscription:
    """A browser's PushSubscription: the endpoint URL (itself a capability) and its `p256dh` and `auth` keys,
    base64url as the browser gives them."""

    endpoint: str = field(repr=False)
    p256dh: str
    auth: str = field(repr=False)


class WebPushSender:
    """RFC 8030 push with an RFC 8291-encrypted payload (the notification as JSON) and VAPID. One VAPID JWT per
    push service origin is reused until an hour before it expires."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        vapid_private_key: str,
        subject: str,
        ttl_seconds: int = 24 * 3600,
        urgency: Urgency = "normal",
        timeout: float = TIMEOUT_SECONDS,
        clock: Clock = time.time,
    ) -> None:
        """`vapid_private_key`: PEM of the P-256 key whose public half browsers subscribed with. `subject`: the
        contact a push service may use, `mailto:` or `https:`."""
        key = serialization.load_pem_private_key(vapid_private_key.encode(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
            raise ValueError("a VAPID key must be a P-256 EC key")
        if not subject.startswith(("mailto:", "https:")):
            raise ValueError("a VAPID subject must be a mailto: or https: URI")
        self._session = session
        self._key = key
        self._subject = subject
        self._ttl = ttl_seconds
        self._urgency = urgency
        self._timeout = timeout
        self._clock = clock
        self._vapid: dict[str, tuple[str, float]] = {}  # push service origin -> (Authorization, expiry)

    async def send(self, subscription: WebPushSubscription, notification: Notification) -> Delivery:
        plaintext = json_bytes(
            {
                "id": notification.event_id,
                "title": notification.title,
                "body": notification.body,
                "data": notification.data,
            }
        )
        if len(plaintext) > MAX_PLAINTEXT:
            return Delivery("failed", f"Web Push payload is {len(plaintext)} bytes, over {MAX_PLAINTEXT}")
        try:
            origin = https_origin(subscription.endpoint)  # RFC 8030 §8: push services are HTTPS only
            body = encrypt(
                plaintext,
                ua_public=b64url_decode(subscription.p256dh),
                auth_secret=b64url_decode(subscription.auth),
            )
        except ValueError:  # binascii.Error is one
            return Delivery("gone", "Web Push subscription is malformed")
        now = self._clock()
        headers = {
            "Authorization": self._authorization(origin, now),
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
            "TTL": str(self._ttl),
            "Urgency": self._urgency,
            "Topic": _web_push_topic(notification.collapse_key),
        }
        answer = await post(
            self._session,
            subscription.endpoint,
            body=body,
            headers=headers,
            seconds=self._timeout,
            now=now,
            service="Web Push",
        )
        return answer if isinstance(answer, Delivery) else answered("Web Push", answer, gone=frozenset({404, 410}))

    def _authorization(self, origin: str, now: float) -> str:
        cached = self._vapid.get(origin)
        if cached is not None and now < cached[1] - VAPID_MARGIN_SECONDS:
            return cached[0]
        expires = int(now) + VAPID_SECONDS
        header = vapid_authorization(self._key, audience=origin, subject=self._subject, expires=expires)
        self._vapid[origin] = (header, expires)
        return header


def _web_push_topic(collapse_key: str) -> str:
    """RFC 8030 §5.4: at most 32 characters of the URL-safe base64 alphabet. 24 bytes of the key's SHA-256 are
    exactly 32 such characters, whatever the key's length or alphabet."""
    return b64url_encode(hashlib.sha256(collapse_key.encode()).digest()[:24])
