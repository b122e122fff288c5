"""Each of the API server's operator metrics moves when the thing it counts happens: provoked here through the stack's
API server, read from its /metrics (the admin listener) the way Prometheus reads them."""

from __future__ import annotations

import uuid

import grpc
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from devcluster import stack as devstack
from novasphere.v1 import auth_service_pb2 as auth_pb2
from novasphere.v1 import wukong_service_pb2 as service_pb2
from novasphere.v1.auth_service_pb2_grpc import AuthServiceStub
from novasphere.v1.task_service_pb2_grpc import TaskServiceStub
from novasphere.v1.wukong_service_pb2_grpc import WukongServiceStub
from server.auth import lockout
from server.console import sessions
from tests import kube_helpers
from tests.e2e.test_tasks import State, running_wukong, wait_task
from tests.e2e.test_wukong_api import create
from tests.watching import Type, grpc_watch


def value(stack: devstack.Stack, name: str, **labels: str) -> float:
    """The sum of the samples `name` whose labels include `labels` (0 when there is none yet)."""
    text = httpx.get(stack.metrics_url, timeout=10).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


def test_informer_staleness_grows_while_quiet_and_drops_at_an_event(
    stack: devstack.Stack, grpc_direct: WukongServiceStub, namespace: str
) -> None:
    kinds = {"wukongs", "virtualmachines", "virtualmachineinstances", "pods", "namespaces", "nodes", "tasks"}
    for kind in kinds:
        assert value(stack, "novasphere_informer_staleness_seconds", kind=kind) < 300, kind
    kube_helpers.eventually(
        lambda: value(stack, "novasphere_informer_staleness_seconds", kind="wukongs") >= 1.0,
        timeout=90,
        what="a second without news of Wukongs",
    )
    create(grpc_direct, namespace, "heard")
    kube_helpers.eventually(
        lambda: value(stack, "novasphere_informer_staleness_seconds", kind="wukongs") < 1.0,
        timeout=30,
        what="the Wukongs informer hearing of the new one",
    )


def test_watch_streams_and_fanout_lag_and_kubernetes_calls_and_task_durations(
    stack: devstack.Stack, grpc_direct: WukongServiceStub, tasks_direct: TaskServiceStub, namespace: str
) -> None:
    lagged = value(stack, "novasphere_watch_fanout_lag_seconds_count")
    creates = value(stack, "novasphere_kube_request_duration_seconds_count", verb="create", resource="wukongs")
    stops = value(stack, "novasphere_task_duration_seconds_count", operation="stop", outcome="succeeded")
    watch = grpc_watch(grpc_direct, service_pb2.WatchWukongRequest(namespace=namespace))
    try:
        watch.wait_for(lambda event: event.type == Type.BOOKMARK, what="the first bookmark")
        assert value(stack, "novasphere_watch_streams") >= 1
        running_wukong(grpc_direct, namespace, "counted")
        watch.wait_for(lambda event: event.wukong.name == "counted", what="the new Wukong's event")
        assert value(stack, "novasphere_watch_fanout_lag_seconds_count") > lagged
    finally:
        watch.close()
    assert value(stack, "novasphere_kube_request_duration_seconds_count", verb="create", resource="wukongs") > creates

    stopped = wait_task(
        tasks_direct, grpc_direct.StopWukong(service_pb2.StopWukongRequest(namespace=namespace, name="counted")).id
    )
    assert stopped.state == State.SUCCEEDED, stopped
    kube_helpers.eventually(
        lambda: value(stack, "novasphere_task_duration_seconds_count", operation="stop", outcome="succeeded") > stops,
        timeout=10,
        what="the stop task counted",
    )
    assert value(stack, "novasphere_task_duration_seconds_sum", operation="stop", outcome="succeeded") > 0


def test_kubernetes_call_errors_are_counted_by_verb_resource_and_code(
    stack: devstack.Stack, grpc_direct: WukongServiceStub, namespace: str
) -> None:
    """A create of a Wukong that exists reaches kube-apiserver, which answers 409."""
    conflicts = value(stack, "novasphere_kube_request_errors_total", verb="create", resource="wukongs", code="409")
    create(grpc_direct, namespace, "twice")
    with pytest.raises(grpc.RpcError) as again:
        create(grpc_direct, namespace, "twice")
    assert again.value.code() == grpc.StatusCode.ALREADY_EXISTS
    after = value(stack, "novasphere_kube_request_errors_total", verb="create", resource="wukongs", code="409")
    assert after == conflicts + 1


def test_login_failures_lockouts_and_refusals_while_locked_out(stack: devstack.Stack) -> None:
    wrong = value(stack, "novasphere_login_failures_total", reason="wrong_password")
    locked = value(stack, "novasphere_login_failures_total", reason="locked_out")
    lockouts = value(stack, "novasphere_login_lockouts_total")
    name = f"nobody-{uuid.uuid4().hex[:8]}"
    with grpc.insecure_channel(stack.api.target) as channel:
        auth = AuthServiceStub(channel)
        for _ in range(lockout.MAX_FAILURES + 1):
            with pytest.raises(grpc.RpcError):
                auth.Login(auth_pb2.LoginRequest(username=name, password="not-the-password"))
    assert value(stack, "novasphere_login_failures_total", reason="wrong_password") == wrong + lockout.MAX_FAILURES
    assert value(stack, "novasphere_login_lockouts_total") == lockouts + 1
    assert value(stack, "novasphere_login_failures_total", reason="locked_out") == locked + 1


def test_a_refused_console_socket_is_counted(stack: devstack.Stack) -> None:
    refused = value(stack, "novasphere_console_failures_total", reason="refused")
    answer = httpx.get(
        f"http://127.0.0.1:{stack.ports.console}{sessions.WEBSOCKET_PATH}c-made-up",
        headers={
            "Upgrade": "websocket",
            "Connection": "Upgrade",
            "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Protocol": "base64.binary.k8s.io",
        },
        timeout=10,
    )
    assert answer.status_code == 401
    assert value(stack, "novasphere_console_failures_total", reason="refused") == refused + 1
