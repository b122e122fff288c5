"""The Secrets and the ConfigMap that hold users, login sessions, token signing keys and roles, all in the API's
namespace and labelled `novasphere.dev/kind`; one informer per collection mirrors them on every replica."""

from __future__ import annotations

import base64
from collections.abc import Mapping

from server.kube.client import JsonObject, KubeClient
from server.kube.informer import Kind

KIND_LABEL = "novasphere.dev/kind"


def secrets_kind(namespace: str) -> Kind:
    return Kind("auth-secrets", f"/api/v1/namespaces/{namespace}/secrets", label_selector=KIND_LABEL)


def config_maps_kind(namespace: str) -> Kind:
    """The roles ConfigMap (the API's other ConfigMaps, its replicas' counts, have informers of their own)."""
    return Kind("auth-configmaps", f"/api/v1/namespaces/{namespace}/configmaps", label_selector=f"{KIND_LABEL}=authz")


def secret_data(secret: Mapping[str, object]) -> dict[str, str]:
    """A Secret's `data`, decoded (values are text here)."""
    data = secret.get("data") or {}
    assert isinstance(data, Mapping)
    return {key: base64.b64decode(str(value)).decode() for key, value in data.items()}


def encoded(data: Mapping[str, str]) -> dict[str, str]:
    return {key: base64.b64encode(value.encode()).decode() for key, value in data.items()}


async def create_secret(client: KubeClient, body: JsonObject) -> JsonObject:
    return await client.request("POST", _secrets(body["metadata"]["namespace"]), body=body)


async def get_secret(client: KubeClient, *, namespace: str, name: str) -> JsonObject:
    return await client.request("GET", _secrets(namespace, name))


async def patch_secret(
    client: KubeClient, *, namespace: str, name: str, patch: JsonObject, resource_version: str | None = None
) -> JsonObject:
    """A merge patch; with `resource_version`, only of that version (else 409): a refresh token is used once."""
    if resource_version:
        patch = {**patch, "metadata": {**(patch.get("metadata") or {}), "resourceVersion": resource_version}}
    return await client.request(
        "PATCH", _secrets(namespace, name), body=patch, content_type="application/merge-patch+json"
    )


async def labelled_secrets(client: KubeClient, *, namespace: str, selector: str) -> list[JsonObject]:
    """The Secrets with these labels as kube-apiserver holds them now (not as a cache last saw them)."""
    listed = await client.request("GET", _secrets(namespace), query={"labelSelector": selector})
    return list(listed.get("items") or [])


async def delete_secret(client: KubeClient, *, namespace: str, name: str) -> None:
    await client.request("DELETE", _secrets(namespace, name))


def _secrets(namespace: str, name: str = "") -> str:
    return f"/api/v1/namespaces/{namespace}/secrets" + (f"/{name}" if name else "")


async def get_config_map(client: KubeClient, *, namespace: str, name: str) -> JsonObject:
    return await client.request("GET", f"/api/v1/namespaces/{namespace}/configmaps/{name}")


async def replace_config_map(client: KubeClient, config_map: JsonObject) -> JsonObject:
    """PUT of the whole object: it carries the resourceVersion it was read at, so a concurrent edit is a 409."""
    metadata = config_map["metadata"]
    path = f"/api/v1/namespaces/{metadata['namespace']}/configmaps/{metadata['name']}"
    return await client.request("PUT", path, body=config_map)
