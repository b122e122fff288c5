"""Consoles: `vmctl console` puts the VM's serial port in this terminal; `vmctl vnc` proxies a local port to its
screen for any VNC viewer. Each opens a console session with the API (a one-time ticket) and speaks WebSocket to
the link it returns, through Envoy, with the ticket as the subprotocol (never in the URL)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
from typing import Any

import click

from vmctl import errors
from vmctl.cli import State, namespaced, pass_state

ESCAPE = b"\x1d"  # Ctrl-], as telnet and virtctl use
TICKET_PROTOCOL = "ticket.novasphere.dev."
VIEWERS = ("vncviewer", "remote-viewer")


def register(cli: click.Group) -> None:
    cli.add_command(console)
    cli.add_command(vnc)


def _open(session: Any, name: str, protocol: str, take_over: bool) -> Any:
    """A WebSocket to the VM's console, opened with a fresh one-time ticket."""
    from websockets.exceptions import InvalidHandshake, InvalidStatus
    from websockets.sync.client import connect

    from novasphere.v1 import console_service_pb2
    from novasphere.v1.console_service_pb2_grpc import ConsoleServiceStub

    link = session.call(
        ConsoleServiceStub(session.channel).CreateConsoleSession,
        console_service_pb2.CreateConsoleSessionRequest(
            name=name,
            namespace=session.namespace,
            protocol=console_service_pb2.ConsoleProtocol.Value(protocol),
            take_over=take_over,
        ),
    )
    try:
        return connect(
            link.console_url,
            subprotocols=[TICKET_PROTOCOL + link.ticket],
            ssl=_tls(session.context) if link.console_url.startswith("wss:") else None,
            max_size=None,
            open_timeout=15,
        )
    except InvalidStatus as error:
        body = error.response.body.decode(errors="replace") if error.response.body else ""
        raise errors.VmctlError(f"the console refused: HTTP {error.response.status_code} {body[:300]}") from error
    except (InvalidHandshake, OSError) as error:
        raise errors.VmctlError(
            f"cannot open the console at {link.console_url}: {error}", errors.UNAVAILABLE
        ) from error


def _tls(context: Any) -> ssl.SSLContext:
    if context.insecure_skip_tls_verify:
        unverified = ssl.create_default_context()
        unverified.check_hostname = False
        unverified.verify_mode = ssl.CERT_NONE
        return unverified
    return ssl.create_default_context(cafile=context.certificate_authority or None)


def _why(socket_: Any) -> str:
    code = socket_.close_code
    reason = socket_.close_reason or {1000: "closed", 1006: "the connection was lost"}.get(code or 0, "")
    return f"{reason} ({code})" if code else reason or "closed"


@click.command()
@click.argument("name")
@namespaced
@click.option("--take-over", is_flag=True, help="Take the console from whoever holds it.")
@pass_state
def console(state: State, name: str, namespace: str, take_over: bool) -> None:
    """The VM's serial console in this terminal. Ctrl-] leaves."""
    from websockets.exceptions import ConnectionClosed

    session = state.session(namespace)
    ws = _open(session, name, "SERIAL", take_over)
    stdin = sys.stdin.fileno()
    restore = _raw(stdin)
    print(f"Connected to {session.namespace}/{name}'s serial console; Ctrl-] leaves.\r", file=sys.stderr)

    left = threading.Event()

    def forward_keys() -> None:
        with contextlib.suppress(ConnectionClosed, OSError):
            while data := os.read(stdin, 1024):
                if ESCAPE in data:
                    before = data.split(ESCAPE, 1)[0]
                    if before:
                        ws.send(before)
                    left.set()
                    break
                ws.send(data)
        ws.close(1000, "closed by the client")

    threading.Thread(target=forward_keys, daemon=True).start()
    out = sys.stdout.buffer
    try:
        for message in ws:
            out.write(message if isinstance(message, bytes) else message.encode())
            out.flush()
    except ConnectionClosed:
        pass
    finally:
        restore()
    print(f"\r\n[console closed: {'you left with Ctrl-]' if left.is_set() else _why(ws)}]", file=sys.stderr)


def _raw(fd: int) -> Any:
    """Puts a terminal in raw mode (keys go to the guest as typed); returns how to restore it."""
    if not os.isatty(fd):
        return lambda: None
    import termios
    import tty

    saved = termios.tcgetattr(fd)
    tty.setraw(fd)
    return lambda: termios.tcsetattr(fd, termios.TCSADRAIN, saved)


@click.command()
@click.argument("name")
@namespaced
@click.option("--port", default=0, help="The local port to listen on (default: any free one).")
@click.option("--proxy-only", is_flag=True, help="Only listen and print the port (for any VNC viewer).")
@click.option("--take-over", is_flag=True, help="Take the console from whoever holds it.")
@pass_state
def vnc(state: State, name: str, namespace: str, port: int, proxy_only: bool, take_over: bool) -> None:
    """Proxy a local port (127.0.0.1) to the VM's screen; starts vncviewer or remote-viewer when one is installed.
    Each viewer connection opens a console session of its own. Ctrl-C stops."""
    session = state.session(namespace)
    listener = socket.create_server(("127.0.0.1", port))
    bound = listener.getsockname()[1]
    print(f'{{"port": {bound}}}' if proxy_only else f"VNC proxy for {name} on 127.0.0.1:{bound}", flush=True)
    viewer = None if proxy_only else next((shutil.which(v) for v in VIEWERS if shutil.which(v)), None)
    if viewer:
        target = f"vnc://127.0.0.1:{bound}" if viewer.endswith("remote-viewer") else f"127.0.0.1::{bound}"
        subprocess.Popen([viewer, target])
    elif not proxy_only:
        print(f"No VNC viewer found ({', '.join(VIEWERS)}): connect one to 127.0.0.1:{bound}", file=sys.stderr)
    with listener:
        while True:
            client, _ = listener.accept()
            threading.Thread(target=_pipe, args=(session, name, take_over, client), daemon=True).start()


def _pipe(session: Any, name: str, take_over: bool, client: socket.socket) -> None:
    from websockets.exceptions import ConnectionClosed

    with client:
        try:
            ws = _open(session, name, "VNC", take_over)
        except errors.VmctlError as error:
            print(f"error: {error.message}", file=sys.stderr)
            return

        def upstream() -> None:
            with contextlib.suppress(ConnectionClosed, OSError):
                while data := client.recv(65536):
                    ws.send(data)
            ws.close(1000, "closed by the client")

        threading.Thread(target=upstream, daemon=True).start()
        with contextlib.suppress(ConnectionClosed, OSError):
            for message in ws:
                client.sendall(message if isinstance(message, bytes) else message.encode())
        print(f"VNC connection closed: {_why(ws)}", file=sys.stderr)
