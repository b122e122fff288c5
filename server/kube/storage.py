"""A Wukong's disks: the PersistentVolumeClaims vmoperator creates (`<wukong>-<disk>`) and their StorageClasses.
The API reads them for the detail view and the create form, and grows a claim when a disk grows (vmoperator never
resizes). The detail view reads both through informers (`CLAIMS`, `STORAGE_CLASSES`) of what it shows of them;
writes and their checks read them live."""

from __future__ import annotations

from typing import Any

from server.kube import errors, slim
from server.kube.client import JsonObject, KubeClient
from server.kube.informer import Kind


def _kept_class(item: JsonObject) -> JsonObject:
    """What the detail view reads of a StorageClass: its name and whether its volumes may grow."""
    return {
        "metadata": {"name": (item.get("metadata") or {}).get("name") or ""},
        "allowVolumeExpansion": bool(item.get("allowVolumeExpansion")),
    }


def _kept_claim(item: JsonObject) -> JsonObject:
    """What the detail view reads of a claim: its phase, the size asked for and the capacity it has."""
    spec: dict[str, Any] = item.get("spec") or {}
    status: dict[str, Any] = item.get("status") or {}
    requests = (spec.get("resources") or {}).get("requests") or {}
    return {
        "metadata": slim.metadata(item.get("metadata") or {}),
        "spec": {"resources": {"requests": slim.texts(requests, "storage")}},
        "status": {
            "phase": slim.text(status.get("phase")),
            "capacity": slim.texts(status.get("capacity") or {}, "storage"),
        },
    }


STORAGE_CLASSES = Kind("storageclasses", "/apis/storage.k8s.io/v1/storageclasses", keep=_kept_class)
CLAIMS = Kind("persistentvolumeclaims", "/api/v1/persistentvolumeclaims", keep=_kept_claim, reuse_on_relist=True)


async def claim(client: KubeClient, *, namespace: str, name: str) -> JsonObject | None:
    try:
        return await client.request("GET", f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/{name}")
    except errors.NotFound:
        return None


async def storage_class(client: KubeClient, name: str) -> JsonObject | None:
    try:
        return await client.request("GET", f"/apis/storage.k8s.io/v1/storageclasses/{name}")
    except errors.NotFound:
        return None


async def storage_classes(client: KubeClient) -> list[JsonObject]:
    """Every StorageClass in the cluster (a handful: one unpaged list)."""
    return list((await client.request("GET", "/apis/storage.k8s.io/v1/storageclasses")).get("items") or [])


async def grow_claim(client: KubeClient, *, namespace: str, name: str, size: str, dry_run: bool = False) -> JsonObject:
    """With `dry_run`, kube-apiserver runs every check (admission, quota) and writes nothing."""
    return await client.request(
        "PATCH",
        f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/{name}",
        body={"spec": {"resources": {"requests": {"storage": size}}}},
        content_type="application/merge-patch+json",
        query={"dryRun": "All"} if dry_run else {},
    )


async def delete_disk(client: KubeClient, *, namespace: str, name: str) -> bool:
    """Deletes a disk's DataVolume (CDI's, which owns the claim) and claim by name; False when neither exists."""
    found = False
    for path in (
        f"/apis/cdi.kubevirt.io/v1beta1/namespaces/{namespace}/datavolumes/{name}",
        f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/{name}",
    ):
        try:
            await client.request("DELETE", path)
            found = True
        except errors.NotFound:
            pass
    return found
