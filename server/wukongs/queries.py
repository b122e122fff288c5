"""Reading Wukongs: one by name, or a page of a namespace (or of every namespace)."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from server import errors, names
from server.kube import errors as kube_errors
from server.kube import wukongs
from server.kube.client import KubeClient
from server.kube.wukongs import WukongObject

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 500


@dataclass(frozen=True)
class Page:
    wukongs: tuple[WukongObject, ...]
    next_page_token: str


class WukongQueries:
    def __init__(self, *, kube: KubeClient, default_namespace: str) -> None:
        self._kube = kube
        self._default_namespace = default_namespace

    async def get(self, *, namespace: str, name: str) -> WukongObject:
        namespace = namespace or self._default_namespace
        names.check_namespace("namespace", namespace)
        names.check_wukong_name("name", name)
        try:
            return await wukongs.get(self._kube, namespace=namespace, name=name)
        except kube_errors.NotFound as error:
            raise errors.WukongNotFound(namespace=namespace, name=name) from error

    async def list(self, *, namespace: str, page_size: int, page_token: str) -> Page:
        if namespace:
            names.check_namespace("namespace", namespace)
        if page_size < 0 or page_size > MAX_PAGE_SIZE:
            raise errors.InvalidArgument.field(
                "page_size", f"must be between 1 and {MAX_PAGE_SIZE} (or 0 for {DEFAULT_PAGE_SIZE}); got {page_size}"
            )
        continue_token = _decode_page_token(page_token, namespace=namespace)
        try:
            page = await wukongs.list_page(
                self._kube,
                namespace=namespace or None,
                limit=page_size or DEFAULT_PAGE_SIZE,
                continue_token=continue_token,
            )
        except (kube_errors.Gone, kube_errors.Invalid) as error:
            if not continue_token:
                raise
            raise errors.InvalidArgument.field(
                "page_token", "has expired or is no longer valid; list again from the first page"
            ) from error
        next_token = _encode_page_token(page.continue_token, namespace=namespace) if page.continue_token else ""
        return Page(wukongs=page.items, next_page_token=next_token)


def _encode_page_token(continue_token: str, *, namespace: str) -> str:
    """An opaque token binding kube-apiserver's continue token to the request it continues."""
    payload = json.dumps({"namespace": namespace, "continue": continue_token}, separators=(",", ":"))
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def _decode_page_token(page_token: str, *, namespace: str) -> str:
    if not page_token:
        return ""
    try:
        padded = page_token + "=" * (-len(page_token) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode()))
        token_namespace, continue_token = payload["namespace"], payload["continue"]
    except (binascii.Error, ValueError, KeyError, TypeError) as error:
        raise errors.InvalidArgument.field(
            "page_token", "is not a token this API issued; pass next_page_token from the previous response unchanged"
        ) from error
    if token_namespace != namespace or not isinstance(continue_token, str):
        raise errors.InvalidArgument.field(
            "page_token", f"was issued for namespace '{token_namespace}'; use the same namespace as the first page"
        )
    return continue_token
