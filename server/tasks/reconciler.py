"""The leader's loop over every open task (only the replica holding the Lease runs it):

- a task whose action was sent: progress and completion from the VM's observed state (progress.py), a timeout
  failing it with the last state observed;
- a task left `Pending` or `Sending` longer than the hand-off time by a replica that died: sent if it was not (a
  `Sending` one only after the cluster shows it took no effect), so no action is lost or sent twice;
- a batch: its missing children written, its summary and end from theirs;
- ended tasks deleted after their TTL (Kubernetes keeps Events an hour; tasks are the week's history).

It wakes on every change of a task or of a Wukong with an open task, and once a second for time-outs and hand-offs.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import time

from server import timestamps
from server.failpoints import Failpoints
from server.kube import errors as kube_errors
from server.kube import tasks as task_objects
from server.kube.client import KubeClient
from server.leader import LeaderElection
from server.tasks import delivery
from server.tasks.cache import TaskCache
from server.tasks.model import Delivery, Operation, State, Task
from server.tasks.operations import Operations
from server.tasks.progress import observe
from server.wukongs.cache import Change, WukongCache

log = logging.getLogger(__name__)

TICK_SECONDS = 1.0
# Ended tasks are looked for this often (or four times per TTL, when that is shorter).
SWEEP_SECONDS = 60.0
TIMED_OUT = "TASK_TIMED_OUT"
# A task written moments ago may concern a Wukong this replica's cache has not seen yet.
CACHE_LAG_SECONDS = 5.0


class Reconciler:
    def __init__(
        self,
        *,
        kube: KubeClient,
        operations: Operations,
        tasks: TaskCache,
        wukongs: WukongCache,
        leader: LeaderElection,
        failpoints: Failpoints,
    ) -> None:
        self._kube = kube
        self._operations = operations
        self._settings = operations.settings
        self._tasks = tasks
        self._wukongs = wukongs
        self._leader = leader
        self._failpoints = failpoints
        self._wake = asyncio.Event()
        self._last_sweep = 0.0
        tasks.subscribe(lambda before, after: self._wake.set())
        wukongs.subscribe(self._wukong_changed)

    def _wukong_changed(self, change: Change) -> None:
        if self._tasks.open_for(change.state.key):
            self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=TICK_SECONDS)
            self._wake.clear()
            if not self._leader.leading or not self._tasks.synced:
                continue
            try:
                await self.reconcile_once()
            except Exception:
                log.exception("task reconciliation failed; retrying")
                await asyncio.sleep(TICK_SECONDS)

    async def reconcile_once(self) -> None:
        for task in self._tasks.open_tasks():
            if not self._leader.leading:
                return
            try:
                if task.operation is Operation.BATCH:
                    await self._batch(task)
                elif task.delivery is Delivery.SENT:
                    await self._observe(task)
                elif self._stale(task):
                    await self._take_over(task)
            except kube_errors.KubeError as error:
                log.warning("task %s: %s; retrying", task.id, error)
        if time.monotonic() - self._last_sweep > min(SWEEP_SECONDS, self._settings.ttl_seconds / 4):
            self._last_sweep = time.monotonic()
            await self._sweep()

    async def _observe(self, task: Task) -> None:
        self._failpoints.hit("observing")
        state = self._wukongs.get(task.wukong_key)
        if state is None and _age(task) < CACHE_LAG_SECONDS:
            return
        seen = observe(task, state)
        if task.operation is Operation.DELETE and task.delete_disks and seen.progress == 90:
            await delivery.delete_disks(self._kube, task)
            await self._operations.write(
                task,
                _ended(State.SUCCEEDED, 100, "Wukong and its disks deleted"),
                guarded=True,
            )
            return
        if seen.outcome is not None:
            status = _ended(seen.outcome, max(task.progress, seen.progress), seen.step)
            if seen.outcome is State.FAILED:
                status |= {"reason": seen.reason, "message": seen.message, "progress": task.progress}
            await self._operations.write(task, status, guarded=True)
            return
        sent = task.sent_time or task.start_time
        elapsed = (timestamps.now() - sent).total_seconds() if sent else 0.0
        if task.timeout_seconds and elapsed > task.timeout_seconds:
            await self._operations.finish(
                task,
                State.FAILED,
                reason=TIMED_OUT,
                message=f"the {task.operation.lower()} did not finish within {task.timeout_seconds} s; the VM was "
                f"last seen at: {task.step or 'nothing observed yet'}",
            )
            return
        progress = max(task.progress, seen.progress)
        if (progress, seen.step) != (task.progress, task.step) and seen.progress >= task.progress:
            await self._operations.write(task, {"progress": progress, "step": seen.step}, guarded=True)

    async def _take_over(self, task: Task) -> None:
        """A task its accepting replica did not see through (it died, or could not reach the cluster)."""
        if task.delivery is Delivery.NONE:
            log.info("task %s: taking over an unsent %s", task.id, task.operation.lower())
            await self._operations.deliver(task)
            return
        if await delivery.was_sent(self._kube, task):
            log.info("task %s: the %s recorded as sending took effect; following it", task.id, task.operation.lower())
            await self._operations.record_sent(task, guarded=True)
            return
        log.info("task %s: the %s recorded as sending never took effect; sending it", task.id, task.operation.lower())
        moment = timestamps.format_micro(timestamps.now())
        claimed = await self._operations.write(
            task, {"action": {"by": self._settings.replica, "sendingTime": moment}}, guarded=True
        )
        if claimed is not None:
            await self._operations.send(claimed)

    async def _batch(self, parent: Task) -> None:
        children = self._tasks.children(parent.id)
        if len(children) < len(parent.batch_targets):
            if _age(parent) > self._settings.handoff_seconds:
                await self._operations.create_children(parent)
            return
        counts = dict.fromkeys(State, 0)
        for child in children:
            counts[child.state] += 1
        summary = {str(state).lower(): count for state, count in counts.items()} | {"total": len(children)}
        progress = max(parent.progress, sum(c.progress for c in children) // max(1, len(children)))
        open_children = counts[State.PENDING] + counts[State.RUNNING]
        step = f"{len(children) - open_children} of {len(children)} done"
        if open_children:
            if (progress, step, summary) != (parent.progress, parent.step, parent.summary):
                status = {"state": str(State.RUNNING), "progress": progress, "step": step, "summary": summary}
                await self._operations.write(parent, status, guarded=True)
            return
        if counts[State.FAILED]:
            outcome, reason = State.FAILED, "BATCH_PARTLY_FAILED"
            message = f"{counts[State.FAILED]} of {len(children)} operations failed (see the child tasks)"
        elif counts[State.CANCELLED] == len(children):
            outcome, reason, message = State.CANCELLED, "CANCELLED", "every operation was cancelled"
        else:
            outcome, reason, message = State.SUCCEEDED, "", ""
        status = _ended(outcome, 100 if outcome is State.SUCCEEDED else progress, step) | {"summary": summary}
        if reason:
            status |= {"reason": reason, "message": message}
        await self._operations.write(parent, status, guarded=True)

    def _stale(self, task: Task) -> bool:
        since = task.sending_time if task.delivery is Delivery.SENDING else task.created
        return since is None or (timestamps.now() - since).total_seconds() > self._settings.handoff_seconds

    async def _sweep(self) -> None:
        """Deletes tasks that ended more than the TTL ago."""
        horizon = timestamps.now() - datetime.timedelta(seconds=self._settings.ttl_seconds)
        for task in self._tasks.tasks():
            ended = task.completion_time
            if not task.open and ended is not None and ended < horizon:
                with contextlib.suppress(kube_errors.NotFound):
                    await task_objects.delete(self._kube, namespace=task.home, name=task.id)


def _ended(state: State, progress: int, step: str) -> dict[str, object]:
    return {
        "state": str(state),
        "progress": progress,
        "step": step,
        "completionTime": timestamps.format_micro(timestamps.now()),
    }


def _age(task: Task) -> float:
    created = task.created
    return (timestamps.now() - created).total_seconds() if created else 0.0
