"""ConsoleService over gRPC: requests in, domain calls, messages out."""

from __future__ import annotations

from typing import Any

import grpc

from novasphere.v1 import console_service_pb2 as pb
from novasphere.v1 import console_service_pb2_grpc
from server import auth
from server.console.sessions import CLOSED, CONNECTED, ISSUED, ConsoleRecord, ConsoleSessions, Protocol
from server.transport import edge
from server.transport.convert import set_time

Context = grpc.aio.ServicerContext[Any, Any]
SERVICE = pb.DESCRIPTOR.services_by_name["ConsoleService"]
_PROTOCOLS: dict[int, Protocol] = {pb.CONSOLE_PROTOCOL_UNSPECIFIED: "vnc", pb.VNC: "vnc", pb.SERIAL: "serial"}
_STATES = {ISSUED: pb.ConsoleSession.ISSUED, CONNECTED: pb.ConsoleSession.CONNECTED, CLOSED: pb.ConsoleSession.CLOSED}


class ConsoleServicer(console_service_pb2_grpc.ConsoleServiceServicer):
    def __init__(self, consoles: ConsoleSessions) -> None:
        self._consoles = consoles

    async def CreateConsoleSession(
        self, request: pb.CreateConsoleSessionRequest, context: Context
    ) -> pb.ConsoleSession:
        issued = await self._consoles.create(
            auth.current(),
            namespace=request.namespace,
            name=request.name,
            protocol=_protocol(request.protocol),
            lifetime_seconds=request.lifetime_seconds,
            take_over=request.take_over,
            request_origin=edge.public_origin(context.invocation_metadata() or (), context.peer()),
        )
        message = session_to_pb(issued.record)
        message.ticket, message.console_url = issued.ticket, issued.console_url
        return message

    async def GetConsoleStatus(self, request: pb.GetConsoleStatusRequest, context: Context) -> pb.ConsoleSession:
        protocol = _protocol(request.protocol)
        record = await self._consoles.status(
            auth.current(), namespace=request.namespace, name=request.name, protocol=protocol
        )
        if record is None:
            return pb.ConsoleSession(
                name=request.name, namespace=request.namespace, protocol=request.protocol or pb.VNC
            )
        return session_to_pb(record)

    async def DisconnectConsole(self, request: pb.DisconnectConsoleRequest, context: Context) -> pb.ConsoleSession:
        record = await self._consoles.disconnect(
            auth.current(),
            namespace=request.namespace,
            name=request.name,
            protocol=_protocol(request.protocol),
            session_id=request.session_id,
            reason=request.reason,
        )
        return session_to_pb(record)

    async def ListConsoleSessions(
        self, request: pb.ListConsoleSessionsRequest, context: Context
    ) -> pb.ListConsoleSessionsResponse:
        records = await self._consoles.list(auth.current(), namespace=request.namespace, name=request.name)
        return pb.ListConsoleSessionsResponse(sessions=[session_to_pb(r) for r in records])


def _protocol(value: int) -> Protocol:
    return _PROTOCOLS.get(value, "vnc")


def session_to_pb(record: ConsoleRecord) -> pb.ConsoleSession:
    message = pb.ConsoleSession(
        session_id=record.id,
        name=record.name,
        namespace=record.namespace,
        protocol=pb.SERIAL if record.protocol == "serial" else pb.VNC,
        state=_STATES.get(record.phase, pb.ConsoleSession.STATE_UNSPECIFIED),
        connected=record.phase == CONNECTED,
        user=record.user,
        client_ip=record.client_ip,
        close_code=record.close_code,
        close_reason=record.close_reason,
        took_over=record.takes_over,
        bytes_to_client=record.bytes_to_client,
        bytes_from_client=record.bytes_from_client,
    )
    set_time(message.ticket_expire_time, record.ticket_expires)
    set_time(message.expire_time, record.expires)
    set_time(message.create_time, record.created)
    set_time(message.connect_time, record.connect_time)
    set_time(message.close_time, record.close_time)
    return message
