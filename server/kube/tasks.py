"""The API's own `Task` custom resource (`tasks.api.novasphere.dev`, deploy/crds): the VM operations, kept in the
API's namespace. One informer reads them; these are the writes."""

from __future__ import annotations

from server.kube.client import JsonObject, KubeClient
from server.kube.informer import Kind

GROUP = "api.novasphere.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"


def kind(namespace: str) -> Kind:
    return Kind("tasks", _path(namespace))


def _path(namespace: str, name: str = "", subresource: str = "") -> str:
    path = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/tasks"
    return path + (f"/{name}" if name else "") + (f"/{subresource}" if subresource else "")


async def create(client: KubeClient, body: JsonObject) -> JsonObject:
    return await client.request("POST", _path(body["metadata"]["namespace"]), body=body)


async def get(client: KubeClient, *, namespace: str, name: str) -> JsonObject:
    return await client.request("GET", _path(namespace, name))


async def patch_status(
    client: KubeClient, *, namespace: str, name: str, status: JsonObject, resource_version: str | None
) -> JsonObject:
    """A merge patch of the status. With `resource_version` it applies only to that version of the task (else 409):
    how replicas take a step on a task (send its action, cancel it) without two of them taking it."""
    metadata: JsonObject = {"resourceVersion": resource_version} if resource_version else {}
    return await client.request(
        "PATCH",
        _path(namespace, name, "status"),
        body={"metadata": metadata, "status": status},
        content_type="application/merge-patch+json",
    )


async def delete(client: KubeClient, *, namespace: str, name: str) -> None:
    await client.request("DELETE", _path(namespace, name))
