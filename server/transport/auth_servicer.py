"""AuthService over gRPC: requests in, domain calls, messages out."""

from __future__ import annotations

from typing import Any

import grpc

from novasphere.v1 import auth_service_pb2, auth_service_pb2_grpc
from server import auth
from server.auth.accounts import Accounts, Grant
from server.transport.convert import set_time
from server.transport.interceptors import client_type

Context = grpc.aio.ServicerContext[Any, Any]
SERVICE = auth_service_pb2.DESCRIPTOR.services_by_name["AuthService"]


class AuthServicer(auth_service_pb2_grpc.AuthServiceServicer):
    def __init__(self, accounts: Accounts) -> None:
        self._accounts = accounts

    async def Login(self, request: auth_service_pb2.LoginRequest, context: Context) -> auth_service_pb2.LoginResponse:
        grant = await self._accounts.login(
            username=request.username,
            password=request.password,
            tenant=request.tenant_id,
            client_type=_client_type(context),
        )
        return _grant(grant)

    async def Refresh(
        self, request: auth_service_pb2.RefreshRequest, context: Context
    ) -> auth_service_pb2.LoginResponse:
        grant = await self._accounts.refresh(refresh_token=request.refresh_token, client_type=_client_type(context))
        return _grant(grant)

    async def Logout(
        self, request: auth_service_pb2.LogoutRequest, context: Context
    ) -> auth_service_pb2.LogoutResponse:
        await self._accounts.logout(auth.current())
        return auth_service_pb2.LogoutResponse()

    async def Me(self, request: auth_service_pb2.MeRequest, context: Context) -> auth_service_pb2.Identity:
        caller = auth.current()
        return _identity(caller, self._accounts.tenants_of(caller))

    async def CheckPermission(
        self, request: auth_service_pb2.CheckPermissionRequest, context: Context
    ) -> auth_service_pb2.CheckPermissionResponse:
        permission, allowed = self._accounts.check(
            auth.current(), resource_type=request.resource_type, operation=request.operation
        )
        return auth_service_pb2.CheckPermissionResponse(has_permission=allowed, permission=permission)


def _client_type(context: Context) -> str:
    return client_type([(key, value) for key, value in context.invocation_metadata() or ()])


def _identity(caller: auth.Caller, tenants: list[str]) -> auth_service_pb2.Identity:
    return auth_service_pb2.Identity(
        username=caller.user,
        tenant_id=caller.tenant,
        tenants=tenants,
        permissions=sorted(caller.permissions),
        client_type=caller.client_type,
    )


def _grant(grant: Grant) -> auth_service_pb2.LoginResponse:
    response = auth_service_pb2.LoginResponse(
        access_token=grant.access_token,
        token_type="Bearer",  # noqa: S106 (the scheme, not a secret)
        refresh_token=grant.refresh_token,
        identity=_identity(grant.caller, grant.tenants),
    )
    set_time(response.expire_time, grant.expires)
    set_time(response.refresh_expire_time, grant.session_expires)
    return response
