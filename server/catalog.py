"""What a VM's spec may refer to in a namespace: usable StorageClasses and the namespace's network attachments.

A namespace's ResourceQuotas can forbid a StorageClass (a hard limit of 0 on its storage or claims); such a class is
left out, since a disk of it would be refused when vmoperator creates the claim, long after the form said yes."""

from __future__ import annotations

import json
from dataclasses import dataclass

from server import quantity
from server.auth import Caller
from server.kube import network_attachments, storage
from server.kube.client import JsonObject, KubeClient
from server.stats import QuotaCache
from server.tenancy import Tenancy

DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"


@dataclass(frozen=True)
class StorageClassChoice:
    name: str
    provisioner: str
    allow_volume_expansion: bool
    is_default: bool
    volume_binding_mode: str
    reclaim_policy: str


@dataclass(frozen=True)
class NetworkAttachmentChoice:
    name: str
    namespace: str
    cni_type: str


class Catalog:
    def __init__(self, *, kube: KubeClient, tenancy: Tenancy, quotas: QuotaCache) -> None:
        self._kube = kube
        self._tenancy = tenancy
        self._quotas = quotas

    async def storage_classes(self, caller: Caller, *, namespace: str) -> list[StorageClassChoice]:
        namespace = await self._tenancy.namespace_for(caller, namespace)
        limits = self._quotas.hard_limits(namespace)
        choices = [_storage_class(item) for item in await storage.storage_classes(self._kube) if _allowed(item, limits)]
        return sorted(choices, key=lambda c: (not c.is_default, c.name))

    async def network_attachments(self, caller: Caller, *, namespace: str) -> list[NetworkAttachmentChoice]:
        namespace = await self._tenancy.namespace_for(caller, namespace)
        found = [_network_attachment(item) for item in await network_attachments.in_namespace(self._kube, namespace)]
        return sorted(found, key=lambda n: n.name)


def _allowed(item: JsonObject, limits: list[dict[str, str]]) -> bool:
    name = item["metadata"]["name"]
    keys = (
        f"{name}.storageclass.storage.k8s.io/requests.storage",
        f"{name}.storageclass.storage.k8s.io/persistentvolumeclaims",
    )
    return not any(_is_zero(hard.get(key)) for hard in limits for key in keys)


def _is_zero(limit: str | None) -> bool:
    try:
        return limit is not None and quantity.parse_bytes(limit) == 0
    except ValueError:  # kube-apiserver accepted it, so it is a quantity; a form this parser lacks is not "0"
        return False


def _storage_class(item: JsonObject) -> StorageClassChoice:
    annotations = item["metadata"].get("annotations") or {}
    return StorageClassChoice(
        name=item["metadata"]["name"],
        provisioner=item.get("provisioner") or "",
        allow_volume_expansion=bool(item.get("allowVolumeExpansion")),
        is_default=annotations.get(DEFAULT_CLASS_ANNOTATION) == "true",
        volume_binding_mode=item.get("volumeBindingMode") or "Immediate",
        reclaim_policy=item.get("reclaimPolicy") or "Delete",
    )


def _network_attachment(item: JsonObject) -> NetworkAttachmentChoice:
    return NetworkAttachmentChoice(
        name=item["metadata"]["name"],
        namespace=item["metadata"]["namespace"],
        cni_type=_cni_type((item.get("spec") or {}).get("config") or ""),
    )


def _cni_type(config: str) -> str:
    """The plugin a NAD's CNI config (JSON text) names: its own `type`, or the first plugin's in a conflist."""
    try:
        parsed = json.loads(config)
    except ValueError:
        return ""
    if not isinstance(parsed, dict):
        return ""
    plugins = parsed.get("plugins")
    first = plugins[0] if isinstance(plugins, list) and plugins and isinstance(plugins[0], dict) else parsed
    kind = first.get("type") or parsed.get("type")
    return kind if isinstance(kind, str) else ""
