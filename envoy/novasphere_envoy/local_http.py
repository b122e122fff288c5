"""Local addresses (`host:port` or `unix:/absolute/path`) and plain HTTP to them, with the standard library only.

The exec probes and the preStop drain of a pod reach the API server's and Envoy's admin interfaces this way; on a
hostNetwork node those listen on unix sockets in an emptyDir, so that pods on one node never collide on a port. No
import beyond the standard library: a probe runs every few seconds and must start in milliseconds.
"""

from __future__ import annotations

import argparse
import http.client
import socket
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

UNIX_PREFIX = "unix:"
PROBE_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True)
class HostPort:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class UnixSocket:
    path: str
    """Absolute path of the socket file."""

    def __str__(self) -> str:
        return UNIX_PREFIX + self.path


Address = HostPort | UnixSocket


def parse_address(value: str) -> Address:
    """`unix:/absolute/path` or `host:port` (`[::1]:port` for IPv6); ValueError says what was expected."""
    if value.startswith(UNIX_PREFIX):
        path = value[len(UNIX_PREFIX) :]
        if not path.startswith("/"):
            raise ValueError(f"expected unix: and an absolute path, e.g. unix:/run/novasphere/a.sock, got {value!r}")
        return UnixSocket(path)
    host, separator, port = value.rpartition(":")
    host = host.strip("[]")
    if not separator or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"expected host:port (e.g. 127.0.0.1:9901) or unix:/absolute/path, got {value!r}")
    return HostPort(host, int(port))


class _UnixConnection(http.client.HTTPConnection):
    """http.client over a unix socket: only `connect` differs."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def request(address: Address, path: str, *, method: str = "GET", timeout: float) -> tuple[int, str]:
    """The status and body of one request to `address`; OSError (refused, timed out: `timeout` bounds each socket
    operation) or http.client.HTTPException when no answer came."""
    connection = (
        _UnixConnection(address.path, timeout)
        if isinstance(address, UnixSocket)
        else http.client.HTTPConnection(address.host, address.port, timeout=timeout)
    )
    try:
        connection.request(method, path)
        response = connection.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        connection.close()


def probe_failure(address: Address, path: str, *, timeout: float, what: str, body: str | None = None) -> str | None:
    """An exec probe's verdict on GET `path`: None when it answered 200 (with `body`, when given), else why not, in
    one line naming `what` answered."""
    try:
        status, text = request(address, path, timeout=timeout)
    except (OSError, http.client.HTTPException) as error:
        return f"{what} at {address} did not answer: {error or type(error).__name__}"
    if status != 200 or (body is not None and text.strip() != body):
        return f"{what} at {address} answered {status}: {' '.join(text.split())[:200]}"
    return None


def run_probe(
    prog: str,
    description: str,
    argv: Sequence[str] | None,
    verdict: Callable[[argparse.Namespace, Address], str | None],
    add_arguments: Callable[[argparse.ArgumentParser], None] = lambda parser: None,
) -> None:
    """The command line both probes share: `--admin ADDRESS --timeout SECONDS`; exits 1 with the reason on stderr."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    add_arguments(parser)
    parser.add_argument("--admin", required=True, help="the admin address, host:port or unix:/path")
    parser.add_argument("--timeout", type=float, default=PROBE_TIMEOUT_SECONDS, help="seconds, default 2")
    args = parser.parse_args(argv)
    try:
        admin = parse_address(args.admin)
    except ValueError as error:
        parser.error(f"--admin: {error}")
    failure = verdict(args, admin)
    if failure is not None:
        sys.exit(f"{prog.removeprefix('python -m ')}: {failure}")
