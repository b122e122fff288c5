"""The refresh token as a browser cookie: HttpOnly so script in the page never reads it, Secure, SameSite=Strict so
no other site's page can make the browser send it, and sent only to the two places that refresh (the gRPC-Web path
and the REST path), so no other request carries it.

Every door passes headers through Envoy both ways: a `cookie` request header reaches the API server as metadata, and
`set-cookie` in a response's initial metadata reaches the browser (gRPC-Web and transcoded REST alike)."""

from __future__ import annotations

import datetime
from collections.abc import Iterable

NAME = "novasphere_refresh"
PATHS = ("/novasphere.v1.AuthService/", "/api/v1/auth/")
MAX_TOKEN = 512
"""Longer values are not ours (a refresh token is about 100 characters): ignored rather than parsed."""


def set_cookie(token: str, expires: datetime.datetime, now: datetime.datetime) -> list[tuple[str, str]]:
    """`set-cookie` headers that keep `token` until the session ends at the latest."""
    max_age = max(0, int((expires - now).total_seconds()))
    return [("set-cookie", _cookie(token, path, max_age)) for path in PATHS]


def clear_cookie() -> list[tuple[str, str]]:
    """`set-cookie` headers that make the browser forget the token."""
    return [("set-cookie", _cookie("", path, 0)) for path in PATHS]


def from_metadata(metadata: Iterable[tuple[str, str | bytes]]) -> str:
    """The token in the request's `cookie` headers, or ""."""
    for key, value in metadata:
        if key != "cookie" or not isinstance(value, str):
            continue
        for pair in value.split(";"):
            name, separator, token = pair.strip().partition("=")
            if separator and name == NAME and 0 < len(token) <= MAX_TOKEN:
                return token
    return ""


def _cookie(token: str, path: str, max_age: int) -> str:
    return f"{NAME}={token}; Path={path}; Max-Age={max_age}; HttpOnly; Secure; SameSite=Strict"
