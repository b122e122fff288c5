"""Reading tasks: one, a page of them, or one followed as it changes. Served from this replica's task cache; a task
written a moment ago that the cache has not seen yet is read from kube-apiserver. A caller sees only its tenant's
tasks; any other is NOT_FOUND."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from server import errors, paging
from server.auth import Caller
from server.kube import errors as kube_errors
from server.kube import tasks as task_objects
from server.kube.client import KubeClient
from server.lookups import Lookups
from server.tasks.cache import TaskCache
from server.tasks.model import State, Task, newest_first
from server.tenancy import Tenancy

_TASK_ID = re.compile(r"^t-[0-9a-f]{32}(-\d{3})?$")
# A watched task that changes nothing for this long gets its state sent again, so proxies see a live stream.
HEARTBEAT_SECONDS = 15.0
FEED_LIMIT = 1000
"""Task changes one WatchTasks stream may leave unread before it is dropped (SLOW_CONSUMER)."""


@dataclass(frozen=True)
class TaskListRequest:
    namespace: str = ""
    name: str = ""
    vm_id: str = ""
    state: str = ""
    page_size: int = 0
    page_token: str = ""
    parent_id: str = ""


@dataclass(frozen=True)
class TaskPage:
    tasks: list[Task]
    next_page_token: str
    total: int


class TaskQueries:
    def __init__(
        self, *, kube: KubeClient, tasks: TaskCache, tenancy: Tenancy, namespace: str, lookups: Lookups
    ) -> None:
        self._lookups = lookups
        self._kube = kube
        self._tasks = tasks
        self._tenancy = tenancy
        self._namespace = namespace

    async def get(self, caller: Caller, task_id: str) -> Task:
        """The caller's task; NOT_FOUND for another tenant's."""
        if not _TASK_ID.match(task_id):
            raise errors.InvalidArgument.field("id", "is not a task ID; use the `id` of a task the API returned")
        task = self._tasks.get(task_id) or await self._not_seen_yet(task_id, caller)
        if task is None or task.tenant != caller.tenant:
            raise errors.TaskNotFound(task_id)
        return task

    async def _not_seen_yet(self, task_id: str, caller: Caller) -> Task | None:
        """A task written on another replica a moment ago, from kube-apiserver (bounded: `lookups`). Task names
        derived from a request id carry no time, so there is no recency test."""

        async def fetch() -> Task | None:
            with contextlib.suppress(kube_errors.NotFound):
                return Task(await task_objects.get(self._kube, namespace=self._namespace, name=task_id))
            return None

        return await self._lookups.unseen("task", task_id, client=caller.address, fetch=fetch)

    def children(self, parent: Task) -> list[Task]:
        return self._tasks.children(parent.id)

    def of_wukong(self, namespace: str, name: str) -> list[Task]:
        """The Wukong's tasks, newest first (the caller may see the Wukong, so it may see them)."""
        return self._tasks.of_wukong((namespace, name))

    def open_of(self, key: tuple[str, str]) -> list[Task]:
        return self._tasks.open_for(key)

    async def list(self, caller: Caller, request: TaskListRequest) -> TaskPage:
        size = paging.page_size(request.page_size)
        namespaces = await self._tenancy.scope(caller, request.namespace)
        states = _states(request.state)
        fingerprint = hashlib.sha256(
            repr((request.namespace, request.name, request.vm_id, sorted(states), request.parent_id)).encode()
        ).hexdigest()[:16]
        after = (
            paging.decode_token(request.page_token, fingerprint, same_as="namespace, name, vm_id, state and parent_id")
            if request.page_token
            else None
        )
        chosen = sorted(
            (
                task
                for task in self._tasks.tasks()
                if task.tenant == caller.tenant
                and (not task.namespace or task.namespace in namespaces)
                and (not request.namespace or task.namespace == request.namespace)
                and (not request.name or task.name == request.name)
                and (not request.vm_id or task.uid == request.vm_id)
                and (not states or task.state in states)
                and (not request.parent_id or task.parent == request.parent_id)
            ),
            key=newest_first,
        )
        start = 0
        if after is not None:
            start = next((i for i, task in enumerate(chosen) if newest_first(task) > tuple(after.key)), len(chosen))
        page = chosen[start : start + size]
        more = start + size < len(chosen)
        token = paging.encode_token(fingerprint, newest_first(page[-1]), 0) if page and more else ""
        return TaskPage(page, token, len(chosen))

    async def watch_own(self, caller: Caller, namespace: str) -> AsyncIterator[Sequence[Task]]:
        """The caller's open tasks now, then each batch of changes to them (new ones included, an ending one last);
        an empty batch after `HEARTBEAT_SECONDS` of quiet."""
        namespaces = await self._tenancy.scope(caller, namespace)

        def own(task: Task) -> bool:
            return (
                task.tenant == caller.tenant
                and task.user == caller.user
                and (not task.namespace or task.namespace in namespaces)
            )

        def wanted(before: Task | None, after: Task) -> bool:
            return own(after) and (after.open or before is None or before.open)

        with self._tasks.feed(wanted, limit=FEED_LIMIT) as changes:
            yield sorted((task for task in self._tasks.open_tasks() if own(task)), key=_oldest_first)
            while True:
                batch = await _next_changes(changes, HEARTBEAT_SECONDS)
                if None in batch:
                    raise errors.SlowConsumer(buffered=FEED_LIMIT)
                latest = {task.id: task for task in batch if task is not None}
                yield sorted(latest.values(), key=_oldest_first)

    async def watch(self, caller: Caller, task_id: str) -> AsyncIterator[Task]:
        """The task now, then each new version; ends once it has ended (or was deleted)."""
        task: Task | None = await self.get(caller, task_id)
        while task is not None:
            yield task
            if not task.open:
                return
            task = await self._tasks.changed(task_id, than=task.resource_version, within=HEARTBEAT_SECONDS)


def _oldest_first(task: Task) -> tuple[float, str]:
    created = task.created
    return (created.timestamp() if created else 0.0, task.id)


async def _next_changes(changes: asyncio.Queue[Task | None], within: float) -> list[Task | None]:
    """What arrives within `within` seconds (nothing: a heartbeat), with whatever else is waiting by then."""
    try:
        first = await asyncio.wait_for(changes.get(), timeout=within)
    except TimeoutError:
        return []
    found = [first]
    while not changes.empty():
        found.append(changes.get_nowait())
    return found


def _states(text: str) -> frozenset[State]:
    chosen: set[State] = set()
    for word in filter(None, (part.strip() for part in text.split(","))):
        try:
            chosen.add(State[word.upper()])
        except KeyError as error:
            known = ", ".join(state.name.lower() for state in State)
            raise errors.InvalidArgument.field("state", f"unknown task state '{word}'; use any of {known}") from error
    return frozenset(chosen)
