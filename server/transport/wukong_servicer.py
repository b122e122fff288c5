"""WukongService over gRPC: requests in, domain calls, messages out."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from google.protobuf import message_factory

from novasphere.v1 import task_pb2, wukong_pb2, wukong_service_pb2
from server import auth, errors
from server.access.cache import AccessCache
from server.auth import Caller
from server.tasks.model import Operation
from server.tasks.operations import BatchRequest, OperationRequest, Operations
from server.tasks.queries import TaskQueries
from server.transport import convert, task_convert
from server.transport import errors as transport_errors
from server.transport.task_convert import task_to_pb
from server.wukongs import actions
from server.wukongs.cache import ChangeType, WukongState
from server.wukongs.commands import WukongCommands
from server.wukongs.detail import Detail
from server.wukongs.queries import ListRequest, WukongQueries

Context = grpc.aio.ServicerContext[Any, Any]
SERVICE = wukong_service_pb2.DESCRIPTOR.services_by_name["WukongService"]
# Methods whose behaviour yields already-serialised messages (encoded once for many streams).
PRE_SERIALISED = frozenset({"WatchWukong"})
# Tasks shown in a Wukong's detail.
RECENT_TASKS = 10


class WukongServicer:
    def __init__(
        self,
        *,
        queries: WukongQueries,
        commands: WukongCommands,
        operations: Operations,
        tasks: TaskQueries,
        access: AccessCache,
    ) -> None:
        self._queries = queries
        self._commands = commands
        self._operations = operations
        self._tasks = tasks
        self._access = access

    async def ListWukongs(
        self, request: wukong_service_pb2.ListWukongsRequest, context: Context
    ) -> wukong_service_pb2.ListWukongsResponse:
        caller = auth.current()
        page = await self._queries.list(
            caller,
            ListRequest(
                namespace=request.namespace,
                page_size=request.page_size,
                page_token=request.page_token,
                page=request.page,
                status=request.status,
                name_like=request.name_like,
                label_selector=request.label_selector,
                sort_by=request.sort_by,
                sort_order=request.sort_order,
                cursor=request.cursor,
            ),
        )
        return wukong_service_pb2.ListWukongsResponse(
            wukongs=[self._message(state, caller) for state in page.wukongs],
            next_page_token=page.next_page_token,
            total=page.total,
            page=page.page,
            pages=page.pages,
            page_size=page.page_size,
            cursor=str(page.cursor),
        )

    async def GetWukong(self, request: wukong_service_pb2.GetWukongRequest, context: Context) -> wukong_pb2.Wukong:
        caller = auth.current()
        state, detail = await self._queries.get_with_detail(
            caller,
            namespace=request.namespace,
            name=request.name,
            vm_id=request.vm_id,
            cursor=request.cursor,
            view=convert.view_of(request.view),
        )
        message = self._message(state, caller, detail)
        if detail is not None:
            message.detail.recent_tasks.extend(
                task_to_pb(task) for task in self._tasks.of_wukong(state.namespace, state.name)[:RECENT_TASKS]
            )
        return message

    async def CreateWukong(
        self, request: wukong_service_pb2.CreateWukongRequest, context: Context
    ) -> wukong_pb2.Wukong:
        caller = auth.current()
        state = await self._commands.create(
            caller,
            namespace=request.namespace or request.wukong.namespace,
            wukong=convert.wukong_input(request.wukong),
            request_id=request.request_id,
            validate_only=request.validate_only,
        )
        return self._message(state, caller)

    async def UpdateWukong(
        self, request: wukong_service_pb2.UpdateWukongRequest, context: Context
    ) -> wukong_pb2.Wukong:
        caller = auth.current()
        state = await self._commands.update(
            caller,
            namespace=request.wukong.namespace,
            wukong=convert.wukong_input(request.wukong),
            etag=request.wukong.etag,
            update_mask=list(request.update_mask.paths),
            validate_only=request.validate_only,
        )
        return self._message(state, caller)

    async def StartWukong(self, request: wukong_service_pb2.StartWukongRequest, context: Context) -> task_pb2.Task:
        return await self._operate(Operation.START, request, context)

    async def StopWukong(self, request: wukong_service_pb2.StopWukongRequest, context: Context) -> task_pb2.Task:
        return await self._operate(Operation.STOP, request, context, force=request.force)

    async def RestartWukong(self, request: wukong_service_pb2.RestartWukongRequest, context: Context) -> task_pb2.Task:
        return await self._operate(Operation.RESTART, request, context, force=request.force)

    async def PauseWukong(self, request: wukong_service_pb2.PauseWukongRequest, context: Context) -> task_pb2.Task:
        return await self._operate(Operation.PAUSE, request, context)

    async def ResumeWukong(self, request: wukong_service_pb2.ResumeWukongRequest, context: Context) -> task_pb2.Task:
        return await self._operate(Operation.RESUME, request, context)

    async def DeleteWukong(self, request: wukong_service_pb2.DeleteWukongRequest, context: Context) -> task_pb2.Task:
        return await self._operate(Operation.DELETE, request, context, delete_disks=request.delete_disks)

    async def BatchWukongOperation(
        self, request: wukong_service_pb2.BatchWukongOperationRequest, context: Context
    ) -> task_pb2.Task:
        operation = task_convert.operation_of(request.operation)
        if operation is None:
            raise errors.InvalidArgument.field(
                "operation", "is required: START, STOP, RESTART, PAUSE, RESUME or DELETE"
            )
        task = await self._operations.batch(
            auth.current(),
            BatchRequest(
                operation=operation,
                namespace=request.namespace,
                names=tuple(request.names),
                label_selector=request.label_selector,
                request_id=request.request_id,
                validate_only=request.validate_only,
                force=request.force,
                delete_disks=request.delete_disks,
            ),
        )
        return task_to_pb(task, self._tasks.children(task))

    async def _operate(
        self, operation: Operation, request: Any, context: Context, *, force: bool = False, delete_disks: bool = False
    ) -> task_pb2.Task:
        task = await self._operations.submit(
            auth.current(),
            OperationRequest(
                operation=operation,
                namespace=request.namespace,
                name=request.name,
                vm_id=request.vm_id,
                request_id=request.request_id,
                validate_only=request.validate_only,
                force=force,
                delete_disks=delete_disks,
            ),
        )
        return task_to_pb(task)

    def _message(self, state: WukongState, caller: Caller, detail: Detail | None = None) -> wukong_pb2.Wukong:
        return convert.wukong_to_pb(
            state, self._available(state, caller), detail, self._access.of_wukong(state.namespace, state.name)
        )

    def _event(self, change_type: ChangeType, state: WukongState, cursor: int, caller: Caller) -> bytes:
        exposed = self._access.of_wukong(state.namespace, state.name)
        return convert.event_to_pb(change_type, state, cursor, self._available(state, caller), exposed)

    def _available(self, state: WukongState, caller: Caller) -> tuple[actions.Action, ...]:
        busy = any(task.operation is not Operation.BATCH for task in self._tasks.open_of(state.key))
        return actions.available(state.status, caller, busy=busy)

    async def WatchWukong(
        self, request: wukong_service_pb2.WatchWukongRequest, context: Context
    ) -> AsyncIterator[bytes]:
        caller = auth.current()
        events = await self._queries.watch(
            caller,
            name=request.name,
            namespace=request.namespace,
            status=request.status,
            name_like=request.name_like,
            label_selector=request.label_selector,
            cursor=request.cursor,
            encoder=_Encoder(caller, self._event),
            shown=request.names,
        )
        async for payload in events:
            assert isinstance(payload, bytes)
            yield payload


class _Encoder:
    """WatchWukong's events as serialised `WukongEvent`s, with the actions this caller may take and the VM's exposed
    ports."""

    def __init__(self, caller: Caller, event: Callable[[ChangeType, WukongState, int, Caller], bytes]) -> None:
        self._caller = caller
        self._event = event

    def change(self, change_type: ChangeType, state: WukongState, cursor: int) -> object:
        return self._event(change_type, state, cursor, self._caller)

    def bookmark(self, cursor: int) -> object:
        return wukong_pb2.WukongEvent(type=wukong_pb2.WukongEvent.BOOKMARK, cursor=str(cursor)).SerializeToString()

    def error(self, error: errors.NovaError) -> object:
        _, status = transport_errors.status_of(error)
        return wukong_pb2.WukongEvent(type=wukong_pb2.WukongEvent.ERROR, error=status).SerializeToString()


def handler(servicer: WukongServicer) -> grpc.GenericRpcHandler:
    """The service's handlers, built from its descriptor as the generated `add_..._to_server` would, except that
    `PRE_SERIALISED` methods send the bytes their behaviour yields as they are."""
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}
    for method in SERVICE.methods:
        request_class = message_factory.GetMessageClass(method.input_type)
        response_class = message_factory.GetMessageClass(method.output_type)
        serializer: Callable[[Any], bytes] = (
            _as_is if method.name in PRE_SERIALISED else response_class.SerializeToString
        )
        factory = (
            grpc.unary_stream_rpc_method_handler if method.server_streaming else grpc.unary_unary_rpc_method_handler
        )
        handlers[method.name] = factory(
            getattr(servicer, method.name),
            request_deserializer=request_class.FromString,
            response_serializer=serializer,
        )
    return grpc.method_handlers_generic_handler(SERVICE.full_name, handlers)


def _as_is(payload: bytes) -> bytes:
    return payload
