"""AuthService over gRPC: requests in, domain calls, messages out."""

from __future__ import annotations

import datetime
from importlib import metadata
from typing import Any

import grpc

from novasphere.v1 import auth_service_pb2, auth_service_pb2_grpc
from server import auth, timestamps
from server.auth.accounts import Accounts, Grant
from server.auth.api_keys import ApiKeys
from server.auth.store import ApiKeyRecord, Session
from server.transport import edge, refresh_cookie
from server.transport.convert import set_time
from server.transport.interceptors import client_type, note_caller

Context = grpc.aio.ServicerContext[Any, Any]
SERVICE = auth_service_pb2.DESCRIPTOR.services_by_name["AuthService"]
SERVER_VERSION = metadata.version("novasphere-api")


class AuthServicer(auth_service_pb2_grpc.AuthServiceServicer):
    def __init__(self, accounts: Accounts, api_keys: ApiKeys) -> None:
        self._accounts = accounts
        self._api_keys = api_keys

    async def Login(self, request: auth_service_pb2.LoginRequest, context: Context) -> auth_service_pb2.LoginResponse:
        grant = await self._accounts.login(
            username=request.username,
            password=request.password,
            tenant=request.tenant_id,
            client_type=_client_type(context),
            address=_address(context),
        )
        return await _grant_to(context, grant, as_cookie=request.refresh_token_cookie)

    async def Refresh(
        self, request: auth_service_pb2.RefreshRequest, context: Context
    ) -> auth_service_pb2.LoginResponse:
        from_cookie = "" if request.refresh_token else refresh_cookie.from_metadata(context.invocation_metadata() or ())
        grant = await self._accounts.refresh(
            refresh_token=request.refresh_token or from_cookie,
            client_type=_client_type(context),
            address=_address(context),
        )
        return await _grant_to(context, grant, as_cookie=bool(from_cookie))

    async def Logout(
        self, request: auth_service_pb2.LogoutRequest, context: Context
    ) -> auth_service_pb2.LogoutResponse:
        await self._accounts.logout(auth.current())
        await context.send_initial_metadata(refresh_cookie.clear_cookie())
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

    async def CreateApiKey(
        self, request: auth_service_pb2.CreateApiKeyRequest, context: Context
    ) -> auth_service_pb2.ApiKey:
        expires = request.expire_time.ToDatetime(datetime.UTC) if request.HasField("expire_time") else None
        record, key = await self._api_keys.create(
            auth.current(), name=request.name, permissions=list(request.permissions), expires=expires
        )
        message = _api_key(record)
        message.key = key
        return message

    async def ListApiKeys(
        self, request: auth_service_pb2.ListApiKeysRequest, context: Context
    ) -> auth_service_pb2.ListApiKeysResponse:
        return auth_service_pb2.ListApiKeysResponse(api_keys=[_api_key(r) for r in self._api_keys.list(auth.current())])

    async def RevokeApiKey(
        self, request: auth_service_pb2.RevokeApiKeyRequest, context: Context
    ) -> auth_service_pb2.RevokeApiKeyResponse:
        await self._api_keys.revoke(auth.current(), request.id)
        return auth_service_pb2.RevokeApiKeyResponse()

    async def ChangePassword(
        self, request: auth_service_pb2.ChangePasswordRequest, context: Context
    ) -> auth_service_pb2.ChangePasswordResponse:
        ended = await self._accounts.change_password(
            auth.current(), current=request.current_password, new=request.new_password
        )
        return auth_service_pb2.ChangePasswordResponse(sessions_ended=ended)

    async def ListSessions(
        self, request: auth_service_pb2.ListSessionsRequest, context: Context
    ) -> auth_service_pb2.ListSessionsResponse:
        caller = auth.current()
        return auth_service_pb2.ListSessionsResponse(
            sessions=[_session(s, current=s.id == caller.session) for s in self._accounts.sessions(caller)]
        )

    async def RevokeSession(
        self, request: auth_service_pb2.RevokeSessionRequest, context: Context
    ) -> auth_service_pb2.RevokeSessionResponse:
        await self._accounts.revoke_own_session(auth.current(), request.id)
        return auth_service_pb2.RevokeSessionResponse()


def _session(session: Session, *, current: bool) -> auth_service_pb2.LoginSession:
    message = auth_service_pb2.LoginSession(
        id=session.id,
        tenant_id=session.tenant,
        client_type=session.client_type,
        client_address=session.client_address,
        current=current,
    )
    set_time(message.create_time, session.created)
    set_time(message.last_use_time, session.last_used)
    set_time(message.expire_time, session.expires)
    return message


def _api_key(record: ApiKeyRecord) -> auth_service_pb2.ApiKey:
    message = auth_service_pb2.ApiKey(
        id=record.id,
        name=record.name,
        username=record.user,
        tenant_id=record.tenant,
        permissions=sorted(record.permissions),
    )
    set_time(message.create_time, record.created)
    set_time(message.expire_time, record.expires)
    return message


def _address(context: Context) -> str:
    return edge.client_address(context.invocation_metadata() or (), context.peer())


def _client_type(context: Context) -> str:
    return client_type([(key, value) for key, value in context.invocation_metadata() or ()])


def _identity(caller: auth.Caller, tenants: list[str]) -> auth_service_pb2.Identity:
    return auth_service_pb2.Identity(
        username=caller.user,
        tenant_id=caller.tenant,
        tenants=tenants,
        permissions=sorted(caller.permissions),
        client_type=caller.client_type,
        server_version=SERVER_VERSION,
    )


async def _grant_to(context: Context, grant: Grant, *, as_cookie: bool) -> auth_service_pb2.LoginResponse:
    """The response to a login or refresh; `as_cookie`: the refresh token goes in a cookie, not the response."""
    note_caller(grant.caller.user, grant.caller.tenant)
    response = auth_service_pb2.LoginResponse(
        access_token=grant.access_token,
        token_type="Bearer",  # noqa: S106 (the scheme, not a secret)
        refresh_token="" if as_cookie else grant.refresh_token,
        identity=_identity(grant.caller, grant.tenants),
    )
    set_time(response.expire_time, grant.expires)
    set_time(response.refresh_expire_time, grant.session_expires)
    if as_cookie:
        await context.send_initial_metadata(
            refresh_cookie.set_cookie(grant.refresh_token, grant.session_expires, timestamps.now())
        )
    return response
