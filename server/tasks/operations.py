"""Accepting VM operations: check, write the Task, send its action, return the Task at once.

The order is what makes a crash lose nothing:
1. the Task is written (`Pending`): from here on the operation exists, and a retry with the same `request_id` finds
   it (its name is derived from the tenant and the key, so kube-apiserver itself refuses a second one);
2. `Sending` is recorded, guarded by the Task's resourceVersion, so exactly one replica (this one, the leader taking
   over, or a CancelTask) takes the step;
3. the action is sent;
4. `Sent` is recorded.
A replica dying between any two steps leaves a Task the leader finishes (reconciler.py): it sends an unsent action,
and for one recorded `Sending` first checks the cluster for its effect, so an action is never sent twice.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from server import errors, logs, names, timestamps, tracing
from server.auth import Caller
from server.failpoints import Failpoints
from server.kube import errors as kube_errors
from server.kube import tasks as task_objects
from server.kube.client import JsonObject, KubeClient
from server.metrics import Metrics
from server.tasks import delivery
from server.tasks.cache import TaskCache
from server.tasks.model import (
    NAMESPACE_LABEL,
    OPERATION_LABEL,
    ORIGIN_REQUEST_ANNOTATION,
    PARENT_LABEL,
    TENANT_LABEL,
    TRACEPARENT_ANNOTATION,
    WUKONG_LABEL,
    BatchTarget,
    Delivery,
    Operation,
    State,
    Task,
)
from server.tasks.progress import SENT
from server.tenancy import Tenancy
from server.wukongs import actions, selectors
from server.wukongs.cache import WukongCache, WukongState
from server.wukongs.detail import claim_name
from server.wukongs.queries import WukongQueries

log = logging.getLogger(__name__)
T = TypeVar("T")

_ACTION = {
    Operation.START: actions.Action.START,
    Operation.STOP: actions.Action.STOP,
    Operation.RESTART: actions.Action.RESTART,
    Operation.PAUSE: actions.Action.PAUSE,
    Operation.RESUME: actions.Action.RESUME,
    Operation.DELETE: actions.Action.DELETE,
}
# The permission each operation needs: the one its action needs (wukongs/actions.py).
PERMISSION = {operation: actions.PERMISSION[action] for operation, action in _ACTION.items()}
# How long each operation may take once sent, unless the settings say otherwise.
DEFAULT_TIMEOUT_SECONDS = {
    Operation.START: 600,
    Operation.STOP: 360,
    Operation.RESTART: 600,
    Operation.PAUSE: 60,
    Operation.RESUME: 60,
    Operation.DELETE: 360,
}
BATCH_MAX = 500
# Sends at once in a batch: enough to be quick, few enough not to flood kube-apiserver.
BATCH_CONCURRENCY = 8
ACTION_REJECTED = "ACTION_REJECTED"
CANCELLED = "CANCELLED"


@dataclass(frozen=True)
class TaskSettings:
    namespace: str
    """Where Task objects live (the API's own namespace)."""
    replica: str
    """This replica's identity, recorded on the actions it sends."""
    handoff_seconds: float
    """How long an action may stay unsent (or `Sending`) before the leader takes the task over; longer than any
    one send can take."""
    timeout_seconds: float
    """Overrides every operation's timeout when > 0."""
    ttl_seconds: float
    """How long ended tasks are kept."""

    def timeout_for(self, operation: Operation) -> int:
        return round(self.timeout_seconds) if self.timeout_seconds > 0 else DEFAULT_TIMEOUT_SECONDS[operation]


@dataclass(frozen=True)
class OperationRequest:
    operation: Operation
    namespace: str = ""
    name: str = ""
    vm_id: str = ""
    request_id: str = ""
    validate_only: bool = False
    force: bool = False
    delete_disks: bool = False


@dataclass(frozen=True)
class BatchRequest:
    operation: Operation
    namespace: str = ""
    names: Sequence[str] = ()
    label_selector: str = ""
    request_id: str = ""
    validate_only: bool = False
    force: bool = False
    delete_disks: bool = False


class Operations:
    def __init__(
        self,
        *,
        kube: KubeClient,
        wukongs: WukongQueries,
        wukong_cache: WukongCache,
        tasks: TaskCache,
        tenancy: Tenancy,
        settings: TaskSettings,
        failpoints: Failpoints,
        metrics: Metrics,
    ) -> None:
        self._kube = kube
        self._wukongs = wukongs
        self._wukong_cache = wukong_cache
        self._tasks = tasks
        self._tenancy = tenancy
        self.settings = settings
        self._failpoints = failpoints
        self._metrics = metrics
        self._batches: set[asyncio.Task[None]] = set()

    async def submit(self, caller: Caller, request: OperationRequest) -> Task:
        """The caller's permission for the operation was checked by the transport (permissions table)."""
        names.check_request_id(request.request_id)
        digest = _digest(
            request.operation, request.namespace, request.name, request.vm_id, request.force, request.delete_disks
        )
        earlier = await self._earlier(caller, request.request_id, digest)
        if earlier is not None:
            # A retry of a request whose replica died before sending: send it now (if that replica is in fact still
            # sending, the guarded step lets only one of them).
            unsent = earlier.state is State.PENDING and earlier.delivery is Delivery.NONE and not earlier.parent
            return await self.deliver(earlier) if unsent else earlier
        state = await self._wukongs.get(caller, namespace=request.namespace, name=request.name, vm_id=request.vm_id)
        check_transition(request.operation, state, self._tasks.open_for(state.key), force=request.force)
        body = self._body(
            caller,
            _task_name(caller, request.request_id),
            request.operation,
            request_id=request.request_id,
            digest=digest,
            state=state,
            force=request.force,
            delete_disks=request.delete_disks,
        )
        if request.validate_only:
            return Task(body)
        task = await self._create(caller, body, request.request_id, digest)
        if task.state is State.PENDING and task.delivery is Delivery.NONE:
            return await self.deliver(task)
        return task

    async def batch(self, caller: Caller, request: BatchRequest) -> Task:
        if request.operation is Operation.BATCH or request.operation not in PERMISSION:
            raise errors.InvalidArgument.field("operation", "use START, STOP, RESTART, PAUSE, RESUME or DELETE")
        _require(caller, PERMISSION[request.operation])
        names.check_request_id(request.request_id)
        if bool(request.names) == bool(request.label_selector.strip()):
            raise errors.InvalidArgument.field("names", "give either names or label_selector (exactly one)")
        if len(request.names) > BATCH_MAX:
            raise errors.InvalidArgument.field("names", f"at most {BATCH_MAX} names per batch")
        digest = _digest(
            Operation.BATCH,
            request.operation,
            request.namespace,
            sorted(request.names),
            request.label_selector,
            request.force,
            request.delete_disks,
        )
        earlier = await self._earlier(caller, request.request_id, digest)
        if earlier is not None:
            return earlier
        targets = await self._targets(caller, request)
        parent_name = _task_name(caller, request.request_id)
        body = self._body(caller, parent_name, Operation.BATCH, request_id=request.request_id, digest=digest)
        body["spec"]["batch"] = {
            "operation": str(request.operation),
            "force": request.force,
            "deleteDisks": request.delete_disks,
            "selector": request.label_selector,
            "targets": [
                {"namespace": s.namespace, "name": s.name, "uid": s.uid, "child": f"{parent_name}-{i:03d}"}
                for i, s in enumerate(targets)
            ],
        }
        if request.validate_only:
            return Task(body)
        parent = await self._create(caller, body, request.request_id, digest)
        # The children are written and sent after the answer: the batch is durable already, and should this replica
        # die meanwhile, the leader writes and sends what is missing.
        running = asyncio.create_task(self._run_batch(parent), name=f"batch-{parent.id}")
        self._batches.add(running)
        running.add_done_callback(self._batches.discard)
        return parent

    async def _run_batch(self, parent: Task) -> None:
        try:
            await self.create_children(parent)
            children = [self._tasks.get(t.child) for t in parent.batch_targets]
            await _bounded(
                [
                    functools.partial(self.deliver, child)
                    for child in children
                    if child is not None and child.state is State.PENDING and child.delivery is Delivery.NONE
                ]
            )
        except Exception:
            log.exception("batch %s: writing or sending its children failed; the leader takes over", parent.id)

    async def create_children(self, parent: Task) -> None:
        """Writes the batch's child tasks that do not exist yet (after a crash, the leader calls this again)."""
        operation = parent.batch_operation
        assert operation is not None
        caller = Caller(user=parent.user, tenant=parent.tenant, permissions=frozenset())
        missing = [target for target in parent.batch_targets if self._tasks.get(target.child) is None]

        async def create(target: BatchTarget) -> None:
            state = self._wukong_cache.get((target.namespace, target.name))
            if state is not None and state.uid != target.uid:
                state = None
            body = self._body(
                caller,
                target.child,
                operation,
                request_id="",
                digest="",
                state=state,
                force=parent.force,
                delete_disks=parent.delete_disks,
                batch=parent,
                target=(target.namespace, target.name, target.uid),
            )
            try:
                created = Task(await task_objects.create(self._kube, body))
            except kube_errors.Conflict:
                return  # written before a crash, or by the other replica
            self._tasks.apply(task_objects.kind(self.settings.namespace), "ADDED", dict(created.raw), 0)

        await _bounded([functools.partial(create, target) for target in missing])

    async def deliver(self, task: Task) -> Task:
        """Steps 2-4 for a Pending task: re-checked against the VM's current state, then sent once."""
        state = self._wukong_cache.get(task.wukong_key)
        if state is not None and state.uid != task.uid:
            state = None
        if state is None:
            return await self.finish(
                task, State.FAILED, reason=errors.Reason.WUKONG_NOT_FOUND, message="the Wukong no longer exists"
            )
        try:
            check_transition(task.operation, state, self._tasks.open_for(state.key), force=task.force, own=task.id)
        except errors.FailedPrecondition as error:
            return await self.finish(task, State.FAILED, reason=error.reason, message=error.message)
        moment = timestamps.format_micro(timestamps.now())
        action: JsonObject = {"phase": str(Delivery.SENDING), "by": self.settings.replica, "sendingTime": moment}
        if task.operation is Operation.RESTART and state.vmi is not None:
            action["instanceUid"] = state.vmi["metadata"]["uid"]
        claimed = await self.write(
            task,
            {"state": str(State.RUNNING), "startTime": moment, "step": "sending the action", "action": action},
            guarded=True,
        )
        if claimed is None:
            return await self._latest(task)  # cancelled, or taken over, meanwhile
        return await self.send(claimed)

    async def send(self, task: Task) -> Task:
        """Steps 3-4 for a task this replica recorded as `Sending`."""
        try:
            await delivery.send(self._kube, task)
        except delivery.Rejected as error:
            return await self.finish(task, State.FAILED, reason=ACTION_REJECTED, message=error.message)
        except kube_errors.KubeError as error:
            log.warning("task %s: the action could not be sent (%s); the leader retries it", task.id, error)
            return task
        self._failpoints.hit("action-sent")
        return await self.record_sent(task, guarded=False) or task

    async def record_sent(self, task: Task, *, guarded: bool) -> Task | None:
        """Step 4: the action was sent (by this replica, or, as the cluster shows, by one that died)."""
        return await self.write(
            task,
            {
                "progress": max(task.progress, SENT),
                "step": f"{task.operation.lower()} requested",
                "action": {"phase": str(Delivery.SENT), "sentTime": timestamps.format_micro(timestamps.now())},
            },
            guarded=guarded,
        )

    async def cancel(self, caller: Caller, task: Task) -> Task:
        """Cancels a task whose action was not sent, or a batch's pending children."""
        operation = task.batch_operation if task.operation is Operation.BATCH else task.operation
        assert operation is not None
        _require(caller, PERMISSION[operation])
        if task.operation is Operation.BATCH:
            pending = [c for c in self._tasks.children(task.id) if _cancellable(c)]
            if not pending or not task.open:
                raise _not_cancellable(task, "none of its children is still waiting to be sent")
            await _bounded([functools.partial(self._cancel_one, caller, child) for child in pending])
            return self._tasks.get(task.id) or task
        if not _cancellable(task):
            raise _not_cancellable(task, "its action was already sent and cannot be undone")
        cancelled = await self._cancel_one(caller, task)
        if cancelled.state is not State.CANCELLED:
            raise _not_cancellable(cancelled, "its action was sent meanwhile")
        return cancelled

    async def _cancel_one(self, caller: Caller, task: Task) -> Task:
        written = await self.finish(
            task, State.CANCELLED, reason=CANCELLED, message=f"cancelled by {caller.user}; nothing was changed"
        )
        return written if written.state is State.CANCELLED else await self._latest(task)

    async def finish(self, task: Task, state: State, *, reason: str, message: str, step: str = "") -> Task:
        """Ends `task` (guarded: if it changed meanwhile, the newer version is returned as it is)."""
        status: JsonObject = {
            "state": str(state),
            "reason": reason,
            "message": message,
            "completionTime": timestamps.format_micro(timestamps.now()),
        }
        if step:
            status["step"] = step
        written = await self.write(task, status, guarded=True)
        return written if written is not None else await self._latest(task)

    async def write(self, task: Task, status: JsonObject, *, guarded: bool) -> Task | None:
        """Merges `status` into the task's; None when `guarded` and the task changed since `task` was read."""
        try:
            raw = await task_objects.patch_status(
                self._kube,
                namespace=task.home,
                name=task.id,
                status=status,
                resource_version=task.resource_version if guarded else None,
            )
        except kube_errors.Conflict:
            return None
        written = Task(raw)
        self._tasks.apply(task_objects.kind(self.settings.namespace), "MODIFIED", raw, 0)
        if task.open and not written.open:
            self._ended(written)
        if written.state is not task.state:
            _state_event(written, previous=task.state)
        return written

    def _ended(self, task: Task) -> None:
        """Counted by the replica whose write ended the task, so each task is counted once across replicas."""
        ended = task.completion_time or timestamps.now()
        seconds = (ended - task.created).total_seconds() if task.created else 0.0
        self._metrics.task_ended(operation=str(task.operation), outcome=str(task.state), seconds=seconds)
        _trace_ended(task)

    async def _latest(self, task: Task) -> Task:
        return Task(await task_objects.get(self._kube, namespace=task.home, name=task.id))

    async def _earlier(self, caller: Caller, request_id: str, digest: str) -> Task | None:
        """The task an earlier request with this key created, if any."""
        if not request_id:
            return None
        name = _task_name(caller, request_id)
        task = self._tasks.get(name)
        if task is None:
            try:
                task = Task(await task_objects.get(self._kube, namespace=self.settings.namespace, name=name))
            except kube_errors.NotFound:
                return None
        return _same_request(task, digest)

    async def _create(self, caller: Caller, body: JsonObject, request_id: str, digest: str) -> Task:
        try:
            task = Task(await task_objects.create(self._kube, body))
        except kube_errors.Conflict as error:
            earlier = await self._earlier(caller, request_id, digest) if request_id else None
            if earlier is None:
                raise errors.Unavailable("a task of that name was being written; retry") from error
            return earlier
        self._tasks.apply(task_objects.kind(self.settings.namespace), "ADDED", dict(task.raw), 0)
        _state_event(task, previous=None)
        self._failpoints.hit("task-written")
        return task

    async def _targets(self, caller: Caller, request: BatchRequest) -> list[WukongState]:
        if request.names:
            for index, name in enumerate(request.names):
                names.check_wukong_name(f"names[{index}]", name)
            found: list[WukongState] = []
            missing: list[str] = []
            for name in dict.fromkeys(request.names):
                try:
                    found.append(await self._wukongs.get(caller, namespace=request.namespace, name=name, vm_id=""))
                except errors.WukongNotFound:
                    missing.append(name)
            if missing:
                raise errors.InvalidArgument.field(
                    "names", f"no such Wukong in the namespace: {', '.join(missing)}; nothing was done"
                )
            return found
        try:
            selector = selectors.parse(request.label_selector)
        except ValueError as error:
            raise errors.InvalidArgument.field("label_selector", str(error)) from error
        scope = await self._tenancy.scope(caller, request.namespace)
        chosen = sorted(
            (s for s in self._wukong_cache.states() if s.namespace in scope and selector.matches(s.labels)),
            key=lambda s: s.key,
        )
        if not chosen:
            raise errors.InvalidArgument.field("label_selector", "selects no Wukong; nothing was done")
        if len(chosen) > BATCH_MAX:
            raise errors.InvalidArgument.field(
                "label_selector", f"selects {len(chosen)} Wukongs; at most {BATCH_MAX} per batch"
            )
        return chosen

    def _body(
        self,
        caller: Caller,
        name: str,
        operation: Operation,
        *,
        request_id: str,
        digest: str,
        state: WukongState | None = None,
        force: bool = False,
        delete_disks: bool = False,
        batch: Task | None = None,
        target: tuple[str, str, str] | None = None,
    ) -> JsonObject:
        namespace, wukong, uid = target or ((state.namespace, state.name, state.uid) if state else ("", "", ""))
        parent = batch.id if batch else ""
        labels = {TENANT_LABEL: caller.tenant, OPERATION_LABEL: operation.lower()}
        if wukong:
            labels |= {NAMESPACE_LABEL: namespace, WUKONG_LABEL: wukong}
        if parent:
            labels[PARENT_LABEL] = parent
        spec: JsonObject = {
            "operation": str(operation),
            "requestedBy": {"user": caller.user, "tenant": caller.tenant},
            "acceptedTime": timestamps.format_micro(timestamps.now()),
        }
        if wukong:
            spec["target"] = {"namespace": namespace, "name": wukong, "uid": uid}
            spec["timeoutSeconds"] = self.settings.timeout_for(operation)
        for key, value in (("requestId", request_id), ("requestDigest", digest), ("parent", parent)):
            if value:
                spec[key] = value
        if force:
            spec["force"] = True
        if delete_disks:
            spec["deleteDisks"] = True
            disks = ((state.wukong.get("spec") or {}).get("disks") or []) if state else []
            spec["disks"] = [claim_name(wukong, disk["name"]) for disk in disks if disk.get("name")]
        metadata: JsonObject = {"name": name, "namespace": self.settings.namespace, "labels": labels}
        annotations: dict[str, str] = {}
        # A batch's children carry their batch's request id and trace, whoever writes them: the replica that accepted
        # the batch, or the leader after it crashed (outside any request).
        if traceparent := batch.traceparent if batch else tracing.traceparent():
            annotations[TRACEPARENT_ANNOTATION] = traceparent
        if origin := batch.origin_request_id if batch else logs.request_id.get():
            annotations[ORIGIN_REQUEST_ANNOTATION] = origin
        if annotations:
            metadata["annotations"] = annotations
        return {"apiVersion": task_objects.API_VERSION, "kind": "Task", "metadata": metadata, "spec": spec}


def _trace_ended(task: Task) -> None:
    """The span of the task's whole work, from acceptance to its end, in the trace of the request that accepted it."""
    start, end = task.created, task.completion_time
    if start is None or end is None:
        return
    attributes: dict[str, tracing.Attribute] = {
        "novasphere.task.id": task.id,
        "novasphere.task.operation": str(task.operation),
        "novasphere.task.state": str(task.state),
    }
    if task.name:
        attributes |= {"novasphere.wukong.namespace": task.namespace, "novasphere.wukong.name": task.name}
    if task.reason:
        attributes["novasphere.task.reason"] = task.reason
    tracing.record(
        f"task {task.operation}",
        parent=task.traceparent,
        start=start,
        end=end,
        attributes=attributes,
        error=(task.reason or str(task.state)) if task.state is State.FAILED else "",
    )


def _state_event(task: Task, *, previous: State | None) -> None:
    """The `task.state` event: a task was accepted or changed state (written by this replica)."""
    change = f"{previous} -> {task.state}" if previous else str(task.state)
    logs.event(
        log,
        "task.state",
        f"task {task.id} ({task.operation.lower()} {task.namespace}/{task.name}): {change}",
        task=task.id,
        operation=str(task.operation),
        namespace=task.namespace,
        name=task.name,
        user=task.user,
        tenant=task.tenant,
        previous=str(previous or ""),
        state=str(task.state),
        reason=task.reason,
        origin_request_id=task.origin_request_id,
    )


def check_transition(
    operation: Operation, state: WukongState, open_tasks: Sequence[Task], *, force: bool, own: str = ""
) -> None:
    """FAILED_PRECONDITION, naming the current state, unless `operation` is valid now. The actions valid in a state
    are the ones `availableActions` offers; while another task runs on the VM only a delete or a forced stop is."""
    status = state.status
    current = status.power_state.name
    if status.power_state.name == "DELETING":
        raise errors.FailedPrecondition(
            f"Wukong '{state.name}' is being deleted; no operation is possible", reason=errors.Reason.INVALID_TRANSITION
        )
    others = [task for task in open_tasks if task.id != own and task.operation is not Operation.BATCH]
    forced_stop = operation is Operation.STOP and force and state.vmi is not None
    if others and not (operation is Operation.DELETE or forced_stop):
        busy = others[0]
        raise errors.FailedPrecondition(
            f"task {busy.id} ({busy.operation.lower()}) is still running on Wukong '{state.name}'; wait for it to "
            "end (WatchTask) or cancel it"
            + ("; a forced stop is possible meanwhile" if operation is Operation.STOP else ""),
            reason=errors.Reason.TASK_IN_PROGRESS,
        )
    if _ACTION[operation] in actions.valid(status) or forced_stop:
        return
    meant = "meant to run" if status.wants_running else "meant to be stopped"
    raise errors.FailedPrecondition(
        f"cannot {operation.lower()} Wukong '{state.name}': it is {current} ({meant}); {_what_works(operation)}",
        reason=errors.Reason.INVALID_TRANSITION,
    )


def _what_works(operation: Operation) -> str:
    return {
        Operation.START: "it is already started (stop it first to start it again)",
        Operation.STOP: "it is already stopped or stopping (a forced stop applies while an instance remains)",
        Operation.RESTART: "only a RUNNING or PAUSED VM can restart (start it instead)",
        Operation.PAUSE: "only a RUNNING VM can pause",
        Operation.RESUME: "only a PAUSED VM can resume",
        Operation.DELETE: "",
    }[operation]


def _cancellable(task: Task) -> bool:
    return task.state is State.PENDING and task.delivery is Delivery.NONE


def _not_cancellable(task: Task, why: str) -> errors.FailedPrecondition:
    return errors.FailedPrecondition(
        f"task {task.id} is {task.state.upper()} and cannot be cancelled: {why}",
        reason=errors.Reason.TASK_NOT_CANCELLABLE,
    )


def _require(caller: Caller, permission: str) -> None:
    if not caller.may(permission):
        raise errors.PermissionDenied(permission)


def _task_name(caller: Caller, request_id: str) -> str:
    """Derived from the tenant and `request_id` when given, so a retry names the same task; else random."""
    if request_id:
        return "t-" + hashlib.sha256(f"{caller.tenant}\0{request_id}".encode()).hexdigest()[:32]
    return "t-" + uuid.uuid4().hex


def _digest(*fields: object) -> str:
    return hashlib.sha256(json.dumps(fields, default=str).encode()).hexdigest()[:32]


def _same_request(task: Task, digest: str) -> Task:
    if task.request_digest != digest:
        raise errors.InvalidArgument.field(
            "request_id", f"was already used for another request (task {task.id}); use a new request_id"
        )
    return task


async def _bounded(jobs: Sequence[Callable[[], Awaitable[T]]]) -> list[T]:
    """Runs the jobs, at most BATCH_CONCURRENCY at a time."""
    gate = asyncio.Semaphore(BATCH_CONCURRENCY)

    async def run(job: Callable[[], Awaitable[T]]) -> T:
        async with gate:
            return await job()

    return list(await asyncio.gather(*(run(job) for job in jobs)))
