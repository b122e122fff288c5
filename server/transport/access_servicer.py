"""AccessService over gRPC: requests in, domain calls, messages out."""

from __future__ import annotations

from typing import Any

import grpc

from novasphere.v1 import access_service_pb2, access_service_pb2_grpc, wukong_pb2
from server import auth
from server.access.commands import AccessCommands, PortInput
from server.transport.convert import access_service_to_pb

Context = grpc.aio.ServicerContext[Any, Any]
SERVICE = access_service_pb2.DESCRIPTOR.services_by_name["AccessService"]


class AccessServicer(access_service_pb2_grpc.AccessServiceServicer):
    def __init__(self, commands: AccessCommands) -> None:
        self._commands = commands

    async def CreateAccessService(
        self, request: access_service_pb2.CreateAccessServiceRequest, context: Context
    ) -> wukong_pb2.AccessServiceInfo:
        created = await self._commands.create(
            auth.current(),
            namespace=request.namespace,
            name=request.name,
            service_type=request.service_type,
            service_name=request.service_name,
            ports=[
                PortInput(
                    port=port.port,
                    target_port=port.target_port,
                    node_port=port.node_port,
                    protocol=port.protocol,
                    name=port.name,
                )
                for port in request.ports
            ],
        )
        return access_service_to_pb(created)

    async def ListAccessServices(
        self, request: access_service_pb2.ListAccessServicesRequest, context: Context
    ) -> access_service_pb2.ListAccessServicesResponse:
        found = await self._commands.list(auth.current(), namespace=request.namespace, name=request.name)
        return access_service_pb2.ListAccessServicesResponse(services=[access_service_to_pb(s) for s in found])

    async def DeleteAccessService(
        self, request: access_service_pb2.DeleteAccessServiceRequest, context: Context
    ) -> access_service_pb2.DeleteAccessServiceResponse:
        await self._commands.delete(
            auth.current(), namespace=request.namespace, name=request.name, service_name=request.service_name
        )
        return access_service_pb2.DeleteAccessServiceResponse()
