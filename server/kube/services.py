"""Core `Service`s that expose a VM's ports (NodePort / LoadBalancer), and the `Node`s whose addresses reach a node
port. One informer each: Services only with NovaSphere's label, all Nodes."""

from __future__ import annotations

from server.kube.client import JsonObject, KubeClient, only_uid
from server.kube.informer import Kind

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "novasphere-api"
SERVICES = Kind("services", "/api/v1/services", label_selector=f"{MANAGED_BY_LABEL}={MANAGED_BY}")
NODES = Kind("nodes", "/api/v1/nodes")


def _path(namespace: str, name: str = "") -> str:
    return f"/api/v1/namespaces/{namespace}/services" + (f"/{name}" if name else "")


async def create(client: KubeClient, body: JsonObject) -> JsonObject:
    return await client.request("POST", _path(body["metadata"]["namespace"]), body=body)


async def delete(client: KubeClient, *, namespace: str, name: str, uid: str) -> None:
    """Deletes exactly the Service that was read (its UID as a precondition)."""
    await client.request("DELETE", _path(namespace, name), body=only_uid(uid))
