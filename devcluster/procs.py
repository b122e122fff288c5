"""Child processes that cannot outlive their parent, and the small waiting helpers every launcher needs.

Each child runs in its own process group, so a Ctrl-C in the terminal reaches only the launcher, which then stops
the children in order; and each is started through `_orphan_guard`, so the kernel terminates it if the launcher
dies without cleaning up (SIGKILL included).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TypeVar

_GUARD = Path(__file__).with_name("_orphan_guard.py")
T = TypeVar("T")


class ProcessError(RuntimeError):
    """A child failed to start, or exited while it was expected to run."""


@dataclass
class Process:
    """A running child: its name (for messages), its Popen and where its output goes."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def check_running(self) -> None:
        if not self.alive():
            raise ProcessError(
                f"{self.name} exited with code {self.popen.returncode}; last lines of {self.log_path}:\n"
                f"{self.log_tail()}"
            )

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, then SIGKILL after `timeout` seconds; returns once the process is gone."""
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
        self.popen.wait()


def spawn(
    name: str,
    argv: Sequence[str],
    *,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    death_signal: signal.Signals = signal.SIGTERM,
) -> Process:
    """Starts `argv` with stdout and stderr appended to `log_path`; it gets `death_signal` if this thread dies.

    Call it from a thread that lives as long as the child should (the main thread): the kernel ties the death signal
    to the spawning thread, not to the process.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    guarded = [sys.executable, "-I", "-S", str(_GUARD), str(os.getpid()), str(int(death_signal)), *argv]
    with log_path.open("ab") as log:
        popen = subprocess.Popen(
            guarded,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            process_group=0,
        )
    return Process(name=name, popen=popen, log_path=log_path)


def pid_alive(pid: int) -> bool:
    """Whether `pid` is a running process; an exited one not yet reaped by its parent (a zombie) counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def http_get(url: str, context: ssl.SSLContext | None = None) -> bytes | None:
    """The body of a 200 response, or None while the endpoint is not up or not healthy yet."""
    try:
        with urllib.request.urlopen(url, context=context, timeout=5) as response:  # noqa: S310 (loopback only)
            body: bytes = response.read()
            return body
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def free_ports(count: int) -> list[int]:
    """Distinct free TCP ports on 127.0.0.1, chosen by the kernel (held together so none repeats). Free when chosen,
    not when used: start what binds them with `on_free_ports`, which tries again if one was taken meanwhile."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


def wait_until(
    condition: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    processes: Sequence[Process] = (),
    interval: float = 0.1,
) -> None:
    """Polls `condition` until it holds; fails early, with the log, if one of `processes` exits meanwhile."""
    deadline = time.monotonic() + timeout
    while True:
        for process in processes:
            process.check_running()
        if condition():
            return
        if time.monotonic() > deadline:
            logs = "".join(f"\n--- {p.name} ({p.log_path}):\n{p.log_tail()}" for p in processes)
            raise ProcessError(f"timed out after {timeout:.0f} s waiting for {what}{logs}")
        time.sleep(interval)


BIND_ATTEMPTS = 5
_TAKEN = ("address already in use", "cannot bind")


def on_free_ports(count: int, start: Callable[[list[int]], T]) -> T:
    """`start(ports)` with `count` free ports, again with new ones when it fails because one of them was taken between
    choosing and binding (another process's listener or outgoing connection): the ProcessError's log says so."""
    for attempt in range(BIND_ATTEMPTS):
        try:
            return start(free_ports(count))
        except ProcessError as error:
            if attempt == BIND_ATTEMPTS - 1 or not any(taken in str(error).lower() for taken in _TAKEN):
                raise
    raise AssertionError("unreachable")


@contextlib.contextmanager
def stopped_on_failure(process: Process) -> Iterator[None]:
    """A process that did not come up is stopped before the error travels on (a retry starts another)."""
    try:
        yield
    except BaseException:
        process.stop()
        raise


@contextlib.contextmanager
def stopping(processes: list[Process]) -> Iterator[list[Process]]:
    """Yields `processes` (a list the body appends to) and stops them in reverse order on the way out."""
    try:
        yield processes
    finally:
        for process in reversed(processes):
            process.stop()


def interrupt_on_stop_signals() -> None:
    """Ctrl-C and SIGTERM raise KeyboardInterrupt, so every context manager on the stack of a foreground command
    (`make run`, `make real-node`, `make run DEPLOY=helm`) stops what it started. Set explicitly: a shell that
    starts one in the background leaves SIGINT ignored, and Ctrl-C must work."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
