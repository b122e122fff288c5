"""The NovaSphere API on top of a local control plane: CRDs and RBAC applied, the API server running as its own
ServiceAccount (never the admin certificate), and Envoy in front. Used by `make run` and the test fixtures."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import http.client
import json
import os
import ssl
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import kubernetes.client
import kubernetes.config
from grpc_health.v1 import health_pb2

from devcluster import kubeconfig, manifests, pki, procs
from devcluster.controlplane import ClusterInfo
from novasphere_envoy import config as envoy_config
from novasphere_envoy import launch, local_http

if TYPE_CHECKING:
    import httpx

REPO_ROOT = manifests.REPO_ROOT
DESCRIPTOR = REPO_ROOT / "gen" / "descriptor" / "novasphere.binpb"
API_NAMESPACE = "novasphere-system"
API_SERVICE_ACCOUNT = "novasphere-api"
API_USER = f"system:serviceaccount:{API_NAMESPACE}:{API_SERVICE_ACCOUNT}"
TOKEN_SECONDS = 24 * 3600
READY_TIMEOUT = 60.0
WEB_BUNDLE = REPO_ROOT / "web" / "dist"
"""The web console, as `make web` builds it; every API server of the stack serves it."""
DEV_HSTS_MAX_AGE = datetime.timedelta(minutes=5)
LOCAL_REQUESTS_PER_SECOND = 100_000
ANY_LOOPBACK_PORT = local_http.HostPort("127.0.0.1", 0)
SOCKET_NAMES = ("grpc", "admin", "console")
"""The API server's unix sockets in a pod's socket folder: `<name>.sock`."""
VITE_ORIGINS = ("http://localhost:5173", "http://127.0.0.1:5173")
"""Vite's dev server (`make web-dev`), which `make run` lets call the API from the browser."""


@dataclass(frozen=True)
class Ports:
    """Where the stack listens, all on 127.0.0.1; each process binds port 0 and reports what it got."""

    envoy: int
    envoy_admin: int
    grpc: int
    metrics: int
    console: int


@dataclass(frozen=True)
class Edge:
    """Envoy's public listener as a client reaches it: HTTPS, gRPC over TLS and wss:// checked against the edge CA, or
    plain HTTP when the listener serves no TLS."""

    port: int
    ca_cert: Path | None
    host: str = "127.0.0.1"

    @property
    def target(self) -> str:
        """host:port, for gRPC clients and grpcurl."""
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{'https' if self.ca_cert else 'http'}://{self.target}"

    @property
    def ws_url(self) -> str:
        return f"{'wss' if self.ca_cert else 'ws'}://{self.target}"

    def ssl_context(self) -> ssl.SSLContext:
        """Trusts the edge CA only (not the system's CAs): a test that reaches the listener proves its certificate."""
        if self.ca_cert is None:
            raise ValueError("this listener serves plain HTTP")
        return ssl.create_default_context(cafile=str(self.ca_cert))

    def verify(self) -> ssl.SSLContext | bool:
        """httpx's `verify=` for this listener."""
        return self.ssl_context() if self.ca_cert else False

    def channel(self, options: Sequence[tuple[str, Any]] = ()) -> grpc.Channel:
        if self.ca_cert is None:
            return grpc.insecure_channel(self.target, options=options)
        credentials = grpc.ssl_channel_credentials(root_certificates=self.ca_cert.read_bytes())
        return grpc.secure_channel(self.target, credentials, options=options)

    def aio_channel(self, options: Sequence[tuple[str, Any]] = ()) -> grpc.aio.Channel:
        if self.ca_cert is None:
            return grpc.aio.insecure_channel(self.target, options=options)
        credentials = grpc.ssl_channel_credentials(root_certificates=self.ca_cert.read_bytes())
        return grpc.aio.secure_channel(self.target, credentials, options=options)

    def http_client(self, **options: Any) -> httpx.Client:
        import httpx  # a development dependency: only tests and benchmarks ask for a client

        return httpx.Client(base_url=self.url, verify=self.verify(), **{"timeout": 30, **options})


@dataclass(frozen=True)
class ApiServer:
    """A running API server and the ports it bound."""

    process: procs.Process
    grpc: int
    admin: int
    console: int

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.grpc}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.admin}/metrics"


