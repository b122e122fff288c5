"""The `Wukong` custom resource (`wukongs.vm.novasphere.dev`, vmoperator's CRD, used unchanged): its informer kind
and the writes the API makes. Reads come from the informer, never from a LIST per request."""

from __future__ import annotations

from typing import Any

from server.kube import slim
from server.kube.client import JsonObject, KubeClient, only_uid
from server.kube.informer import Kind

GROUP = "vm.novasphere.dev"
VERSION = "v1alpha1"
PLURAL = "wukongs"
API_VERSION = f"{GROUP}/{VERSION}"
API_ANNOTATIONS = "api.novasphere.dev/"
"""The prefix of the annotations the API writes on a Wukong (and reads back from its cache)."""


def keep(raw: JsonObject) -> JsonObject:
    """What the cache keeps of a Wukong: the spec whole (clients read it back), vmoperator's status summary, every
    label and the API's own annotations; not managedFields, other annotations nor vmoperator's conditions."""
    status: dict[str, Any] = raw.get("status") or {}
    kept = slim.texts(status, "phase", "nodeName") | slim.pick(status, "vmName")
    if "networks" in status:
        kept["networks"] = [slim.texts(n, "name", "nadName") for n in status["networks"] or [] if isinstance(n, dict)]
    return {
        "metadata": slim.metadata(raw.get("metadata") or {}, labels=None, annotation_prefix=API_ANNOTATIONS),
        "spec": raw.get("spec") or {},
        "status": kept,
    }


KIND = Kind(PLURAL, f"/apis/{GROUP}/{VERSION}/{PLURAL}", keep=keep, reuse_on_relist=True)


def path(namespace: str, name: str = "") -> str:
    return f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/wukongs" + (f"/{name}" if name else "")


async def get(client: KubeClient, *, namespace: str, name: str) -> JsonObject:
    """A fresh read from kube-apiserver: for the read-modify-write of an update, not for serving reads."""
    return await client.request("GET", path(namespace, name))


async def create(client: KubeClient, body: JsonObject, *, dry_run: bool) -> JsonObject:
    namespace = body["metadata"]["namespace"]
    return await client.request("POST", path(namespace), body=body, query=_dry_run(dry_run))


async def patch(
    client: KubeClient, namespace: str, name: str, operations: list[JsonObject], *, dry_run: bool
) -> JsonObject:
    """A JSON Patch (RFC 6902): its `test` operations make it apply only to the object as the caller read it."""
    return await client.request(
        "PATCH",
        path(namespace, name),
        body=operations,
        content_type="application/json-patch+json",
        query=_dry_run(dry_run),
    )


def _dry_run(dry_run: bool) -> dict[str, str | int]:
    return {"dryRun": "All"} if dry_run else {}


async def delete(client: KubeClient, *, namespace: str, name: str, uid: str) -> None:
    """Deletes exactly the Wukong with this UID (a precondition), never a namesake created since."""
    await client.request("DELETE", path(namespace, name), body=only_uid(uid))
