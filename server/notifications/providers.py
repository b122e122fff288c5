"""The senders this installation can use, made from its settings, and the one place a notification goes out: to a
device (by its platform) or to a tenant's webhook (by its kind).

Where a notification may go is checked when the destination is registered, not only here: a Web Push endpoint and a
webhook URL come from users, and the API server would post to them, so they must be https and their host must be one
the operator allows (exactly, or under a `*.` suffix), like NOVASPHERE_IMAGE_SOURCES for disk images. Otherwise a
caller could make the server post to internal addresses (http://169.254.169.254/, the kube-apiserver).
"""

from __future__ import annotations

import ssl
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from server import errors
from server.notifications.apns import APNS_PRODUCTION, ApnsSender
from server.notifications.delivery import Delivery, Notification
from server.notifications.fcm import FCM_URL, FcmSender, ServiceAccount
from server.notifications.store import DeviceRecord, WebhookRecord
from server.notifications.webhooks import DingTalkSender, FeishuSender, GenericWebhookSender, WeComSender
from server.notifications.webpush import WebPushSender, b64url_encode, uncompressed

DEFAULT_PUSH_HOSTS = (
    "fcm.googleapis.com",
    "updates.push.services.mozilla.com",
    "*.push.services.mozilla.com",
    "*.notify.windows.com",
    "web.push.apple.com",
)
"""The browsers' push services (Chrome and Edge on FCM, Firefox's autopush, Windows' WNS, Safari's)."""
DEFAULT_WEBHOOK_HOSTS = ("oapi.dingtalk.com", "open.feishu.cn", "open.larksuite.com", "qyapi.weixin.qq.com")
"""The chat robots' APIs; a generic receiver's host is the operator's to add."""


@dataclass(frozen=True)
class ProviderSettings:
    fcm_credentials: Path | None = None
    fcm_url: str = FCM_URL
    apns_key_file: Path | None = None
    apns_key_id: str = ""
    apns_team_id: str = ""
    apns_topic: str = ""
    apns_url: str = APNS_PRODUCTION
    vapid_key_file: Path | None = None
    vapid_subject: str = ""
    ca_file: Path | None = None
    """Extra certificates to trust for providers and webhooks (a private CA); the system's are trusted too."""
    push_hosts: tuple[str, ...] = DEFAULT_PUSH_HOSTS
    webhook_hosts: tuple[str, ...] = DEFAULT_WEBHOOK_HOSTS


def host_allowed(host: str, allowed: tuple[str, ...]) -> bool:
    host = host.lower().rstrip(".")
    for pattern in allowed:
        pattern = pattern.lower()
        if pattern.startswith("*.") and host.endswith(pattern[1:]) and len(host) > len(pattern) - 1:
            return True
        if host == pattern:
            return True
    return False


def check_destination(url: str, allowed: tuple[str, ...], field: str, *, setting: str) -> list[errors.FieldViolation]:
    """What is wrong with `url` as a place the server posts to; `setting` names the allow-list an operator edits."""
    if not url:
        return [errors.FieldViolation(field, "is required")]
    if len(url) > 2048:
        return [errors.FieldViolation(field, f"is {len(url)} characters; at most 2048")]
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 (raises ValueError for a bad port)
    except ValueError:
        return [errors.FieldViolation(field, "is not a URL")]
    if parts.scheme != "https" or not host:
        return [errors.FieldViolation(field, "must be an https:// URL")]
    if parts.username or parts.password or parts.fragment:
        return [errors.FieldViolation(field, "must not carry user info or a fragment")]
    if not host_allowed(host, allowed):
        return [
            errors.FieldViolation(
                field,
                f"host '{host[:100]}' is not one this installation posts to ({', '.join(allowed)}); an operator can "
                f"add it to {setting}",
            )
        ]
    return []


class Providers:
    """Every configured sender over one HTTP session. Made on the event loop, on first use (aiohttp needs one)."""

    def __init__(self, settings: ProviderSettings) -> None:
        self._settings = settings
        self._session: aiohttp.ClientSession | None = None
        self._fcm: FcmSender | None = None
        self._apns: ApnsSender | None = None
        self._web_push: WebPushSender | None = None
        self._webhooks: dict[str, DingTalkSender | FeishuSender | WeComSender | GenericWebhookSender] = {}
        self._vapid_public = ""
        if settings.vapid_key_file is not None:
            key = serialization.load_pem_private_key(settings.vapid_key_file.read_bytes(), password=None)
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise ValueError("the VAPID key must be a P-256 EC key")
            self._vapid_public = b64url_encode(uncompressed(key.public_key()))

    @property
    def platforms(self) -> list[str]:
        settings = self._settings
        configured = {
            "android": settings.fcm_credentials is not None,
            "ios": settings.apns_key_file is not None,
            "web": settings.vapid_key_file is not None,
        }
        return [platform for platform, on in configured.items() if on]

    @property
    def vapid_public_key(self) -> str:
        return self._vapid_public

    def _trust(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if self._settings.ca_file is not None:
            context.load_verify_locations(cafile=str(self._settings.ca_file))
        return context

    def _ready(self) -> aiohttp.ClientSession:
        if self._session is not None:
            return self._session
        settings = self._settings
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=self._trust(), limit=64))
        if settings.fcm_credentials is not None:
            account = ServiceAccount.from_json(settings.fcm_credentials.read_text())
            self._fcm = FcmSender(session, account, base_url=settings.fcm_url)
        if settings.apns_key_file is not None:
            self._apns = ApnsSender(
                team_id=settings.apns_team_id,
                key_id=settings.apns_key_id,
                private_key=settings.apns_key_file.read_text(),
                bundle_id=settings.apns_topic,
                base_url=settings.apns_url,
                ssl_context=self._trust(),
            )
        if settings.vapid_key_file is not None:
            self._web_push = WebPushSender(
                session, vapid_private_key=settings.vapid_key_file.read_text(), subject=settings.vapid_subject
            )
        self._webhooks = {
            "dingtalk": DingTalkSender(session),
            "feishu": FeishuSender(session),
            "wecom": WeComSender(session),
            "generic": GenericWebhookSender(session),
        }
        self._session = session
        return session

    async def to_device(self, device: DeviceRecord, notification: Notification) -> Delivery:
        self._ready()
        if device.platform == "android" and self._fcm is not None:
            return await self._fcm.send(device.token, notification)
        if device.platform == "ios" and self._apns is not None:
            return await self._apns.send(device.token, notification)
        if device.platform == "web" and self._web_push is not None and device.web_push is not None:
            if not host_allowed(
                urllib.parse.urlsplit(device.web_push.endpoint).hostname or "", self._settings.push_hosts
            ):
                return Delivery("failed", "the push service's host is no longer allowed")
            return await self._web_push.send(device.web_push, notification)
        return Delivery("failed", f"{device.platform} push is not configured on this installation")

    async def to_webhook(self, target: WebhookRecord, notification: Notification) -> Delivery:
        self._ready()
        if not host_allowed(urllib.parse.urlsplit(target.webhook.url).hostname or "", self._settings.webhook_hosts):
            return Delivery("failed", "the webhook's host is no longer allowed")
        return await self._webhooks[target.kind].send(target.webhook, notification)

    async def close(self) -> None:
        if self._apns is not None:
            await self._apns.close()
        if self._session is not None:
            await self._session.close()
