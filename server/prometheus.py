"""A small client of Prometheus's HTTP query API (`/api/v1/query`): instant queries that yield one number."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping

import aiohttp

QUERY_TIMEOUT_SECONDS = 5.0
MAX_RESPONSE_BYTES = 1 << 20


class PrometheusError(Exception):
    """Prometheus did not answer, or answered with an error; the message is for logs and says which."""


class Prometheus:
    def __init__(self, base_url: str) -> None:
        self._url = base_url.rstrip("/") + "/api/v1/query"
        self._session: aiohttp.ClientSession | None = None

    async def scalar(self, query: str) -> float | None:
        """The value of an instant query that yields at most one sample; None when it yields none (no such series)."""
        session = self._session
        if session is None or session.closed:
            session = self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=QUERY_TIMEOUT_SECONDS), raise_for_status=False
            )
        try:
            async with session.post(self._url, data={"query": query}) as response:
                body = await response.content.read(MAX_RESPONSE_BYTES)
                if response.status >= 500:
                    raise PrometheusError(f"Prometheus answered HTTP {response.status}")
                try:
                    answer = json.loads(body)
                except ValueError as error:
                    raise PrometheusError(f"Prometheus answered HTTP {response.status} without JSON") from error
        except (aiohttp.ClientError, TimeoutError) as error:
            raise PrometheusError(f"Prometheus unreachable: {type(error).__name__} {error}") from error
        return _single_value(answer)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def _single_value(answer: object) -> float | None:
    if not isinstance(answer, Mapping) or answer.get("status") != "success":
        error = answer.get("error", "") if isinstance(answer, Mapping) else ""
        raise PrometheusError(f"Prometheus refused the query: {str(error)[:200]}")
    data = answer.get("data")
    if not isinstance(data, Mapping) or data.get("resultType") != "vector" or not isinstance(data.get("result"), list):
        raise PrometheusError("Prometheus answered with something other than an instant vector")
    result = data["result"]
    if not result:
        return None
    try:
        value = float(result[0]["value"][1])
    except (KeyError, IndexError, TypeError, ValueError) as error:
        raise PrometheusError("Prometheus answered with a malformed sample") from error
    return value if math.isfinite(value) else None
