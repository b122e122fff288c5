"""The API's own `ConsoleSession` custom resource (`consolesessions.api.novasphere.dev`, deploy/crds): console links
and who holds them, kept in the API's namespace."""

from __future__ import annotations

from server.kube.own_resources import API_VERSION, OwnResource

__all__ = ["API_VERSION", "create", "delete", "get", "kind", "patch_status"]

_SESSIONS = OwnResource("consolesessions")
kind, create, get = _SESSIONS.kind, _SESSIONS.create, _SESSIONS.get
patch_status, delete = _SESSIONS.patch_status, _SESSIONS.delete
