"""SSH public keys: the Secret in a tenant's namespace that a Wukong's `spec.sshKeySecret` names, and the API's
record of it, a ConfigMap in the API's own namespace (labelled `novasphere.dev/kind=ssh-key`).

The API may create and delete Secrets but never read one (RBAC: no get, list or watch on Secrets): listing reads
the records, and a delete names the Secret's UID as recorded, so it removes only the Secret the API made."""

from __future__ import annotations

from server.kube.auth_objects import KIND_LABEL
from server.kube.client import JsonObject, KubeClient, only_uid

SSH_KEY = "ssh-key"
NAMESPACE_LABEL = "novasphere.dev/ssh-key-namespace"
NAME_LABEL = "novasphere.dev/ssh-key-name"
MAX_ITEMS = 500


def _secrets(namespace: str, name: str = "") -> str:
    return f"/api/v1/namespaces/{namespace}/secrets" + (f"/{name}" if name else "")


def _records(namespace: str, name: str = "") -> str:
    return f"/api/v1/namespaces/{namespace}/configmaps" + (f"/{name}" if name else "")


async def create_secret(client: KubeClient, body: JsonObject) -> JsonObject:
    return await client.request("POST", _secrets(body["metadata"]["namespace"]), body=body)


async def delete_secret(client: KubeClient, *, namespace: str, name: str, uid: str) -> None:
    """Deletes the Secret only if it is still the one with `uid` (else Conflict)."""
    await client.request("DELETE", _secrets(namespace, name), body=only_uid(uid))


async def records(client: KubeClient, *, home: str, namespace: str, name: str = "") -> list[JsonObject]:
    """The records (in the API's namespace `home`) of the keys in `namespace`, or of the one named `name`."""
    selector = f"{KIND_LABEL}={SSH_KEY},{NAMESPACE_LABEL}={namespace}" + (f",{NAME_LABEL}={name}" if name else "")
    page = await client.request("GET", _records(home), query={"labelSelector": selector, "limit": MAX_ITEMS})
    return list(page.get("items") or [])


async def create_record(client: KubeClient, body: JsonObject) -> JsonObject:
    return await client.request("POST", _records(body["metadata"]["namespace"]), body=body)


async def delete_record(client: KubeClient, *, home: str, name: str) -> None:
    await client.request("DELETE", _records(home, name))
