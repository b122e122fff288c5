"""FCM HTTP v1 (`messages:send`), with an OAuth2 access token got by the JWT bearer grant (RFC 7523) and cached."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.parse
from dataclasses import dataclass, field

import aiohttp
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from server.notifications.apns import apns_collapse_id
from server.notifications.delivery import (
    JSON_TYPE,
    TIMEOUT_SECONDS,
    Answer,
    Clock,
    Delivery,
    Notification,
    error_code,
    json_bytes,
    json_object,
    post,
    transient,
)

FCM_URL = "https://fcm.googleapis.com"
FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_SECONDS = 3600  # the longest Google accepts
ACCESS_TOKEN_MARGIN_SECONDS = 300  # refresh this long before the token expires, as google-auth does (roughly)


@dataclass(frozen=True)
class ServiceAccount:
    """The fields of a Google service-account key file that FCM needs."""

    client_email: str
    private_key: str = field(repr=False)  # PEM, RSA
    token_uri: str
    project_id: str
    private_key_id: str = ""  # the JWT's `kid`, as Google's own libraries send it

    @classmethod
    def from_json(cls, text: str | bytes) -> ServiceAccount:
        key = json.loads(text)
        return cls(
            client_email=key["client_email"],
            private_key=key["private_key"],
            token_uri=key["token_uri"],
            project_id=key["project_id"],
            private_key_id=key.get("private_key_id", ""),
        )


class FcmSender:
    """FCM HTTP v1 `messages:send` for one Firebase project. One access token serves every send until shortly
    before it expires; a 401 (revoked or expired early) gets one fresh token and one more try."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        account: ServiceAccount,
        *,
        base_url: str = FCM_URL,
        timeout: float = TIMEOUT_SECONDS,
        clock: Clock = time.time,
    ) -> None:
        key = serialization.load_pem_private_key(account.private_key.encode(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("an FCM service account's private key must be RSA")
        self._session = session
        self._account = account
        self._key = key
        project = urllib.parse.quote(account.project_id, safe="")
        self._url = f"{base_url.rstrip('/')}/v1/projects/{project}/messages:send"
        self._timeout = timeout
        self._clock = clock
        self._token: str | None = None
        self._token_expires = 0.0
        self._token_lock = asyncio.Lock()  # concurrent sends wait for one token request

    async def send(self, registration_token: str, notification: Notification) -> Delivery:
        body = json_bytes(
            {
                "message": {
                    "token": registration_token,
                    "notification": {"title": notification.title, "body": notification.body},
                    "data": notification.data,
                    "android": {"collapse_key": notification.collapse_key, "priority": "high"},
                    "apns": {"headers": {"apns-collapse-id": apns_collapse_id(notification.collapse_key)}},
                }
            }
        )
        access = await self._access_token()
        if isinstance(access, Delivery):
            return access
        answer = await self._post_message(access, body)
        if isinstance(answer, Answer) and answer.status == 401:
            self._forget(access)
            access = await self._access_token()
            if isinstance(access, Delivery):
                return access
            answer = await self._post_message(access, body)
        return answer if isinstance(answer, Delivery) else _fcm_outcome(answer)

    async def _post_message(self, access: str, body: bytes) -> Answer | Delivery:
        headers = {"Authorization": f"Bearer {access}", "Content-Type": JSON_TYPE}
        return await post(
            self._session,
            self._url,
            body=body,
            headers=headers,
            seconds=self._timeout,
            now=self._clock(),
            service="FCM",
        )

    def _forget(self, access: str) -> None:
        if self._token == access:  # unless another send has already replaced it
            self._token = None

    async def _access_token(self) -> str | Delivery:
        async with self._token_lock:
            now = self._clock()
            if self._token is not None and now < self._token_expires - ACCESS_TOKEN_MARGIN_SECONDS:
                return self._token
            account = self._account
            iat = int(now)
            assertion = jwt.encode(
                {
                    "iss": account.client_email,
                    "scope": FCM_SCOPE,
                    "aud": account.token_uri,
                    "iat": iat,
                    "exp": iat + ASSERTION_SECONDS,
                },
                self._key,
                algorithm="RS256",
                headers={"kid": account.private_key_id} if account.private_key_id else None,
            )
            form = urllib.parse.urlencode({"grant_type": JWT_BEARER_GRANT, "assertion": assertion}).encode()
            answer = await post(
                self._session,
                account.token_uri,
                body=form,
                headers={"Content-Type": "application/x-www-form-urlencoded"},
                seconds=self._timeout,
                now=now,
                service="FCM token endpoint",
            )
            if isinstance(answer, Delivery):
                return answer
            token = json_object(answer.body)
            access, expires_in = token.get("access_token"), token.get("expires_in")
            if answer.status == 200 and isinstance(access, str) and isinstance(expires_in, int):
                self._token, self._token_expires = access, now + expires_in
                return access
            # An OAuth error code (RFC 6749 §5.2) such as invalid_grant: a wrong key, a disabled account, a bad clock.
            detail = f"FCM token endpoint answered HTTP {answer.status} {error_code(token.get('error'))}"
            if transient(answer.status):
                return Delivery("retry", detail, answer.retry_after_seconds)
            return Delivery("failed", detail)


def _fcm_outcome(answer: Answer) -> Delivery:
    """FCM's error codes (FcmError.errorCode) decide: UNREGISTERED and an INVALID_ARGUMENT about the token mean the
    token is gone; an INVALID_ARGUMENT about anything else is this message's own fault."""
    if answer.status == 200:
        return Delivery("delivered", "FCM answered HTTP 200")
    error = json_object(answer.body).get("error")
    error = error if isinstance(error, dict) else {}
    details = [d for d in error.get("details") or [] if isinstance(d, dict)]
    fcm_code = next((d.get("errorCode") for d in details if str(d.get("@type", "")).endswith(".FcmError")), None)
    status = error.get("status")
    detail = f"FCM answered HTTP {answer.status} {error_code(status)}/{error_code(fcm_code)}"
    violated = {
        str(v.get("field"))
        for d in details
        for v in d.get("fieldViolations") or []
        if isinstance(v, dict) and str(d.get("@type", "")).endswith("google.rpc.BadRequest")
    }
    about_token = "message.token" in violated or "registration token" in str(error.get("message", ""))
    if fcm_code == "UNREGISTERED" or (
        answer.status == 400 and "INVALID_ARGUMENT" in (fcm_code, status) and about_token
    ):
        return Delivery("gone", detail)
    if transient(answer.status):
        return Delivery("retry", detail, answer.retry_after_seconds)
    return Delivery("failed", detail)
