"""The Helm chart on a real node: a control plane of its own, the simulator of KubeVirt and vmoperator, a real node
(kubelet, containerd, runc) with the image `make image` builds imported into it, and `helm` pointed at it with the
chart's local values (hostNetwork pods whose Envoys share one loopback port). For the real-node tests, the chart's
benchmark and `make run DEPLOY=helm`.

    with chart.running(state_dir, sim_speed=20) as local:
        local.install()                       # helm upgrade --install … --wait
        local.edge.channel(), local.initial_admin_password()
"""

from __future__ import annotations

import base64
import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes.client

from devcluster import binaries, controlplane, manifests, pki, procs, run
from devcluster import image as devimage
from devcluster import node as devnode
from devcluster import stack as devstack
from server.auth import store

RELEASE = "novasphere"
NAMESPACE = "novasphere-system"
CHART = manifests.REPO_ROOT / "deploy" / "helm" / "novasphere-api"
LOCAL_VALUES = CHART / "values-local.yaml"
TLS_SECRET = "novasphere-edge-tls"  # noqa: S105 - the name of a Secret, not a password
POD_LABELS = f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/name=novasphere-api"
HELM_WAIT = "5m"


class HelmFailed(RuntimeError):
    """helm exited non-zero; the message has the end of what it printed."""


class Helm:
    """The `helm` built here, pointed at one control plane and the chart's namespace."""

    def __init__(self, kubeconfig: Path) -> None:
        self._command = [str(binaries.ensure_helm()), "--kubeconfig", str(kubeconfig), "--namespace", NAMESPACE]

    def __call__(self, *args: str, timeout: float = 600) -> str:
        result = subprocess.run([*self._command, *args], capture_output=True, text=True, timeout=timeout, check=False)
        if result.returncode != 0:
            raise HelmFailed(f"helm {' '.join(args)}: {result.stdout[-2000:]}{result.stderr[-4000:]}")
        return result.stdout


@dataclass
class LocalRelease:
    """Everything around the release; `install` makes (or upgrades) it."""

    helm: Helm
    plane: controlplane.ControlPlane
    kube: kubernetes.client.ApiClient
    node: devnode.RealNode
    edge: devstack.Edge
    """Where clients reach the pods' Envoys: 127.0.0.1 and the port they share."""
    settings: list[str]
    """The `--set` arguments of every install and upgrade."""
    image: devimage.ImageArchive

    def install(self, *extra: str) -> float:
        """`helm upgrade --install … --wait` with the local values, the settings and `extra`; the seconds it took."""
        started = time.monotonic()
        self.helm(
            "upgrade", "--install", RELEASE, str(CHART), "-f", str(LOCAL_VALUES), *self.settings, *extra,
            "--wait", "--timeout", HELM_WAIT,
        )  # fmt: skip
        return time.monotonic() - started

    def pods(self) -> list[dict[str, Any]]:
        core = kubernetes.client.CoreV1Api(self.kube)
        listed = self.kube.sanitize_for_serialization(core.list_namespaced_pod(NAMESPACE, label_selector=POD_LABELS))
        return list(listed["items"])

    def ready_pods(self) -> list[dict[str, Any]]:
        return [
            pod
            for pod in self.pods()
            if "deletionTimestamp" not in pod["metadata"]
            and any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", []))
        ]

    def initial_admin_password(self, timeout: float = 30) -> str:
        """What the API made on its first start (the Secret novasphere-initial-admin) for the installer to read."""
        core = kubernetes.client.CoreV1Api(self.kube)
        deadline = time.monotonic() + timeout
        while True:
            try:
                secret = core.read_namespaced_secret(store.INITIAL_ADMIN_SECRET, NAMESPACE)
                return base64.b64decode((secret.data or {})["password"]).decode()
            except kubernetes.client.ApiException as error:
                if error.status != 404 or time.monotonic() > deadline:
                    raise
            time.sleep(0.2)

    def diagnosis(self) -> str:
        """Each pod's conditions and container states, and the end of each container's log (read from the node)."""
        lines = []
        for pod in self.pods():
            name = pod["metadata"]["name"]
            lines.append(f"pod {name}: {pod['status'].get('conditions')}")
            for status in pod["status"].get("containerStatuses", []):
                lines.append(f"  {status['name']}: restarts {status['restartCount']}, {status['state']}")
                with contextlib.suppress(OSError, StopIteration):
                    lines.append(self.node.container_log(NAMESPACE, name, status["name"])[-3000:])
        return "\n".join(lines)


