"""Access tokens: short-lived JWTs signed with ES256 by whichever key the key ring marks active.

The keys live in one Secret (`novasphere-token-keys`) that every replica watches, so any replica verifies what
another signed. Rotation without logging anyone out: add a key and mark it active (new tokens use it), keep the old
one until the tokens it signed have expired (one access-token lifetime), then remove it. Verification pins the
algorithm (a token saying `alg: none` or HS256 is refused before any key is touched), requires a known `kid`, and
allows a small clock skew between replicas.
"""

from __future__ import annotations

import datetime
import hashlib
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


def new_kid() -> str:
    return f"{datetime.datetime.now(datetime.UTC):%Y%m%d}-{secrets.token_hex(4)}"


class KeyRing:
    """The signing keys by `kid`, and which one signs; replaced whole when the Secret changes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: dict[str, ec.EllipticCurvePrivateKey] = {}
        self._active = ""

    def load(self, pems: Mapping[str, str], active: str) -> None:
        keys: dict[str, ec.EllipticCurvePrivateKey] = {}
        for kid, pem in pems.items():
            key = serialization.load_pem_private_key(pem.encode(), password=None)
            if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
                raise ValueError(f"key {kid!r} is not an EC P-256 private key")
            keys[kid] = key
        if active not in keys:
            raise ValueError(f"the active key {active!r} is not among the keys {sorted(keys)}")
        with self._lock:
            self._keys, self._active = keys, active

    @property
    def ready(self) -> bool:
        return bool(self._active)

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
