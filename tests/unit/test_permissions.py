"""Every served RPC has a row in the permission table, and the table names nothing that is not served."""

from __future__ import annotations

from typing import Any

from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2

from novasphere.v1 import task_service_pb2, wukong_service_pb2
from server.transport import permissions

SERVED: list[Any] = [  # ServiceDescriptors (the upb and Python classes differ in the stubs)
    wukong_service_pb2.DESCRIPTOR.services_by_name["WukongService"],
    task_service_pb2.DESCRIPTOR.services_by_name["TaskService"],
    health_pb2.DESCRIPTOR.services_by_name["Health"],
    reflection_pb2.DESCRIPTOR.services_by_name["ServerReflection"],
]
KNOWN_PERMISSIONS = {
    permissions.PUBLIC,
    "vm:query",
    "vm:create",
    "vm:update",
    "vm:delete",
    "vm:start",
    "vm:stop",
    "vm:restart",
    "vm:pause",
    "task:query",
}


def test_the_table_covers_exactly_the_served_rpcs() -> None:
    served = {f"/{service.full_name}/{method.name}" for service in SERVED for method in service.methods}
    assert sorted(served - permissions.REQUIRED.keys()) == [], "RPCs missing from server/transport/permissions.py"
    assert sorted(permissions.REQUIRED.keys() - served) == [], "rows for RPCs nobody serves"


def test_only_health_and_reflection_are_public() -> None:
    public = sorted(method for method, needed in permissions.REQUIRED.items() if needed == permissions.PUBLIC)
    assert public == [
        "/grpc.health.v1.Health/Check",
        "/grpc.health.v1.Health/List",
        "/grpc.health.v1.Health/Watch",
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    ]
    assert set(permissions.REQUIRED.values()) <= KNOWN_PERMISSIONS
