"""Tasks: following operations to their end (one WatchTasks stream for all of them, a progress bar each on a
terminal), and `vmctl tasks list|get|watch|cancel`."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any

import click

from vmctl import errors
from vmctl.cli import State, namespaced, output_option, pass_state

ENDED_STATES = ("SUCCEEDED", "FAILED", "CANCELLED")


def register(cli: click.Group) -> None:
    cli.add_command(tasks)


def state_name(task: Any) -> str:
    from novasphere.v1 import task_pb2

    return str(task_pb2.TaskState.Name(task.state))


def ended(task: Any) -> bool:
    return state_name(task) in ENDED_STATES


def describe_target(task: Any) -> str:
    from novasphere.v1 import task_pb2

    operation = task_pb2.Task.Operation.Name(task.operation).lower()
    if task.batch.total:
        inner = task_pb2.Task.Operation.Name(task.batch_operation).lower()
        return f"{inner} {task.batch.total} VMs in {task.namespace or 'the tenant'}"
    return f"{operation} {task.namespace}/{task.name}"


def outcome(task: Any) -> str:
    detail = task.error.message if task.error.message else (task.result or task.step)
    if task.batch.total:
        b = task.batch
        detail = f"{b.succeeded} succeeded, {b.failed} failed, {b.cancelled} cancelled of {b.total}"
    return f"{state_name(task).lower()}" + (f" ({detail})" if detail else "")


def follow(session: Any, started: Sequence[Any], *, timeout: float) -> list[Any]:
    """Follows `started` to their end on one WatchTasks stream; returns them as they ended. Progress bars on a
    terminal (stderr); a line per task on stdout as it ends either way."""
    from novasphere.v1 import task_service_pb2
    from novasphere.v1.task_service_pb2_grpc import TaskServiceStub

    stub = TaskServiceStub(session.channel)
    latest = {task.id: task for task in started}
    reported: set[str] = set()
    bars = _Bars(latest.values()) if sys.stderr.isatty() else None
    deadline = time.monotonic() + timeout

    def report() -> None:
        for task in latest.values():
            if ended(task) and task.id not in reported:
                reported.add(task.id)
                line = f"task/{task.id} {describe_target(task)}: {outcome(task)}"
                (bars.console.print if bars else click.echo)(line)

    try:
        report()
        first = True
        stream = session.stream(
            stub.WatchTasks, task_service_pb2.WatchTasksRequest(), timeout=max(deadline - time.monotonic(), 1)
        )
        for message in stream:
            if first:  # anything that ended before the stream began is read once
                first = False
                sent = {task.id for task in message.tasks}
                for task_id, task in list(latest.items()):
                    if not ended(task) and task_id not in sent:
                        latest[task_id] = session.call(stub.GetTask, task_service_pb2.GetTaskRequest(id=task_id))
            for task in message.tasks:
                if task.id in latest:
                    latest[task.id] = task
            if bars:
                bars.update(latest.values())
            report()
            if all(ended(task) for task in latest.values()):
                break
    except errors.VmctlError as error:
        if time.monotonic() < deadline:
            raise
        waiting = [task_id for task_id, task in latest.items() if not ended(task)]
        raise errors.VmctlError(
            f"timed out after {timeout:.0f} s waiting for {len(waiting)} task(s), which go on: "
            + ", ".join(f"vmctl tasks watch {task_id}" for task_id in waiting),
            errors.FAILED,
        ) from error
    finally:
        if bars:
            bars.stop()
    return list(latest.values())


class _Bars:
    """A rich progress bar per task, on stderr."""

    def __init__(self, started: Any) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

        self.console = Console(stderr=True)
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[step]}"),
            console=self.console,
        )
        self._bars = {
            task.id: self._progress.add_task(describe_target(task), total=100, step=task.step) for task in started
        }
        self._progress.start()

    def update(self, tasks: Any) -> None:
        for task in tasks:
            self._progress.update(self._bars[task.id], completed=task.progress, step=outcome(task) or task.step)

    def stop(self) -> None:
        self._progress.stop()


def exit_for(finished: Sequence[Any]) -> None:
    """Exit code 1 when any task did not succeed."""
    if any(state_name(task) != "SUCCEEDED" for task in finished):
        sys.exit(errors.FAILED)


TASK_COLUMNS = (
    ("ID", lambda t: t.id),
    ("OPERATION", lambda t: describe_target(t)),
    ("STATE", lambda t: state_name(t)),
    ("PROGRESS", lambda t: f"{t.progress}%"),
    ("STEP", lambda t: t.step),
)


def _age(task: Any) -> str:
    from vmctl.output import age

    return age(task.create_time)


@click.group()
def tasks() -> None:
    """VM operations: list them, follow one, cancel a pending one."""


@tasks.command("list")
@namespaced
@click.option("--vm", default="", help="Only this VM's tasks.")
@click.option("--state", "state_filter", default="", help="e.g. pending,running")
@click.option("--limit", default=50, show_default=True)
@output_option()
@pass_state
def list_tasks(state: State, namespace: str, vm: str, state_filter: str, limit: int, output: str) -> None:
    """The tenant's tasks, newest first."""
    from novasphere.v1 import task_service_pb2
    from novasphere.v1.task_service_pb2_grpc import TaskServiceStub
    from vmctl.output import check_format, emit

    output = check_format(output)
    session = state.session(namespace)
    found = session.call(
        TaskServiceStub(session.channel).ListTasks,
        task_service_pb2.ListTasksRequest(
            namespace=session.namespace if vm else namespace, name=vm, state=state_filter, page_size=limit
        ),
    )
    emit(
        list(found.tasks),
        output,
        columns=TASK_COLUMNS,
        wide=(("BY", lambda t: t.requested_by), ("AGE", _age), ("RESULT", lambda t: outcome(t))),
        kind="task",
        name=lambda t: t.id,
    )


@tasks.command("get")
@click.argument("task_id")
@output_option()
@pass_state
def get_task(state: State, task_id: str, output: str) -> None:
    from novasphere.v1 import task_service_pb2
    from novasphere.v1.task_service_pb2_grpc import TaskServiceStub
    from vmctl.output import check_format, emit

    session = state.session()
    task = session.call(TaskServiceStub(session.channel).GetTask, task_service_pb2.GetTaskRequest(id=task_id))
    emit([task], check_format(output), columns=TASK_COLUMNS, kind="task", single=True, name=lambda t: t.id)


@tasks.command("watch")
@click.argument("task_id")
@click.option("--timeout", default=600.0, show_default=True, help="Seconds to wait for its end.")
@pass_state
def watch_task(state: State, task_id: str, timeout: float) -> None:
    """Follow a task to its end (exit code 1 if it does not succeed)."""
    from novasphere.v1 import task_service_pb2
    from novasphere.v1.task_service_pb2_grpc import TaskServiceStub

    session = state.session()
    task = session.call(TaskServiceStub(session.channel).GetTask, task_service_pb2.GetTaskRequest(id=task_id))
    exit_for(follow(session, [task], timeout=timeout))


@tasks.command("cancel")
@click.argument("task_id")
@pass_state
def cancel_task(state: State, task_id: str) -> None:
    """Cancel a task whose action was not sent yet (or a batch's pending children)."""
    from novasphere.v1 import task_service_pb2
    from novasphere.v1.task_service_pb2_grpc import TaskServiceStub

    session = state.session()
    task = session.call(TaskServiceStub(session.channel).CancelTask, task_service_pb2.CancelTaskRequest(id=task_id))
    click.echo(f"task/{task.id} {describe_target(task)}: {outcome(task)}")
