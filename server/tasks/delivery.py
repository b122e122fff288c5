"""Sending a task's action to the cluster, and telling afterwards whether it was sent.

- Start and stop change the durable intent vmoperator honours: the Wukong's `spec.startStrategy.autoStart`
  (reference/wukong.md §8); a change on the VirtualMachine alone would be reverted by vmoperator's next pass. A forced
  stop first has KubeVirt stop the instance with a grace period of 0, which shortens a shutdown in progress
  (kubevirt.md §1.5).
- Restart, pause and resume are KubeVirt's subresources (restart on the VM, pause/unpause on the instance), called
  through kube-apiserver as the API's service account.
- Delete removes the Wukong (its UID as a precondition); the disks, when asked, once the Wukong is gone.

`was_sent` reads the cluster afresh (not a cache) to decide whether an action recorded as `Sending` by a replica that
then died took effect, so a replica taking the task over sends it only if it did not: a restart is not idempotent.
"""

from __future__ import annotations

import logging

from server.kube import errors as kube_errors
from server.kube import kubevirt, storage, wukongs
from server.kube.client import JsonObject, KubeClient
from server.tasks.model import Operation, Task

log = logging.getLogger(__name__)


class Rejected(Exception):
    """The cluster refused the action for good (e.g. KubeVirt: the VM is not running); the task fails with this."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


async def send(kube: KubeClient, task: Task) -> None:
    """Sends the action once; raises `Rejected` when the cluster refuses it, `kube.errors.KubeError` when it could
    not be sent (retrying later may help)."""
    namespace, vm = task.namespace, kubevirt.vm_name(task.name)
    try:
        match task.operation:
            case Operation.START:
                await _set_auto_start(kube, task, True)
            case Operation.STOP:
                if task.force:
                    await _force_stop(kube, namespace, vm)
                await _set_auto_start(kube, task, False)
            case Operation.RESTART:
                await kubevirt.restart(kube, namespace=namespace, vm=vm, force=task.force)
            case Operation.PAUSE:
                await kubevirt.pause(kube, namespace=namespace, instance=vm)
            case Operation.RESUME:
                await kubevirt.unpause(kube, namespace=namespace, instance=vm)
            case Operation.DELETE:
                await wukongs.delete(kube, namespace=namespace, name=task.name, uid=task.uid)
            case Operation.BATCH:
                raise AssertionError("a batch has no action of its own")
    except kube_errors.Conflict as error:
        raise Rejected(f"KubeVirt refused it: {error.detail}") from error
    except kube_errors.NotFound as error:
        raise Rejected("the Wukong or its VM no longer exists") from error


async def was_sent(kube: KubeClient, task: Task) -> bool:
    """Whether the action of `task` took effect, from the cluster's current objects."""
    namespace, vm = task.namespace, kubevirt.vm_name(task.name)
    wukong = await _get_or_none(kube, wukongs.path(namespace, task.name))
    if wukong is None or wukong["metadata"].get("uid") != task.uid:
        return True  # the Wukong is gone: nothing is left to act on (a delete reached its goal)
    match task.operation:
        case Operation.START | Operation.STOP:
            return _auto_start(wukong) == (task.operation is Operation.START)
        case Operation.DELETE:
            return bool(wukong["metadata"].get("deletionTimestamp"))
        case Operation.RESTART:
            machine = await _get_or_none(kube, kubevirt.vm_path(namespace, vm))
            requests = ((machine or {}).get("status") or {}).get("stateChangeRequests") or []
            if any(r.get("action") == "Stop" and r.get("uid") == task.instance_uid for r in requests):
                return True
            instance = await kubevirt.get_instance(kube, namespace=namespace, name=vm)
            return (
                instance is None
                or instance["metadata"].get("uid") != task.instance_uid
                or bool(instance["metadata"].get("deletionTimestamp"))
            )
        case Operation.PAUSE | Operation.RESUME:
            instance = await kubevirt.get_instance(kube, namespace=namespace, name=vm)
            paused = any(
                c.get("type") == "Paused" and c.get("status") == "True"
                for c in ((instance or {}).get("status") or {}).get("conditions") or []
            )
            return paused == (task.operation is Operation.PAUSE)
        case Operation.BATCH:
            return True


async def delete_disks(kube: KubeClient, task: Task) -> None:
    for claim in task.disks:
        if await storage.delete_disk(kube, namespace=task.namespace, name=claim):
            log.info("task %s: deleted disk %s/%s", task.id, task.namespace, claim)


async def _set_auto_start(kube: KubeClient, task: Task, value: bool) -> None:
    """A JSON Patch that applies only to the Wukong the task was accepted for (its UID)."""
    operations: list[JsonObject] = [{"op": "test", "path": "/metadata/uid", "value": task.uid}]
    wukong = await wukongs.get(kube, namespace=task.namespace, name=task.name)
    if not isinstance((wukong.get("spec") or {}).get("startStrategy"), dict):
        operations.append({"op": "add", "path": "/spec/startStrategy", "value": {}})
    operations.append({"op": "add", "path": "/spec/startStrategy/autoStart", "value": value})
    try:
        await wukongs.patch(kube, task.namespace, task.name, operations, dry_run=False)
    except kube_errors.Invalid as error:
        raise Rejected("the Wukong was replaced by another of the same name") from error


async def _force_stop(kube: KubeClient, namespace: str, vm: str) -> None:
    """KubeVirt's stop with `gracePeriod: 0`: the instance's grace period is cut to 0 first, so a shutdown already
    under way ends at once. KubeVirt answers 409 when no instance runs any more: nothing left to force."""
    try:
        await kubevirt.stop(kube, namespace=namespace, vm=vm, grace_period_seconds=0)
    except kube_errors.Conflict as error:
        log.info("forced stop of %s/%s: %s", namespace, vm, error.detail)


def _auto_start(wukong: JsonObject) -> bool:
    strategy = (wukong.get("spec") or {}).get("startStrategy")
    return strategy is None or bool(isinstance(strategy, dict) and strategy.get("autoStart"))


async def _get_or_none(kube: KubeClient, path: str) -> JsonObject | None:
    try:
        return await kube.request("GET", path)
    except kube_errors.NotFound:
        return None
