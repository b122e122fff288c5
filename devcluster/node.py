"""A real node for a devcluster control plane: containerd + runc (Debian), a kubelet and kube-scheduler (built from
the same Kubernetes module as kube-apiserver), so pods really run here.

    with devcluster.running(state) as cluster, node.running(cluster) as real:
        real.import_image(archive, "docker.io/novasphere/api:dev")
        ... pods with nodeSelector NODE_SELECTOR, hostNetwork, imagePullPolicy Never ...
        real.container_log("default", "my-pod", "main")

Nothing is pulled (no registry is reachable): images are imported from OCI archives; the pause image is a busybox one
made here unless `running(..., pause_image=archive)` brings another. The node has no pod network: its CNI
configuration holds only `loopback`, so pods use `hostNetwork` and all traffic stays on 127.0.0.0/8. The settings
are those verified by hand in `reference/real-node.md`. Identities: the kubelet is `system:node:<name>` in
`system:nodes` (the Node authorizer), the scheduler `system:kube-scheduler`, both with client certificates from the
cluster's CA.

Files live in one state folder (by default `<cluster state dir>/node`, see NodeLayout), containerd's sockets in a
short folder under REGISTRY, the node's cgroups under a root of their own, so two nodes on one machine never touch
each other's pods. Stopping leaves no process, shim, mount, cgroup or folder behind (`leftovers()` says what would
be); what a node whose owning process was SIGKILLed left is cleaned up by the next node's start.

Not covered: kube-apiserver does not reach the kubelet (no `kubectl logs/exec`): read logs with `container_log`.
The kubelet's fixed `/var/log/containers` and `/var/lib/kubelet/device-plugins` are shared with any other kubelet on
the machine; `stop` removes its own symlinks there, and the folders if it made them.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import io
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kubernetes.client
import kubernetes.config
import urllib3
import yaml

import devcluster
from devcluster import binaries, kubeconfig, oci, procs
from devcluster.controlplane import ClusterInfo

NODE_NAME = "real-node-1"
NODE_LABEL = "novasphere.dev/real-node"
NODE_SELECTOR = {NODE_LABEL: "true"}
"""What a pod meant for the real node selects (the simulator's Nodes are Ready too, and schedulable)."""
PAUSE_IMAGE = "docker.io/local/pause:1"
CONTAINERD_NAMESPACE = "k8s.io"
"""The namespace the CRI plugin keeps the kubelet's images and containers in."""
CONTAINERD_IMAGE_NAME = "io.containerd.image.name"
CONTAINER_LOGS_LINKS = Path("/var/log/containers")
"""Fixed in the kubelet: a symlink per container to its log under the pod logs folder."""
DEVICE_PLUGINS_DIR = Path("/var/lib/kubelet/device-plugins")
"""Fixed in the kubelet too (whatever its root dir): where it serves the device-plugin registration socket."""
HOST_DIRS = (CONTAINER_LOGS_LINKS, DEVICE_PLUGINS_DIR, DEVICE_PLUGINS_DIR.parent)
"""The kubelet's fixed folders outside the state folder: removed on stop if the node made them and they are empty."""
REGISTRY = Path("/run/novasphere-nodes")
"""On tmpfs: one file per running node (its state folder, cgroup root and owning process) and its sockets' folder."""
READY_TIMEOUT = 120.0
STOP_TIMEOUT = 30.0
SCHEDULER_USER = "system:kube-scheduler"
NOT_READY_TAINT = "node.kubernetes.io/not-ready"
CNI_CONFLIST = {
    "cniVersion": "1.0.0",
    "name": "loopback-only",
    "plugins": [{"type": "loopback"}],
}
_CRI_LOG_LINE = re.compile(r"^\S+ (?:stdout|stderr) (?P<tag>[FP]) ?(?P<text>.*)$")
"""`<time> <stream> <F: a full line | P: part of one> <text>`, as the kubelet's CRI log files hold them."""
_MNT_DETACH = 2


@dataclass(frozen=True)
class NodeLayout:
    """Where a node keeps its files, all under `state_dir`."""

    state_dir: Path

    @property
    def key(self) -> str:
        """Short and unique per state folder: names the node's cgroups and its sockets' folder."""
        return hashlib.sha256(str(self.state_dir).encode()).hexdigest()[:12]

    @property
    def socket_dir(self) -> Path:
        """containerd's sockets, in a short path of their own (a unix socket's path has at most 107 bytes; a test's
        state folder can be longer)."""
        return REGISTRY / self.key

    @property
    def containerd_dir(self) -> Path:
        return self.state_dir / "containerd"

    @property
    def containerd_socket(self) -> Path:
        return self.socket_dir / "containerd.sock"

    @property
    def cni_conf_dir(self) -> Path:
        return self.state_dir / "cni"

    @property
    def kubelet_root(self) -> Path:
        return self.state_dir / "kubelet"

    @property
    def pod_logs_dir(self) -> Path:
        """`<namespace>_<pod>_<uid>/<container>/<restart count>.log`, in the CRI log format."""
        return self.state_dir / "pod-logs"

    @property
    def logs_dir(self) -> Path:
        """containerd.log, kubelet.log, kube-scheduler.log."""
        return self.state_dir / "logs"

    @property
    def pki_dir(self) -> Path:
        return self.state_dir / "pki"


@dataclass
class RealNode:
    """A running node: its name, files and processes, and what tests need from it."""

    name: str
    layout: NodeLayout
    programs: binaries.NodeBinaries
    cluster: ClusterInfo
    cgroup_root: str
    """The kubelet's `cgroupRoot`: `/<name>` in every cgroup hierarchy, holding `kubepods`."""
    processes: dict[str, procs.Process] = field(default_factory=dict)
    """containerd, kube-scheduler and kubelet, by name."""
    created_host_dirs: list[Path] = field(default_factory=list)
    """Those of HOST_DIRS that did not exist before the kubelet started."""

    def import_image(self, archive: Path, reference: str) -> None:
        """Loads the OCI archive (a tarred OCI layout holding one image) into the node's containerd as `reference`,
        fully qualified (`docker.io/local/pause:1`: a pod's `local/pause:1` is looked up under that name)."""
        with tempfile.TemporaryDirectory(prefix="novasphere-import-") as work:
            named = _named_archive(archive, reference, Path(work) / "image.tar")
            self.ctr("images", "import", "--snapshotter", "native", str(named))
        if reference not in self.image_names():
            raise RuntimeError(f"importing {archive} did not make {reference} known to the node's containerd")

    def image_names(self) -> list[str]:
        """The images' names (not the `sha256:` aliases the CRI plugin adds for their IDs)."""
        names = self.ctr("images", "list", "--quiet").split()
        return [name for name in names if not name.startswith("sha256:")]

    def container_log_path(self, namespace: str, pod: str, container: str) -> Path:
        """The newest log file of `container` (its last restart), once the kubelet has started it."""
        candidates = sorted(
            self.layout.pod_logs_dir.glob(f"{namespace}_{pod}_*/{container}/*.log"),
            key=lambda path: (path.stat().st_mtime, path.name),
        )
        if not candidates:
            raise FileNotFoundError(f"no log of container {container} of pod {namespace}/{pod} on {self.name}")
        return candidates[-1]

    def container_log(self, namespace: str, pod: str, container: str) -> str:
        """What the container wrote (stdout and stderr interleaved), without the CRI timestamps and stream tags."""
        lines = self.container_log_path(namespace, pod, container).read_text(errors="replace").splitlines()
        return "".join(
            match["text"] + ("\n" if match["tag"] == "F" else "")
            for line in lines
            if (match := _CRI_LOG_LINE.match(line))
        )

    def task_pids(self) -> list[int]:
        """The pids of every container's first process (the pods' sandboxes included), as containerd reports them."""
        output = self.ctr("tasks", "list")
        return [int(columns[1]) for columns in (line.split() for line in output.splitlines()[1:]) if len(columns) > 1]

    def shim_pids(self) -> list[int]:
        """The containerd shims serving this node's containerd (found by its socket in their command lines)."""
        return _shim_pids(self.layout)

    def leftovers(self) -> list[str]:
        """What of this node is still there (processes, shims, mounts under its state folder, cgroups, log symlinks,
        folders it made); empty after a clean stop."""
        found = [f"{name} (pid {p.pid})" for name, p in self.processes.items() if p.alive()]
        found += host_leftovers(self.layout)
        found += [f"folder {directory}" for directory in self.created_host_dirs if directory.exists()]
        return found

    def stop(self) -> None:
        """Stops the kubelet, then every container, containerd, and the scheduler; unmounts and removes what they left
        (mounts under the state folder, the node's cgroups, its log symlinks) and deletes the Node object. Every step
        runs even if one before it failed; the first failure is raised at the end. Safe to call twice."""
        errors: list[BaseException] = []

        def step(action: Callable[[], object]) -> None:
            try:
                action()
            except Exception as error:  # noqa: BLE001 - collected, and the first one raised below
                errors.append(error)

        kubelet, containerd, scheduler = (self.processes.get(n) for n in ("kubelet", "containerd", "kube-scheduler"))
        if kubelet is not None:
            step(lambda: kubelet.stop(STOP_TIMEOUT))
        if containerd is not None and containerd.alive():
            step(self._remove_tasks)
            step(lambda: containerd.stop(STOP_TIMEOUT))
        step(lambda: _kill_stragglers(self.layout, self.cgroup_root))
        if scheduler is not None:
            step(lambda: scheduler.stop(STOP_TIMEOUT))
        step(lambda: _unmount_under(self.layout.state_dir))
        step(lambda: _remove_cgroups(self.cgroup_root))
        step(lambda: _remove_log_symlinks(self.layout))
        step(lambda: _remove_host_dirs(self.created_host_dirs))
        step(lambda: shutil.rmtree(self.layout.socket_dir, ignore_errors=True))
        step(self._delete_node_object)
        if errors:
            raise errors[0]

    def _remove_tasks(self) -> None:
        """Kills and deletes every task, so their shims exit: a shim and its container outlive containerd otherwise."""
        for task in self.ctr("tasks", "list", "--quiet").split():
            with contextlib.suppress(subprocess.CalledProcessError):  # gone meanwhile (its pod was being deleted)
                self.ctr("tasks", "delete", "--force", task)
        procs.wait_until(lambda: not self.shim_pids(), timeout=STOP_TIMEOUT, what="the containerd shims to exit")

    def _delete_node_object(self) -> None:
        """The control plane may outlive the node (a test of its own): a NotReady Node must not linger there."""
        try:
            with kubernetes.config.new_client_from_config(config_file=self.cluster.kubeconfig) as client:
                client.configuration.retries = 0
                kubernetes.client.CoreV1Api(client).delete_node(self.name, _request_timeout=5)
        except (kubernetes.client.ApiException, urllib3.exceptions.HTTPError):
            pass  # already gone, or the control plane with it

    def ctr(self, *args: str) -> str:
        """Runs `ctr` against the node's containerd, in the kubelet's namespace; returns its output."""
        result = subprocess.run(
            [
                str(self.programs.ctr),
                "--address",
                str(self.layout.containerd_socket),
                "--namespace",
                CONTAINERD_NAMESPACE,
                *args,
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        if result.returncode != 0:
            raise subprocess.CalledProcessError(result.returncode, ["ctr", *args], result.stdout, result.stderr)
        return result.stdout


@contextlib.contextmanager
def running(
    cluster: ClusterInfo,
    state_dir: Path | None = None,
    *,
    name: str = NODE_NAME,
    pause_image: Path | None = None,
) -> Iterator[RealNode]:
    """A Ready node `name` in `cluster` for the length of the `with` block, stopped and cleaned up afterwards.

    `pause_image`: an OCI archive imported as PAUSE_IMAGE (the image helper's, say); by default a busybox one is made.
    """
    programs = binaries.ensure_node()  # a first-time build is not counted against READY_TIMEOUT
    layout = NodeLayout((state_dir or Path(cluster.state_dir) / "node").resolve())
    node = RealNode(
        name=name,
        layout=layout,
        programs=programs,
        cluster=cluster,
        cgroup_root=_cgroup_root(layout),
    )
    _clean_up_abandoned()
    registration = _register(node)
    try:
        _start(node, pause_image)
        yield node
    finally:
        node.stop()
        registration.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            REGISTRY.rmdir()  # once no node is noted there


def _start(node: RealNode, pause_image: Path | None) -> None:
    layout = node.layout
    for directory in (layout.containerd_dir, layout.cni_conf_dir, layout.kubelet_root, layout.pod_logs_dir):
        directory.mkdir(parents=True, exist_ok=True)
    (layout.cni_conf_dir / "10-loopback.conflist").write_text(json.dumps(CNI_CONFLIST, indent=2))

    _start_containerd(node)
    node.import_image(
        pause_image or oci.busybox_image(layout.state_dir / "pause.tar", entrypoint=oci.PAUSE_ENTRYPOINT), PAUSE_IMAGE
    )
    node.processes["kube-scheduler"] = _start_scheduler(node)
    _create_cgroups(node.cgroup_root)
    node.created_host_dirs = [directory for directory in HOST_DIRS if not directory.exists()]
    _register(node)  # again, with the folders it is about to make
    _start_kubelet(node)


def _start_containerd(node: RealNode) -> None:
    layout = node.layout
    directory = layout.containerd_dir
    config = directory / "config.toml"
    config.write_text(
        f"""\
version = 2
root = "{directory / "root"}"
state = "{directory / "state"}"
[grpc]
  address = "{layout.containerd_socket}"
[ttrpc]
  address = "{layout.socket_dir / "containerd.sock.ttrpc"}"
[plugins."io.containerd.internal.v1.opt"]
  path = "{directory / "opt"}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  stream_server_address = "127.0.0.1"
  restrict_oom_score_adj = true
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "native"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "{node.programs.runc}"
        Root = "{directory / "runc"}"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{node.programs.cni_bin_dir}"
    conf_dir = "{layout.cni_conf_dir}"
"""
    )
    containerd = procs.spawn(
        "containerd",
        [str(node.programs.containerd), "--config", str(config), "--log-level", "warn"],
        log_path=layout.logs_dir / "containerd.log",
    )
    node.processes["containerd"] = containerd

    def answers() -> bool:
        try:
            node.ctr("version")
        except subprocess.CalledProcessError:
            return False
        return True

    procs.wait_until(answers, timeout=READY_TIMEOUT, what="containerd", processes=[containerd])


def _component_kubeconfig(node: RealNode, name: str, user: str, group: str | None) -> Path:
    cert, key = node.cluster.pki.issue_client(node.layout.pki_dir, name, user=user, group=group)
    return kubeconfig.write(
        node.layout.state_dir / f"{name}.kubeconfig",
        server=node.cluster.server,
        ca_cert=node.cluster.pki.ca_cert,
        user=user,
        client_cert=cert,
        client_key=key,
    )


def _start_scheduler(node: RealNode) -> procs.Process:
    config = _component_kubeconfig(node, "kube-scheduler", SCHEDULER_USER, None)
    insecure = ssl.create_default_context()
    insecure.check_hostname = False
    insecure.verify_mode = ssl.CERT_NONE  # its self-signed serving cert; /healthz carries no secret

    def start(ports: list[int]) -> procs.Process:
        scheduler = procs.spawn(
            "kube-scheduler",
            [
                str(node.programs.kube_scheduler),
                f"--kubeconfig={config}",
                f"--authentication-kubeconfig={config}",
                f"--authorization-kubeconfig={config}",
                "--bind-address=127.0.0.1",
                f"--secure-port={ports[0]}",
                "--leader-elect=false",
                "--profiling=false",
            ],
            log_path=node.layout.logs_dir / "kube-scheduler.log",
        )
        try:
            procs.wait_until(
                lambda: procs.http_get(f"https://127.0.0.1:{ports[0]}/healthz", insecure) == b"ok",
                timeout=READY_TIMEOUT,
                what="kube-scheduler /healthz",
                processes=[scheduler],
            )
        except BaseException:
            scheduler.stop()
            raise
        return scheduler

    return procs.on_free_ports(1, start)


def _start_kubelet(node: RealNode) -> None:
    layout = node.layout
    config_file = layout.state_dir / "kubelet-config.yaml"
    node_kubeconfig = _component_kubeconfig(node, "kubelet", f"system:node:{node.name}", "system:nodes")

    def start(ports: list[int]) -> procs.Process:
        port, healthz_port = ports
        config_file.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "kubelet.config.k8s.io/v1beta1",
                    "kind": "KubeletConfiguration",
                    "cgroupDriver": "cgroupfs",
                    "cgroupRoot": node.cgroup_root,
                    "failSwapOn": False,
                    "failCgroupV1": False,
                    "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": False}},
                    "authorization": {"mode": "AlwaysAllow"},
                    "enforceNodeAllocatable": [],
                    "evictionHard": {},
                    "localStorageCapacityIsolation": False,
                    "address": "127.0.0.1",
                    "port": port,
                    "healthzBindAddress": "127.0.0.1",
                    "healthzPort": healthz_port,
                    "readOnlyPort": 0,
                    "containerRuntimeEndpoint": f"unix://{layout.containerd_socket}",
                    "podLogsDir": str(layout.pod_logs_dir),
                    "volumePluginDir": str(layout.state_dir / "volume-plugins"),
                    "serializeImagePulls": False,
                }
            )
        )
        kubelet = procs.spawn(
            "kubelet",
            [
                str(node.programs.kubelet),
                f"--config={config_file}",
                f"--kubeconfig={node_kubeconfig}",
                f"--root-dir={layout.kubelet_root}",
                f"--cert-dir={layout.pki_dir / 'kubelet-serving'}",
                f"--hostname-override={node.name}",
                f"--node-labels={NODE_LABEL}=true",
                f"--pod-infra-container-image={PAUSE_IMAGE}",
                "--v=1",
            ],
            log_path=layout.logs_dir / "kubelet.log",
        )
        try:
            procs.wait_until(
                lambda: procs.http_get(f"http://127.0.0.1:{healthz_port}/healthz") == b"ok",
                timeout=READY_TIMEOUT,
                what="the kubelet's /healthz",
                processes=[kubelet],
            )
        except BaseException:
            kubelet.stop()
            raise
        return kubelet

    node.processes["kubelet"] = procs.on_free_ports(2, start)
    with kubernetes.config.new_client_from_config(config_file=node.cluster.kubeconfig) as client:
        core = kubernetes.client.CoreV1Api(client)
        procs.wait_until(
            lambda: _node_ready(core, node.name),
            timeout=READY_TIMEOUT,
            what=f"Node {node.name} to be Ready",
            processes=list(node.processes.values()),
            interval=0.2,
        )
        _untaint_not_ready(core, node.name)


