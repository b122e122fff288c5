"""Users and role bindings as an administrator creates them: a user Secret with an argon2id hash in the API's
namespace, and a line in the `novasphere-authz` ConfigMap's bindings. For `make run`'s demo users and the tests."""

from __future__ import annotations

from typing import Any

import kubernetes.client
import yaml

from server.auth import passwords, store

API_NAMESPACE = "novasphere-system"
AUTHZ = "novasphere-authz"


def user_secret(name: str, password: str, *, disabled: bool = False) -> dict[str, Any]:
    secret = store.user_secret(name, passwords.hash_password(password), disabled=disabled)
    secret["metadata"]["namespace"] = API_NAMESPACE
    return secret


def create_user(kube: kubernetes.client.ApiClient, name: str, password: str, *, tenant: str, role: str) -> None:
    """A user with a role in a tenant, as an administrator would write them."""
    body: Any = user_secret(name, password)  # the client accepts plain JSON
    kubernetes.client.CoreV1Api(kube).create_namespaced_secret(API_NAMESPACE, body)
    bind(kube, name, tenant, role)


def bindings(kube: kubernetes.client.ApiClient) -> list[dict[str, str]]:
    config_map = kubernetes.client.CoreV1Api(kube).read_namespaced_config_map(AUTHZ, API_NAMESPACE)
    loaded: Any = yaml.safe_load((config_map.data or {}).get("bindings.yaml") or "[]") or []
    return list(loaded)


def set_bindings(kube: kubernetes.client.ApiClient, entries: list[dict[str, str]]) -> None:
    kubernetes.client.CoreV1Api(kube).patch_namespaced_config_map(
        AUTHZ, API_NAMESPACE, {"data": {"bindings.yaml": yaml.safe_dump(entries, default_flow_style=True)}}
    )


def bind(kube: kubernetes.client.ApiClient, user: str, tenant: str, role: str) -> None:
    wanted = {"user": user, "tenant": tenant, "role": role}
    current = bindings(kube)
    if wanted not in current:
        set_bindings(kube, [*current, wanted])


def unbind(kube: kubernetes.client.ApiClient, user: str) -> None:
    set_bindings(kube, [b for b in bindings(kube) if b["user"] != user])
