"""Arranging test data in the real cluster with the admin client, and waiting on conditions with a deadline."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

import kubernetes.client
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from kubernetes.client.exceptions import ApiException

from devcluster import manifests
from server.kube import wukongs as kube_wukongs

T = TypeVar("T")
DEFAULT_TIMEOUT = 60.0

MINIMAL_SPEC: Mapping[str, Any] = {
    "cpu": 1,
    "memory": "1Gi",
    "disks": [{"name": "root", "size": "10Gi", "storageClassName": "local-path"}],
}


def create_namespace(client: kubernetes.client.ApiClient, name: str, labels: Mapping[str, str] | None = None) -> None:
    body = kubernetes.client.V1Namespace(metadata=kubernetes.client.V1ObjectMeta(name=name, labels=dict(labels or {})))
    kubernetes.client.CoreV1Api(client).create_namespace(body)


def delete_namespace(client: kubernetes.client.ApiClient, name: str) -> None:
    try:
        kubernetes.client.CoreV1Api(client).delete_namespace(name)
    except ApiException as error:
        if error.status != 404:
            raise


@contextlib.contextmanager
def api_home(client: kubernetes.client.ApiClient, prefix: str) -> Iterator[str]:
    """A new namespace with deploy/'s Role of the API in it, for the Tasks and Lease of API servers a test starts
    with it as NOVASPHERE_NAMESPACE: they lead their own tasks, apart from the session's API server; deleted after."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    create_namespace(client, name)
    path = manifests.REPO_ROOT / "deploy" / "rbac" / "role.yaml"
    role = [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    manifests.apply(client, [dict(doc, metadata={**doc["metadata"], "namespace": name}) for doc in role])
    try:
        yield name
    finally:
        delete_namespace(client, name)


def namespace_exists(client: kubernetes.client.ApiClient, name: str) -> bool:
    try:
        kubernetes.client.CoreV1Api(client).read_namespace(name)
    except ApiException as error:
        if error.status == 404:
            return False
        raise
    return True


def secret_exists(client: kubernetes.client.ApiClient, namespace: str, name: str) -> bool:
    try:
        kubernetes.client.CoreV1Api(client).read_namespaced_secret(name, namespace)
    except ApiException as error:
        if error.status == 404:
            return False
        raise
    return True


def ssh_public_key(comment: str) -> str:
    """A fresh OpenSSH public key line (ed25519), as in a `.pub` file."""
    private = ed25519.Ed25519PrivateKey.generate()
    raw = private.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return f"{raw.decode()} {comment}"


def create_wukong(
    client: kubernetes.client.ApiClient,
    namespace: str,
    name: str,
    spec: Mapping[str, Any] = MINIMAL_SPEC,
    labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    body = {
        "apiVersion": f"{kube_wukongs.GROUP}/{kube_wukongs.VERSION}",
        "kind": "Wukong",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels or {})},
        "spec": dict(spec),
    }
    created = kubernetes.client.CustomObjectsApi(client).create_namespaced_custom_object(
        kube_wukongs.GROUP, kube_wukongs.VERSION, namespace, kube_wukongs.PLURAL, body
    )
    return json_object(created)


def wukong_names(client: kubernetes.client.ApiClient, namespace: str) -> list[str]:
    """The namespace's Wukongs by name, sorted, as kube-apiserver has them."""
    listed = kubernetes.client.CustomObjectsApi(client).list_namespaced_custom_object(
        kube_wukongs.GROUP, kube_wukongs.VERSION, namespace, kube_wukongs.PLURAL
    )
    return sorted(item["metadata"]["name"] for item in json_object(listed)["items"])


def wukong_spec(client: kubernetes.client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    raw = kubernetes.client.CustomObjectsApi(client).get_namespaced_custom_object(
        kube_wukongs.GROUP, kube_wukongs.VERSION, namespace, kube_wukongs.PLURAL, name
    )
    spec: dict[str, Any] = json_object(raw)["spec"]
    return spec


def json_object(raw: object) -> dict[str, Any]:
    assert isinstance(raw, dict)
    return raw


def eventually(probe: Callable[[], T | None], *, timeout: float = DEFAULT_TIMEOUT, what: str) -> T:
    """Polls `probe` until it returns something other than None/False; fails with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)


def dig(obj: Any, *path: str) -> Any:
    """`obj[path[0]][path[1]]...`, or None where something along the way is missing."""
    for part in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def what_the_api_writes(wukong: Mapping[str, Any]) -> tuple[Any, ...]:
    """Everything of a Wukong a mutation could change. Not its resourceVersion: vmoperator's status writes move that
    for a while after a VM starts (reference/wukong.md §7's echo passes)."""
    metadata = wukong["metadata"]
    return (
        metadata.get("generation"),
        metadata.get("labels"),
        metadata.get("annotations"),
        metadata.get("deletionTimestamp"),
        wukong["spec"],
    )
