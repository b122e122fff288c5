"""Binding the server's listeners to host:port or to a unix socket (`config.ListenAddress`).

A unix socket is how the API server and its Envoy talk in a pod on a hostNetwork node: the socket file lives in an
emptyDir both containers mount. A container killed with SIGKILL leaves its socket file behind, and its restart must
not fail on it; two processes configured with one path must not silently steal each other's socket (grpc and asyncio
both unlink whatever socket file is in the way), so a file something still listens on is refused by name.
"""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import grpc
from aiohttp import web

from server.config import HostPort, ListenAddress, UnixSocket

SOCKET_MODE = 0o660
"""Owner and group may connect (connecting needs write permission): the Envoy container runs as the same user, or
shares the pod's fsGroup. Nobody else on the node."""
LIVENESS_CHECK_SECONDS = 1.0


def add_grpc_port(server: grpc.aio.Server, listen: ListenAddress) -> int | None:
    """Binds `listen` for `server` (before it starts); the TCP port bound, None for a unix socket."""
    if isinstance(listen, UnixSocket):
        claim(listen.path)
        server.add_insecure_port(str(listen))
        return None
    return server.add_insecure_port(str(listen))


async def start_site(runner: web.AppRunner, listen: ListenAddress) -> int | None:
    """Serves `runner`'s application on `listen`; the TCP port bound (port 0: any), None for a unix socket."""
    if isinstance(listen, UnixSocket):
        claim(listen.path)
        await web.UnixSite(runner, str(listen.path)).start()
        opened(listen)
        return None
    before = len(runner.addresses)
    await web.TCPSite(runner, listen.host, listen.port, reuse_port=False).start()
    return int(runner.addresses[before][1])


def opened(listen: ListenAddress) -> None:
    """Once bound: a unix socket gets `SOCKET_MODE`, whatever the umask made of it."""
    if isinstance(listen, UnixSocket):
        os.chmod(listen.path, SOCKET_MODE)


def claim(path: Path) -> None:
    """Makes `path` free to bind: a socket file nothing listens on any more is removed; a live one, or a file that is
    no socket, stops the server with a message."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise SystemExit(f"novasphere: cannot listen on {path}: the file there is not a socket")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(LIVENESS_CHECK_SECONDS)
        try:
            probe.connect(str(path))
        except ConnectionRefusedError:
            path.unlink(missing_ok=True)  # left by a process that is gone
            return
        except OSError:
            pass  # a timeout: something is there but busy
    raise SystemExit(f"novasphere: cannot listen on {path}: another process listens there")


def direct_url(scheme: str, listen: ListenAddress, port: int | None) -> str:
    """The base URL of a listener for a client that reaches it directly: `ws://host:port`, or for a unix socket
    `ws+unix://` and the percent-encoded path (the convention of requests-unixsocket and Docker clients)."""
    if isinstance(listen, UnixSocket):
        return f"{scheme}+unix://{str(listen.path).replace('/', '%2F')}"
    return f"{scheme}://{HostPort(listen.host, port if port is not None else listen.port)}"
