"""The API server as a process: it talks to Kubernetes as its own ServiceAccount with exactly deploy/rbac's role,
refuses to start without the access it needs, and shuts down gracefully on SIGTERM."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import httpx
import kubernetes.client
import pytest
from google.protobuf import field_mask_pb2
from grpc_health.v1 import health_pb2

from devcluster import kubeconfig, procs
from devcluster import stack as devstack
from novasphere.v1 import auth_service_pb2, metrics_service_pb2, wukong_pb2
from novasphere.v1 import wukong_service_pb2 as service_pb2
from novasphere.v1.auth_service_pb2_grpc import AuthServiceStub
from novasphere.v1.metrics_service_pb2_grpc import MetricsServiceStub
from novasphere.v1.wukong_service_pb2_grpc import WukongServiceStub
from server.auth import limits
from tests import kube_helpers
from tests.conftest import API_ENV
from tests.status_helpers import details_of, details_of_status

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
    assert not _can_i(stack.api_kubeconfig, "list", "secrets")
    assert _can_i(stack.api_kubeconfig, "create", "secrets")  # SSH keys, which it never reads back
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


def test_the_admin_port_answers_the_probes_and_metrics_only(stack: devstack.Stack) -> None:
    admin = f"http://127.0.0.1:{stack.ports.metrics}"
    assert httpx.get(f"{admin}/livez", timeout=10).text == "ok\n"
    assert httpx.get(f"{admin}/readyz", timeout=10).text == "ok\n"
    assert "novasphere_grpc_requests_total" in httpx.get(f"{admin}/metrics", timeout=10).text
    assert httpx.get(f"{admin}/", timeout=10).status_code == 404
    assert httpx.get(f"{admin}/anything", timeout=10).status_code == 404


def test_sigterm_drains_not_ready_first_then_streams_reconnect_then_exit(
    stack: devstack.Stack, kube: kubernetes.client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    """The drain sequence: not ready at once (health and /readyz), still serving for the drain delay, then WatchWukong
    ends in-band and the streams without an event envelope end UNAVAILABLE with a retry hint, then the process
    exits 0; liveness holds throughout."""
    kube_helpers.create_wukong(kube, namespace, "idle")
    api = devstack.start_api_server(
        api_kubeconfig=stack.api_kubeconfig,
        log_path=tmp_path / "api.log",
        extra_env={**API_ENV, "NOVASPHERE_DRAIN_SECONDS": "3", "NOVASPHERE_SHUTDOWN_GRACE_SECONDS": "5"},
    )
    admin = f"http://127.0.0.1:{api.admin}"
    try:
        with grpc.insecure_channel(api.target) as channel:
            health_watch = channel.unary_stream("/grpc.health.v1.Health/Watch", **HEALTH_CODECS)(
                health_pb2.HealthCheckRequest(service="novasphere.v1.WukongService"), timeout=60
            )
            assert next(health_watch).status == health_pb2.HealthCheckResponse.SERVING
            wukongs = WukongServiceStub(channel)
            kube_helpers.eventually(
                lambda: wukongs.ListWukongs(service_pb2.ListWukongsRequest(namespace=namespace)).wukongs,
                timeout=30,
                what="the Wukong in the new replica's cache",
            )
            watch = wukongs.WatchWukong(service_pb2.WatchWukongRequest(namespace=namespace), timeout=60)
            assert next(watch).type == wukong_pb2.WukongEvent.ADDED
            metrics = MetricsServiceStub(channel).WatchWukongMetrics(
                metrics_service_pb2.WatchWukongMetricsRequest(namespace=namespace, name="idle", interval_seconds=1),
                timeout=60,
            )
            assert next(metrics).name == "idle"
            assert httpx.get(f"{admin}/readyz", timeout=10).status_code == 200

            api.process.popen.send_signal(signal.SIGTERM)

            assert next(health_watch).status == health_pb2.HealthCheckResponse.NOT_SERVING
            not_ready = httpx.get(f"{admin}/readyz", timeout=10)
            assert (not_ready.status_code, not_ready.text) == (503, "not ready: the replica is draining\n")
            assert httpx.get(f"{admin}/livez", timeout=10).status_code == 200
            # still served during the drain delay, though not ready: traffic already on its way is not refused
            assert wukongs.ListWukongs(service_pb2.ListWukongsRequest(namespace=namespace)).wukongs

            ending = next(event for event in watch if event.type == wukong_pb2.WukongEvent.ERROR)
            assert details_of_status(ending.error).reason == "REPLICA_SHUTTING_DOWN"
            for stream in (watch, metrics, health_watch):
                with pytest.raises(grpc.RpcError) as ended:
                    list(stream)
                assert ended.value.code() == grpc.StatusCode.UNAVAILABLE
                details = details_of(ended.value)
                assert (details.reason, details.retry_seconds is not None) == ("REPLICA_SHUTTING_DOWN", True)
        assert api.process.popen.wait(30) == 0
        lines = api.process.log_path.read_text().splitlines()
        messages = [json.loads(line)["message"] for line in lines if line.startswith("{")]
        drained = next(i for i, m in enumerate(messages) if m.startswith("draining: serving 3 s more"))
        stopping = next(i for i, m in enumerate(messages) if m.startswith("stopping: 3 streams told to reconnect"))
        assert drained < stopping < messages.index("stopped")
    finally:
        api.process.stop()


def test_the_public_health_watch_counts_against_a_per_client_cap(stack: devstack.Stack, tmp_path: Path) -> None:
    """Needing no caller does not make a stream free: the health service's Watch holds a slot of its client address."""
    api = devstack.start_api_server(
        api_kubeconfig=stack.api_kubeconfig, log_path=tmp_path / "api.log", extra_env=API_ENV
    )
    request = health_pb2.HealthCheckRequest(service="")
    try:
        with grpc.insecure_channel(api.target) as channel:
            watch = channel.unary_stream("/grpc.health.v1.Health/Watch", **HEALTH_CODECS)
            held = [watch(request, timeout=60) for _ in range(limits.MAX_STREAMS_PER_USER)]
            assert all(next(stream).status == health_pb2.HealthCheckResponse.SERVING for stream in held)
            with pytest.raises(grpc.RpcError) as refused:
                next(watch(request, timeout=60))
            assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "per client address" in (refused.value.details() or "")
            held.pop().cancel()
            kube_helpers.eventually(
                lambda: _watch_opens(watch, request), timeout=10, what="a freed slot to take a new Watch"
            )
            for stream in held:
                stream.cancel()
    finally:
        api.process.stop()


