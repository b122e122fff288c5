"""TaskService over gRPC: requests in, domain calls, messages out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from novasphere.v1 import task_pb2, task_service_pb2, task_service_pb2_grpc
from server import auth
from server.tasks.operations import Operations
from server.tasks.queries import TaskListRequest, TaskQueries
from server.transport.task_convert import task_to_pb

Context = grpc.aio.ServicerContext[Any, Any]
SERVICE = task_service_pb2.DESCRIPTOR.services_by_name["TaskService"]


class TaskServicer(task_service_pb2_grpc.TaskServiceServicer):
    def __init__(self, *, queries: TaskQueries, operations: Operations) -> None:
        self._queries = queries
        self._operations = operations

    async def GetTask(self, request: task_service_pb2.GetTaskRequest, context: Context) -> task_pb2.Task:
        task = await self._queries.get(auth.current(), request.id)
        return task_to_pb(task, self._queries.children(task))

    async def ListTasks(
        self, request: task_service_pb2.ListTasksRequest, context: Context
    ) -> task_service_pb2.ListTasksResponse:
        page = await self._queries.list(
            auth.current(),
            TaskListRequest(
                namespace=request.namespace,
                name=request.name,
                vm_id=request.vm_id,
                state=request.state,
                page_size=request.page_size,
                page_token=request.page_token,
                parent_id=request.parent_id,
            ),
        )
        return task_service_pb2.ListTasksResponse(
            tasks=[task_to_pb(task, self._queries.children(task)) for task in page.tasks],
            next_page_token=page.next_page_token,
            total=page.total,
        )

    async def WatchTask(
        self, request: task_service_pb2.WatchTaskRequest, context: Context
    ) -> AsyncIterator[task_pb2.Task]:
        async for task in self._queries.watch(auth.current(), request.id):
            yield task_to_pb(task, self._queries.children(task))

    async def WatchTasks(
        self, request: task_service_pb2.WatchTasksRequest, context: Context
    ) -> AsyncIterator[task_service_pb2.WatchTasksResponse]:
        async for tasks in self._queries.watch_own(auth.current(), request.namespace):
            yield task_service_pb2.WatchTasksResponse(
                tasks=[task_to_pb(task, self._queries.children(task)) for task in tasks]
            )

    async def CancelTask(self, request: task_service_pb2.CancelTaskRequest, context: Context) -> task_pb2.Task:
        caller = auth.current()
        task = await self._operations.cancel(caller, await self._queries.get(caller, request.id))
        return task_to_pb(task, self._queries.children(task))