@dataclass(frozen=True)
class SocketApiServer:
    """A running API server listening on unix sockets only, as in a pod on a hostNetwork node."""

    process: procs.Process
    grpc: local_http.UnixSocket
    admin: local_http.UnixSocket
    console: local_http.UnixSocket

    @property
    def target(self) -> str:
        """For a gRPC channel."""
        return str(self.grpc)


@dataclass(frozen=True)
class Envoy:
    """A running Envoy, its public listener and its admin interface."""

    process: procs.Process
    edge: Edge
    admin: local_http.Address


@dataclass(frozen=True)
class Stack:
    cluster: ClusterInfo
    ports: Ports
    api: ApiServer
    edge: Edge
    tls: pki.EdgePki
    """The edge CA and serving certificate, for more Envoys a test starts beside the stack's."""
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
        return self.edge.target

    @property
    def http(self) -> str:
        return self.edge.url

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


def start_api_server(*, api_kubeconfig: Path, log_path: Path, extra_env: Mapping[str, str] | None = None) -> ApiServer:
    """`python -m server` with its settings, on ports of its own choosing; returns once its health service says
    SERVING."""
    ports_file = log_path.with_name(log_path.name + ".ports.json")
    ports_file.unlink(missing_ok=True)
    listeners = {
        "NOVASPHERE_GRPC_LISTEN": "127.0.0.1:0",
        "NOVASPHERE_ADMIN_LISTEN": "127.0.0.1:0",
        "NOVASPHERE_CONSOLE_LISTEN": "127.0.0.1:0",
        "NOVASPHERE_PORTS_FILE": str(ports_file),
    }
    process = _spawn_api_server(api_kubeconfig, log_path, {**listeners, **(extra_env or {})})
    procs.wait_until(ports_file.exists, timeout=READY_TIMEOUT, what="the API server's ports", processes=[process])
    ports = json.loads(ports_file.read_text())
    server = ApiServer(process, grpc=ports["grpc"], admin=ports["admin"], console=ports["console"])
    procs.wait_until(
        lambda: serving(server.target), timeout=READY_TIMEOUT, what="API server health", processes=[process]
    )
    return server


def start_socket_api_server(
    *, api_kubeconfig: Path, log_path: Path, socket_dir: Path, extra_env: Mapping[str, str] | None = None
) -> SocketApiServer:
    """`python -m server` listening on unix sockets in `socket_dir` only (`SOCKET_NAMES`, as a pod's); returns once
    its health service says SERVING."""
    grpc, admin, console = (local_http.UnixSocket(str(socket_dir / f"{name}.sock")) for name in SOCKET_NAMES)
    listeners = {
        "NOVASPHERE_GRPC_LISTEN": str(grpc),
        "NOVASPHERE_ADMIN_LISTEN": str(admin),
        "NOVASPHERE_CONSOLE_LISTEN": str(console),
    }
    process = _spawn_api_server(api_kubeconfig, log_path, {**listeners, **(extra_env or {})})
    server = SocketApiServer(process, grpc=grpc, admin=admin, console=console)
    procs.wait_until(
        lambda: serving(server.target), timeout=READY_TIMEOUT, what="API server health", processes=[process]
    )
    return server


