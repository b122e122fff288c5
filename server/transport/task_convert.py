"""Tasks to `novasphere.v1.Task` messages; a failed task's reason to the gRPC code of its `error`."""

from __future__ import annotations

from collections.abc import Sequence

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

from novasphere.v1 import task_pb2
from server import errors
from server.tasks.model import Delivery, Operation, State, Task
from server.transport.convert import set_time

_OPERATION = {operation: task_pb2.Task.Operation.Value(operation.name) for operation in Operation}
_STATE = {state: task_pb2.TaskState.Value(state.name) for state in State}
# A failed task's reason → the status code of its `error` (anything else: ABORTED, the VM did not get there).
_ERROR_CODE = {
    errors.Reason.INVALID_TRANSITION: grpc.StatusCode.FAILED_PRECONDITION,
    errors.Reason.TASK_IN_PROGRESS: grpc.StatusCode.FAILED_PRECONDITION,
    errors.Reason.WUKONG_NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    "WUKONG_DELETED": grpc.StatusCode.NOT_FOUND,
    "ACTION_REJECTED": grpc.StatusCode.FAILED_PRECONDITION,
    "TASK_TIMED_OUT": grpc.StatusCode.DEADLINE_EXCEEDED,
    "CANCELLED": grpc.StatusCode.CANCELLED,
}


def operation_of(value: int) -> Operation | None:
    return next((operation for operation, number in _OPERATION.items() if number == value), None)


def task_to_pb(task: Task, children: Sequence[Task] = ()) -> task_pb2.Task:
    # A validate-only answer's task was never written: it has no id, creation time or child ids of its own.
    written = bool(task.resource_version)
    message = task_pb2.Task(
        id=task.id if written else "",
        operation=_OPERATION[task.operation],
        namespace=task.namespace,
        name=task.name,
        vm_id=task.uid,
        state=_STATE[task.state],
        progress=task.progress,
        step=task.step,
        requested_by=task.user,
        result=task.result,
        force=task.force,
        delete_disks=task.delete_disks,
        request_id=task.request_id,
        origin_request_id=task.origin_request_id,
        parent_id=task.parent,
        cancellable=written and task.state is State.PENDING and task.delivery is Delivery.NONE,
    )
    set_time(message.create_time, task.created if written else None)
    set_time(message.start_time, task.start_time)
    set_time(message.end_time, task.completion_time)
    if task.state in (State.FAILED, State.CANCELLED):
        code = _ERROR_CODE.get(task.reason, grpc.StatusCode.ABORTED)
        detail = any_pb2.Any()
        detail.Pack(error_details_pb2.ErrorInfo(reason=task.reason or "TASK_FAILED", domain=errors.DOMAIN))
        message.error.CopyFrom(status_pb2.Status(code=code.value[0], message=task.message, details=[detail]))
    if task.operation is Operation.BATCH:
        batch_operation = task.batch_operation
        if batch_operation is not None:
            message.batch_operation = _OPERATION[batch_operation]
        counts = dict.fromkeys(State, 0)
        for child in children:
            counts[child.state] += 1
        message.batch.CopyFrom(
            task_pb2.BatchSummary(
                total=len(task.batch_targets),
                pending=counts[State.PENDING] + len(task.batch_targets) - len(children),
                running=counts[State.RUNNING],
                succeeded=counts[State.SUCCEEDED],
                failed=counts[State.FAILED],
                cancelled=counts[State.CANCELLED],
                child_ids=[target.child for target in task.batch_targets] if written else [],
            )
        )
        message.cancellable = task.open and any(
            c.state is State.PENDING and c.delivery is Delivery.NONE for c in children
        )
    return message
