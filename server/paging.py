"""Paging shared by every List RPC: `page_size` limits, and opaque `page_token`s that carry the last item's sort key
and a fingerprint of the filters, so a token is refused with a clear message when the filters change."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from server import errors

DEFAULT_PAGE_SIZE = 50
# Bounds the work and the message size of one page.
MAX_PAGE_SIZE = 500
SortKey = tuple[Any, ...]


def page_size(requested: int) -> int:
    if requested < 0 or requested > MAX_PAGE_SIZE:
        raise errors.InvalidArgument.field(
            "page_size", f"must be between 1 and {MAX_PAGE_SIZE} (or 0 for {DEFAULT_PAGE_SIZE}); got {requested}"
        )
    return requested or DEFAULT_PAGE_SIZE


@dataclass(frozen=True)
class After:
    key: SortKey
    page: int


def encode_token(fingerprint: str, last_key: SortKey, page: int) -> str:
    payload = json.dumps({"f": fingerprint, "k": list(last_key), "p": page}, separators=(",", ":"))
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def decode_token(token: str, fingerprint: str, *, same_as: str) -> After:
    """`same_as` names the request fields a token is tied to, for the message when they changed."""
    try:
        payload = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        token_fingerprint, key, page = payload["f"], tuple(payload["k"]), int(payload["p"])
    except (binascii.Error, ValueError, KeyError, TypeError) as error:
        raise errors.InvalidArgument.field(
            "page_token", "is not a token this API issued; pass next_page_token from the previous response unchanged"
        ) from error
    if token_fingerprint != fingerprint:
        raise errors.InvalidArgument.field(
            "page_token",
            f"was issued for other filters; send the same {same_as} as for the first page, or start again without "
            "a token",
        )
    return After(key, page)