def _spawn_api_server(api_kubeconfig: Path, log_path: Path, settings: Mapping[str, str]) -> procs.Process:
    """`python -m server` with our environment, without NOVASPHERE_* variables, plus the stack's settings, plus
    `settings` (listeners and a test's own)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("NOVASPHERE_")}
    env.update(
        {
            "NOVASPHERE_KUBECONFIG": str(api_kubeconfig),
            "NOVASPHERE_REFLECTION": "true",
            # No load balancer in front of a local server has to be given time to move traffic away.
            "NOVASPHERE_DRAIN_SECONDS": "0",
            # Calls without credentials run as the development identity: the development stack's clients (and most
            # tests) need no login. Tests of authentication start servers with it off.
            "NOVASPHERE_DEV_IDENTITY": "true",
            "NOVASPHERE_WEB_ROOT": str(WEB_BUNDLE),
            **settings,
        }
    )
    return procs.spawn("api-server", [sys.executable, "-m", "server"], log_path=log_path, env=env, cwd=REPO_ROOT)


def envoy_settings(
    *,
    grpc: int | local_http.Address,
    console: int | local_http.Address,
    tls: pki.EdgePki | None,
    listen_port: int = 0,
    admin: local_http.Address = ANY_LOOPBACK_PORT,
    cors_allowed_origins: tuple[str, ...] = (),
    **options: Any,
) -> envoy_config.SidecarSettings:
    """Envoy in front of an API server's `grpc` and `console` listeners (a port on 127.0.0.1, or an address);
    `tls` None serves plain HTTP. `options`: any other `SidecarSettings` field."""
    return envoy_config.SidecarSettings(
        listen_host="127.0.0.1",
        listen_port=listen_port,
        admin=admin,
        grpc_upstream=_loopback(grpc),
        console_upstream=_loopback(console),
        descriptor_path=DESCRIPTOR,
        tls=None if tls is None else envoy_config.TlsFiles(tls.serving_cert, tls.serving_key),
        cors_allowed_origins=cors_allowed_origins,
        **{
            # Browsers keep HSTS for a host name on every port: a year of it on localhost would break other servers.
            "hsts_max_age": DEV_HSTS_MAX_AGE,
            # Every client of a local stack (tests, load generators, benchmarks) comes from one address, 127.0.0.1.
            "requests_per_second_per_ip": LOCAL_REQUESTS_PER_SECOND,
            **options,
        },
    )


def _loopback(listener: int | local_http.Address) -> local_http.Address:
    return local_http.HostPort("127.0.0.1", listener) if isinstance(listener, int) else listener


def start_front(
    api: ApiServer | SocketApiServer,
    *,
    tls: pki.EdgePki | None,
    state_dir: Path,
    name: str = "envoy",
    alter: Callable[[dict[str, Any]], None] | None = None,
    **options: Any,
) -> Envoy:
    """An Envoy in front of `api` (TLS with `tls`, plain HTTP for None); `options` as for `envoy_settings`, `alter`
    as for `start_envoy`."""
    settings = envoy_settings(grpc=api.grpc, console=api.console, tls=tls, **options)
    return start_envoy(
        settings, state_dir=state_dir, name=name, ca_cert=None if tls is None else tls.ca_cert, alter=alter
    )


def start_envoy(
    settings: envoy_config.SidecarSettings,
    *,
    state_dir: Path,
    name: str = "envoy",
    ca_cert: Path | None = None,
    alter: Callable[[dict[str, Any]], None] | None = None,
) -> Envoy:
    """Envoy with `settings`; returns once its admin interface reports ready, with the port its listener bound (any
    free one for `listen_port` 0). `ca_cert`: the CA of the listener's certificate, for clients. `alter`: changes
    the rendered bootstrap (a dict, camelCase keys) in place before Envoy reads it: benchmarks measure what a
    filter or setting costs by running without it."""
    config_path = state_dir / f"{name}.json"
    rendered = envoy_config.render_json(settings)
    if alter is not None:
        bootstrap = json.loads(rendered)
        alter(bootstrap)
        rendered = json.dumps(bootstrap, indent=2, sort_keys=True) + "\n"
    config_path.write_text(rendered)
    admin_file = state_dir / f"{name}.admin-address"
    admin_file.unlink(missing_ok=True)
    process = procs.spawn(
        name,
        launch.command(config_path, admin_address_path=admin_file),
        log_path=state_dir / "logs" / f"{name}.log",
    )
    procs.wait_until(
        lambda: bool(admin_file.exists() and admin_file.read_text().strip()),
        timeout=READY_TIMEOUT,
        what="Envoy's admin address",
        processes=[process],
    )
    admin = settings.admin
    if isinstance(admin, local_http.HostPort):  # port 0 asked for any: the one Envoy bound
        admin = local_http.HostPort(admin.host, int(admin_file.read_text().strip().rpartition(":")[2]))
    procs.wait_until(lambda: envoy_ready(admin), timeout=READY_TIMEOUT, what="Envoy /ready", processes=[process])
    return Envoy(process, Edge(listener_port(admin, "api"), ca_cert), admin)


def listener_port(admin: local_http.Address, name: str) -> int:
    """The port an Envoy's listener `name` bound (any free one when configured with port 0)."""
    _, listeners = local_http.request(admin, "/listeners?format=json", timeout=5)
    for status in json.loads(listeners)["listener_statuses"]:
        if status["name"] == name:
            return int(status["local_address"]["socket_address"]["port_value"])
    raise LookupError(f"Envoy has no listener {name!r}")


