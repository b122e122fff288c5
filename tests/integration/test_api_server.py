"""The API server as a process: it talks to Kubernetes as its own ServiceAccount with exactly deploy/rbac's role,
refuses to start without the access it needs, and shuts down gracefully on SIGTERM."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import grpc
import kubernetes.client
import pytest
from google.protobuf import field_mask_pb2
from grpc_health.v1 import health_pb2

from devcluster import kubeconfig, procs
from devcluster import stack as devstack
from novasphere.v1 import wukong_pb2
from novasphere.v1 import wukong_service_pb2 as service_pb2
from novasphere.v1.wukong_service_pb2_grpc import WukongServiceStub
from tests import kube_helpers

REPO_ROOT = Path(__file__).resolve().parents[2]
# The health service called through the channel: the typeshed stub of HealthStub declares no methods.
HEALTH_CODECS: dict[str, Any] = {
    "request_serializer": health_pb2.HealthCheckRequest.SerializeToString,
    "response_deserializer": health_pb2.HealthCheckResponse.FromString,
}


def _can_i(api_kubeconfig: Path, verb: str, resource: str, group: str = "", *, namespace: str = "default") -> bool:
    """`resource` may name a subresource: `virtualmachines/restart`."""
    resource, _, subresource = resource.partition("/")
    with kubernetes.config.new_client_from_config(config_file=str(api_kubeconfig)) as client:
        review = kubernetes.client.AuthorizationV1Api(client).create_self_subject_access_review(
            kubernetes.client.V1SelfSubjectAccessReview(
                spec=kubernetes.client.V1SelfSubjectAccessReviewSpec(
                    resource_attributes=kubernetes.client.V1ResourceAttributes(
                        verb=verb, resource=resource, subresource=subresource, group=group, namespace=namespace
                    )
                )
            )
        )
    assert review.status is not None
    return bool(review.status.allowed)


def test_the_service_account_has_exactly_the_role_in_deploy(stack: devstack.Stack) -> None:
    assert _can_i(stack.api_kubeconfig, "list", "wukongs", "vm.novasphere.dev")
    assert _can_i(stack.api_kubeconfig, "watch", "wukongs", "vm.novasphere.dev")
    assert _can_i(stack.api_kubeconfig, "create", "wukongs", "vm.novasphere.dev")
    assert _can_i(stack.api_kubeconfig, "watch", "virtualmachineinstances", "kubevirt.io")
    assert _can_i(stack.api_kubeconfig, "patch", "persistentvolumeclaims")
    assert _can_i(stack.api_kubeconfig, "delete", "wukongs", "vm.novasphere.dev")
    assert _can_i(stack.api_kubeconfig, "update", "virtualmachines/restart", "subresources.kubevirt.io")
    assert not _can_i(stack.api_kubeconfig, "update", "virtualmachines/migrate", "subresources.kubevirt.io")
    assert not _can_i(stack.api_kubeconfig, "get", "secrets")
    assert _can_i(stack.api_kubeconfig, "get", "pods", "metrics.k8s.io")
    assert not _can_i(stack.api_kubeconfig, "list", "nodes", "metrics.k8s.io")
    assert not _can_i(stack.api_kubeconfig, "update", "virtualmachines", "kubevirt.io")
    # Its own objects only in its own namespace.
    assert _can_i(stack.api_kubeconfig, "create", "tasks", "api.novasphere.dev", namespace="novasphere-system")
    assert not _can_i(stack.api_kubeconfig, "create", "tasks", "api.novasphere.dev", namespace="default")
    assert _can_i(stack.api_kubeconfig, "update", "leases", "coordination.k8s.io", namespace="novasphere-system")
    assert not _can_i(stack.api_kubeconfig, "update", "leases", "coordination.k8s.io", namespace="kube-system")


def test_requests_reach_kube_apiserver_as_the_service_account(
    stack: devstack.Stack, grpc_direct: WukongServiceStub, kube: kubernetes.client.ApiClient, namespace: str
) -> None:
    kube_helpers.create_wukong(kube, namespace, "audited")
    # Reads come from the informers; an update reads the object fresh (GET) before writing it.
    change = wukong_pb2.Wukong(name="audited", namespace=namespace, labels={"audited": "yes"})
    grpc_direct.UpdateWukong(
        service_pb2.UpdateWukongRequest(wukong=change, update_mask=field_mask_pb2.FieldMask(paths=["labels"]))
    )

    def audited_get() -> dict[str, Any] | None:
        for line in Path(stack.cluster.audit_log).read_text().splitlines():
            event = json.loads(line)
            target = event.get("objectRef", {})
            if (target.get("namespace"), target.get("name"), event.get("verb")) == (namespace, "audited", "get"):
                return dict(event)
        return None

    event = kube_helpers.eventually(audited_get, timeout=30, what="the audit event of the API server's GET")
    assert event["user"]["username"] == devstack.API_USER
    assert "system:masters" not in event["user"].get("groups", [])


def test_server_without_the_rbac_it_needs_refuses_to_start(
    stack: devstack.Stack, kube: kubernetes.client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    """A missing verb fails here, at start-up, rather than on a user's request in production."""
    core = kubernetes.client.CoreV1Api(kube)
    core.create_namespaced_service_account(
        namespace, kubernetes.client.V1ServiceAccount(metadata=kubernetes.client.V1ObjectMeta(name="no-rights"))
    )
    issued = core.create_namespaced_service_account_token(
        "no-rights",
        namespace,
        kubernetes.client.AuthenticationV1TokenRequest(spec=kubernetes.client.V1TokenRequestSpec(audiences=[])),
    )
    assert issued.status is not None
    weak = kubeconfig.write(
        tmp_path / "weak.kubeconfig",
        server=stack.cluster.server,
        ca_cert=stack.cluster.pki.ca_cert,
        user="no-rights",
        token=issued.status.token,
    )

    with pytest.raises(procs.ProcessError) as raised:
        devstack.start_api_server(api_kubeconfig=weak, log_path=tmp_path / "api.log")

    assert "may not list wukongs" in str(raised.value)
    assert "deploy/rbac" in str(raised.value)


