"""The API's own `Task` custom resource (`tasks.api.novasphere.dev`, deploy/crds): the VM operations, kept in the
API's namespace."""

from __future__ import annotations

from server.kube.own_resources import API_VERSION, OwnResource

__all__ = ["API_VERSION", "create", "delete", "get", "kind", "patch_status"]

_TASKS = OwnResource("tasks")
kind, create, get, patch_status, delete = _TASKS.kind, _TASKS.create, _TASKS.get, _TASKS.patch_status, _TASKS.delete
