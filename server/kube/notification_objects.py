"""Where notifications keep their state, all in the API's namespace and labelled `novasphere.dev/kind`:

- a device is a Secret (`notification-device`): its provider token or Web Push subscription is a credential; its
  owner, platform, name and last delivery are annotations;
- a tenant's webhook is a Secret (`notification-webhook`): its URL carries the robot's key, its secret signs;
- a user's preferences are a ConfigMap (`notification-preferences`);
- a notification being delivered is a ConfigMap (`notification-outbox`), written before the first send and deleted
  once every destination has answered, so a new leader finishes what the old one began.

Secrets and ConfigMaps are written by server-side apply (one request creates or updates) or patched; one informer per
collection mirrors them on every replica (`notifications.store`)."""

from __future__ import annotations

from server.kube.auth_objects import KIND_LABEL
from server.kube.client import JsonObject, KubeClient, only_uid
from server.kube.informer import Kind

DEVICE = "notification-device"
WEBHOOK = "notification-webhook"
PREFERENCES = "notification-preferences"
OUTBOX = "notification-outbox"
SECRET_KINDS = (DEVICE, WEBHOOK)
CONFIG_MAP_KINDS = (PREFERENCES, OUTBOX)
FIELD_MANAGER = "novasphere-api"


def secrets_kind(namespace: str) -> Kind:
    return Kind(
        "notification-secrets",
        f"/api/v1/namespaces/{namespace}/secrets",
        label_selector=f"{KIND_LABEL} in ({','.join(SECRET_KINDS)})",
    )


def config_maps_kind(namespace: str) -> Kind:
    return Kind(
        "notification-configmaps",
        f"/api/v1/namespaces/{namespace}/configmaps",
        label_selector=f"{KIND_LABEL} in ({','.join(CONFIG_MAP_KINDS)})",
    )


def _path(namespace: str, collection: str, name: str = "") -> str:
    return f"/api/v1/namespaces/{namespace}/{collection}" + (f"/{name}" if name else "")


async def apply(client: KubeClient, body: JsonObject) -> JsonObject:
    """Creates or updates a Secret or ConfigMap (server-side apply: one request either way)."""
    metadata = body["metadata"]
    collection = {"Secret": "secrets", "ConfigMap": "configmaps"}[body["kind"]]
    return await client.request(
        "PATCH",
        _path(metadata["namespace"], collection, metadata["name"]),
        query={"fieldManager": FIELD_MANAGER, "force": "true"},
        body=body,
        content_type="application/apply-patch+yaml",
    )


async def create_secret(client: KubeClient, body: JsonObject) -> JsonObject:
    return await client.request("POST", _path(body["metadata"]["namespace"], "secrets"), body=body)


async def annotate_secret(client: KubeClient, *, namespace: str, name: str, annotations: dict[str, str]) -> JsonObject:
    """A merge patch of annotations only (delivery outcomes): never recreates a Secret deleted meanwhile."""
    return await client.request(
        "PATCH",
        _path(namespace, "secrets", name),
        body={"metadata": {"annotations": annotations}},
        content_type="application/merge-patch+json",
    )


async def delete_secret(client: KubeClient, *, namespace: str, name: str, uid: str = "") -> None:
    """With `uid`, only that very Secret (else Conflict): a device deleted as gone must not take a re-registration."""
    await client.request("DELETE", _path(namespace, "secrets", name), body=only_uid(uid) if uid else None)


async def delete_config_map(client: KubeClient, *, namespace: str, name: str) -> None:
    await client.request("DELETE", _path(namespace, "configmaps", name))