def envoy_ready(admin: local_http.Address) -> bool:
    """Whether the Envoy with this admin address answers /ready with 200 (LIVE)."""
    try:
        status, _ = local_http.request(admin, "/ready", timeout=2)
    except (OSError, http.client.HTTPException):
        return False
    return status == 200


@contextlib.contextmanager
def running(
    cluster: ClusterInfo,
    state_dir: Path,
    *,
    envoy_port: int = 0,
    edge_pki: Path | None = None,
    cors_allowed_origins: tuple[str, ...] = (),
    cors_allow_served_origin: bool = False,
    api_env: Mapping[str, str] | None = None,
    sim_speed: float = 1.0,
) -> Iterator[Stack]:
    """CRDs and RBAC installed; the simulator, the API server and Envoy (TLS with the edge CA in `edge_pki`, default
    a new one in `state_dir`) running; all stopped on exit. `envoy_port`: the public port wanted (0: any free one;
    a wanted port already taken falls back to any). `cors_allow_served_origin`: browsers may call the API from the
    listener's own origins too (`served_origins`), besides `cors_allowed_origins`."""
    state_dir.mkdir(parents=True, exist_ok=True)
    install(cluster)
    api_kubeconfig = service_account_kubeconfig(cluster, state_dir / "api.kubeconfig")
    tls = pki.edge(edge_pki or state_dir / "edge-pki")
    with procs.stopping([]) as started:
        started.append(start_simulator(cluster, state_dir=state_dir, speed=sim_speed, prometheus=True))
        prometheus_url = prometheus_url_file(state_dir).read_text().strip()
        api = start_api_server(
            api_kubeconfig=api_kubeconfig,
            log_path=state_dir / "logs" / "api.log",
            extra_env={
                "NOVASPHERE_PROMETHEUS_URL": prometheus_url,
                # Consoles: the API server takes web origins only (an app:// renderer is for CORS alone).
                "NOVASPHERE_CONSOLE_ORIGINS": ",".join(
                    o for o in cors_allowed_origins if o.startswith(("http://", "https://"))
                ),
                **(api_env or {}),
            },
        )
        started.append(api.process)

        def origins(port: int) -> tuple[str, ...]:
            return (*cors_allowed_origins, *(served_origins(port) if cors_allow_served_origin else ()))

        # The served origins name the port, so it is chosen here rather than by Envoy.
        port = envoy_port or (procs.free_ports(1)[0] if cors_allow_served_origin else 0)
        settings = envoy_settings(
            grpc=api.grpc, console=api.console, tls=tls, listen_port=port, cors_allowed_origins=origins(port)
        )
        try:
            envoy = start_envoy(settings, state_dir=state_dir, ca_cert=tls.ca_cert)
        except procs.ProcessError:
            if not envoy_port:
                raise
            # The wanted port is taken (the log says "Address already in use"): any free one will do.
            port = procs.free_ports(1)[0] if cors_allow_served_origin else 0
            retry = dataclasses.replace(settings, listen_port=port, cors_allowed_origins=origins(port))
            envoy = start_envoy(retry, state_dir=state_dir, ca_cert=tls.ca_cert)
        started.append(envoy.process)
        yield Stack(
            cluster=cluster,
            ports=Ports(
                envoy=envoy.edge.port,
                envoy_admin=_port(envoy.admin),
                grpc=api.grpc,
                metrics=api.admin,
                console=api.console,
            ),
            api=api,
            edge=envoy.edge,
            tls=tls,
            api_kubeconfig=api_kubeconfig,
            processes=tuple(started),
            prometheus_url=prometheus_url,
        )


def _port(address: local_http.Address) -> int:
    if not isinstance(address, local_http.HostPort):
        raise TypeError(f"expected a TCP address, got {address}")
    return address.port


def served_origins(port: int) -> tuple[str, str]:
    """The origins of the web console the listener on `port` serves, as a browser names them."""
    return f"https://127.0.0.1:{port}", f"https://localhost:{port}"


def serving(target: str) -> bool:
    """Whether the API server at `target` (host:port) answers the health check with SERVING."""
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
