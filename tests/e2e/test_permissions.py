"""Every RPC checks the caller's permission before anything happens: a viewer (`vm:query` only) is refused every
mutation through gRPC and REST, with PERMISSION_DENIED / 403 naming the permission, and the objects keep their spec,
labels and annotations. The expected permission of each RPC is written here from the role definitions (DESIGN.md
§5), not read from the server's table.

Here the caller is an API process's development identity with only `vm:query`; `test_authorization_matrix.py` does
the same for real users, roles and API keys."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import httpx
import kubernetes.client
import pytest
from google.protobuf import field_mask_pb2

from devcluster import procs
from devcluster import stack as devstack
from novasphere.v1 import task_pb2, wukong_pb2
from novasphere.v1 import task_service_pb2 as task_service
from novasphere.v1 import wukong_service_pb2 as service_pb2
from novasphere.v1.task_service_pb2_grpc import TaskServiceStub
from novasphere.v1.wukong_service_pb2_grpc import WukongServiceStub
from tests import kube_helpers
from tests.conftest import API_ENV
from tests.e2e.test_tasks import Power, running_wukong, wait_power
from tests.e2e.test_wukong_api import stored
from tests.status_helpers import details_of


@dataclass(frozen=True)
class Viewer:
    wukongs: WukongServiceStub
    tasks: TaskServiceStub
    http: httpx.Client


@pytest.fixture(scope="module")
def viewer(stack: devstack.Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Viewer]:
    """An API process (with its own Envoy) whose caller may only read VMs (`vm:query`)."""
    state = tmp_path_factory.mktemp("viewer")
    api = devstack.start_api_server(
        api_kubeconfig=stack.api_kubeconfig,
        log_path=state / "api.log",
        extra_env={**API_ENV, "NOVASPHERE_DEV_PERMISSIONS": "vm:query"},
    )
    envoy = devstack.start_front(api, tls=stack.tls, state_dir=state)
    with (
        procs.stopping([api.process, envoy.process]),
        grpc.insecure_channel(api.target) as channel,
        envoy.edge.http_client() as http,
    ):
        yield Viewer(WukongServiceStub(channel), TaskServiceStub(channel), http)


def denied(call: Callable[[], Any], permission: str) -> None:
    with pytest.raises(grpc.RpcError) as raised:
        call()
    assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED, raised.value
    assert f"permission '{permission}' is required" in (raised.value.details() or "")
    assert details_of(raised.value).reason == "PERMISSION_DENIED"


def test_a_viewer_reads_but_every_mutation_and_task_rpc_is_denied(
    viewer: Viewer,
    grpc_direct: WukongServiceStub,
    kube: kubernetes.client.ApiClient,
    namespace: str,
) -> None:
    running_wukong(grpc_direct, namespace, "guarded")
    before = kube_helpers.what_the_api_writes(stored(kube, namespace, "guarded"))
    at: dict[str, Any] = {"namespace": namespace, "name": "guarded"}

    seen = viewer.wukongs.GetWukong(service_pb2.GetWukongRequest(**at))
    assert seen.status.power_state == Power.RUNNING
    assert list(seen.available_actions) == []  # a viewer is offered nothing to do
    assert viewer.wukongs.ListWukongs(service_pb2.ListWukongsRequest(namespace=namespace)).total == 1

    wukong = wukong_pb2.Wukong(name="guarded", namespace=namespace, labels={"x": "y"})
    expected: list[tuple[Callable[[], Any], str]] = [
        (
            lambda: viewer.wukongs.CreateWukong(service_pb2.CreateWukongRequest(namespace=namespace, wukong=wukong)),
            "vm:create",
        ),
        (
            lambda: viewer.wukongs.UpdateWukong(
                service_pb2.UpdateWukongRequest(wukong=wukong, update_mask=field_mask_pb2.FieldMask(paths=["labels"]))
            ),
            "vm:update",
        ),
        (lambda: viewer.wukongs.StartWukong(service_pb2.StartWukongRequest(**at)), "vm:start"),
        (lambda: viewer.wukongs.StopWukong(service_pb2.StopWukongRequest(**at, force=True)), "vm:stop"),
        (lambda: viewer.wukongs.RestartWukong(service_pb2.RestartWukongRequest(**at)), "vm:restart"),
        (lambda: viewer.wukongs.PauseWukong(service_pb2.PauseWukongRequest(**at)), "vm:pause"),
        (lambda: viewer.wukongs.ResumeWukong(service_pb2.ResumeWukongRequest(**at)), "vm:pause"),
        (lambda: viewer.wukongs.DeleteWukong(service_pb2.DeleteWukongRequest(**at)), "vm:delete"),
        (
            lambda: viewer.wukongs.BatchWukongOperation(
                service_pb2.BatchWukongOperationRequest(
                    operation=task_pb2.Task.Operation.STOP, namespace=namespace, names=["guarded"]
                )
            ),
            "vm:stop",
        ),
        (lambda: viewer.tasks.GetTask(task_service.GetTaskRequest(id="t-" + "0" * 32)), "task:query"),
        (lambda: viewer.tasks.ListTasks(task_service.ListTasksRequest()), "task:query"),
        (lambda: list(viewer.tasks.WatchTask(task_service.WatchTaskRequest(id="t-" + "0" * 32))), "task:query"),
        (lambda: viewer.tasks.CancelTask(task_service.CancelTaskRequest(id="t-" + "0" * 32)), "task:query"),
    ]
    for call, permission in expected:
        denied(call, permission)

    for method, path, body in [
        ("POST", "/api/v1/wukongs/guarded/stop", {}),
        ("POST", "/api/v1/wukongs/guarded/restart", {}),
        ("DELETE", "/api/v1/wukongs/guarded", None),
        ("PATCH", "/api/v1/wukongs/guarded", {"labels": {"x": "y"}}),
        ("GET", "/api/v1/tasks", None),
    ]:
        where = {"wukong.namespace" if method == "PATCH" else "namespace": namespace}
        response = viewer.http.request(method, path, params=where, json=body)
        assert response.status_code == 403, (method, path, response.text)
        assert response.json()["details"][0]["reason"] == "PERMISSION_DENIED"

    assert kube_helpers.what_the_api_writes(stored(kube, namespace, "guarded")) == before
    wait_power(grpc_direct, namespace, "guarded", Power.RUNNING)
    assert list(grpc_direct.GetWukong(service_pb2.GetWukongRequest(**at)).detail.recent_tasks) == []
