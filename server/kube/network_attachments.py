"""Multus' NetworkAttachmentDefinitions in a namespace: what a Wukong's `spec.networks[].nadName` may name."""

from __future__ import annotations

from server.kube import errors
from server.kube.client import JsonObject, KubeClient

API = "/apis/k8s.cni.cncf.io/v1"
MAX_ITEMS = 500


async def in_namespace(client: KubeClient, namespace: str) -> list[JsonObject]:
    """The namespace's NADs; none when Multus (its CRD) is not installed."""
    try:
        page = await client.request(
            "GET", f"{API}/namespaces/{namespace}/network-attachment-definitions", query={"limit": MAX_ITEMS}
        )
    except errors.NotFound:
        return []
    return list(page.get("items") or [])
