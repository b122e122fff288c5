"""Login lockout: a username with 5 failed logins within 5 minutes is refused until the oldest of them is 5 minutes
old, whether or not the user exists (the answer must not tell). Kept in memory per replica, so N replicas allow up
to N times 5 attempts per window; Envoy's per-IP limit on the login route bounds the total before any hashing."""

from __future__ import annotations

import collections
import time
from collections.abc import Callable

MAX_FAILURES = 5
WINDOW_SECONDS = 300.0
MAX_TRACKED = 100_000
"""Usernames tracked at most (the oldest are forgotten first), so random names cannot exhaust memory."""


class Lockout:
    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._failures: collections.OrderedDict[str, collections.deque[float]] = collections.OrderedDict()

    def retry_after(self, username: str) -> float:
        """Seconds until `username` may try again; 0 if it may now."""
        failures = self._recent(username)
        if len(failures) < MAX_FAILURES:
            return 0.0
        return max(failures[0] + WINDOW_SECONDS - self._clock(), 0.0)

    def failed(self, username: str) -> None:
        failures = self._recent(username)
        failures.append(self._clock())
        self._failures[username] = failures
        self._failures.move_to_end(username)
        while len(self._failures) > MAX_TRACKED:
            self._failures.popitem(last=False)

    def succeeded(self, username: str) -> None:
        self._failures.pop(username, None)

    def _recent(self, username: str) -> collections.deque[float]:
        failures = self._failures.get(username, collections.deque())
        horizon = self._clock() - WINDOW_SECONDS
        while failures and failures[0] <= horizon:
            failures.popleft()
        return failures