def _watch_opens(watch: Any, request: health_pb2.HealthCheckRequest) -> bool:
    stream = watch(request, timeout=10)
    try:
        return bool(next(stream).status == health_pb2.HealthCheckResponse.SERVING)
    except grpc.RpcError:
        return False
    finally:
        stream.cancel()


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
    server listens but reports NOT_SERVING. A client that reaches it all the same (a connection its pod's Envoy
    already had) is told to retry, before its token is even read: without its sessions the replica would call a
    valid token unknown, and a client told UNAUTHENTICATED sends its user back to the login screen."""
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
            calls: dict[str, Callable[[], object]] = {
                "ListWukongs": lambda: WukongServiceStub(channel).ListWukongs(
                    service_pb2.ListWukongsRequest(namespace="default"),
                    metadata=(("authorization", "Bearer not-read-yet"),),
                    timeout=5,
                ),
                "Login": lambda: AuthServiceStub(channel).Login(
                    auth_service_pb2.LoginRequest(username="someone", password="not-read-yet"), timeout=5
                ),
            }
            for name, call in calls.items():
                with pytest.raises(grpc.RpcError) as refused:
                    call()
                assert refused.value.code() is grpc.StatusCode.UNAVAILABLE, name
                assert details_of(refused.value).reason == "REPLICA_STARTING", name
    finally:
        server.stop()
        nowhere.close()