def _untaint_not_ready(core: kubernetes.client.CoreV1Api, name: str) -> None:
    """Removes the `not-ready` taint a new Node gets, as the node-lifecycle controller would once it is Ready: that
    controller is off in devcluster (it would turn the simulator's Nodes, which have no kubelet, NotReady)."""
    found = _read_node(core, name) or {}
    taints = [taint for taint in found.get("spec", {}).get("taints", []) if taint.get("key") != NOT_READY_TAINT]
    # No resourceVersion precondition: the kubelet's status updates would make it fail, and only registration (the
    # kubelet, once) and this function write a Node's taints here.
    core.patch_node(name, {"spec": {"taints": taints}})


def _node_ready(core: kubernetes.client.CoreV1Api, name: str) -> bool:
    conditions = ((_read_node(core, name) or {}).get("status") or {}).get("conditions") or []
    return any(condition["type"] == "Ready" and condition["status"] == "True" for condition in conditions)


def _read_node(core: kubernetes.client.CoreV1Api, name: str) -> dict[str, Any] | None:
    """The Node as JSON (camelCase keys), or None if it does not exist."""
    try:
        found: dict[str, Any] = core.api_client.sanitize_for_serialization(core.read_node(name))
    except kubernetes.client.ApiException as error:
        if error.status == 404:
            return None
        raise
    return found


