"""Access tokens: short-lived JWTs signed with ES256 by whichever key the key ring marks active; and the MAC that
makes refresh tokens unforgeable.

The keys live in one Secret (`novasphere-token-keys`) that every replica watches, so any replica verifies what
another signed. Rotation without logging anyone out: add a key and mark it active (new tokens use it), keep the old
one until the tokens it signed have expired (one access-token lifetime), then remove it. Verification pins the
algorithm (a token saying `alg: none` or HS256 is refused before any key is touched), requires a known `kid`, and
allows a small clock skew between replicas. Deleting the Secret unloads every key: no token verifies until a new one
is created (by the next replica to start, or an administrator).

A refresh token is `nsr2.<session>.<generation>.<MAC>`: the MAC (HMAC-SHA256 under the Secret's `refresh-hmac` key)
of the session and the generation the token was issued at. Nothing per token is stored, only each session's current
generation, yet every token ever issued is recognised: a valid MAC for an older generation is a token already used.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

ALGORITHM = "ES256"
ISSUER = "novasphere-api"
AUDIENCE = "novasphere-api"
LEEWAY_SECONDS = 30
REQUIRED_CLAIMS = ("exp", "iat", "nbf", "sub", "sid", "tid", "iss", "aud")
REFRESH_KEY_ENTRY = "refresh-hmac"
"""The entry of the keys Secret that holds the refresh-token MAC key (base64 of 32 random bytes)."""


class InvalidToken(Exception):
    """The token cannot be trusted; the message says why, for logs (clients get one generic answer)."""


@dataclass(frozen=True)
class Claims:
    user: str
    tenant: str
    session: str
    client_type: str
    expires: datetime.datetime


def secret_digest(secret: str) -> str:
    """How refresh tokens and API keys are stored: their secrets are 256 random bits, so SHA-256 suffices (password
    stretching protects guessable secrets, not random ones)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_private_key_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return pem.decode()


def new_refresh_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def new_kid() -> str:
    return f"{datetime.datetime.now(datetime.UTC):%Y%m%d}-{secrets.token_hex(4)}"


class KeyRing:
    """The signing keys by `kid`, and which one signs; replaced whole when the Secret changes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: dict[str, ec.EllipticCurvePrivateKey] = {}
        self._active = ""
        self._refresh_key = b""

    def load(self, entries: Mapping[str, str], active: str) -> None:
        """The Secret's entries: PEM private keys by `kid`, and the refresh MAC key."""
        refresh_key = base64.b64decode(entries.get(REFRESH_KEY_ENTRY, ""))
        keys: dict[str, ec.EllipticCurvePrivateKey] = {}
        for kid, pem in entries.items():
            if kid == REFRESH_KEY_ENTRY:
                continue
            key = serialization.load_pem_private_key(pem.encode(), password=None)
            if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
                raise ValueError(f"key {kid!r} is not an EC P-256 private key")
            keys[kid] = key
        if active not in keys:
            raise ValueError(f"the active key {active!r} is not among the keys {sorted(keys)}")
        with self._lock:
            self._keys, self._active, self._refresh_key = keys, active, refresh_key

    def unload(self) -> None:
        """The keys Secret is gone: nothing signs or verifies any more."""
        with self._lock:
            self._keys, self._active, self._refresh_key = {}, "", b""

    @property
    def ready(self) -> bool:
        return bool(self._active) and bool(self._refresh_key)

    @property
    def has_refresh_key(self) -> bool:
        return bool(self._refresh_key)

    def refresh_mac(self, session: str, generation: int) -> str:
        """The MAC a refresh token of `session` issued at `generation` carries; raises InvalidToken without a key."""
        with self._lock:
            key = self._refresh_key
        if not key:
            raise InvalidToken("no refresh key loaded")
        digest = hmac.new(key, f"{session}.{generation}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    @property
    def kids(self) -> list[str]:
        return sorted(self._keys)

    def sign(self, claims: Claims, *, issued: datetime.datetime) -> str:
        with self._lock:
            kid, key = self._active, self._keys.get(self._active)
        if key is None:
            raise InvalidToken("no signing key loaded yet")
        payload = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": claims.user,
            "tid": claims.tenant,
            "sid": claims.session,
            "ct": claims.client_type,
            "iat": issued,
            "nbf": issued,
            "exp": claims.expires,
            "jti": secrets.token_hex(8),
        }
        return jwt.encode(payload, key, algorithm=ALGORITHM, headers={"kid": kid})

    def verify(self, token: str) -> Claims:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as error:
            raise InvalidToken(f"malformed token: {error}") from error
        if header.get("alg") != ALGORITHM:
            raise InvalidToken(f"algorithm {header.get('alg')!r} is not {ALGORITHM}")
        kid = header.get("kid")
        with self._lock:
            key = self._keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise InvalidToken(f"unknown key id {kid!r}")
        try:
            payload = jwt.decode(
                token,
                key.public_key(),
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=ISSUER,
                leeway=LEEWAY_SECONDS,
                options={"require": list(REQUIRED_CLAIMS)},
            )
        except jwt.PyJWTError as error:
            raise InvalidToken(f"{type(error).__name__}: {error}") from error
        return Claims(
            user=str(payload["sub"]),
            tenant=str(payload["tid"]),
            session=str(payload["sid"]),
            client_type=str(payload.get("ct", "")),
            expires=datetime.datetime.fromtimestamp(int(payload["exp"]), datetime.UTC),
        )
