"""Crash points for tests: `NOVASPHERE_FAILPOINTS=task-written:3,action-sent:1` makes the process kill itself with
SIGKILL (as `kill -9` would) the 3rd time it passes `task-written`, and so on. Unset in production, where `hit` is a
dictionary lookup. The points name the moments a crash must not lose an operation at."""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections import Counter

log = logging.getLogger(__name__)

KNOWN = frozenset({"task-written", "action-sent", "observing", "notification-outbox-written", "notification-sent"})


class Failpoints:
    def __init__(self, spec: str) -> None:
        self._armed: dict[str, int] = {}
        self._hits: Counter[str] = Counter()
        for item in filter(None, (part.strip() for part in spec.split(","))):
            name, _, count = item.partition(":")
            if name not in KNOWN:
                raise ValueError(f"unknown failpoint '{name}' (known: {', '.join(sorted(KNOWN))})")
            self._armed[name] = int(count or "1")

    def hit(self, name: str) -> None:
        if name not in self._armed:
            return
        self._hits[name] += 1
        if self._hits[name] == self._armed[name]:
            log.warning("failpoint %s: killing this process (SIGKILL)", name)
            sys.stderr.flush()
            os.kill(os.getpid(), signal.SIGKILL)
