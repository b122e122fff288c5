"""Starts etcd, kube-apiserver and kube-controller-manager on free loopback ports and stops them in order.

This runs inside the supervisor process (`python -m devcluster serve`); use `devcluster.running()` or
`make cluster-up` rather than calling it directly.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import ssl
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from devcluster import binaries, kubeconfig, pki, procs

SERVICE_CLUSTER_IP_RANGE = "10.96.0.0/12"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
# Controllers that need a cloud provider or a node IPAM/lifecycle we do not have (names as in 1.32; a wrong name
# aborts start-up).
DISABLED_CONTROLLERS = (
    "node-ipam-controller",
    "node-lifecycle-controller",
    "cloud-node-lifecycle-controller",
    "node-route-controller",
    "service-lb-controller",
)
# Far above the defaults of 20/30, which throttle the garbage collector once there are thousands of objects.
CONTROLLER_MANAGER_QPS = 500
CONTROLLER_MANAGER_BURST = 1000
TMPFS = Path("/dev/shm")  # noqa: S108 - a private mkdtemp folder under it, owner-only
TMPFS_PREFIX = "novasphere-etcd-"
START_TIMEOUT = 90.0
AUDIT_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: None
  users: ["system:kube-controller-manager", "system:apiserver", "novasphere-simulator"]
- level: None
  resources: [{group: coordination.k8s.io, resources: [leases]}, {group: "", resources: [events]}]
- level: None
  nonResourceURLs: ["/readyz*", "/healthz*", "/livez*"]
- level: Metadata
"""


@dataclass(frozen=True)
class ClusterInfo:
    """Where a running control plane is, as written to `<state dir>/cluster.json`."""

    state_dir: str
    server: str
    kubeconfig: str
    """The admin's (system:masters): for people, tests arranging data, and installing manifests."""
    simulator_kubeconfig: str
    """The simulator's own identity (system:masters too, left out of the audit log)."""
    pki_dir: str
    audit_log: str
    kubernetes_version: str
    supervisor_pid: int
    pids: dict[str, int]

    @property
    def pki(self) -> pki.Pki:
        return pki.Pki(Path(self.pki_dir))

    def write(self, path: Path) -> None:
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(asdict(self), indent=2))
        temporary.rename(path)

    @classmethod
    def read(cls, path: Path) -> ClusterInfo:
        return cls(**json.loads(path.read_text()))


@contextlib.contextmanager
def running(state_dir: Path, programs: binaries.Binaries) -> Iterator[tuple[ClusterInfo, list[procs.Process]]]:
    """Runs the control plane with its files in `state_dir`; stops every process (and wipes etcd) on exit."""
    with _running(state_dir, programs) as plane:
        yield plane.info, plane.processes


@dataclass
class ControlPlane:
    """A running control plane: what a test needs to take kube-apiserver away and bring it back."""

    info: ClusterInfo
    processes: list[procs.Process]
    """etcd, kube-apiserver, kube-controller-manager, in start order."""
    _start_apiserver: Callable[[int], procs.Process]

    @property
    def apiserver(self) -> procs.Process:
        return self.processes[1]

    def restart_apiserver(self, *, down: Callable[[], None] = lambda: None) -> None:
        """Kills kube-apiserver (SIGKILL: no goodbye to its clients), runs `down()` while it is gone, then starts it
        again on the same port and the same etcd; returns once it is ready."""
        self.apiserver.popen.kill()
        self.apiserver.popen.wait()
        down()
        port = int(self.info.server.rpartition(":")[2])
        self.processes[1] = self._start_apiserver(port)


@contextlib.contextmanager
def running_in_process(state_dir: Path) -> Iterator[ControlPlane]:
    """A control plane owned by this process rather than a supervisor (it dies with this thread all the same), for a
    test that stops and starts kube-apiserver itself."""
    with _running(state_dir, binaries.ensure()) as plane:
        yield plane


