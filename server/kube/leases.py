"""`coordination.k8s.io/v1` Leases: how the API's replicas elect the one that reconciles tasks, and which console
session may hold a VM's console."""

from __future__ import annotations

from server.kube.client import JsonObject, KubeClient


def _path(namespace: str, name: str = "") -> str:
    return f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases" + (f"/{name}" if name else "")


async def get(client: KubeClient, *, namespace: str, name: str) -> JsonObject:
    return await client.request("GET", _path(namespace, name))


async def create(
    client: KubeClient, *, namespace: str, name: str, spec: JsonObject, labels: dict[str, str] | None = None
) -> JsonObject:
    body = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
        "spec": spec,
    }
    return await client.request("POST", _path(namespace), body=body)


async def replace(client: KubeClient, lease: JsonObject) -> JsonObject:
    """An update guarded by the lease's resourceVersion: 409 when another replica wrote it first."""
    metadata = lease["metadata"]
    return await client.request("PUT", _path(metadata["namespace"], metadata["name"]), body=lease)


async def labelled(client: KubeClient, *, namespace: str, selector: str) -> list[JsonObject]:
    listed = await client.request("GET", _path(namespace), query={"labelSelector": selector})
    return list(listed.get("items") or [])


async def delete(client: KubeClient, *, namespace: str, name: str) -> None:
    await client.request("DELETE", _path(namespace, name))
