"""Every served RPC has a row in the permission table, and the table names nothing that is not served."""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2

from devcluster.stack import DESCRIPTOR
from server import config
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
# Every permission the table may name: the ones the development identity has by default.
KNOWN_PERMISSIONS = {permissions.PUBLIC, permissions.AUTHENTICATED, "apikey:manage", *config.DEV_PERMISSIONS}


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
