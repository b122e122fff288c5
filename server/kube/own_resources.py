"""The API's own custom resources (group `api.novasphere.dev`, deploy/crds), kept in the API's namespace: one
informer per kind reads them; these are the writes, the same for every kind."""

from __future__ import annotations

from server.kube.client import JsonObject, KubeClient
from server.kube.informer import Kind

GROUP = "api.novasphere.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"


class OwnResource:
    def __init__(self, plural: str) -> None:
        self.plural = plural

    def kind(self, namespace: str) -> Kind:
        return Kind(self.plural, self.path(namespace))

    def path(self, namespace: str, name: str = "", subresource: str = "") -> str:
        path = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{self.plural}"
        return path + (f"/{name}" if name else "") + (f"/{subresource}" if subresource else "")

    async def create(self, client: KubeClient, body: JsonObject) -> JsonObject:
        return await client.request("POST", self.path(body["metadata"]["namespace"]), body=body)

    async def get(self, client: KubeClient, *, namespace: str, name: str) -> JsonObject:
        return await client.request("GET", self.path(namespace, name))

    async def patch_status(
        self, client: KubeClient, *, namespace: str, name: str, status: JsonObject, resource_version: str | None = None
    ) -> JsonObject:
        """A merge patch of the status. With `resource_version` it applies only to that version (else 409): how
        replicas take a step on an object (send a task's action, claim a console ticket) without two taking it."""
        metadata: JsonObject = {"resourceVersion": resource_version} if resource_version else {}
        return await client.request(
            "PATCH",
            self.path(namespace, name, "status"),
            body={"metadata": metadata, "status": status},
            content_type="application/merge-patch+json",
        )

    async def delete(self, client: KubeClient, *, namespace: str, name: str) -> None:
        await client.request("DELETE", self.path(namespace, name))
