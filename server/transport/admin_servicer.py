"""AdminService over gRPC: requests in, domain calls, messages out."""

from __future__ import annotations

from typing import Any

import grpc

from novasphere.v1 import admin_service_pb2 as pb
from novasphere.v1 import admin_service_pb2_grpc
from server import auth
from server.auth.administration import Administration, TenantInfo, UserInfo
from server.auth.store import Binding

Context = grpc.aio.ServicerContext[Any, Any]
SERVICE = pb.DESCRIPTOR.services_by_name["AdminService"]


class AdminServicer(admin_service_pb2_grpc.AdminServiceServicer):
    def __init__(self, administration: Administration) -> None:
        self._admin = administration

    async def ListTenants(self, request: pb.ListTenantsRequest, context: Context) -> pb.ListTenantsResponse:
        return pb.ListTenantsResponse(tenants=[_tenant(t) for t in self._admin.tenants()])

    async def CreateTenant(self, request: pb.CreateTenantRequest, context: Context) -> pb.Tenant:
        return _tenant(await self._admin.create_tenant(request.tenant_id, list(request.namespaces)))

    async def DeleteTenant(self, request: pb.DeleteTenantRequest, context: Context) -> pb.DeleteTenantResponse:
        released = await self._admin.delete_tenant(auth.current(), request.tenant_id)
        return pb.DeleteTenantResponse(released_namespaces=released)

    async def ListUsers(self, request: pb.ListUsersRequest, context: Context) -> pb.ListUsersResponse:
        return pb.ListUsersResponse(users=[_user(u) for u in self._admin.users()])

    async def CreateUser(self, request: pb.CreateUserRequest, context: Context) -> pb.User:
        return _user(await self._admin.create_user(request.username, request.password, disabled=request.disabled))

    async def UpdateUser(self, request: pb.UpdateUserRequest, context: Context) -> pb.User:
        updated = await self._admin.update_user(
            auth.current(),
            request.username,
            list(request.update_mask.paths),
            password=request.password,
            disabled=request.disabled,
        )
        return _user(updated)

    async def DeleteUser(self, request: pb.DeleteUserRequest, context: Context) -> pb.DeleteUserResponse:
        await self._admin.delete_user(auth.current(), request.username)
        return pb.DeleteUserResponse()

    async def ListRoles(self, request: pb.ListRolesRequest, context: Context) -> pb.ListRolesResponse:
        roles = [pb.Role(name=name, permissions=sorted(p)) for name, p in sorted(self._admin.roles().items())]
        return pb.ListRolesResponse(roles=roles, known_permissions=sorted(auth.KNOWN_PERMISSIONS))

    async def PutRole(self, request: pb.PutRoleRequest, context: Context) -> pb.Role:
        permissions = await self._admin.put_role(request.name, list(request.permissions))
        return pb.Role(name=request.name, permissions=sorted(permissions))

    async def DeleteRole(self, request: pb.DeleteRoleRequest, context: Context) -> pb.DeleteRoleResponse:
        await self._admin.delete_role(request.name)
        return pb.DeleteRoleResponse()

    async def ListRoleBindings(
        self, request: pb.ListRoleBindingsRequest, context: Context
    ) -> pb.ListRoleBindingsResponse:
        bindings = self._admin.bindings(auth.current(), request.tenant_id)
        return pb.ListRoleBindingsResponse(role_bindings=[_binding(b) for b in bindings])

    async def CreateRoleBinding(self, request: pb.CreateRoleBindingRequest, context: Context) -> pb.RoleBinding:
        created = await self._admin.create_binding(
            auth.current(), tenant=request.tenant_id, username=request.username, role=request.role
        )
        return _binding(created)

    async def DeleteRoleBinding(
        self, request: pb.DeleteRoleBindingRequest, context: Context
    ) -> pb.DeleteRoleBindingResponse:
        await self._admin.delete_binding(
            auth.current(), tenant=request.tenant_id, username=request.username, role=request.role
        )
        return pb.DeleteRoleBindingResponse()


def _tenant(tenant: TenantInfo) -> pb.Tenant:
    return pb.Tenant(
        tenant_id=tenant.id,
        namespaces=list(tenant.namespaces),
        default_namespace=tenant.default_namespace,
        members=tenant.members,
    )


def _user(user: UserInfo) -> pb.User:
    return pb.User(username=user.name, disabled=user.disabled, bindings=[_binding(b) for b in user.bindings])


def _binding(binding: Binding) -> pb.RoleBinding:
    return pb.RoleBinding(username=binding.user, tenant_id=binding.tenant, role=binding.role)