def _named_archive(archive: Path, reference: str, destination: Path) -> Path:
    """A copy of `archive` whose one image carries `reference` as containerd's image-name annotation, which the
    importer takes verbatim (the OCI ref-name annotation is only a tag, and the tag inside the archive is the
    builder's business)."""
    with tarfile.open(archive) as source, tarfile.open(destination, "w") as target:
        for member in source:
            if member.name.lstrip("./") == "index.json":
                index = json.loads(_read_member(source, member))
                if len(index.get("manifests", [])) != 1:
                    raise ValueError(f"{archive} holds {len(index.get('manifests', []))} images; expected one")
                index["manifests"][0].setdefault("annotations", {})[CONTAINERD_IMAGE_NAME] = reference
                content = json.dumps(index).encode()
                member.size = len(content)
                target.addfile(member, io.BytesIO(content))
            else:
                target.addfile(member, source.extractfile(member) if member.isfile() else None)
    return destination


def _read_member(archive: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    extracted = archive.extractfile(member)
    if extracted is None:
        raise ValueError(f"{member.name} is not a file")
    return extracted.read()


def host_leftovers(layout: NodeLayout) -> list[str]:
    """What a node with this layout left on the machine: shims, mounts under its state folder, cgroups, log
    symlinks."""
    found = [f"containerd-shim (pid {pid})" for pid in _shim_pids(layout)]
    found += [f"mount {mount}" for mount in _mounts_under(layout.state_dir)]
    found += [f"cgroup {path}" for path in _cgroup_dirs(_cgroup_root(layout)) if path.exists()]
    found += [f"log symlink {link}" for link in _log_symlinks(layout)]
    found += [f"folder {layout.socket_dir}"] if layout.socket_dir.exists() else []
    return found


def _cgroup_root(layout: NodeLayout) -> str:
    """The kubelet's cgroupRoot, one per state folder (two nodes on one machine never share pods' cgroups)."""
    return f"/novasphere-node-{layout.key}"


def _shim_pids(layout: NodeLayout) -> list[int]:
    return _pids_with_argument(str(layout.containerd_socket))


def _kill_stragglers(layout: NodeLayout, cgroup_root: str) -> None:
    """SIGKILLs what a failed or interrupted clean stop left: shims of the node's containerd and any process in its
    cgroups (containers), then waits until they are gone."""
    pids = set(_shim_pids(layout)) | set(_pids_in_cgroups(cgroup_root))
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    procs.wait_until(
        lambda: not any(procs.pid_alive(pid) for pid in pids), timeout=STOP_TIMEOUT, what="leftovers to die"
    )


def _log_symlinks(layout: NodeLayout) -> list[Path]:
    if not CONTAINER_LOGS_LINKS.is_dir():
        return []
    prefix = str(layout.pod_logs_dir) + os.sep
    return [
        link for link in CONTAINER_LOGS_LINKS.iterdir() if link.is_symlink() and os.readlink(link).startswith(prefix)
    ]


def _remove_log_symlinks(layout: NodeLayout) -> None:
    for link in _log_symlinks(layout):
        link.unlink(missing_ok=True)


def _register(node: RealNode) -> Path:
    """Notes the node in REGISTRY with this process as its owner, so a later start can clean up after it if this
    process is killed before it can stop the node."""
    node.layout.socket_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    entry = REGISTRY / f"{node.layout.key}.json"
    noted = {
        "state_dir": str(node.layout.state_dir),
        "cgroup_root": node.cgroup_root,
        "created_host_dirs": [str(directory) for directory in node.created_host_dirs],
        "owner": os.getpid(),
    }
    entry.write_text(json.dumps(noted))
    return entry


def _clean_up_abandoned() -> None:
    """Removes what nodes whose owner died without stopping them left (processes, mounts, cgroups, log symlinks).
    Their kubelet, containerd and scheduler died with the owner (the death signal of `procs.spawn`); the shims and
    containers did not."""
    for entry in REGISTRY.glob("*.json") if REGISTRY.is_dir() else []:
        try:
            noted = json.loads(entry.read_text())
        except (OSError, ValueError):
            continue
        if procs.pid_alive(int(noted["owner"])):
            continue
        layout = NodeLayout(Path(noted["state_dir"]))
        _kill_stragglers(layout, noted["cgroup_root"])
        _unmount_under(layout.state_dir)
        _remove_cgroups(noted["cgroup_root"])
        _remove_log_symlinks(layout)
        _remove_host_dirs([Path(directory) for directory in noted.get("created_host_dirs", [])])
        shutil.rmtree(layout.socket_dir, ignore_errors=True)
        entry.unlink(missing_ok=True)


def _remove_host_dirs(created: list[Path]) -> None:
    """Removes those of the kubelet's fixed folders a node made, if empty: its device-plugin socket first, unless
    another kubelet serves it."""
    socket_path = DEVICE_PLUGINS_DIR / "kubelet.sock"
    if DEVICE_PLUGINS_DIR in created and not _unix_socket_served(socket_path):
        socket_path.unlink(missing_ok=True)
    for directory in created:  # deepest first, as HOST_DIRS lists them
        with contextlib.suppress(OSError):
            directory.rmdir()  # only if empty


def _cgroup_dirs(cgroup_root: str) -> list[Path]:
    """`cgroup_root` in every cgroup v1 hierarchy and the v2 one, as mounted here."""
    hierarchies = [
        Path(line.split()[4])
        for line in Path("/proc/self/mountinfo").read_text().splitlines()
        if " - cgroup " in line or " - cgroup2 " in line
    ]
    return [hierarchy / cgroup_root.lstrip("/") for hierarchy in hierarchies]


def _create_cgroups(cgroup_root: str) -> None:
    """The kubelet refuses a `cgroupRoot` that does not exist; it creates `kubepods` inside."""
    for directory in _cgroup_dirs(cgroup_root):
        directory.mkdir(exist_ok=True)


def _remove_cgroups(cgroup_root: str) -> None:
    """Removes the node's cgroup trees, deepest first (a cgroup can only be removed once it is empty)."""
    for top in _cgroup_dirs(cgroup_root):
        if not top.exists():
            continue
        for directory in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            _rmdir_cgroup(directory)
        _rmdir_cgroup(top)


def _rmdir_cgroup(directory: Path) -> None:
    deadline = time.monotonic() + STOP_TIMEOUT
    while True:
        try:
            directory.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError as error:  # EBUSY while the kernel still tears down its last exited processes
            if error.errno != errno.EBUSY or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _pids_in_cgroups(cgroup_root: str) -> list[int]:
    return [
        int(pid)
        for top in _cgroup_dirs(cgroup_root)
        if top.exists()
        for procs_file in top.rglob("cgroup.procs")
        for pid in procs_file.read_text().split()
    ]


def _mounts_under(directory: Path) -> list[Path]:
    """Mount points at or below `directory`, deepest (latest) first."""
    prefix = str(directory)
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = _unescape_mountinfo(line.split()[4])
        if point == prefix or point.startswith(prefix + os.sep):
            found.append(Path(point))
    return list(reversed(found))


def _unescape_mountinfo(field_text: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda match: chr(int(match.group(1), 8)), field_text)


def _unmount_under(directory: Path) -> None:
    """Unmounts what the kubelet and containerd left mounted below `directory` (projected token tmpfs, emptyDirs,
    the kubelet root's bind mount on itself, sandbox /dev/shm), lazily if a mount is still busy."""
    libc = ctypes.CDLL(None, use_errno=True)
    for _ in range(10):  # a mount can hide another on the same point
        mounts = _mounts_under(directory)
        if not mounts:
            return
        for mount in mounts:
            if libc.umount2(str(mount).encode(), 0) != 0 and ctypes.get_errno() == errno.EBUSY:
                libc.umount2(str(mount).encode(), _MNT_DETACH)


def _unix_socket_served(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


def _pids_with_argument(argument: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argument.encode() in argv and procs.pid_alive(int(proc.name)):
            found.append(int(proc.name))
    return found


def serve(state_dir: Path, images: Mapping[str, Path]) -> int:
    """`python -m devcluster node`: a control plane and a real node in the foreground, `images` imported (reference to
    OCI archive), until Ctrl-C or SIGTERM; everything stopped and cleaned up on the way out."""

    procs.interrupt_on_stop_signals()
    started = time.monotonic()
    try:
        with devcluster.running(state_dir / "cluster") as cluster, running(cluster, state_dir / "node") as real:
            for reference, archive in images.items():
                real.import_image(archive, reference)
            print(
                f"""
Control plane {cluster.server} (Kubernetes {cluster.kubernetes_version}) with a real node, {real.name}, Ready
after {time.monotonic() - started:.0f} s.
  export KUBECONFIG={cluster.kubeconfig}
  Pods for the node: nodeSelector {NODE_LABEL}: "true", hostNetwork: true, imagePullPolicy: Never
  Images on the node: {", ".join(real.image_names())}
      (more: start again with --image REFERENCE=ARCHIVE, or RealNode.import_image)
  Container logs: {real.layout.pod_logs_dir}/<namespace>_<pod>_<uid>/<container>/<restart>.log
  Node logs: {real.layout.logs_dir}; control plane logs: {cluster.state_dir}/logs
Ctrl-C stops everything.""",
                flush=True,
            )
            signal.pause()
    except KeyboardInterrupt:
        print("\nStopping…", file=sys.stderr, flush=True)
    except procs.ProcessError as error:
        print(f"devcluster node failed: {error}", file=sys.stderr)
        return 1
    print("Stopped; nothing is left running.", file=sys.stderr)
    return 0
