"""Every Task of the API's namespace, mirrored by one informer, with the lookups the API needs: by ID, by Wukong,
the open ones, a batch's children."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

from server.kube.informer import Kind
from server.tasks.model import Task, WukongKey, newest_first


class TaskCache:
    def __init__(self) -> None:
        self._tasks: dict[str, Task] = {}
        self._by_wukong: defaultdict[WukongKey, set[str]] = defaultdict(set)
        self._children: defaultdict[str, set[str]] = defaultdict(set)
        self._listeners: list[Callable[[Task | None, Task | None], None]] = []
        self._synced = False
        self._moved = asyncio.Event()

    def subscribe(self, listener: Callable[[Task | None, Task | None], None]) -> None:
        """`listener(before, after)` after every change; None before a creation or after a deletion."""
        self._listeners.append(listener)

    @property
    def synced(self) -> bool:
        return self._synced

    def get(self, task_id: str) -> Task | None:
        return self._tasks.get(task_id)

    def tasks(self) -> Iterator[Task]:
        return iter(list(self._tasks.values()))

    def open_tasks(self) -> list[Task]:
        return [task for task in self._tasks.values() if task.open]

    def of_wukong(self, key: WukongKey) -> list[Task]:
        """The Wukong's tasks (not batch parents), newest first."""
        found = [self._tasks[name] for name in self._by_wukong.get(key, ()) if name in self._tasks]
        return sorted(found, key=newest_first)

    def open_for(self, key: WukongKey) -> list[Task]:
        return [task for task in self.of_wukong(key) if task.open]

    def children(self, parent: str) -> list[Task]:
        return [self._tasks[name] for name in sorted(self._children.get(parent, ())) if name in self._tasks]

    async def changed(self, task_id: str, *, than: str, within: float) -> Task | None:
        """The task once its resourceVersion differs from `than` (a newer write reached this replica), or as it is
        after `within` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            task = self._tasks.get(task_id)
            remaining = deadline - loop.time()
            if (task is not None and task.resource_version != than) or remaining <= 0:
                return task
            try:
                await asyncio.wait_for(self._moved.wait(), timeout=remaining)
            except TimeoutError:
                return self._tasks.get(task_id)

    @contextlib.contextmanager
    def feed(self, wanted: Callable[[Task | None, Task], bool], *, limit: int) -> Iterator[asyncio.Queue[Task | None]]:
        """While open, each new version of a task for which `wanted(before, after)` holds, in order; a None after
        `limit` unread ones (the reader fell behind and must start again)."""
        queue: asyncio.Queue[Task | None] = asyncio.Queue()

        def listener(before: Task | None, after: Task | None) -> None:
            if after is None or not wanted(before, after) or queue.qsize() > limit:
                return
            queue.put_nowait(after if queue.qsize() < limit else None)

        self._listeners.append(listener)
        try:
            yield queue
        finally:
            self._listeners.remove(listener)

    # -- informer.Handler

    def replace(self, kind: Kind, items: list[dict[str, Any]], resource_version: int) -> None:
        fresh = {item["metadata"]["name"]: Task(item) for item in items}
        for name in list(self._tasks):
            if name not in fresh:
                self._remove(name)
        for task in fresh.values():
            self._put(task)
        self._synced = True
        self._wake()

    def apply(self, kind: Kind, event_type: str, item: dict[str, Any], resource_version: int) -> None:
        if event_type == "DELETED":
            self._remove(item["metadata"]["name"])
        else:
            self._put(Task(item))
        self._wake()

    def progress(self, kind: Kind, resource_version: int) -> None:
        """Bookmarks carry nothing a task reader needs."""

    def _wake(self) -> None:
        """Wakes every waiter; later waiters wait on a fresh event."""
        self._moved.set()
        self._moved = asyncio.Event()

    def _put(self, task: Task) -> None:
        before = self._tasks.get(task.id)
        if before is not None and _revision(before) >= _revision(task):
            return  # already known: an informer event for a write this replica applied itself
        self._tasks[task.id] = task
        if task.name:
            self._by_wukong[task.wukong_key].add(task.id)
        if task.parent:
            self._children[task.parent].add(task.id)
        self._publish(before, task)

    def _remove(self, name: str) -> None:
        task = self._tasks.pop(name, None)
        if task is None:
            return
        self._by_wukong.get(task.wukong_key, set()).discard(name)
        if not self._by_wukong.get(task.wukong_key):
            self._by_wukong.pop(task.wukong_key, None)
        self._children.get(task.parent, set()).discard(name)
        if task.parent and not self._children.get(task.parent):
            self._children.pop(task.parent, None)
        self._publish(task, None)

    def _publish(self, before: Task | None, after: Task | None) -> None:
        for listener in self._listeners:
            listener(before, after)


def _revision(task: Task) -> int:
    """resourceVersions are opaque to clients in principle; kube-apiserver with etcd issues increasing integers."""
    try:
        return int(task.resource_version)
    except ValueError:
        return 0
