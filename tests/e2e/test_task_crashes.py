"""No operation is lost when the API server is killed (SIGKILL) at each crash point of a task: after the task was
written, after its action was sent, and while the leader was observing. 20 tasks mixing start, stop and restart run
through a replica that keeps dying; once one survives, every task has ended SUCCEEDED or FAILED with a reason, none
is left RUNNING, and each restart replaced the VM's instance exactly once (a start created one, a stop none)."""

from __future__ import annotations

import re
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import kubernetes.client
import kubernetes.watch
import pytest
import urllib3

from devcluster import procs
from devcluster import stack as devstack
from novasphere.v1 import task_pb2
from novasphere.v1 import task_service_pb2 as task_service
from novasphere.v1 import wukong_service_pb2 as service_pb2
from novasphere.v1.task_service_pb2_grpc import TaskServiceStub
from novasphere.v1.wukong_service_pb2_grpc import WukongServiceStub
from sim import faults
from tests import kube_helpers
from tests.conftest import API_ENV
from tests.e2e.test_tasks import Power, annotate, wait_power
from tests.e2e.test_wukong_api import SPEC
from tests.status_helpers import details_of_status

State = task_pb2.TaskState
Operation = task_pb2.Task.Operation
# The crash points, in the order the replicas die at them: the 2nd task written, the 3rd action sent, the 6th
# observation of the leader, and so on. The last replica has none and sees everything through.
CRASHES = ("task-written:2", "action-sent:3", "observing:6", "task-written:3", "action-sent:2", "observing:10", "")
PLAN = [Operation.START] * 7 + [Operation.STOP] * 7 + [Operation.RESTART] * 6
REQUEST = {
    Operation.START: (service_pb2.StartWukongRequest, "StartWukong"),
    Operation.STOP: (service_pb2.StopWukongRequest, "StopWukong"),
    Operation.RESTART: (service_pb2.RestartWukongRequest, "RestartWukong"),
}


@pytest.fixture
def own_namespace(kube: kubernetes.client.ApiClient) -> Iterator[str]:
    """A namespace of its own for the crashing replicas' Tasks and Lease, so the session's API server, leader of
    novasphere-system, takes no part."""
    with kube_helpers.api_home(kube, "crash") as name:
        yield name


@pytest.fixture
def replicas(stack: devstack.Stack, own_namespace: str, tmp_path: Path) -> Iterator[Callable[..., Replica]]:
    """Makes `Replica`s working in `own_namespace`; stops them all at the end."""
    made: list[Replica] = []

    def make(crashes: tuple[str, ...] = ("",), **settings: str) -> Replica:
        made.append(Replica(stack, tmp_path, own_namespace, crashes, **settings))
        return made[-1]

    yield make
    for replica in made:
        replica.close()


def ready_wukong(
    kube: kubernetes.client.ApiClient, stub: WukongServiceStub, namespace: str, name: str, *, running: bool = True
) -> None:
    kube_helpers.create_wukong(kube, namespace, name, {**SPEC, "startStrategy": {"autoStart": running}})
    wait_power(stub, namespace, name, Power.RUNNING if running else Power.STOPPED)


class Replica:
    """One API server process at a time, with the next crash point armed; restarted whenever it died."""

    def __init__(
        self, stack: devstack.Stack, tmp_path: Path, home: str, crashes: tuple[str, ...], **settings: str
    ) -> None:
        self._stack, self._tmp_path, self._home = stack, tmp_path, home
        self._crashes = iter(crashes)
        self._settings = {f"NOVASPHERE_{key.upper()}": value for key, value in settings.items()}
        self.started = 0
        self.process: procs.Process | None = None
        self.channel: grpc.Channel | None = None

    def ensure(self) -> tuple[WukongServiceStub, TaskServiceStub]:
        if self.process is None or not self.process.alive():
            self._start(next(self._crashes, ""))
        assert self.channel is not None
        return WukongServiceStub(self.channel), TaskServiceStub(self.channel)

    def _start(self, failpoints: str) -> None:
        if self.channel is not None:
            self.channel.close()
        env = {**API_ENV, **self._settings, "NOVASPHERE_NAMESPACE": self._home, "NOVASPHERE_FAILPOINTS": failpoints}
        api = devstack.start_api_server(
            api_kubeconfig=self._stack.api_kubeconfig,
            log_path=self._tmp_path / f"api-{self.started}.log",
            extra_env=env,
        )
        self.process = api.process
        self.started += 1
        self.channel = grpc.insecure_channel(api.target)

    def kills(self) -> set[str]:
        """The crash points at which replicas killed themselves, from their logs."""
        found = set()
        for log in self._tmp_path.glob("api-*.log"):
            found |= set(re.findall(r"failpoint ([a-z-]+): killing this process", log.read_text()))
        return found

    def dead(self) -> bool:
        return self.process is not None and not self.process.alive()

    def close(self) -> None:
        if self.channel is not None:
            self.channel.close()
        if self.process is not None and self.process.alive():
            self.process.stop()


