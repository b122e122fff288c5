"""The ConfigMaps in which each replica publishes its recent event counts (`tally.py`): one per replica, labelled
`novasphere.dev/kind=counts`, written only by its replica (server-side apply, so one request creates or updates it)."""

from __future__ import annotations

import re

from server.kube.auth_objects import KIND_LABEL
from server.kube.client import JsonObject, KubeClient
from server.kube.informer import Kind

COUNTS_KIND = "counts"
FIELD_MANAGER = "novasphere-api"


def kind(namespace: str) -> Kind:
    return Kind("counts", f"/api/v1/namespaces/{namespace}/configmaps", label_selector=f"{KIND_LABEL}={COUNTS_KIND}")


def name_of(replica: str) -> str:
    """A valid object name for the replica's ConfigMap (its id may hold any host name)."""
    return f"novasphere-counts-{re.sub(r'[^a-z0-9-]+', '-', replica.lower())}"[:63].rstrip("-")


async def publish(
    client: KubeClient, *, namespace: str, replica: str, data: dict[str, str], annotations: dict[str, str]
) -> JsonObject:
    name = name_of(replica)
    body = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {KIND_LABEL: COUNTS_KIND},
            "annotations": annotations,
        },
        "data": data,
    }
    return await client.request(
        "PATCH",
        f"/api/v1/namespaces/{namespace}/configmaps/{name}",
        query={"fieldManager": FIELD_MANAGER, "force": "true"},
        body=body,
        content_type="application/apply-patch+yaml",
    )


async def delete(client: KubeClient, *, namespace: str, name: str) -> None:
    await client.request("DELETE", f"/api/v1/namespaces/{namespace}/configmaps/{name}")
