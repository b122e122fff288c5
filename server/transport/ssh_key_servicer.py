"""SshKeyService over gRPC: requests in, domain calls, messages out."""

from __future__ import annotations

from typing import Any

import grpc

from novasphere.v1 import ssh_key_service_pb2, ssh_key_service_pb2_grpc
from server import auth
from server.ssh_keys import SshKey, SshKeys
from server.transport.convert import set_time

Context = grpc.aio.ServicerContext[Any, Any]
SERVICE = ssh_key_service_pb2.DESCRIPTOR.services_by_name["SshKeyService"]


class SshKeyServicer(ssh_key_service_pb2_grpc.SshKeyServiceServicer):
    def __init__(self, keys: SshKeys) -> None:
        self._keys = keys

    async def CreateSshKey(
        self, request: ssh_key_service_pb2.CreateSshKeyRequest, context: Context
    ) -> ssh_key_service_pb2.SshKey:
        created = await self._keys.create(
            auth.current(), namespace=request.namespace, name=request.name, public_key=request.public_key
        )
        return _ssh_key(created)

    async def ListSshKeys(
        self, request: ssh_key_service_pb2.ListSshKeysRequest, context: Context
    ) -> ssh_key_service_pb2.ListSshKeysResponse:
        found = await self._keys.list(auth.current(), namespace=request.namespace)
        return ssh_key_service_pb2.ListSshKeysResponse(ssh_keys=[_ssh_key(key) for key in found])

    async def DeleteSshKey(
        self, request: ssh_key_service_pb2.DeleteSshKeyRequest, context: Context
    ) -> ssh_key_service_pb2.DeleteSshKeyResponse:
        await self._keys.delete(auth.current(), namespace=request.namespace, name=request.name)
        return ssh_key_service_pb2.DeleteSshKeyResponse()


def _ssh_key(key: SshKey) -> ssh_key_service_pb2.SshKey:
    message = ssh_key_service_pb2.SshKey(
        name=key.name,
        namespace=key.namespace,
        public_key=key.public_key,
        fingerprints=key.fingerprints,
        created_by=key.created_by,
    )
    set_time(message.create_time, key.created)
    return message
