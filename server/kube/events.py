"""Core Events about one object, for the detail view (Kubernetes keeps them about an hour)."""

from __future__ import annotations

from server.kube.client import JsonObject, KubeClient

MAX_EVENTS = 100


async def about(client: KubeClient, *, namespace: str, name: str) -> list[JsonObject]:
    """Events whose involved object has this name (any kind: a VM and its instance share a name)."""
    page = await client.request(
        "GET",
        f"/api/v1/namespaces/{namespace}/events",
        query={"fieldSelector": f"involvedObject.name={name}", "limit": MAX_EVENTS},
    )
    return list(page.get("items") or [])
