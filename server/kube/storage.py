"""A Wukong's disks: the PersistentVolumeClaims vmoperator creates (`<wukong>-<disk>`) and their StorageClasses.
The API reads them for the detail view and the create form, and grows a claim when a disk grows (vmoperator never
resizes)."""

from __future__ import annotations

from server.kube import errors
from server.kube.client import JsonObject, KubeClient


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
