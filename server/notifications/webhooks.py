"""Chat webhooks a tenant admin configures: the DingTalk, Feishu/Lark and WeCom group robots, and a generic
HMAC-signed JSON webhook."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar

import aiohttp

from server.notifications.delivery import (
    JSON_TYPE,
    TIMEOUT_SECONDS,
    Clock,
    Delivery,
    Notification,
    answered,
    json_bytes,
    json_object,
    post,
    transient,
)


@dataclass(frozen=True)
class Webhook:
    """A webhook a tenant admin configured. The URL carries the robot's credential (DingTalk's access_token,
    Feishu's hook id, WeCom's key); `secret` signs requests, when the robot or receiver checks signatures."""

    url: str = field(repr=False)
    secret: str = field(default="", repr=False)


def _markdown(notification: Notification) -> str:
    data = [f"{name}: {value}" for name, value in sorted(notification.data.items())]
    return "\n\n".join([f"**{notification.title}**", notification.body, *data])


class _WebhookPoster:
    """What every webhook sender holds: the caller's HTTP session (its connections are shared), a time limit and a
    clock (signatures carry the time)."""

    def __init__(
        self, session: aiohttp.ClientSession, *, timeout: float = TIMEOUT_SECONDS, clock: Clock = time.time
    ) -> None:
        self._session = session
        self._timeout = timeout
        self._clock = clock


class _ChatRobot(_WebhookPoster):
    """A group robot that answers HTTP 200 with a JSON error code: 0 is success, some codes mean slow down."""

    service: ClassVar[str]
    code_field: ClassVar[str]
    retry_codes: ClassVar[Mapping[int, float | None]]

    async def _deliver(self, url: str, message: object) -> Delivery:
        answer = await post(
            self._session,
            url,
            body=json_bytes(message),
            headers={"Content-Type": JSON_TYPE},
            seconds=self._timeout,
            now=self._clock(),
            service=self.service,
        )
        if isinstance(answer, Delivery):
            return answer
        if transient(answer.status):
            return answered(self.service, answer)
        code = json_object(answer.body).get(self.code_field)
        if not isinstance(code, int) or isinstance(code, bool):
            return Delivery("failed", f"{self.service} answered HTTP {answer.status} without a {self.code_field}")
        detail = f"{self.service} answered HTTP {answer.status} {self.code_field} {code}"
        if code == 0 and answer.status == 200:
            return Delivery("delivered", detail)
        if code in self.retry_codes:
            return Delivery("retry", detail, self.retry_codes[code])
        return Delivery("failed", detail)


class DingTalkSender(_ChatRobot):
    """A DingTalk custom group robot (`/robot/send?access_token=…`): a markdown message, signed when the robot has
    a secret ("加签": HMAC-SHA256 of `timestamp\\nsecret` in the query)."""

    service = "DingTalk"
    code_field = "errcode"
    # -1: system busy; 130101: over 20 messages a minute, after which DingTalk refuses the robot for 10 minutes.
    retry_codes: ClassVar[Mapping[int, float | None]] = {-1: None, 130101: 600.0}

    async def send(self, webhook: Webhook, notification: Notification) -> Delivery:
        url = webhook.url
        if webhook.secret:
            timestamp = str(int(self._clock() * 1000))
            digest = hmac.new(webhook.secret.encode(), f"{timestamp}\n{webhook.secret}".encode(), hashlib.sha256)
            sign = urllib.parse.quote_plus(base64.b64encode(digest.digest()).decode())  # + / = percent-encoded
            url += f"{'&' if urllib.parse.urlsplit(url).query else '?'}timestamp={timestamp}&sign={sign}"
        message = {"msgtype": "markdown", "markdown": {"title": notification.title, "text": _markdown(notification)}}
        return await self._deliver(url, message)


class FeishuSender(_ChatRobot):
    """A Feishu/Lark custom bot (`/open-apis/bot/v2/hook/…`): a rich-text `post` message, signed when the bot has a
    secret (the HMAC-SHA256 key is `timestamp\\nsecret`, the message empty, both in the body)."""

    service = "Feishu"
    code_field = "code"
    retry_codes: ClassVar[Mapping[int, float | None]] = {11232: None}  # over 100 messages a minute or 5 a second

    async def send(self, webhook: Webhook, notification: Notification) -> Delivery:
        paragraphs = [notification.body, *(f"{k}: {v}" for k, v in sorted(notification.data.items()))]
        message: dict[str, object] = {
            "msg_type": "post",
            "content": {
                "post": {
                    "zh_cn": {
                        "title": notification.title,
                        "content": [[{"tag": "text", "text": paragraph}] for paragraph in paragraphs],
                    }
                }
            },
        }
        if webhook.secret:
            timestamp = str(int(self._clock()))
            digest = hmac.new(f"{timestamp}\n{webhook.secret}".encode(), b"", hashlib.sha256).digest()
            message = {"timestamp": timestamp, "sign": base64.b64encode(digest).decode(), **message}
        return await self._deliver(webhook.url, message)


class WeComSender(_ChatRobot):
    """A WeCom (企业微信) group robot (`/cgi-bin/webhook/send?key=…`): a markdown message; the key in the URL is the
    only credential, there is no signature."""

    service = "WeCom"
    code_field = "errcode"
    retry_codes: ClassVar[Mapping[int, float | None]] = {-1: None, 45009: 60.0}  # 45009: over 20 messages a minute

    async def send(self, webhook: Webhook, notification: Notification) -> Delivery:
        return await self._deliver(
            webhook.url, {"msgtype": "markdown", "markdown": {"content": _markdown(notification)}}
        )


class GenericWebhookSender(_WebhookPoster):
    """A JSON POST to any receiver, signed so it can check origin and freshness: `X-NovaSphere-Signature` is
    `sha256=` and the hex HMAC-SHA256, keyed by the webhook's secret, of `<X-NovaSphere-Timestamp>.` and the exact
    body. The event id header lets the receiver drop a retried duplicate."""

    async def send(self, webhook: Webhook, notification: Notification) -> Delivery:
        if not webhook.secret:
            return Delivery("failed", "webhook has no signing secret")
        body = json_bytes(
            {
                "id": notification.event_id,
                "title": notification.title,
                "body": notification.body,
                "data": notification.data,
            }
        )
        now = self._clock()
        timestamp = str(int(now))
        signature = hmac.new(webhook.secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
        headers = {
            "Content-Type": JSON_TYPE,
            "X-NovaSphere-Event-Id": notification.event_id,
            "X-NovaSphere-Timestamp": timestamp,
            "X-NovaSphere-Signature": f"sha256={signature}",
        }
        answer = await post(
            self._session, webhook.url, body=body, headers=headers, seconds=self._timeout, now=now, service="webhook"
        )
        return answer if isinstance(answer, Delivery) else answered("webhook", answer, gone=frozenset({410}))
