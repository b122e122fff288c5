"""Every served RPC has a row in the permission table, and the table names nothing that is not served."""

from __future__ import annotations

from typing import Any

import yaml
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2

from devcluster.stack import DESCRIPTOR, REPO_ROOT
from server import auth
from server.auth import store
from server.transport import permissions


def _api_methods() -> set[str]:
    """Every RPC of the API's own services, from the descriptor set `make gen` writes (what Envoy transcodes)."""
    files = descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTOR.read_bytes())
    return {
        f"/{file.package}.{service.name}/{method.name}"
        for file in files.file
        if file.package.startswith("novasphere.")
        for service in file.service
        for method in service.method
    }


STANDARD: list[Any] = [  # ServiceDescriptors (the upb and Python classes differ in the stubs)
    health_pb2.DESCRIPTOR.services_by_name["Health"],
    reflection_pb2.DESCRIPTOR.services_by_name["ServerReflection"],
]
# Every permission the table may name: those roles may hold, and the two markers.
KNOWN_PERMISSIONS = {permissions.PUBLIC, permissions.AUTHENTICATED, *auth.KNOWN_PERMISSIONS}


def test_the_table_covers_exactly_the_served_rpcs() -> None:
    served = _api_methods() | {f"/{s.full_name}/{method.name}" for s in STANDARD for method in s.methods}
    assert sorted(served - permissions.REQUIRED.keys()) == [], "RPCs missing from server/transport/permissions.py"
    assert sorted(permissions.REQUIRED.keys() - served) == [], "rows for RPCs nobody serves"


def test_only_login_refresh_health_and_reflection_are_public() -> None:
    public = sorted(method for method, needed in permissions.REQUIRED.items() if needed == permissions.PUBLIC)
    assert public == [
        "/grpc.health.v1.Health/Check",
        "/grpc.health.v1.Health/List",
        "/grpc.health.v1.Health/Watch",
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        "/novasphere.v1.AuthService/Login",
        "/novasphere.v1.AuthService/Refresh",
    ]
    assert set(permissions.REQUIRED.values()) <= KNOWN_PERMISSIONS


def test_the_development_identity_and_the_shipped_roles_hold_only_known_permissions() -> None:
    shipped = yaml.safe_load((REPO_ROOT / "deploy" / "authz.yaml").read_text())
    roles, bindings = store.parse_authz(shipped["data"])
    assert {"viewer", "operator", "tenant-admin", "admin"} <= roles.keys()
    assert all(permissions_ <= auth.KNOWN_PERMISSIONS for permissions_ in roles.values())
    assert all(binding.role in roles for binding in bindings)


def test_roles_and_bindings_survive_a_write_and_read_back() -> None:
    roles = {"viewer": frozenset({"vm:query", "task:query"}), "ops": frozenset({"vm:start"})}
    bindings = (store.Binding("ada", "demo", "ops"), store.Binding("ada", "demo", "viewer"))
    data = store.authz_data(roles, (*bindings, bindings[0]))  # a duplicate is written once
    assert store.parse_authz(data) == (roles, bindings)
    assert store.authz_data(*store.parse_authz(data)) == data  # stable: an unchanged set rewrites nothing