@contextlib.contextmanager
def _running(state_dir: Path, programs: binaries.Binaries) -> Iterator[ControlPlane]:
    state_dir.mkdir(parents=True, exist_ok=True)
    logs = state_dir / "logs"
    keys = pki.generate(state_dir / "pki")
    audit_policy = state_dir / "audit-policy.yaml"
    audit_policy.write_text(AUDIT_POLICY)
    audit_log = logs / "audit.log"
    admin_tls = _client_tls(keys)

    with _etcd_data_dir() as data_dir, procs.stopping([]) as started:

        def start_etcd(ports: list[int]) -> tuple[procs.Process, int]:
            client, peer = ports
            etcd = procs.spawn(
                "etcd",
                [
                    str(programs.etcd),
                    "--name=devcluster",
                    f"--data-dir={data_dir}",
                    f"--listen-client-urls=http://127.0.0.1:{client}",
                    f"--advertise-client-urls=http://127.0.0.1:{client}",
                    f"--listen-peer-urls=http://127.0.0.1:{peer}",
                    f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
                    f"--initial-cluster=devcluster=http://127.0.0.1:{peer}",
                    "--unsafe-no-fsync",  # the data lives on tmpfs for the length of a run
                    "--log-level=warn",
                ],
                log_path=logs / "etcd.log",
            )
            with procs.stopped_on_failure(etcd):
                procs.wait_until(
                    lambda: procs.http_get(f"http://127.0.0.1:{client}/health") is not None,
                    timeout=START_TIMEOUT,
                    what="etcd /health",
                    processes=[etcd],
                )
            return etcd, client

        etcd, etcd_client = procs.on_free_ports(2, start_etcd)
        started.append(etcd)

        def start_apiserver(port: int) -> procs.Process:
            apiserver = procs.spawn(
                "kube-apiserver",
                [
                    str(programs.kube_apiserver),
                    f"--etcd-servers=http://127.0.0.1:{etcd_client}",
                    "--bind-address=127.0.0.1",
                    "--advertise-address=127.0.0.1",
                    f"--secure-port={port}",
                    f"--tls-cert-file={keys.apiserver_cert}",
                    f"--tls-private-key-file={keys.apiserver_key}",
                    f"--client-ca-file={keys.ca_cert}",
                    "--authorization-mode=Node,RBAC",
                    f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
                    f"--service-account-key-file={keys.service_account_public_key}",
                    f"--service-account-signing-key-file={keys.service_account_key}",
                    f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
                    # Endpoints refuse loopback addresses, so the `kubernetes` Service gets none rather than an error
                    # every few seconds.
                    "--endpoint-reconciler-type=none",
                    # Front proxy: the identity kube-apiserver forwards to aggregated API servers.
                    f"--requestheader-client-ca-file={keys.front_proxy_ca_cert}",
                    f"--requestheader-allowed-names={pki.FRONT_PROXY_CLIENT_NAME}",
                    "--requestheader-username-headers=X-Remote-User",
                    "--requestheader-group-headers=X-Remote-Group",
                    "--requestheader-extra-headers-prefix=X-Remote-Extra-",
                    f"--proxy-client-cert-file={keys.front_proxy_client_cert}",
                    f"--proxy-client-key-file={keys.front_proxy_client_key}",
                    f"--audit-policy-file={audit_policy}",
                    f"--audit-log-path={audit_log}",
                    "--audit-log-maxsize=100",
                    "--audit-log-maxbackup=1",
                    "--profiling=false",
                ],
                log_path=logs / "kube-apiserver.log",
            )
            with procs.stopped_on_failure(apiserver):
                procs.wait_until(
                    lambda: procs.http_get(f"https://127.0.0.1:{port}/readyz", admin_tls) == b"ok",
                    timeout=START_TIMEOUT,
                    what="kube-apiserver /readyz",
                    processes=[etcd, apiserver],
                )
            return apiserver

        apiserver, apiserver_port = procs.on_free_ports(1, lambda ports: (start_apiserver(ports[0]), ports[0]))
        started.append(apiserver)
        server = f"https://127.0.0.1:{apiserver_port}"

        def client_kubeconfig(name: str, user: str, cert: Path, key: Path) -> Path:
            return kubeconfig.write(
                state_dir / f"{name}.kubeconfig",
                server=server,
                ca_cert=keys.ca_cert,
                user=user,
                client_cert=cert,
                client_key=key,
            )

        admin_kubeconfig = client_kubeconfig("admin", "devcluster-admin", keys.admin_cert, keys.admin_key)
        controller_manager_kubeconfig = client_kubeconfig(
            "controller-manager",
            "system:kube-controller-manager",
            keys.controller_manager_cert,
            keys.controller_manager_key,
        )
        simulator_kubeconfig = client_kubeconfig(
            "simulator", pki.SIMULATOR_USER, keys.simulator_cert, keys.simulator_key
        )

        def start_controller_manager(ports: list[int]) -> procs.Process:
            controller_manager = procs.spawn(
                "kube-controller-manager",
                [
                    str(programs.kube_controller_manager),
                    f"--kubeconfig={controller_manager_kubeconfig}",
                    f"--authentication-kubeconfig={controller_manager_kubeconfig}",
                    f"--authorization-kubeconfig={controller_manager_kubeconfig}",
                    "--bind-address=127.0.0.1",
                    f"--secure-port={ports[0]}",
                    f"--service-account-private-key-file={keys.service_account_key}",
                    f"--root-ca-file={keys.ca_cert}",
                    f"--cluster-signing-cert-file={keys.ca_cert}",
                    f"--cluster-signing-key-file={keys.ca_key}",
                    "--use-service-account-credentials=true",
                    "--leader-elect=false",
                    f"--controllers=*,{','.join('-' + name for name in DISABLED_CONTROLLERS)}",
                    f"--kube-api-qps={CONTROLLER_MANAGER_QPS}",
                    f"--kube-api-burst={CONTROLLER_MANAGER_BURST}",
                    "--profiling=false",
                ],
                log_path=logs / "kube-controller-manager.log",
            )
            insecure = ssl.create_default_context()
            insecure.check_hostname = False
            insecure.verify_mode = ssl.CERT_NONE  # its self-signed serving cert; /healthz carries no secret
            with procs.stopped_on_failure(controller_manager):
                procs.wait_until(
                    lambda: procs.http_get(f"https://127.0.0.1:{ports[0]}/healthz", insecure) == b"ok",
                    timeout=START_TIMEOUT,
                    what="kube-controller-manager /healthz",
                    processes=[*started, controller_manager],
                )
            return controller_manager

        started.append(procs.on_free_ports(1, start_controller_manager))

        info = ClusterInfo(
            state_dir=str(state_dir),
            server=server,
            kubeconfig=str(admin_kubeconfig),
            simulator_kubeconfig=str(simulator_kubeconfig),
            pki_dir=str(keys.directory),
            audit_log=str(audit_log),
            kubernetes_version=programs.kubernetes_version,
            supervisor_pid=os.getpid(),
            pids={process.name: process.pid for process in started},
        )
        yield ControlPlane(info, started, start_apiserver)


@contextlib.contextmanager
def _etcd_data_dir() -> Iterator[Path]:
    """A data folder on tmpfs (etcd's fsyncs are the slowest part of a test run on disk), removed afterwards.

    A folder left by a run that was SIGKILLed is removed by the next run: each records the pid that owns it.
    """
    root = TMPFS if os.access(TMPFS, os.W_OK) else Path(tempfile.gettempdir())
    for stale in root.glob(f"{TMPFS_PREFIX}*"):
        owner = stale / "owner.pid"
        try:
            alive = procs.pid_alive(int(owner.read_text()))
        except (OSError, ValueError):
            alive = False
        if not alive:
            shutil.rmtree(stale, ignore_errors=True)
    directory = Path(tempfile.mkdtemp(prefix=TMPFS_PREFIX, dir=root))
    (directory / "owner.pid").write_text(str(os.getpid()))
    try:
        yield directory / "data"
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _client_tls(keys: pki.Pki) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(keys.ca_cert))
    context.load_cert_chain(str(keys.admin_cert), str(keys.admin_key))
    return context
