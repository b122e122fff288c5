"""Every server stream this replica serves, so that they can all be ended at once, each with a status that tells its
client what to do: when the replica drains before exiting, or when it has lost kube-apiserver for too long.

WatchWukong streams end themselves in-band first (an ERROR event, then the status: `WatchHub.end_all`); the others
(WatchTask, WatchWukongMetrics, the health service's Watch) have no event envelope and end with the status alone,
UNAVAILABLE with a RetryInfo.

A replica that is going away also refuses every new call (`close`, `admit`). A client told to reconnect usually comes
back on the same HTTP/2 connection: a draining Envoy sends GOAWAY only with a response's headers, and a stream ended
by its trailers sends none. The refusal is such a response, so the client's next attempt goes to another replica.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from server import errors

SETTLE_POLL_SECONDS = 0.1


@dataclass(eq=False)  # identity: two streams of one method are two streams
class _Open:
    method: str
    task: asyncio.Task[object]
    ended_by: errors.NovaError | None = None


class OpenStreams:
    def __init__(self) -> None:
        self._open: set[_Open] = set()
        self._refusing: errors.NovaError | None = None
        self._last_refused = 0.0

    def __len__(self) -> int:
        return len(self._open)

    @contextlib.contextmanager
    def held(self, method: str) -> Iterator[None]:
        """Runs the current task's stream; when `end` picks it, the stream stops with `end`'s error."""
        self.admit()
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

    def admit(self) -> None:
        """Raises `close`'s error for a call that arrives once the replica is going away, stream or not: a clear
        UNAVAILABLE its client retries elsewhere, where the grpc server's own stop would answer CANCELLED."""
        if self._refusing is not None:
            self._last_refused = time.monotonic()
            raise self._refusing

    def close(self, error: errors.NovaError, *, keep: Callable[[str], bool] = lambda method: False) -> int:
        """As `end`, and every call that arrives from now on is refused with `error` (`admit`): the replica is going
        away."""
        self._refusing = error
        self._last_refused = time.monotonic()
        return self.end(error, keep=keep)

    async def settled(self, *, quiet: float, within: float) -> None:
        """Returns once no stream is open and no call was refused for `quiet` seconds (the clients told to go have
        gone elsewhere), or after `within` seconds."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if not self._open and time.monotonic() - self._last_refused >= quiet:
                return
            await asyncio.sleep(min(SETTLE_POLL_SECONDS, max(0.0, deadline - time.monotonic())))