def test_sigterm_drains_health_then_exits_cleanly(stack: devstack.Stack, tmp_path: Path) -> None:
    api = devstack.start_api_server(
        api_kubeconfig=stack.api_kubeconfig,
        log_path=tmp_path / "api.log",
        extra_env={"NOVASPHERE_SHUTDOWN_GRACE_SECONDS": "5"},
    )
    server = api.process
    try:
        with grpc.insecure_channel(api.target) as channel:
            watch = channel.unary_stream("/grpc.health.v1.Health/Watch", **HEALTH_CODECS)(
                health_pb2.HealthCheckRequest(service="novasphere.v1.WukongService"), timeout=60
            )
            assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
            assert WukongServiceStub(channel).ListWukongs(service_pb2.ListWukongsRequest(page_size=1))

            server.popen.send_signal(signal.SIGTERM)

            assert next(watch).status == health_pb2.HealthCheckResponse.NOT_SERVING
        assert server.popen.wait(30) == 0
        log_lines = [line.split(": ", 1)[-1] for line in server.log_path.read_text().splitlines()]
        assert log_lines.index("stopping: 5 s for in-flight calls") < log_lines.index("stopped")
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("NOVASPHERE_KUBE_THREADS", "0", "NOVASPHERE_KUBE_THREADS has value '0': must be between 1 and 256"),
        ("NOVASPHERE_GRPC_LISTEN", "nowhere", "NOVASPHERE_GRPC_LISTEN has value 'nowhere': expected host:port"),
        ("NOVASPHERE_KUBECONFIG", "/does/not/exist", "NOVASPHERE_KUBECONFIG has value '/does/not/exist': no such"),
        ("NOVASPHERE_REFLECTON", "true", "unknown setting(s) NOVASPHERE_REFLECTON"),
    ],
)
def test_bad_settings_stop_the_server_with_the_variable_named(variable: str, value: str, expected: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "server"],
        env={"PATH": "/usr/bin:/bin", variable: value},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 1
    assert expected in result.stderr


def test_health_is_not_serving_before_kubernetes_is_usable(stack: devstack.Stack, tmp_path: Path) -> None:
    """A load balancer must not route to a replica that cannot read Wukongs yet: with kube-apiserver unreachable the
    server listens but reports NOT_SERVING."""
    nowhere = socket.socket()  # bound, never listening: connections are refused, and no one else can take the port
    nowhere.bind(("127.0.0.1", 0))
    unreachable = kubeconfig.write(
        tmp_path / "unreachable.kubeconfig",
        server=f"https://127.0.0.1:{nowhere.getsockname()[1]}",
        ca_cert=stack.cluster.pki.ca_cert,
        user="nobody",
        token="unused",
    )
    server = procs.spawn(
        "api-server",
        [sys.executable, "-m", "server"],
        log_path=tmp_path / "api.log",
        env={
            "PATH": "/usr/bin:/bin",
            "NOVASPHERE_GRPC_LISTEN": "127.0.0.1:0",
            "NOVASPHERE_ADMIN_LISTEN": "127.0.0.1:0",
            "NOVASPHERE_CONSOLE_LISTEN": "127.0.0.1:0",
            "NOVASPHERE_PORTS_FILE": str(tmp_path / "ports.json"),
            "NOVASPHERE_KUBECONFIG": str(unreachable),
        },
        cwd=REPO_ROOT,
    )
    try:
        kube_helpers.eventually(lambda: (tmp_path / "ports.json").exists(), timeout=30, what="the ports file")
        grpc_port = json.loads((tmp_path / "ports.json").read_text())["grpc"]
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            check = channel.unary_unary("/grpc.health.v1.Health/Check", **HEALTH_CODECS)
            grpc.channel_ready_future(channel).result(timeout=30)
            kube_helpers.eventually(
                lambda: "waiting for kube-apiserver" in server.log_path.read_text(), timeout=30, what="a probe"
            )
            for service in ("", "novasphere.v1.WukongService"):
                response = check(health_pb2.HealthCheckRequest(service=service), timeout=5)
                assert response.status == health_pb2.HealthCheckResponse.NOT_SERVING
    finally:
        server.stop()
        nowhere.close()