@contextlib.contextmanager
def running(state_dir: Path, *, sim_speed: float, settings: Sequence[str] = ()) -> Iterator[LocalRelease]:
    """Control plane, simulator and real node up, the image imported, the chart's namespace with the edge's TLS
    Secret (its CA as `ca.crt`, for `helm test`); nothing installed yet. On exit the release is uninstalled (when
    there is one) and everything stops."""
    with (
        controlplane.running_in_process(state_dir / "cluster") as plane,
        devstack.admin_client(plane.info) as kube,
    ):
        manifests.apply(kube, manifests.load(manifests.SIM_CRDS))
        simulator = devstack.start_simulator(plane.info, state_dir=state_dir, speed=sim_speed)
        with (
            procs.stopping([simulator]),
            devnode.running(plane.info, state_dir / "node", pause_image=devimage.ensure_pause_image().path) as node,
        ):
            image = devimage.ensure_api_image()
            node.import_image(image.path, image.reference)
            manifests.apply(kube, [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}])
            edge = pki.edge(state_dir / "edge")
            _tls_secret(kube, edge)
            port = procs.free_ports(1)[0]
            repository, _, tag = image.reference.rpartition(":")
            local_settings = [
                "--set", f"image.repository={repository}",
                "--set", f"image.tag={tag}",
                "--set", f"localNode.apiserverPort={plane.info.server.rpartition(':')[2]}",
                "--set", f"envoy.port={port}",
                "--set", f"tls.existingSecret={TLS_SECRET}",
                "--set", "test.caKey=ca.crt",
            ]  # fmt: skip
            release = LocalRelease(
                helm=Helm(Path(plane.info.kubeconfig)),
                plane=plane,
                kube=kube,
                node=node,
                edge=devstack.Edge(port, edge.ca_cert),
                settings=[*local_settings, *settings],
                image=image,
            )
            try:
                yield release
            finally:
                with contextlib.suppress(HelmFailed):  # nothing installed, or already uninstalled
                    release.helm("uninstall", RELEASE, "--wait", "--timeout", "2m")


def _tls_secret(kube: kubernetes.client.ApiClient, edge: pki.EdgePki) -> None:
    secret = kubernetes.client.V1Secret(
        metadata=kubernetes.client.V1ObjectMeta(name=TLS_SECRET, namespace=NAMESPACE),
        type="kubernetes.io/tls",
        data={
            "tls.crt": base64.b64encode(edge.serving_cert.read_bytes()).decode(),
            "tls.key": base64.b64encode(edge.serving_key.read_bytes()).decode(),
            "ca.crt": base64.b64encode(edge.ca_cert.read_bytes()).decode(),
        },
    )
    kubernetes.client.CoreV1Api(kube).create_namespaced_secret(NAMESPACE, secret)


def serve(state_dir: Path) -> int:
    """`make run DEPLOY=helm` (`python -m devcluster chart`): the chart installed on a real node, as a platform team
    would see it, until Ctrl-C or SIGTERM; everything stopped and cleaned up on the way out."""

    procs.interrupt_on_stop_signals()
    started = time.monotonic()
    try:
        with running(state_dir.resolve(), sim_speed=run.SIM_SPEED) as local:
            served = ",".join(devstack.served_origins(local.edge.port))  # the web console may open consoles
            seconds = local.install("--set", f"api.consoleOrigins={{{served}}}")
            print(
                f"""
The chart {CHART.relative_to(manifests.REPO_ROOT)} is installed on a real node ({len(local.ready_pods())} ready pods,
image {local.image.reference}); `helm install --wait` took {seconds:.0f} s, {time.monotonic() - started:.0f} s in all.
  REST, gRPC, gRPC-Web and the web console: {local.edge.url} (CA: {local.edge.ca_cert})
  Sign in as admin, password {local.initial_admin_password()} (the Secret {store.INITIAL_ADMIN_SECRET})
  export KUBECONFIG={local.plane.info.kubeconfig}
  helm: {binaries.ensure_helm()} --namespace {NAMESPACE} (release {RELEASE})
  Container logs: {local.node.layout.pod_logs_dir}
Ctrl-C uninstalls and stops everything.""",
                flush=True,
            )
            signal.pause()
    except KeyboardInterrupt:
        print("\nStopping…", file=sys.stderr, flush=True)
    except (procs.ProcessError, HelmFailed) as error:
        print(f"devcluster chart failed: {error}", file=sys.stderr)
        return 1
    print("Stopped; nothing is left running.", file=sys.stderr)
    return 0
