"""Every server stream this replica serves, so that they can all be ended at once, each with a status that tells its
client what to do: when the replica drains before exiting, or when it has lost kube-apiserver for too long.

WatchWukong streams end themselves in-band first (an ERROR event, then the status: `WatchHub.end_all`); the others
(WatchTask, WatchWukongMetrics, the health service's Watch) have no event envelope and end with the status alone,
UNAVAILABLE with a RetryInfo.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from server import errors


@dataclass(eq=False)  # identity: two streams of one method are two streams
class _Open:
    method: str
    task: asyncio.Task[object]
    ended_by: errors.NovaError | None = None


class OpenStreams:
    def __init__(self) -> None:
        self._open: set[_Open] = set()

    def __len__(self) -> int:
        return len(self._open)

    @contextlib.contextmanager
    def held(self, method: str) -> Iterator[None]:
        """Runs the current task's stream; when `end` picks it, the stream stops with `end`'s error."""
        task = asyncio.current_task()
        assert task is not None
        stream = _Open(method, task)
        self._open.add(stream)
        try:
            yield
        except asyncio.CancelledError:
            if stream.ended_by is None:
                raise
            task.uncancel()
            raise stream.ended_by from None
        finally:
            self._open.discard(stream)

    def end(self, error: errors.NovaError, *, keep: Callable[[str], bool] = lambda method: False) -> int:
        """Ends every open stream but those whose method `keep` names; returns how many it ended."""
        chosen = [stream for stream in self._open if stream.ended_by is None and not keep(stream.method)]
        for stream in chosen:
            stream.ended_by = error
            stream.task.cancel()
        return len(chosen)