class InstanceLog:
    """Every VirtualMachineInstance created in the namespace from now on, by VM."""

    def __init__(self, kube: kubernetes.client.ApiClient, namespace: str) -> None:
        api = kubernetes.client.CustomObjectsApi(kube)
        listed = kube_helpers.json_object(
            api.list_namespaced_custom_object("kubevirt.io", "v1", namespace, "virtualmachineinstances")
        )
        self.created: defaultdict[str, set[str]] = defaultdict(set)
        self._existing = {item["metadata"]["uid"] for item in listed["items"]}
        self._watch = kubernetes.watch.Watch()
        self._stopped = False
        self._thread = threading.Thread(
            target=self._run, args=(api, namespace, listed["metadata"]["resourceVersion"]), daemon=True
        )
        self._thread.start()

    def _run(self, api: kubernetes.client.CustomObjectsApi, namespace: str, version: str) -> None:
        try:
            for event in self._watch.stream(
                api.list_namespaced_custom_object,
                "kubevirt.io",
                "v1",
                namespace,
                "virtualmachineinstances",
                resource_version=version,
                timeout_seconds=300,
            ):
                metadata = event["object"]["metadata"]
                if event["type"] == "ADDED" and metadata["uid"] not in self._existing:
                    self.created[metadata["name"]].add(metadata["uid"])
        except urllib3.exceptions.ProtocolError:
            if not self._stopped:
                raise  # a watch cut short by `stop` ends this way; any other end is a failure of the test

    def stop(self) -> None:
        self._stopped = True
        self._watch.stop()


def test_killing_the_api_server_at_every_crash_point_loses_no_task(
    grpc_direct: WukongServiceStub,
    kube: kubernetes.client.ApiClient,
    namespace: str,
    replicas: Callable[..., Replica],
) -> None:
    names = [f"{operation_name(op)}-{index:02d}" for index, op in enumerate(PLAN)]
    for name, operation in zip(names, PLAN, strict=True):
        spec = {**SPEC, "startStrategy": {"autoStart": operation is not Operation.START}}
        kube_helpers.create_wukong(kube, namespace, name, spec)
    for name, operation in zip(names, PLAN, strict=True):
        wait_power(grpc_direct, namespace, name, Power.STOPPED if operation is Operation.START else Power.RUNNING)
    instances = InstanceLog(kube, namespace)
    replica = replicas(CRASHES)
    try:
        task_ids: dict[str, str] = {}
        for name, operation in zip(names, PLAN, strict=True):
            request_class, method = REQUEST[operation]
            request = request_class(namespace=namespace, name=name, request_id=f"crash-{name}")
            for _attempt in range(len(CRASHES) + 1):
                wukongs, tasks = replica.ensure()
                try:
                    task_ids[name] = getattr(wukongs, method)(request, timeout=20).id
                    break
                except grpc.RpcError as error:
                    if error.code() != grpc.StatusCode.UNAVAILABLE:
                        raise
                    procs.wait_until(replica.dead, timeout=10, what="the replica to have died")
                # The replica died under the call. The client does not retry: a task already written is the
                # leader's to finish (a retry with the same request_id would also find it, see the other tests).
                _, tasks = replica.ensure()
                written = tasks.ListTasks(task_service.ListTasksRequest(namespace=namespace, name=name)).tasks
                if written:
                    task_ids[name] = written[0].id
                    break
        assert len(task_ids) == len(PLAN)

        def all_ended() -> list[task_pb2.Task] | None:
            _, tasks = replica.ensure()  # a replica dying while observing is replaced here
            try:
                found = [tasks.GetTask(task_service.GetTaskRequest(id=i), timeout=10) for i in task_ids.values()]
            except grpc.RpcError:
                return None
            return found if all(t.state in (State.SUCCEEDED, State.FAILED) for t in found) else None

        ended = kube_helpers.eventually(all_ended, timeout=180, what="every task to end")
        assert replica.kills() == {"task-written", "action-sent", "observing"}, replica.kills()
        for task in ended:
            if task.state == State.FAILED:
                assert task.error.message, task
        assert [t.name for t in ended if t.state != State.SUCCEEDED] == [], [str(t) for t in ended]
        for name, operation in zip(names, PLAN, strict=True):
            created = instances.created.get(f"{name}-vm", set())
            expected = 0 if operation is Operation.STOP else 1
            assert len(created) == expected, f"{name}: {len(created)} instances created by its {operation}"
    finally:
        instances.stop()


