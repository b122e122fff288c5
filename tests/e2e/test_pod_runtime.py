"""The API server and its Envoy as they run in a pod on a hostNetwork node (issue 23 §3): the API's three listeners on
unix sockets in a shared folder (the pod's emptyDir), Envoy's upstreams and admin interface there too, several Envoys
sharing the public port (SO_REUSEPORT), exec probes and the preStop drain as the pod's commands run them, and
`python -m novasphere_envoy serve` replacing itself with the real Envoy. Real processes, real Envoy, the session's
control plane."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import pytest

from devcluster import procs
from devcluster import stack as devstack
from novasphere.v1 import wukong_service_pb2 as service_pb2
from novasphere.v1.wukong_service_pb2_grpc import WukongServiceStub
from novasphere_envoy import launch, local_http
from tests.conftest import API_ENV
from tests.e2e.test_doors import WEBSOCKET_UPGRADE

PROBE_TIMEOUT = 30.0


@dataclass(frozen=True)
class Pod:
    api: devstack.SocketApiServer
    envoy: devstack.Envoy
    sockets: Path
    state: Path


@contextlib.contextmanager
def socket_folder() -> Iterator[Path]:
    """A short folder for unix sockets (a socket path has at most 107 bytes; pytest's tmp_path can be longer)."""
    folder = Path(tempfile.mkdtemp(prefix="ns-pod-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def leave_stale_socket(path: Path) -> None:
    """What a SIGKILLed process leaves behind: a socket file nothing listens on."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind(str(path))


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *argv], capture_output=True, text=True, timeout=60, check=False, cwd=devstack.REPO_ROOT
    )


def server_probe(probe: str, admin: local_http.Address) -> subprocess.CompletedProcess[str]:
    return run("-m", "server.probe", probe, "--admin", str(admin))


def envoy_probe(admin: local_http.Address) -> subprocess.CompletedProcess[str]:
    return run("-m", "novasphere_envoy.probe", "--admin", str(admin))


@pytest.fixture(scope="module")
def pod(stack: devstack.Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pod]:
    state = tmp_path_factory.mktemp("pod")
    with socket_folder() as sockets:
        for name in devstack.SOCKET_NAMES:  # a restarted container finds its predecessor's sockets
            leave_stale_socket(sockets / f"{name}.sock")
        api = devstack.start_socket_api_server(
            api_kubeconfig=stack.api_kubeconfig, log_path=state / "api.log", socket_dir=sockets, extra_env=API_ENV
        )
        with procs.stopping([api.process]):
            envoy = devstack.start_front(
                api, tls=stack.tls, state_dir=state, admin=local_http.UnixSocket(str(sockets / "envoy-admin.sock"))
            )
            with procs.stopping([envoy.process]):
                yield Pod(api, envoy, sockets, state)


def test_the_api_listens_on_unix_sockets_only_for_its_owner_and_group(pod: Pod) -> None:
    for name in devstack.SOCKET_NAMES:
        assert (pod.sockets / f"{name}.sock").stat().st_mode & 0o777 == 0o660, name
    listening = {line.split()[-1] for line in Path(f"/proc/{pod.api.process.pid}/net/unix").read_text().splitlines()}
    assert {str(pod.sockets / f"{name}.sock") for name in devstack.SOCKET_NAMES} <= listening


def test_grpc_rest_and_the_console_route_through_envoy_over_unix_sockets(pod: Pod, namespace: str) -> None:
    with pod.envoy.edge.channel() as channel:
        listed = WukongServiceStub(channel).ListWukongs(service_pb2.ListWukongsRequest(namespace=namespace))
    assert list(listed.wukongs) == []

    with pod.envoy.edge.http_client() as http:
        rest = http.get("/api/v1/wukongs", params={"namespace": namespace})
        assert rest.status_code == 200, rest.text
        assert rest.json().get("wukongs", []) == []

        # The console listener answers the /ws/ route itself: a WebSocket without a ticket is refused there.
        console = http.get(
            "/ws/v1/consoles/console-0000",
            headers=WEBSOCKET_UPGRADE,
        )
    assert console.status_code == 401, console.text
    assert "ticket" in console.json()["message"]


def test_a_call_straight_to_the_grpc_socket_is_served(pod: Pod) -> None:
    with grpc.insecure_channel(pod.api.target) as channel:
        listed = WukongServiceStub(channel).ListWukongs(service_pb2.ListWukongsRequest(), timeout=10)
    assert listed is not None


def test_the_probes_pass_over_unix_sockets(pod: Pod) -> None:
    for probe in ("live", "ready"):
        done = server_probe(probe, pod.api.admin)
        assert done.returncode == 0, done.stderr
    done = envoy_probe(pod.envoy.admin)
    assert done.returncode == 0, done.stderr


def test_the_probes_fail_with_a_reason_where_nothing_answers(pod: Pod) -> None:
    nothing = local_http.UnixSocket(str(pod.sockets / "nothing.sock"))
    done = server_probe("ready", nothing)
    assert done.returncode == 1
    assert done.stderr.startswith("server.probe: /readyz at unix:")
    assert "did not answer" in done.stderr
    done = envoy_probe(local_http.HostPort("127.0.0.1", procs.free_ports(1)[0]))
    assert done.returncode == 1
    assert "did not answer" in done.stderr
    refused = run("-m", "server.probe", "ready", "--admin", "unix:relative.sock")
    assert refused.returncode == 2
    assert "absolute path" in refused.stderr


def test_envoys_share_the_public_port_and_one_serves_on_when_the_other_stops(pod: Pod, stack: devstack.Stack) -> None:
    port = procs.free_ports(1)[0]
    first = devstack.start_front(pod.api, tls=None, state_dir=pod.state, name="shared-1", listen_port=port)
    with procs.stopping([first.process]):
        second = devstack.start_front(pod.api, tls=None, state_dir=pod.state, name="shared-2", listen_port=port)
        with procs.stopping([second.process]):
            assert first.edge.port == second.edge.port == port
            for _ in range(24):  # a new connection each: the kernel spreads them over the Envoys sharing the port
                assert httpx.get(f"{first.edge.url}/api/v1/wukongs", timeout=30).status_code == 200
            accepted = [connections(envoy.admin) for envoy in (first, second)]
            assert all(count > 0 for count in accepted), accepted
        for _ in range(8):
            assert httpx.get(f"{first.edge.url}/api/v1/wukongs", timeout=30).status_code == 200


def connections(admin: local_http.Address) -> int:
    status, text = local_http.request(admin, "/stats?filter=^http.ingress.downstream_cx_total$", timeout=5)
    assert status == 200, text
    return int(text.partition(": ")[2])


def test_serve_execs_envoy_which_drains_over_its_unix_admin_socket(pod: Pod) -> None:
    port = procs.free_ports(1)[0]
    admin = local_http.UnixSocket(str(pod.sockets / "served-admin.sock"))
    config_dir = pod.state / "served"
    config_dir.mkdir()
    command = [
        *("-m", "novasphere_envoy", "serve", "--listen", f"127.0.0.1:{port}", "--plaintext"),
        *("--descriptor", str(devstack.DESCRIPTOR), "--admin", str(admin), "--config-dir", str(config_dir)),
        *("--grpc-upstream", str(pod.api.grpc), "--console-upstream", str(pod.api.console)),
    ]
    served = procs.spawn("served-envoy", [sys.executable, *command], log_path=pod.state / "served.log")
    with procs.stopping([served]):
        procs.wait_until(
            lambda: envoy_probe(admin).returncode == 0,
            timeout=PROBE_TIMEOUT,
            what="the served Envoy's probe",
            processes=[served],
        )
        assert os.readlink(f"/proc/{served.pid}/exe") == os.path.realpath(launch.envoy_binary())
        assert (config_dir / "envoy.json").is_file()
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/wukongs", timeout=30).status_code == 200

        drained = run("-m", "novasphere_envoy.drain", "--admin", str(admin), "--timeout", "30")
        assert drained.returncode == 0, drained.stderr
        with pytest.raises(httpx.ConnectError):  # the drained listener is closed
            httpx.get(f"http://127.0.0.1:{port}/api/v1/wukongs", timeout=30)

        served.popen.send_signal(signal.SIGTERM)
        assert served.popen.wait(30) == 0, served.log_tail()
    assert envoy_probe(admin).returncode == 1


def test_a_draining_then_stopped_server_fails_its_readiness_then_liveness(
    stack: devstack.Stack, tmp_path: Path
) -> None:
    with socket_folder() as sockets:
        api = devstack.start_socket_api_server(
            api_kubeconfig=stack.api_kubeconfig,
            log_path=tmp_path / "api.log",
            socket_dir=sockets,
            extra_env={**API_ENV, "NOVASPHERE_DRAIN_SECONDS": "10"},
        )
        with procs.stopping([api.process]):
            assert server_probe("ready", api.admin).returncode == 0
            api.process.popen.send_signal(signal.SIGTERM)
            procs.wait_until(
                lambda: server_probe("ready", api.admin).returncode == 1, timeout=PROBE_TIMEOUT, what="not ready"
            )
            # within the 10 s drain delay: not ready, still alive
            assert "answered 503: not ready: the replica is draining" in server_probe("ready", api.admin).stderr
            assert server_probe("live", api.admin).returncode == 0
            assert api.process.popen.wait(60) == 0, api.process.log_tail()
        dead = server_probe("live", api.admin)
        assert dead.returncode == 1
        assert "did not answer" in dead.stderr


def test_a_socket_a_live_process_listens_on_is_not_taken_over(stack: devstack.Stack) -> None:
    with socket_folder() as sockets, socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as holder:
        holder.bind(str(sockets / "grpc.sock"))
        holder.listen()
        env = {key: value for key, value in os.environ.items() if not key.startswith("NOVASPHERE_")}
        env |= {
            "NOVASPHERE_KUBECONFIG": str(stack.api_kubeconfig),
            "NOVASPHERE_GRPC_LISTEN": f"unix:{sockets / 'grpc.sock'}",
            "NOVASPHERE_ADMIN_LISTEN": "127.0.0.1:0",
            "NOVASPHERE_CONSOLE_LISTEN": "127.0.0.1:0",
        }
        done = subprocess.run(
            [sys.executable, "-m", "server"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            cwd=devstack.REPO_ROOT,
        )
    assert done.returncode == 1
    assert f"cannot listen on {sockets / 'grpc.sock'}: another process listens there" in done.stderr
