"""Namespaces: tenants own them by label. An informer mirrors the labelled ones; `get` answers for one it has not seen
yet (created a moment ago)."""

from __future__ import annotations

from server.kube import errors
from server.kube.client import JsonObject, KubeClient
from server.kube.informer import Kind

TENANT_LABEL = "novasphere.dev/tenant"
TENANT_NAMESPACES = Kind("namespaces", "/api/v1/namespaces", label_selector=TENANT_LABEL)


async def get(client: KubeClient, name: str) -> JsonObject | None:
    try:
        return await client.request("GET", f"/api/v1/namespaces/{name}")
    except errors.NotFound:
        return None


async def names_labelled(client: KubeClient, selector: str) -> list[str]:
    listed = await client.request("GET", "/api/v1/namespaces", query={"labelSelector": selector})
    return sorted(item["metadata"]["name"] for item in listed.get("items") or [])


async def create(client: KubeClient, name: str, labels: dict[str, str]) -> JsonObject:
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}
    return await client.request("POST", "/api/v1/namespaces", body=body)


async def set_labels(
    client: KubeClient, name: str, labels: dict[str, str | None], *, resource_version: str = ""
) -> JsonObject:
    """A merge patch of the labels (None removes one); with `resource_version`, only of that version (else 409)."""
    metadata: JsonObject = {"labels": labels}
    if resource_version:
        metadata["resourceVersion"] = resource_version
    return await client.request(
        "PATCH",
        f"/api/v1/namespaces/{name}",
        body={"metadata": metadata},
        content_type="application/merge-patch+json",
    )