def operation_name(operation: int) -> str:
    return Operation.Name(operation).lower()  # type: ignore[arg-type]


def test_a_task_whose_action_was_not_sent_can_be_cancelled_and_nothing_changes(
    grpc_direct: WukongServiceStub,
    kube: kubernetes.client.ApiClient,
    namespace: str,
    replicas: Callable[..., Replica],
) -> None:
    ready_wukong(kube, grpc_direct, namespace, "keep")
    # The first replica dies right after writing the task; the next would send it only after 60 s.
    replica = replicas(("task-written:1", ""), task_handoff_seconds="60")
    wukongs, _ = replica.ensure()
    request = service_pb2.StopWukongRequest(namespace=namespace, name="keep", request_id="stop-keep")
    with pytest.raises(grpc.RpcError) as died:
        wukongs.StopWukong(request, timeout=20)
    assert died.value.code() == grpc.StatusCode.UNAVAILABLE
    procs.wait_until(replica.dead, timeout=10, what="the replica to have died")  # else ensure() keeps its channel
    _, tasks = replica.ensure()
    (pending,) = tasks.ListTasks(task_service.ListTasksRequest(namespace=namespace, name="keep")).tasks
    assert (pending.state, pending.cancellable, pending.request_id) == (State.PENDING, True, "stop-keep"), pending
    cancelled = tasks.CancelTask(task_service.CancelTaskRequest(id=pending.id))
    assert (cancelled.state, cancelled.error.code) == (State.CANCELLED, grpc.StatusCode.CANCELLED.value[0])
    assert "nothing was changed" in cancelled.error.message
    with pytest.raises(grpc.RpcError) as again:
        tasks.CancelTask(task_service.CancelTaskRequest(id=pending.id))
    assert again.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    stored = kubernetes.client.CustomObjectsApi(kube).get_namespaced_custom_object(
        "vm.novasphere.dev", "v1alpha1", namespace, "wukongs", "keep"
    )
    assert kube_helpers.dig(stored, "spec", "startStrategy", "autoStart") is True


def test_an_operation_that_does_not_finish_in_time_fails_with_the_last_state_seen(
    grpc_direct: WukongServiceStub,
    kube: kubernetes.client.ApiClient,
    namespace: str,
    replicas: Callable[..., Replica],
) -> None:
    ready_wukong(kube, grpc_direct, namespace, "sluggish", running=False)
    annotate(kube, namespace, "sluggish", {faults.BOOT_SECONDS: "600"})  # 30 s here
    wukongs, tasks = replicas(task_timeout_seconds="3").ensure()
    start = wukongs.StartWukong(service_pb2.StartWukongRequest(namespace=namespace, name="sluggish"))
    ended = list(tasks.WatchTask(task_service.WatchTaskRequest(id=start.id), timeout=30))[-1]
    assert ended.state == State.FAILED, ended
    assert details_of_status(ended.error).reason == "TASK_TIMED_OUT"
    assert ended.error.code == grpc.StatusCode.DEADLINE_EXCEEDED.value[0]
    assert "did not finish within 3 s" in ended.error.message
    assert "last seen at: instance scheduled; guest booting" in ended.error.message


def test_ended_tasks_are_deleted_after_their_ttl(
    grpc_direct: WukongServiceStub,
    kube: kubernetes.client.ApiClient,
    namespace: str,
    replicas: Callable[..., Replica],
) -> None:
    ready_wukong(kube, grpc_direct, namespace, "brief")
    wukongs, tasks = replicas(task_ttl_seconds="3").ensure()
    stop = wukongs.StopWukong(service_pb2.StopWukongRequest(namespace=namespace, name="brief"))
    assert list(tasks.WatchTask(task_service.WatchTaskRequest(id=stop.id), timeout=30))[-1].state == State.SUCCEEDED

    def gone() -> bool | None:
        try:
            tasks.GetTask(task_service.GetTaskRequest(id=stop.id))
        except grpc.RpcError as error:
            return True if error.code() == grpc.StatusCode.NOT_FOUND else None
        return None

    kube_helpers.eventually(gone, timeout=20, what="the ended task to be deleted after its TTL")
