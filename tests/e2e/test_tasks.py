"""VM operations as tasks, end to end: the real control plane, the simulator of KubeVirt and vmoperator, the API
server and Envoy. Every operation through gRPC and REST, failures from the simulator's faults, invalid transitions,
idempotent retries, a batch over 50 VMs, and progress seen rising."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import kubernetes.client
import pytest

from devcluster import stack as devstack
from novasphere.v1 import task_pb2, wukong_pb2
from novasphere.v1 import task_service_pb2 as task_service
from novasphere.v1 import wukong_service_pb2 as service_pb2
from novasphere.v1.task_service_pb2_grpc import TaskServiceStub
from novasphere.v1.wukong_service_pb2_grpc import WukongServiceStub
from sim import faults
from tests import kube_helpers
from tests.conftest import api_process
from tests.e2e.test_wukong_api import SPEC, create, stored
from tests.status_helpers import details_of

State = task_pb2.TaskState
Operation = task_pb2.Task.Operation
Power = wukong_pb2.WukongStatus.PowerState
ENDED = (State.SUCCEEDED, State.FAILED, State.CANCELLED)
TIMEOUT = 60.0


@pytest.fixture
def http(stack: devstack.Stack) -> Iterator[httpx.Client]:
    with stack.edge.http_client() as client:
        yield client


def wait_task(tasks: TaskServiceStub, task_id: str, timeout: float = TIMEOUT) -> task_pb2.Task:
    """Follows the task with WatchTask until it ends; returns its last state."""
    last: task_pb2.Task | None = None
    for task in tasks.WatchTask(task_service.WatchTaskRequest(id=task_id), timeout=timeout):
        last = task
    assert last is not None, f"task {task_id}: nothing received"
    assert last.state in ENDED, f"task {task_id} did not end: {last}"
    return last


def wait_power(stub: WukongServiceStub, namespace: str, name: str, state: int, timeout: float = TIMEOUT) -> None:
    def probe() -> bool | None:
        try:
            wukong = stub.GetWukong(service_pb2.GetWukongRequest(namespace=namespace, name=name))
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                return None  # created a moment ago, not yet seen by the API
            raise
        return True if wukong.status.power_state == state else None

    kube_helpers.eventually(probe, timeout=timeout, what=f"{name} in power state {state}")


def running_wukong(stub: WukongServiceStub, namespace: str, name: str, **spec: Any) -> None:
    create(stub, namespace, name, **spec)
    wait_power(stub, namespace, name, Power.RUNNING)


def annotate(kube: kubernetes.client.ApiClient, namespace: str, name: str, annotations: dict[str, str]) -> None:
    from server.kube import wukongs as kube_wukongs

    kubernetes.client.CustomObjectsApi(kube).patch_namespaced_custom_object(
        kube_wukongs.GROUP,
        kube_wukongs.VERSION,
        namespace,
        kube_wukongs.PLURAL,
        name,
        {"metadata": {"annotations": annotations}},
    )


def instance_uid(kube: kubernetes.client.ApiClient, namespace: str, name: str) -> str | None:
    try:
        raw = kubernetes.client.CustomObjectsApi(kube).get_namespaced_custom_object(
            "kubevirt.io", "v1", namespace, "virtualmachineinstances", f"{name}-vm"
        )
    except kubernetes.client.ApiException as error:
        if error.status == 404:
            return None
        raise
    return str(kube_helpers.dig(raw, "metadata", "uid"))


def test_stop_start_restart_pause_resume_and_delete_through_grpc(
    grpc_direct: WukongServiceStub, tasks_direct: TaskServiceStub, kube: kubernetes.client.ApiClient, namespace: str
) -> None:
    running_wukong(grpc_direct, namespace, "life")
    request: dict[str, Any] = {"namespace": namespace, "name": "life"}

    stop = grpc_direct.StopWukong(service_pb2.StopWukongRequest(**request))
    assert (stop.operation, stop.namespace, stop.name) == (Operation.STOP, namespace, "life")
    assert stop.state in (State.RUNNING, State.PENDING)
    assert stop.id.startswith("t-")
    stopped = wait_task(tasks_direct, stop.id)
    assert (stopped.state, stopped.progress, stopped.step) == (State.SUCCEEDED, 100, "VM stopped"), stopped
    assert stored(kube, namespace, "life")["spec"]["startStrategy"]["autoStart"] is False
    assert instance_uid(kube, namespace, "life") is None

    started = wait_task(tasks_direct, grpc_direct.StartWukong(service_pb2.StartWukongRequest(**request)).id)
    assert started.state == State.SUCCEEDED, started
    assert started.result.startswith("VM running on sim-node-"), started
    before = instance_uid(kube, namespace, "life")

    restarted = wait_task(tasks_direct, grpc_direct.RestartWukong(service_pb2.RestartWukongRequest(**request)).id)
    assert restarted.state == State.SUCCEEDED, restarted
    assert instance_uid(kube, namespace, "life") not in (None, before)

    paused = wait_task(tasks_direct, grpc_direct.PauseWukong(service_pb2.PauseWukongRequest(**request)).id)
    assert paused.state == State.SUCCEEDED, paused
    wait_power(grpc_direct, namespace, "life", Power.PAUSED)
    resumed = wait_task(tasks_direct, grpc_direct.ResumeWukong(service_pb2.ResumeWukongRequest(**request)).id)
    assert resumed.state == State.SUCCEEDED, resumed
    wait_power(grpc_direct, namespace, "life", Power.RUNNING)

    detail = grpc_direct.GetWukong(service_pb2.GetWukongRequest(**request)).detail
    assert [t.operation for t in detail.recent_tasks] == [
        Operation.RESUME,
        Operation.PAUSE,
        Operation.RESTART,
        Operation.START,
        Operation.STOP,
    ]
    assert all(t.requested_by == "developer" and t.state == State.SUCCEEDED for t in detail.recent_tasks)

    deleted = wait_task(tasks_direct, grpc_direct.DeleteWukong(service_pb2.DeleteWukongRequest(**request)).id)
    assert (deleted.state, deleted.step) == (State.SUCCEEDED, "Wukong deleted (its disks are kept)"), deleted
    claims = kubernetes.client.CoreV1Api(kube).list_namespaced_persistent_volume_claim(namespace).items
    assert [c.metadata.name for c in claims if c.metadata] == ["life-root"]
    # The history outlives the VM.
    history = tasks_direct.ListTasks(task_service.ListTasksRequest(namespace=namespace, name="life"))
    assert history.total == 6
    assert history.tasks[0].operation == Operation.DELETE


def rest_task(http: httpx.Client, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    response = http.request(method, path, **kwargs)
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body, dict)
    return body


def rest_wait(http: httpx.Client, task_id: str) -> dict[str, Any]:
    """Follows a task over REST: GET /api/v1/tasks/{id} until it ends."""

    def ended() -> dict[str, Any] | None:
        task = rest_task(http, "GET", f"/api/v1/tasks/{task_id}")
        return task if task["state"] in ("SUCCEEDED", "FAILED", "CANCELLED") else None

    return kube_helpers.eventually(ended, timeout=TIMEOUT, what=f"task {task_id} to end")


def test_one_stream_follows_each_of_the_callers_tasks_in_the_namespace_to_its_end(
    grpc_direct: WukongServiceStub, tasks_direct: TaskServiceStub, namespace: str
) -> None:
    for name in ("one", "two"):
        running_wukong(grpc_direct, namespace, name)
    stream = tasks_direct.WatchTasks(task_service.WatchTasksRequest(namespace=namespace), timeout=TIMEOUT)
    try:
        assert list(next(stream).tasks) == []  # none open yet: the first message says the stream is live
        started = [
            grpc_direct.StopWukong(service_pb2.StopWukongRequest(namespace=namespace, name="one", force=True)).id,
            grpc_direct.StopWukong(service_pb2.StopWukongRequest(namespace=namespace, name="two")).id,
        ]
        latest: dict[str, task_pb2.Task] = {}
        seen_open: set[str] = set()
        for message in stream:
            for task in message.tasks:
                assert task.id in started, task
                assert task.id not in latest or latest[task.id].state not in ENDED, f"sent after it ended: {task}"
                latest[task.id] = task
                if task.state not in ENDED:
                    seen_open.add(task.id)
            if len(latest) == 2 and all(task.state in ENDED for task in latest.values()):
                break
    finally:
        stream.cancel()
    assert seen_open == set(started)  # followed while open, not only told the end
    assert [(latest[i].state, latest[i].progress) for i in started] == [(State.SUCCEEDED, 100)] * 2


def test_every_operation_through_rest_with_task_polling_and_sse(
    grpc_direct: WukongServiceStub, http: httpx.Client, stack: devstack.Stack, namespace: str
) -> None:
    running_wukong(grpc_direct, namespace, "rest")
    params = {"namespace": namespace}

    stop = rest_task(http, "POST", "/api/v1/wukongs/rest/stop", params=params, json={})
    assert (stop["operation"], stop["name"], stop["namespace"]) == ("STOP", "rest", namespace)
    # The same task as Server-Sent Events, ending when the task ends.
    with httpx.stream(
        "GET", f"{stack.http}/api/v1/watch/tasks/{stop['id']}", timeout=TIMEOUT, verify=stack.edge.verify()
    ) as events:
        assert events.headers["content-type"].startswith("text/event-stream")
        seen = [json.loads(line[len("data: ") :]) for line in events.iter_lines() if line.startswith("data: ")]
    assert seen[-1]["state"] == "SUCCEEDED", seen
    progress = [event.get("progress", 0) for event in seen]
    assert progress == sorted(progress), progress

    uid = grpc_direct.GetWukong(service_pb2.GetWukongRequest(namespace=namespace, name="rest")).uid
    start = rest_task(http, "POST", f"/api/v1/vms/{uid}/start", json={"requestId": "rest-start-1"})
    assert rest_wait(http, start["id"])["state"] == "SUCCEEDED"
    again = rest_task(http, "POST", f"/api/v1/vms/{uid}/start", json={"requestId": "rest-start-1"})
    assert again["id"] == start["id"]  # a retry, not a second start
    for verb in ("restart", "pause", "resume"):
        task = rest_task(http, "POST", f"/api/v1/wukongs/rest/{verb}", params=params, json={})
        assert rest_wait(http, task["id"])["state"] == "SUCCEEDED", verb

    refused = http.post("/api/v1/wukongs/rest/resume", params=params, json={})
    assert refused.status_code == 400
    error = refused.json()
    assert "RUNNING" in error["message"]
    assert error["details"][0]["reason"] == "INVALID_TRANSITION"

    delete = rest_task(http, "DELETE", "/api/v1/wukongs/rest", params={**params, "deleteDisks": "true"})
    done = rest_wait(http, delete["id"])
    assert (done["state"], done["step"], done["deleteDisks"]) == ("SUCCEEDED", "Wukong and its disks deleted", True)
    listed = rest_task(http, "GET", "/api/v1/tasks", params={"namespace": namespace, "name": "rest"})
    assert [t["operation"] for t in listed["tasks"]] == ["DELETE", "RESUME", "PAUSE", "RESTART", "START", "STOP"]
    assert http.get("/api/v1/tasks/t-00000000000000000000000000000000").status_code == 404


def test_invalid_transitions_are_failed_precondition_naming_the_state_and_change_nothing(
    grpc_direct: WukongServiceStub,
    tasks_direct: TaskServiceStub,
    kube: kubernetes.client.ApiClient,
    namespace: str,
) -> None:
    running_wukong(grpc_direct, namespace, "on")
    create(grpc_direct, namespace, "off", startStrategy={"autoStart": False})
    wait_power(grpc_direct, namespace, "off", Power.STOPPED)
    before = {name: kube_helpers.what_the_api_writes(stored(kube, namespace, name)) for name in ("on", "off")}

    cases: list[tuple[Callable[..., Any], Any, str, str]] = [
        (grpc_direct.StartWukong, service_pb2.StartWukongRequest(namespace=namespace, name="on"), "RUNNING", "start"),
        (grpc_direct.PauseWukong, service_pb2.PauseWukongRequest(namespace=namespace, name="off"), "STOPPED", "pause"),
        (grpc_direct.ResumeWukong, service_pb2.ResumeWukongRequest(namespace=namespace, name="on"), "RUNNING", ""),
        (grpc_direct.RestartWukong, service_pb2.RestartWukongRequest(namespace=namespace, name="off"), "STOPPED", ""),
        (grpc_direct.StopWukong, service_pb2.StopWukongRequest(namespace=namespace, name="off"), "STOPPED", "stop"),
    ]
    for rpc, request, state, verb in cases:
        with pytest.raises(grpc.RpcError) as raised:
            rpc(request)
        assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION, request
        assert f"it is {state}" in (raised.value.details() or ""), raised.value.details()
        assert verb in (raised.value.details() or "")
        assert details_of(raised.value).reason == "INVALID_TRANSITION"
    with pytest.raises(grpc.RpcError) as missing:
        grpc_direct.StopWukong(service_pb2.StopWukongRequest(namespace=namespace, name="nope"))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND

    # A Wukong being deleted (held by a finalizer) takes no operation at all.
    annotate(kube, namespace, "on", {})
    kubernetes.client.CustomObjectsApi(kube).patch_namespaced_custom_object(
        "vm.novasphere.dev", "v1alpha1", namespace, "wukongs", "on", {"metadata": {"finalizers": ["tests/hold"]}}
    )
    kubernetes.client.CustomObjectsApi(kube).delete_namespaced_custom_object(
        "vm.novasphere.dev", "v1alpha1", namespace, "wukongs", "on"
    )
    wait_power(grpc_direct, namespace, "on", Power.DELETING)
    attempts: list[tuple[Callable[..., Any], Any]] = [
        (grpc_direct.StopWukong, service_pb2.StopWukongRequest(namespace=namespace, name="on")),
        (grpc_direct.RestartWukong, service_pb2.RestartWukongRequest(namespace=namespace, name="on")),
        (grpc_direct.DeleteWukong, service_pb2.DeleteWukongRequest(namespace=namespace, name="on")),
    ]
    for rpc, request in attempts:
        with pytest.raises(grpc.RpcError) as deleting:
            rpc(request)
        assert deleting.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "is being deleted" in (deleting.value.details() or "")
    kubernetes.client.CustomObjectsApi(kube).patch_namespaced_custom_object(
        "vm.novasphere.dev", "v1alpha1", namespace, "wukongs", "on", {"metadata": {"finalizers": None}}
    )

    assert kube_helpers.what_the_api_writes(stored(kube, namespace, "off")) == before["off"]
    listed = tasks_direct.ListTasks(task_service.ListTasksRequest(namespace=namespace))
    assert listed.total == 0, listed


def test_validate_only_and_idempotent_retries_on_any_replica(
    grpc_direct: WukongServiceStub,
    tasks_direct: TaskServiceStub,
    second_api: WukongServiceStub,
    kube: kubernetes.client.ApiClient,
    namespace: str,
) -> None:
    running_wukong(grpc_direct, namespace, "idem")
    dry = grpc_direct.StopWukong(service_pb2.StopWukongRequest(namespace=namespace, name="idem", validate_only=True))
    assert (dry.id, dry.state, dry.operation) == ("", State.PENDING, Operation.STOP)
    assert stored(kube, namespace, "idem")["spec"]["startStrategy"]["autoStart"] is True

    key = f"stop-{uuid.uuid4()}"
    first = grpc_direct.StopWukong(service_pb2.StopWukongRequest(namespace=namespace, name="idem", request_id=key))
    retried = second_api.StopWukong(service_pb2.StopWukongRequest(namespace=namespace, name="idem", request_id=key))
    assert retried.id == first.id
    assert retried.request_id == key
    wait_task(tasks_direct, first.id)
    # After the task ended, the same key still names it (not a new stop, and not "already stopped").
    late = grpc_direct.StopWukong(service_pb2.StopWukongRequest(namespace=namespace, name="idem", request_id=key))
    assert (late.id, late.state) == (first.id, State.SUCCEEDED)
    with pytest.raises(grpc.RpcError) as reused:
        grpc_direct.StartWukong(service_pb2.StartWukongRequest(namespace=namespace, name="idem", request_id=key))
    assert reused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "request_id" in (reused.value.details() or "")
    assert tasks_direct.ListTasks(task_service.ListTasksRequest(namespace=namespace)).total == 1


def test_start_failure_slow_boot_progress_and_a_crash_looping_vm(
    grpc_direct: WukongServiceStub,
    tasks_direct: TaskServiceStub,
    kube: kubernetes.client.ApiClient,
    namespace: str,
) -> None:
    # A start that fails: every boot fails, KubeVirt backs off.
    create(grpc_direct, namespace, "broken", startStrategy={"autoStart": False})
    wait_power(grpc_direct, namespace, "broken", Power.STOPPED)
    annotate(kube, namespace, "broken", {faults.FAIL_START: "true"})
    failed = wait_task(
        tasks_direct, grpc_direct.StartWukong(service_pb2.StartWukongRequest(namespace=namespace, name="broken")).id
    )
    assert failed.state == State.FAILED, failed
    assert failed.error.code == grpc.StatusCode.ABORTED.value[0]
    assert "did not start" in failed.error.message

    # A slow boot (40 simulated seconds = 2 s here): the progress rises through observed states.
    create(grpc_direct, namespace, "slow", startStrategy={"autoStart": False})
    wait_power(grpc_direct, namespace, "slow", Power.STOPPED)
    annotate(kube, namespace, "slow", {faults.BOOT_SECONDS: "40"})
    start = grpc_direct.StartWukong(service_pb2.StartWukongRequest(namespace=namespace, name="slow"))
    updates = list(tasks_direct.WatchTask(task_service.WatchTaskRequest(id=start.id), timeout=TIMEOUT))
    steps = [(u.progress, u.step) for u in updates]
    assert updates[-1].state == State.SUCCEEDED, steps
    assert [p for p, _ in steps] == sorted(p for p, _ in steps), steps
    assert (60, "instance scheduled; guest booting") in steps, steps
    assert len({p for p, _ in steps if 0 < p < 100}) >= 2, steps

    # A VM that crashes soon after every boot ends in KubeVirt's back-off: it can be stopped, not restarted.
    running_wukong(grpc_direct, namespace, "crashy")
    annotate(kube, namespace, "crashy", {faults.CRASH_AFTER_SECONDS: "1"})
    wait_power(grpc_direct, namespace, "crashy", Power.ERROR)
    with pytest.raises(grpc.RpcError) as refused:
        grpc_direct.RestartWukong(service_pb2.RestartWukongRequest(namespace=namespace, name="crashy"))
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    # Between crashes KubeVirt restarts it, so it is ERROR (CrashLoopBackOff) or STARTING: never RUNNING for long.
    assert re.search(r"it is (ERROR|STARTING) \(meant to run\)", refused.value.details() or ""), refused.value
    stopped = wait_task(
        tasks_direct, grpc_direct.StopWukong(service_pb2.StopWukongRequest(namespace=namespace, name="crashy")).id
    )
    assert stopped.state == State.SUCCEEDED, stopped


def test_a_forced_stop_ends_a_long_graceful_shutdown_at_once(
    grpc_direct: WukongServiceStub,
    tasks_direct: TaskServiceStub,
    kube: kubernetes.client.ApiClient,
    namespace: str,
) -> None:
    running_wukong(grpc_direct, namespace, "stubborn")
    # The guest takes 10 simulated minutes to shut down and its instance allows an hour: a graceful stop waits.
    annotate(kube, namespace, "stubborn", {faults.SHUTDOWN_SECONDS: "600"})
    kubernetes.client.CustomObjectsApi(kube).patch_namespaced_custom_object(
        "kubevirt.io",
        "v1",
        namespace,
        "virtualmachineinstances",
        "stubborn-vm",
        {"spec": {"terminationGracePeriodSeconds": 3600}},
    )
    graceful = grpc_direct.StopWukong(service_pb2.StopWukongRequest(namespace=namespace, name="stubborn"))

    def shutting_down() -> task_pb2.Task | None:
        task = tasks_direct.GetTask(task_service.GetTaskRequest(id=graceful.id))
        return task if task.step == "guest shutting down" else None

    kube_helpers.eventually(shutting_down, timeout=TIMEOUT, what="the graceful shutdown to begin")
    time.sleep(2)  # 40 simulated seconds: the guest is still shutting down
    assert tasks_direct.GetTask(task_service.GetTaskRequest(id=graceful.id)).state == State.RUNNING
    wukong = grpc_direct.GetWukong(service_pb2.GetWukongRequest(namespace=namespace, name="stubborn"))
    assert wukong.status.power_state == Power.STOPPING
    # A stop is under way: neither a second stop nor a start is offered (a delete still is).
    assert wukong_pb2.Wukong.Action.STOP not in wukong.available_actions
    assert wukong_pb2.Wukong.Action.START not in wukong.available_actions
    assert wukong_pb2.Wukong.Action.DELETE in wukong.available_actions
    with pytest.raises(grpc.RpcError) as second:
        grpc_direct.StopWukong(service_pb2.StopWukongRequest(namespace=namespace, name="stubborn"))
    assert second.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert details_of(second.value).reason == "TASK_IN_PROGRESS"

    began = time.monotonic()
    forced = grpc_direct.StopWukong(service_pb2.StopWukongRequest(namespace=namespace, name="stubborn", force=True))
    assert wait_task(tasks_direct, forced.id).state == State.SUCCEEDED
    took = time.monotonic() - began
    assert took < 10, f"a forced stop took {took:.1f} s; the graceful one would take 30 s"
    assert wait_task(tasks_direct, graceful.id).state == State.SUCCEEDED
    assert instance_uid(kube, namespace, "stubborn") is None


def test_a_batch_over_50_vms_with_a_summary_and_a_refused_child(
    grpc_direct: WukongServiceStub,
    tasks_direct: TaskServiceStub,
    kube: kubernetes.client.ApiClient,
    namespace: str,
) -> None:
    for index in range(50):
        kube_helpers.create_wukong(
            kube,
            namespace,
            f"fleet-{index:02d}",
            {**SPEC, "startStrategy": {"autoStart": False}},
            labels={"fleet": "a"},
        )
    kube_helpers.create_wukong(kube, namespace, "fleet-on", SPEC, labels={"fleet": "a"})
    wait_power(grpc_direct, namespace, "fleet-on", Power.RUNNING)
    for index in (0, 49):
        wait_power(grpc_direct, namespace, f"fleet-{index:02d}", Power.STOPPED)

    batch = grpc_direct.BatchWukongOperation(
        service_pb2.BatchWukongOperationRequest(
            operation=Operation.START, namespace=namespace, label_selector="fleet=a", request_id="fleet-start"
        )
    )
    assert (batch.operation, batch.batch_operation, batch.batch.total) == (Operation.BATCH, Operation.START, 51)
    again = grpc_direct.BatchWukongOperation(
        service_pb2.BatchWukongOperationRequest(
            operation=Operation.START, namespace=namespace, label_selector="fleet=a", request_id="fleet-start"
        )
    )
    assert again.id == batch.id
    done = wait_task(tasks_direct, batch.id, timeout=120)
    assert done.state == State.FAILED, done  # one child could not start: fleet-on was running already
    assert (done.batch.succeeded, done.batch.failed) == (50, 1), done.batch
    assert "1 of 51" in done.error.message
    children = tasks_direct.ListTasks(task_service.ListTasksRequest(parent_id=batch.id, page_size=100))
    assert children.total == 51
    refused = [c for c in children.tasks if c.state == State.FAILED]
    assert [c.name for c in refused] == ["fleet-on"]
    assert "it is RUNNING" in refused[0].error.message
    listed = grpc_direct.ListWukongs(
        service_pb2.ListWukongsRequest(namespace=namespace, status="running", page_size=100)
    )
    assert listed.total == 51


def test_other_tenants_tasks_do_not_exist(
    grpc_direct: WukongServiceStub,
    stack: devstack.Stack,
    namespace: str,
    tmp_path: Path,
) -> None:
    running_wukong(grpc_direct, namespace, "mine")
    stop = grpc_direct.StopWukong(service_pb2.StopWukongRequest(namespace=namespace, name="mine"))
    with (
        api_process(stack, tmp_path, dev_tenant="someone-else") as (other, target),
        grpc.insecure_channel(target) as ch,
    ):
        with pytest.raises(grpc.RpcError) as hidden:
            TaskServiceStub(ch).GetTask(task_service.GetTaskRequest(id=stop.id))
        assert hidden.value.code() == grpc.StatusCode.NOT_FOUND
        assert stop.id not in [t.id for t in TaskServiceStub(ch).ListTasks(task_service.ListTasksRequest()).tasks]
        with pytest.raises(grpc.RpcError) as cancel:
            TaskServiceStub(ch).CancelTask(task_service.CancelTaskRequest(id=stop.id))
        assert cancel.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.RpcError) as foreign:
            other.StartWukong(service_pb2.StartWukongRequest(namespace=namespace, name="mine"))
        assert foreign.value.code() == grpc.StatusCode.NOT_FOUND


def test_metrics_show_open_tasks_and_the_leader(stack: devstack.Stack) -> None:
    text = httpx.get(stack.metrics_url, timeout=10).text
    assert re.search(r"^novasphere_task_leader 1\.0$", text, re.MULTILINE), "the session's only replica leads"
    assert re.search(r"^novasphere_tasks_open \d+\.0$", text, re.MULTILINE)
