"""The `Wukong` custom resource (`wukongs.vm.novasphere.dev`, vmoperator's CRD, used unchanged)."""

from __future__ import annotations

import datetime
import types
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from server.kube.client import KubeClient

GROUP = "vm.novasphere.dev"
VERSION = "v1alpha1"
PLURAL = "wukongs"

RawBody = Mapping[str, Any]


@dataclass(frozen=True)
class WukongObject:
    """A Wukong as read from kube-apiserver. `raw_spec`/`raw_status` are the object's JSON, read-only."""

    namespace: str
    name: str
    uid: str
    resource_version: str
    labels: Mapping[str, str]
    create_time: datetime.datetime | None
    raw_spec: RawBody
    raw_status: RawBody

    @classmethod
    def from_raw(cls, raw: RawBody) -> WukongObject:
        metadata = raw.get("metadata", {})
        created = metadata.get("creationTimestamp")
        return cls(
            namespace=metadata.get("namespace", ""),
            name=metadata.get("name", ""),
            uid=metadata.get("uid", ""),
            resource_version=metadata.get("resourceVersion", ""),
            labels=types.MappingProxyType(dict(metadata.get("labels") or {})),
            create_time=datetime.datetime.fromisoformat(created) if created else None,
            raw_spec=types.MappingProxyType(dict(raw.get("spec") or {})),
            raw_status=types.MappingProxyType(dict(raw.get("status") or {})),
        )


@dataclass(frozen=True)
class WukongPage:
    """One page of a list, and kube-apiserver's continue token for the next (empty on the last page)."""

    items: tuple[WukongObject, ...]
    continue_token: str


async def get(client: KubeClient, *, namespace: str, name: str) -> WukongObject:
    raw = await client.call(client.custom_objects.get_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL, name)
    return WukongObject.from_raw(_body(raw))


async def list_page(client: KubeClient, *, namespace: str | None, limit: int, continue_token: str) -> WukongPage:
    """Up to `limit` Wukongs of `namespace` (every namespace when None), in kube-apiserver's order (namespace, name)."""
    options: dict[str, Any] = {"limit": limit}
    if continue_token:
        options["_continue"] = continue_token
    if namespace is None:
        raw_list = await client.call(
            client.custom_objects.list_cluster_custom_object, GROUP, VERSION, PLURAL, **options
        )
    else:
        raw_list = await client.call(
            client.custom_objects.list_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL, **options
        )
    body = _body(raw_list)
    return WukongPage(
        items=tuple(WukongObject.from_raw(_body(raw)) for raw in body.get("items", [])),
        continue_token=body.get("metadata", {}).get("continue") or "",
    )


def _body(raw: object) -> RawBody:
    """The client returns custom objects as untyped JSON; anything but an object is a broken response."""
    if not isinstance(raw, dict):
        raise TypeError(f"expected a JSON object from kube-apiserver, got {type(raw).__name__}")
    return raw
