"""The Helm chart (deploy/helm/novasphere-api) with a real helm v4 against a real kube-apiserver, no node needed.

`helm lint` and `helm template` of both value sets (production and local), every rendered object applied with a
server-side dry run (the dynamic client's server-side apply with dryRun=All: what `helm template | kubectl apply
--server-side --dry-run=server` does, without needing kubectl); the chart's copies of deploy/ in sync; and on a
control plane of this module's own (the session's has deploy/ applied without Helm's ownership, which a release would
conflict with): install, an upgrade that applies a changed CRD and leaves an edited authz ConfigMap alone, a
rollback that takes the CRD back and leaves the ConfigMap alone too, and an uninstall that keeps CRDs, Tasks and the
ConfigMap. Without a node the Deployment's pods stay Pending: no `--wait`.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes.client
import pytest
import yaml
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient

import devcluster
from devcluster import accounts, binaries
from devcluster import stack as devstack
from tests.conftest import TENANT
from tools import chart_sources

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART = REPO_ROOT / "deploy" / "helm" / "novasphere-api"
VALUE_SETS = {"production": [], "local": ["-f", str(CHART / "values-local.yaml")]}
# The optional parts: an Ingress with TLS through cert-manager, metrics scraped from the monitoring namespace,
# vmoperator's CRD, traces sent to a collector, Android and browser push with a generic webhook receiver.
EXTRAS = [
    *("--set", "crds.installWukong=true"),
    *("--set", "ingress.enabled=true", "--set", "ingress.className=nginx"),
    *("--set", "ingress.hosts[0].host=vms.example.com", "--set", "ingress.tls[0].hosts[0]=vms.example.com"),
    *("--set", "ingress.tls[0].secretName=vms-tls", "--set", "ingress.certManagerClusterIssuer=letsencrypt"),
    *("--set", "metrics.serviceMonitor.enabled=true"),
    *("--set", "tracing.otlpEndpoint=http://otel-collector.monitoring:4317", "--set", "tracing.sampleRatio=0.25"),
    *("--set", "notifications.credentialsSecret=push-credentials", "--set", "notifications.fcm.enabled=true"),
    *("--set", "notifications.webPush.enabled=true", "--set", "notifications.webhookHosts[0]=hooks.example.com"),
]
RELEASE = "novasphere-api"
NAMESPACE = "novasphere-system"
HELM_TIMEOUT = 120.0
FIELD_MANAGER = "chart-dry-run"


@pytest.fixture(scope="module")
def helm() -> Path:
    return binaries.ensure_helm()


@pytest.fixture(scope="module")
def own_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[devcluster.ClusterInfo]:
    """A bare control plane (no deploy/ applied) for this module alone."""
    started = time.monotonic()
    with devcluster.running(tmp_path_factory.mktemp("chart-cluster")) as info:
        print(f"chart tests: control plane up in {time.monotonic() - started:.1f} s")
        yield info


@pytest.fixture(scope="module")
def admin(own_cluster: devcluster.ClusterInfo) -> Iterator[kubernetes.client.ApiClient]:
    with devstack.admin_client(own_cluster) as client:
        yield client


def run_helm(helm: Path, *args: str, kubeconfig: str | None = None) -> str:
    command = [str(helm), *args, *(["--kubeconfig", kubeconfig] if kubeconfig else [])]
    result = subprocess.run(command, capture_output=True, text=True, timeout=HELM_TIMEOUT, check=False)
    assert result.returncode == 0, f"helm {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def rendered(helm: Path, *values: str, chart: Path = CHART) -> list[dict[str, Any]]:
    text = run_helm(helm, "template", RELEASE, str(chart), "--namespace", NAMESPACE, *values)
    return [document for document in yaml.safe_load_all(text) if document]


def by_kind(documents: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [document for document in documents if document["kind"] == kind]


@pytest.mark.parametrize("mode", VALUE_SETS)
def test_lint(helm: Path, mode: str) -> None:
    output = run_helm(helm, "lint", "--strict", str(CHART), *VALUE_SETS[mode])
    assert "0 chart(s) failed" in output


@pytest.mark.parametrize(("mode", "extras"), [("production", []), ("local", []), ("production", EXTRAS)])
def test_rendered_objects_pass_a_server_side_dry_run(
    helm: Path, admin: kubernetes.client.ApiClient, mode: str, extras: list[str]
) -> None:
    documents = rendered(helm, *VALUE_SETS[mode], *extras)
    kinds = {document["kind"] for document in documents}
    expected = {"CustomResourceDefinition", "ClusterRole", "Role", "ServiceAccount", "ConfigMap", "Deployment", "Pod"}
    assert expected <= kinds, f"{mode}: {sorted(kinds)}"
    _ensure_namespace(admin, NAMESPACE)
    dynamic = DynamicClient(admin)
    for document in documents:
        resource = dynamic.resources.get(api_version=document["apiVersion"], kind=document["kind"])
        applied = dynamic.server_side_apply(
            resource,
            body=document,
            namespace=document["metadata"].get("namespace"),
            field_manager=FIELD_MANAGER,
            dry_run="All",
        )
        assert applied.metadata.name == document["metadata"]["name"]
        if document["kind"] == "Deployment":
            # kube-apiserver drops a field whose feature gate is off: the preStop sleep (PodLifecycleSleepAction,
            # beta and on by default since 1.30) must come back.
            api = applied.to_dict()["spec"]["template"]["spec"]["containers"][0]
            assert api["lifecycle"]["preStop"] == {"sleep": {"seconds": 5}}
    # A dry run writes nothing.
    assert not kubernetes.client.AppsV1Api(admin).list_namespaced_deployment(NAMESPACE).items


def test_optional_parts(helm: Path) -> None:
    documents = rendered(helm, *EXTRAS)
    ingress = by_kind(documents, "Ingress")[0]
    assert ingress["metadata"]["annotations"] == {"cert-manager.io/cluster-issuer": "letsencrypt"}
    assert ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["port"] == {"name": "https"}
    crds = sorted(crd["metadata"]["name"] for crd in by_kind(documents, "CustomResourceDefinition"))
    assert crds == [
        "consolesessions.api.novasphere.dev",
        "requestrecords.api.novasphere.dev",
        "tasks.api.novasphere.dev",
        "wukongs.vm.novasphere.dev",
    ]
    policy = by_kind(documents, "NetworkPolicy")[0]
    assert [[port["port"] for port in rule["ports"]] for rule in policy["spec"]["ingress"]] == [[8443], [9464, 9902]]
    containers = {c["name"]: c for c in by_kind(documents, "Deployment")[0]["spec"]["template"]["spec"]["containers"]}
    settings = {variable["name"]: variable.get("value") for variable in containers["api"]["env"]}
    assert settings["NOVASPHERE_OTLP_ENDPOINT"] == "http://otel-collector.monitoring:4317"
    assert settings["NOVASPHERE_TRACE_SAMPLE_RATIO"] == "0.25"
    assert {"--otlp-collector=otel-collector.monitoring:4317", "--trace-sample-percent=25"} <= set(
        containers["envoy"]["command"]
    )
    # Push credentials are files of one Secret, mounted read-only into the API container only.
    files = "/etc/novasphere/notifications"
    assert settings["NOVASPHERE_NOTIFY_FCM_CREDENTIALS"] == f"{files}/fcm-service-account.json"
    assert settings["NOVASPHERE_NOTIFY_VAPID_KEY_FILE"] == f"{files}/vapid-key.pem"
    assert settings["NOVASPHERE_NOTIFY_WEBHOOK_HOSTS"] == "hooks.example.com"
    assert "NOVASPHERE_NOTIFY_APNS_KEY_FILE" not in settings
    assert {"name": "notification-credentials", "mountPath": files, "readOnly": True} in containers["api"][
        "volumeMounts"
    ]
    assert all(mount["name"] != "notification-credentials" for mount in containers["envoy"]["volumeMounts"])
    volumes = by_kind(documents, "Deployment")[0]["spec"]["template"]["spec"]["volumes"]
    assert {
        "name": "notification-credentials",
        "secret": {"secretName": "push-credentials", "defaultMode": 0o400},
    } in volumes
    # The ServiceMonitor only where its CRD exists; it scrapes the API and Envoy's stats listener.
    assert not by_kind(documents, "ServiceMonitor")
    with_crd = rendered(helm, *EXTRAS, "--api-versions", "monitoring.coreos.com/v1/ServiceMonitor")
    endpoints = by_kind(with_crd, "ServiceMonitor")[0]["spec"]["endpoints"]
    assert [(e["port"], e["path"]) for e in endpoints] == [
        ("metrics", "/metrics"),
        ("envoy-metrics", "/stats/prometheus"),
    ]
    envoy = by_kind(documents, "Deployment")[0]["spec"]["template"]["spec"]["containers"][1]
    assert "--stats-listen=0.0.0.0:9902" in envoy["command"]
    assert {"name": "envoy-metrics", "containerPort": 9902} in envoy["ports"]


def test_modes_differ_where_the_architecture_says(helm: Path) -> None:
    production = by_kind(rendered(helm), "Deployment")[0]["spec"]["template"]["spec"]
    local = by_kind(rendered(helm, *VALUE_SETS["local"]), "Deployment")[0]["spec"]["template"]["spec"]
    assert not production.get("hostNetwork")
    assert production["containers"][0]["readinessProbe"]["grpc"]["port"] == 50051
    assert local["hostNetwork"] is True
    assert local["nodeSelector"] == {"novasphere.dev/real-node": "true"}
    for container in local["containers"]:
        # A hostNetwork pod's ports would be host ports (one pod per node); its probes run inside the pod.
        assert "ports" not in container
        assert "exec" in container["readinessProbe"]
        assert container["imagePullPolicy"] == "Never"
    api_env = {item["name"]: item.get("value") for item in local["containers"][0]["env"]}
    assert api_env["NOVASPHERE_GRPC_LISTEN"] == "unix:/run/novasphere/grpc.sock"
    assert api_env["KUBERNETES_SERVICE_HOST"] == "127.0.0.1"
    assert "--listen=127.0.0.1:8443" in local["containers"][1]["command"]
    for spec in (production, local):
        api = spec["containers"][0]
        drain = int(next(item["value"] for item in api["env"] if item["name"] == "NOVASPHERE_DRAIN_SECONDS"))
        grace = int(next(item["value"] for item in api["env"] if item["name"] == "NOVASPHERE_SHUTDOWN_GRACE_SECONDS"))
        assert api["lifecycle"]["preStop"]["sleep"]["seconds"] == drain
        assert spec["terminationGracePeriodSeconds"] >= 2 * drain + grace
        assert spec["securityContext"]["runAsUser"] == 65532
        for container in spec["containers"]:
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            assert container["resources"]["requests"] == {"cpu": "200m", "memory": "256Mi"}


def test_chart_copies_of_deploy_are_in_sync() -> None:
    assert chart_sources.drift() == [], "run `make chart-sources`"


def test_chart_version_follows_the_project() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["version"] == project
    assert chart["appVersion"] == project


def test_rendered_rbac_and_crds_are_deploys(helm: Path) -> None:
    """With the release named as deploy/ names things, the chart renders deploy/'s objects (plus Helm's labels)."""
    documents = rendered(helm)
    deploy_objects = [
        document
        for path in [*sorted((REPO_ROOT / "deploy" / "rbac").glob("*.yaml")), REPO_ROOT / "deploy" / "authz.yaml"]
        for document in yaml.safe_load_all(path.read_text())
        if document
    ] + [yaml.safe_load(path.read_text()) for path in sorted((REPO_ROOT / "deploy" / "crds").glob("*.yaml"))]
    for expected in deploy_objects:
        matches = [
            document
            for document in documents
            if document["kind"] == expected["kind"] and document["metadata"]["name"] == expected["metadata"]["name"]
        ]
        assert len(matches) == 1, f"{expected['kind']} {expected['metadata']['name']}"
        actual = matches[0]
        for field in ("rules", "roleRef", "subjects", "spec", "data"):
            assert actual.get(field) == expected.get(field), f"{expected['kind']}.{field}"
        assert actual["metadata"].get("namespace") == expected["metadata"].get("namespace")


@pytest.mark.parametrize("password_suffix", ["", "-wrong"])
def test_helm_test_selftest_through_envoy(
    stack: devstack.Stack, kube: kubernetes.client.ApiClient, tmp_path: Path, password_suffix: str
) -> None:
    """What the `helm test` pod runs (`python3 -m server.transport.selftest`), here against the session's Envoy:
    health, a login and ListWukongs pass; a wrong password fails it."""
    name, password = f"selftest-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    accounts.create_user(kube, name, password, tenant=TENANT, role="viewer")
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "username").write_text(name)
    (credentials / "password").write_text(password + password_suffix)
    try:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "server.transport.selftest",
                "--target",
                stack.edge.target,
                "--ca",
                str(stack.edge.ca_cert),
                "--credentials",
                str(credentials),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        accounts.unbind(kube, name)
    if password_suffix:
        assert result.returncode == 1
        assert "failed: UNAUTHENTICATED" in result.stderr
    else:
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines()[0] == "health: SERVING"
        assert result.stdout.splitlines()[1] == f"login: {name}"
        assert result.stdout.splitlines()[2].startswith("ListWukongs: ")


def test_install_upgrade_rollback_uninstall_reinstall_keep_crds_tasks_and_the_edited_authz(
    helm: Path, admin: kubernetes.client.ApiClient, own_cluster: devcluster.ClusterInfo, tmp_path: Path
) -> None:
    kubeconfig = own_cluster.kubeconfig
    objects = Objects(admin)
    install = ["upgrade", "--install", RELEASE, "--namespace", NAMESPACE, "--create-namespace", "--timeout", "60s"]

    started = time.monotonic()
    run_helm(helm, *install, str(CHART), kubeconfig=kubeconfig)
    print(f"helm install: {time.monotonic() - started:.1f} s")
    try:
        assert objects.get("CustomResourceDefinition", TASKS_CRD)["metadata"]["annotations"] == {
            "helm.sh/resource-policy": "keep",
            "meta.helm.sh/release-name": RELEASE,
            "meta.helm.sh/release-namespace": NAMESPACE,
        }
        assert "Requested by" not in task_columns(objects)
        _wait_until(lambda: _established(objects.get("CustomResourceDefinition", TASKS_CRD)), "the Task CRD")
        certificate = objects.get("Secret", f"{RELEASE}-tls", NAMESPACE)["data"]["tls.crt"]

        edited = edit_bindings(objects, "- {user: ada, tenant: demo, role: operator}")
        objects.resource("Task").create(body=_task("kept-task"), namespace=NAMESPACE)

        # The next version of the chart: its Task CRD gains a printer column.
        next_chart = tmp_path / "novasphere-api"
        shutil.copytree(CHART, next_chart)
        crd_file = next_chart / "files" / "crds" / f"{TASKS_CRD}.yaml"
        crd_text, replaced = re.subn(
            r"(\n(\s*)- \{name: Age, type: date)",
            r"\n\2- {name: Requested by, type: string, jsonPath: .spec.requestedBy.user, priority: 1}\1",
            crd_file.read_text(),
        )
        assert replaced == 1
        crd_file.write_text(crd_text)
        run_helm(helm, *install, str(next_chart), kubeconfig=kubeconfig)

        assert "Requested by" in task_columns(objects)
        assert objects.get("ConfigMap", "novasphere-authz", NAMESPACE)["data"]["bindings.yaml"] == edited
        assert objects.get("Secret", f"{RELEASE}-tls", NAMESPACE)["data"]["tls.crt"] == certificate

        # A rollback takes the CRD back and leaves the roles and bindings as they are now.
        edited = edit_bindings(objects, "- {user: bob, tenant: demo, role: viewer}")
        run_helm(helm, "rollback", RELEASE, "1", "--namespace", NAMESPACE, kubeconfig=kubeconfig)
        assert "Requested by" not in task_columns(objects)
        assert objects.get("ConfigMap", "novasphere-authz", NAMESPACE)["data"]["bindings.yaml"] == edited
        history = run_helm(helm, "history", RELEASE, "-n", NAMESPACE, "-o", "yaml", kubeconfig=kubeconfig)
        assert [revision["status"] for revision in yaml.safe_load(history)] == ["superseded", "superseded", "deployed"]
    finally:
        run_helm(helm, "uninstall", RELEASE, "--namespace", NAMESPACE, kubeconfig=kubeconfig)

    _wait_until(lambda: not objects.list("Deployment", NAMESPACE), "the Deployment to be deleted")
    assert not objects.list("Service", NAMESPACE)
    # Kept: the CRDs (and so every Task), the authz ConfigMap as edited.
    assert objects.get("CustomResourceDefinition", "consolesessions.api.novasphere.dev")
    assert objects.get("Task", "kept-task", NAMESPACE)
    assert objects.get("ConfigMap", "novasphere-authz", NAMESPACE)["data"]["bindings.yaml"] == edited

    # Installing again adopts what was kept, edits included.
    run_helm(helm, *install, str(CHART), kubeconfig=kubeconfig)
    try:
        assert objects.get("ConfigMap", "novasphere-authz", NAMESPACE)["data"]["bindings.yaml"] == edited
        assert objects.list("Deployment", NAMESPACE)
    finally:
        run_helm(helm, "uninstall", RELEASE, "--namespace", NAMESPACE, kubeconfig=kubeconfig)


TASKS_CRD = "tasks.api.novasphere.dev"
KINDS = {
    "CustomResourceDefinition": "apiextensions.k8s.io/v1",
    "ConfigMap": "v1",
    "Secret": "v1",
    "Service": "v1",
    "Deployment": "apps/v1",
    "Task": "api.novasphere.dev/v1alpha1",
}


class Objects:
    """Objects as plain dicts, through the dynamic client."""

    def __init__(self, admin: kubernetes.client.ApiClient) -> None:
        self._dynamic = DynamicClient(admin)

    def resource(self, kind: str) -> Any:
        return self._dynamic.resources.get(api_version=KINDS[kind], kind=kind)

    def get(self, kind: str, name: str, namespace: str | None = None) -> Any:
        return self.resource(kind).get(name=name, namespace=namespace).to_dict()

    def list(self, kind: str, namespace: str) -> list[Any]:
        items: list[Any] = self.resource(kind).get(namespace=namespace).to_dict()["items"]
        return items


def edit_bindings(objects: Objects, binding: str) -> str:
    """AdminService's kind of edit, a PUT of the whole authz ConfigMap; returns the new bindings."""
    authz = objects.get("ConfigMap", "novasphere-authz", NAMESPACE)
    authz["data"]["bindings.yaml"] += binding + "\n"
    objects.resource("ConfigMap").replace(body=authz, namespace=NAMESPACE)
    bindings: str = authz["data"]["bindings.yaml"]
    return bindings


def task_columns(objects: Objects) -> list[str]:
    crd = objects.get("CustomResourceDefinition", TASKS_CRD)
    return [column["name"] for column in crd["spec"]["versions"][0]["additionalPrinterColumns"]]


def _established(crd: Any) -> bool:
    return any(
        c["type"] == "Established" and c["status"] == "True" for c in crd.get("status", {}).get("conditions", [])
    )


def _task(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "api.novasphere.dev/v1alpha1",
        "kind": "Task",
        "metadata": {"name": name},
        "spec": {
            "operation": "Start",
            "requestedBy": {"user": "ada", "tenant": "demo"},
            "target": {"namespace": "demo", "name": "vm-1"},
        },
    }


def _ensure_namespace(admin: kubernetes.client.ApiClient, name: str) -> None:
    try:
        kubernetes.client.CoreV1Api(admin).create_namespace(
            kubernetes.client.V1Namespace(metadata=kubernetes.client.V1ObjectMeta(name=name))
        )
    except ApiException as error:
        if error.status != 409:
            raise


def _wait_until(condition: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
