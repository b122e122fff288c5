"""Binding a listener's unix socket: a file a killed process left is taken over, a live one or a non-socket is not;
the console URL of a call that bypassed Envoy names the socket."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from server.config import HostPort, UnixSocket
from server.transport import listeners


def test_a_socket_file_nothing_listens_on_is_removed(tmp_path: Path) -> None:
    path = tmp_path / "grpc.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as left_behind:
        left_behind.bind(str(path))

    listeners.claim(path)

    assert not path.exists()


def test_a_live_socket_or_another_file_is_refused_by_name(tmp_path: Path) -> None:
    live = tmp_path / "live.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as holder:
        holder.bind(str(live))
        holder.listen()
        with pytest.raises(SystemExit, match=f"cannot listen on {live}: another process listens there"):
            listeners.claim(live)
    assert live.exists()

    other = tmp_path / "notes.txt"
    other.write_text("keep me")
    with pytest.raises(SystemExit, match="the file there is not a socket"):
        listeners.claim(other)
    assert other.read_text() == "keep me"


def test_the_direct_console_url_names_the_port_or_the_socket() -> None:
    assert listeners.direct_url("ws", HostPort("127.0.0.1", 0), 41000) == "ws://127.0.0.1:41000"
    assert listeners.direct_url("ws", HostPort("::1", 0), 41000) == "ws://[::1]:41000"
    assert (
        listeners.direct_url("ws", UnixSocket(Path("/run/novasphere/console.sock")), None)
        == "ws+unix://%2Frun%2Fnovasphere%2Fconsole.sock"
    )
