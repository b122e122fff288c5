"""What every sender shares. A sender delivers one notification to one destination over its provider's own protocol
and says what became of it (a `Delivery`), so the caller can keep, retry or forget the destination.

Provider endpoints are constructor parameters, so tests point them at local servers. A `Delivery.detail` quotes
status codes and the provider's error codes only, never a token, key, secret or webhook URL; nothing here logs.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import re
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC
from typing import Literal

import aiohttp

Outcome = Literal["delivered", "gone", "retry", "failed"]
Clock = Callable[[], float]

TIMEOUT_SECONDS = 10.0
MAX_ANSWER_BYTES = 64 * 1024  # every provider answers with a small JSON object, if anything
JSON_TYPE = "application/json; charset=utf-8"


@dataclass(frozen=True)
class Notification:
    """What to say. `event_id` is stable across retries of one event (idempotency id); `collapse_key` lets a
    provider replace an undelivered notification with a newer one of the same key."""

    event_id: str
    title: str
    body: str
    data: dict[str, str]
    collapse_key: str

    def __post_init__(self) -> None:
        # Both go into HTTP header values: no control characters, no surrounding space.
        for name in ("event_id", "collapse_key"):
            value = getattr(self, name)
            if not value or not value.isprintable() or value != value.strip():
                raise ValueError(f"a notification's {name} must be non-empty printable text without outer spaces")


@dataclass(frozen=True)
class Delivery:
    """What became of one send. delivered: the provider accepted it; gone: the destination no longer exists or can
    never be valid (the caller deletes it); retry: transient (rate limit, provider or network trouble), again after
    `retry_after_seconds` when the provider said; failed: permanent for this notification, the destination stays."""

    outcome: Outcome
    detail: str
    retry_after_seconds: float | None = None


@dataclass(frozen=True)
class Answer:
    """A provider's HTTP answer: its status, up to MAX_ANSWER_BYTES of its body, and its Retry-After in seconds."""

    status: int
    body: bytes
    retry_after_seconds: float | None


def transient(status: int) -> bool:
    return status == 429 or status >= 500


def json_object(body: bytes) -> dict[str, object]:
    with contextlib.suppress(ValueError):
        answer = json.loads(body)
        if isinstance(answer, dict):
            return answer
    return {}


def error_code(value: object) -> str:
    """A provider's error code, kept only if it looks like one (letters and underscores): an odd server cannot
    smuggle a token it echoes into a detail."""
    return value if isinstance(value, str) and re.fullmatch(r"[A-Za-z_]{1,40}", value) else "?"


def retry_after(value: str | None, now: float) -> float | None:
    """Retry-After as delay-seconds or an HTTP-date (RFC 9110 §10.2.3)."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


def https_origin(url: str) -> str:
    """The origin (RFC 6454) of an https URL: scheme, host and a port other than 443; ValueError for another URL."""
    parts = urllib.parse.urlsplit(url)
    host, port = parts.hostname, parts.port  # .port raises ValueError for a malformed one
    if parts.scheme != "https" or not host:
        raise ValueError("not an https URL")
    host = f"[{host}]" if ":" in host else host
    return f"https://{host}" if port in (None, 443) else f"https://{host}:{port}"


def json_bytes(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


async def post(
    session: aiohttp.ClientSession,
    url: str,
    *,
    body: bytes,
    headers: Mapping[str, str],
    seconds: float,
    now: float,
    service: str,
) -> Answer | Delivery:
    """One POST without redirects (a redirect could carry a signed request elsewhere); a Delivery when it failed."""
    try:
        async with session.post(
            url,
            data=body,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=seconds),
            allow_redirects=False,
        ) as response:
            answer = bytearray()
            async for chunk in response.content.iter_chunked(8192):
                answer += chunk
                if len(answer) >= MAX_ANSWER_BYTES:
                    break
            return Answer(response.status, bytes(answer), retry_after(response.headers.get("Retry-After"), now))
    except aiohttp.InvalidURL:
        return Delivery("failed", f"{service} URL is invalid")
    except TimeoutError:
        return Delivery("retry", f"{service} did not answer in {seconds:g} s")
    except (aiohttp.ClientError, OSError) as error:
        return Delivery("retry", f"{service} unreachable: {type(error).__name__}")


def answered(service: str, answer: Answer, *, gone: frozenset[int] = frozenset()) -> Delivery:
    """The outcome from the HTTP status alone: 2xx delivered, `gone`, 429/5xx retry, anything else failed."""
    detail = f"{service} answered HTTP {answer.status}"
    if 200 <= answer.status < 300:
        return Delivery("delivered", detail)
    if answer.status in gone:
        return Delivery("gone", detail)
    if transient(answer.status):
        return Delivery("retry", detail, answer.retry_after_seconds)
    return Delivery("failed", detail)
