"""SSH public key Secrets: NovaSphere's own, by label, in a tenant's namespace (a Wukong's `spec.sshKeySecret`).

They are read on demand (a namespace's list by label), not mirrored: the API never keeps other Secrets in memory."""

from __future__ import annotations

from server.kube.client import JsonObject, KubeClient

KIND_LABEL = "novasphere.dev/kind"
SSH_KEY = "ssh-key"
MAX_ITEMS = 500


def _path(namespace: str, name: str = "") -> str:
    return f"/api/v1/namespaces/{namespace}/secrets" + (f"/{name}" if name else "")


async def in_namespace(client: KubeClient, namespace: str) -> list[JsonObject]:
    page = await client.request(
        "GET", _path(namespace), query={"labelSelector": f"{KIND_LABEL}={SSH_KEY}", "limit": MAX_ITEMS}
    )
    return list(page.get("items") or [])


async def get(client: KubeClient, *, namespace: str, name: str) -> JsonObject:
    return await client.request("GET", _path(namespace, name))


async def create(client: KubeClient, body: JsonObject) -> JsonObject:
    return await client.request("POST", _path(body["metadata"]["namespace"]), body=body)


async def delete(client: KubeClient, *, namespace: str, name: str, uid: str) -> None:
    """Deletes exactly the Secret that was read (its UID as a precondition)."""
    body = {"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": {"uid": uid}}
    await client.request("DELETE", _path(namespace, name), body=body)
