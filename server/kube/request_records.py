"""The API's `RequestRecord` custom resource (`requestrecords.api.novasphere.dev`, deploy/crds): what a call sent with
a `request_id` answered, kept in the API's namespace for replays."""

from __future__ import annotations

from collections.abc import AsyncIterator

from server.kube.client import JsonObject, KubeClient
from server.kube.own_resources import API_VERSION, OwnResource

__all__ = ["API_VERSION", "create", "delete", "get", "names_and_expiry", "update_spec"]

LIST_PAGE = 500
_RECORDS = OwnResource("requestrecords")
create, get, delete = _RECORDS.create, _RECORDS.get, _RECORDS.delete


async def update_spec(
    client: KubeClient, *, namespace: str, name: str, spec: JsonObject, resource_version: str
) -> JsonObject:
    """A merge patch of the spec that applies only to `resource_version` (else kube's 409): one replica at a time
    takes a record over or completes it."""
    return await client.request(
        "PATCH",
        _RECORDS.path(namespace, name),
        body={"metadata": {"resourceVersion": resource_version}, "spec": spec},
        content_type="application/merge-patch+json",
    )


async def names_and_expiry(client: KubeClient, *, namespace: str) -> AsyncIterator[tuple[str, str]]:
    """Every record's name and `spec.expireTime`, a page at a time (the leader's sweep; nothing caches them)."""
    query: dict[str, str | int] = {"limit": LIST_PAGE}
    while True:
        page = await client.request("GET", _RECORDS.path(namespace), query=query)
        for item in page.get("items") or ():
            yield item["metadata"]["name"], str((item.get("spec") or {}).get("expireTime") or "")
        token = (page.get("metadata") or {}).get("continue")
        if not token:
            return
        query = {"limit": LIST_PAGE, "continue": token}
