"""The chart on a real node: the image built here (`make image`), imported into the node's containerd, installed with
`helm` into a control plane of its own whose node runs a real kubelet, containerd and runc; the simulator plays
KubeVirt and vmoperator on its own Nodes as everywhere else. Local mode (values-local.yaml): hostNetwork pods whose
Envoys share one loopback port (SO_REUSEPORT) and reach their API server over unix sockets.

The tests run in order on one release: install, an upgrade under load, chaos, an outage of kube-apiserver, uninstall.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import kubernetes.client
import pytest
from grpc_health.v1 import health_pb2

from devcluster import chart
from devcluster import node as devnode
from devcluster import stack as devstack
from novasphere.v1 import console_service_pb2 as console_pb2
from novasphere.v1 import task_pb2, task_service_pb2, wukong_pb2
from novasphere.v1 import wukong_service_pb2 as service_pb2
from novasphere.v1.console_service_pb2_grpc import ConsoleServiceStub
from novasphere.v1.task_service_pb2_grpc import TaskServiceStub
from novasphere.v1.wukong_service_pb2_grpc import WukongServiceStub
from server.main import TASK_LEASE
from tests import kube_helpers
from tests.conftest import SIM_SPEED
from tests.e2e.test_console import close, connect, read_until
from tests.zero_drop import (
    OWN_CONNECTION,
    SHUTDOWN_REASONS,
    KubeTruth,
    Load,
    Metadata,
    StreamView,
    assert_no_drop,
    caught_up,
    eventually,
    follow,
    lag,
    unary_load,
    write_changes,
)

TENANT = "load"
"""The tests' own tenant, with a rate-limit factor (the load's 100 streams are one user's)."""
VMS = "vms"
"""The tenant's namespace."""
USER, PASSWORD = "loader", "correct horse battery staple"
REPLICAS = 3
WUKONGS = 10
STREAMS = 100
STREAM_CHANNELS = 10
UNARY_CHANNELS = 4
Power = wukong_pb2.WukongStatus.PowerState
CHAOS_REASONS = SHUTDOWN_REASONS | {"RESYNC_REQUIRED", "OUT_OF_RANGE", "CANCELLED", "INTERNAL", "RESOURCE_EXHAUSTED"}
"""Why a stream may end when replicas die without a drain: its connection cut (CANCELLED, INTERNAL, UNAVAILABLE),
its cursor older than the replica it reached (RESYNC_REQUIRED in-band, OUT_OF_RANGE), the reconnections limited."""


@dataclass
class Release(chart.LocalRelease):
    kept_logs: Path = Path()
    """Where the load keeps the pods' logs (those of pods deleted meanwhile too: the kubelet deletes them)."""
    user: Metadata = ()
    """An operator of TENANT, logged in."""

    def channel(self) -> grpc.Channel:
        return self.edge.channel()


def _login(edge: devstack.Edge, username: str, password: str) -> Metadata:
    """Logged in over REST."""
    with edge.http_client() as http:
        response = http.post("/api/v1/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return (("authorization", f"Bearer {response.json()['accessToken']}"),)


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Release]:
    state = tmp_path_factory.mktemp("chart-on-node")
    with chart.running(state, sim_speed=SIM_SPEED, settings=("--set", f"api.rateLimitFactors.{TENANT}=4")) as local:
        released = Release(**vars(local), kept_logs=state / "pod-logs")
        try:
            yield released
        finally:
            print(released.diagnosis())  # shown with a failure: what each pod and container went through


async def test_install_runs_three_ready_pods_that_serve_every_door(release: Release) -> None:
    seconds = release.install()
    tested = release.helm("test", chart.RELEASE, "--timeout", "3m")  # the chart's own check, from a pod on the node
    assert "Succeeded" in tested, tested  # helm exits non-zero when the pod fails, too
    admin = dict(_login(release.edge, "admin", release.initial_admin_password()))
    with release.edge.http_client(headers=admin) as http:  # the first administrator's first steps, over REST
        for path, body in (
            ("/api/v1/admin/tenants", {"tenantId": TENANT, "namespaces": [VMS]}),
            ("/api/v1/admin/users", {"username": USER, "password": PASSWORD}),
            ("/api/v1/admin/role-bindings", {"username": USER, "role": "operator", "tenantId": TENANT}),
        ):
            response = http.post(path, json=body)
            assert response.status_code == 200, (path, response.text)
    release.user = _login(release.edge, USER, PASSWORD)
    pods = release.ready_pods()
    print(f"helm install to {REPLICAS} ready pods: {seconds:.1f} s")

    assert len(pods) == REPLICAS
    assert {pod["spec"]["nodeName"] for pod in pods} == {devnode.NODE_NAME}
    assert {c["image"] for pod in pods for c in pod["spec"]["containers"]} == {release.image.reference}
    with release.channel() as channel:
        assert _check(channel) == "SERVING"
        stub = WukongServiceStub(channel)
        watch = stub.WatchWukong(service_pb2.WatchWukongRequest(namespace=VMS), metadata=release.user, timeout=60)
        kube_helpers.create_wukong(
            release.kube, VMS, "first", {**kube_helpers.MINIMAL_SPEC, "startStrategy": {"autoStart": False}}
        )
        seen = next(
            event for event in watch if event.type == wukong_pb2.WukongEvent.ADDED and event.wukong.name == "first"
        )
        watch.cancel()
        listed = stub.ListWukongs(service_pb2.ListWukongsRequest(namespace=VMS), metadata=release.user)
        assert [w.name for w in listed.wukongs] == ["first"]
        assert seen.wukong.name == "first"
        task = stub.StartWukong(service_pb2.StartWukongRequest(namespace=VMS, name="first"), metadata=release.user)
        ended = _task_end(channel, release.user, task.id)
        assert ended.state == task_pb2.SUCCEEDED, ended
    await _console_answers(release, "first")


def _task_end(channel: grpc.Channel, metadata: Metadata, task_id: str, timeout: float = 120) -> task_pb2.Task:
    tasks = TaskServiceStub(channel)

    def ended() -> task_pb2.Task | None:
        task: task_pb2.Task = tasks.GetTask(task_service_pb2.GetTaskRequest(id=task_id), metadata=metadata, timeout=10)
        return task if task.state in (task_pb2.SUCCEEDED, task_pb2.FAILED, task_pb2.CANCELLED) else None

    return kube_helpers.eventually(ended, timeout=timeout, what=f"task {task_id} to end")


async def _open_console(release: Release, name: str) -> aiohttp.ClientWebSocketResponse:
    """A serial console of `name` through the Service's Envoy, with a fresh one-time ticket."""
    with release.channel() as channel:
        link = ConsoleServiceStub(channel).CreateConsoleSession(
            console_pb2.CreateConsoleSessionRequest(
                namespace=VMS, name=name, protocol=console_pb2.SERIAL, take_over=True
            ),
            metadata=release.user,
        )
    return await connect(link.console_url, link.ticket, tls=release.edge.ssl_context())


async def _console_answers(release: Release, name: str) -> None:
    socket_ = await _open_console(release, name)
    try:
        await socket_.send_bytes(b"\r")
        await read_until(socket_, b"login: ", within=30)
    finally:
        await close(socket_)


@dataclass
class ConsoleHolder:
    """Keeps one serial console open through the disruption: when its socket ends, it asks for a new ticket and
    connects again (a ticket works once)."""

    release: Release
    name: str
    reconnects: int = 0
    closes: list[int] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        while not self.stop.is_set():
            socket_ = await self._open()
            try:
                while not self.stop.is_set():
                    message = await socket_.receive()
                    if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                        self.closes.append(socket_.close_code or 0)
                        break
            finally:
                await close(socket_)
            if not self.stop.is_set():
                self.reconnects += 1

    async def _open(self) -> aiohttp.ClientWebSocketResponse:
        for _ in range(50):  # a replica going away may refuse the ticket's CreateConsoleSession: ask again
            try:
                socket_ = await _open_console(self.release, self.name)
                await socket_.send_bytes(b"\r")
                await read_until(socket_, b"login: ", within=30)
                return socket_
            except (grpc.RpcError, aiohttp.ClientError, TimeoutError):
                await asyncio.sleep(0.2)
        raise AssertionError("the console could not be opened again")


def _keep_logs(release: Release, stop: threading.Event) -> None:
    """Copies the pods' logs aside every second while the load runs: the kubelet deletes a deleted pod's logs."""
    while not stop.wait(1):
        with contextlib.suppress(OSError, shutil.Error):
            shutil.copytree(release.node.layout.pod_logs_dir, release.kept_logs, dirs_exist_ok=True)


@contextlib.asynccontextmanager
async def _under_load(
    release: Release, namespace: str, *, created: str | None, unary: bool = True
) -> AsyncIterator[tuple[Load, list[StreamView], KubeTruth, ConsoleHolder]]:
    """Unary callers that never retry, STREAMS watch streams, a writer of changes and one console, all through the
    release's Envoys, while the body disrupts the release."""
    truth = KubeTruth(release.kube, namespace)
    load = Load()
    views = [StreamView() for _ in range(STREAMS)]
    stream_channels = [release.edge.aio_channel(OWN_CONNECTION) for _ in range(STREAM_CHANNELS)]
    unary_channels = [release.edge.aio_channel(OWN_CONNECTION) for _ in range(UNARY_CHANNELS if unary else 0)]
    console = ConsoleHolder(release, "console-vm")
    tasks = [asyncio.create_task(unary_load(c, namespace, load, release.user)) for c in unary_channels]
    tasks += [
        asyncio.create_task(follow(stream_channels[i % STREAM_CHANNELS], namespace, view, load, release.user))
        for i, view in enumerate(views)
    ]
    tasks.append(asyncio.create_task(console.run()))
    stop_writing, written = threading.Event(), list[int]()
    keeper = threading.Thread(target=_keep_logs, args=(release, stop_writing), daemon=True)
    keeper.start()
    writer = threading.Thread(
        target=write_changes,
        args=(release.kube, namespace, WUKONGS, stop_writing, written, max(truth.last.values(), default=0)),
        daemon=True,
    )
    try:
        await eventually(lambda: all(view.values.keys() >= truth.last.keys() for view in views), "every first list")
        writer.start()
        yield load, views, truth, console
        stop_writing.set()
        writer.join(10)
        try:
            await eventually(lambda: caught_up(views, truth, created=created), "every stream to reach the final state")
        except AssertionError as error:
            behind = lag(views, truth, created=created)
            raise AssertionError(f"{error}: {len(behind)} behind: {'; '.join(behind[:3])}") from None
    finally:
        load.stop.set()
        console.stop.set()
        stop_writing.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for channel in (*stream_channels, *unary_channels):
            await channel.close()
        truth.stop()


@pytest.mark.timeout(600)
async def test_an_upgrade_to_a_new_tag_under_load_drops_nothing(release: Release) -> None:
    for index in range(WUKONGS):
        kube_helpers.create_wukong(release.kube, VMS, f"w-{index:02d}", labels={"seq": "0"})
    console_spec = {**kube_helpers.MINIMAL_SPEC, "cloudInitUser": {"name": "ops", "password": "s3cret"}}
    kube_helpers.create_wukong(release.kube, VMS, "console-vm", console_spec)
    with release.channel() as channel:
        _wait_running(channel, release.user, "console-vm")
    next_tag = release.image.reference + "-next"  # the same content under a new tag: every pod is replaced
    release.node.ctr("images", "tag", release.image.reference, next_tag)
    tag = next_tag.rpartition(":")[2]

    async with _under_load(release, VMS, created="w-new") as (load, views, truth, console):
        upgrade = asyncio.create_task(asyncio.to_thread(release.install, "--set", f"image.tag={tag}"))
        first_gone = asyncio.create_task(
            eventually(lambda: any(view.reconnects for view in views), "a pod going", within=240)
        )
        await asyncio.wait({upgrade, first_gone}, return_when=asyncio.FIRST_COMPLETED)
        if upgrade.done():
            upgrade.result()  # helm's failure, if it failed
        await first_gone
        kube_helpers.create_wukong(release.kube, VMS, "w-new", labels={"seq": "0"})
        seconds = await upgrade
        kubernetes.client.CustomObjectsApi(release.kube).delete_namespaced_custom_object(
            "vm.novasphere.dev", "v1alpha1", VMS, "wukongs", "w-new"
        )
        await eventually(lambda: console.reconnects > 0, "the console to come back with a new ticket")

    print(
        f"helm upgrade under load: {seconds:.1f} s; the console reconnected {console.reconnects} times "
        f"(close codes {console.closes})"
    )
    assert {c["image"] for pod in release.ready_pods() for c in pod["spec"]["containers"]} == {next_tag}
    assert_no_drop(load, views, truth, created="w-new", streams=STREAMS)
    assert sum(view.resyncs for view in views) == 0, "a stream could not resume from its cursor"


def _wait_running(channel: grpc.Channel, metadata: Metadata, name: str) -> None:
    stub = WukongServiceStub(channel)

    def running() -> bool | None:
        try:
            wukong = stub.GetWukong(service_pb2.GetWukongRequest(namespace=VMS, name=name), metadata=metadata)
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise
        return True if wukong.status.power_state == Power.RUNNING else None

    kube_helpers.eventually(running, timeout=120, what=f"{name} running")


def _leader_pod(release: Release) -> str:
    """The pod whose API server holds the tasks' Lease (replica ids start with the pod's name), once one does (after
    an upgrade the Lease passes from the last old pod to a new one)."""

    def holder() -> str | None:
        lease = kubernetes.client.CoordinationV1Api(release.kube).read_namespaced_lease(TASK_LEASE, chart.NAMESPACE)
        identity = str(kube_helpers.dig(release.kube.sanitize_for_serialization(lease), "spec", "holderIdentity") or "")
        names = [str(pod["metadata"]["name"]) for pod in release.ready_pods()]
        return next((name for name in names if identity.startswith(name + "-")), None)

    return kube_helpers.eventually(holder, timeout=60, what="a pod to lead the tasks")


def _recovered(release: Release, victim: dict[str, Any]) -> bool:
    """Three ready pods, the victim among them with its API container restarted."""
    pods = {pod["metadata"]["name"]: pod for pod in release.ready_pods()}
    again = pods.get(victim["metadata"]["name"])
    return len(pods) == REPLICAS and again is not None and _restarts(again, "api") > _restarts(victim, "api")


def _restarts(pod: dict[str, Any], container: str) -> int:
    return int(next(s["restartCount"] for s in pod["status"]["containerStatuses"] if s["name"] == container))


def _container_id(pod: dict[str, Any], container: str) -> str:
    status = next(s for s in pod["status"]["containerStatuses"] if s["name"] == container)
    return str(status["containerID"]).partition("://")[2]


@pytest.mark.timeout(600)
async def test_killed_pods_and_processes_lose_no_task_no_change_and_no_console(release: Release) -> None:
    core = kubernetes.client.CoreV1Api(release.kube)
    # Streams whose replica died resume on another from their cursor, or relist when the one they reach started
    # after it (the resume contract's RESYNC_REQUIRED); either way none ends without the final state.
    async with _under_load(release, VMS, created=None, unary=False) as (_, views, truth, console):
        with release.channel() as channel:
            stopping = WukongServiceStub(channel).StopWukong(
                service_pb2.StopWukongRequest(namespace=VMS, name="first"), metadata=release.user
            )
        leader = _leader_pod(release)
        core.delete_namespaced_pod(leader, chart.NAMESPACE, grace_period_seconds=0)
        victim = next(pod for pod in release.ready_pods() if pod["metadata"]["name"] != leader)
        release.node.ctr("tasks", "kill", "--signal", "SIGKILL", _container_id(victim, "api"))
        await eventually(lambda: _recovered(release, victim), "the victim restarted and three ready pods", within=180)
        with release.channel() as channel:  # a new connection: the one before may have been to a killed Envoy
            stopped = await asyncio.to_thread(_task_end, channel, release.user, stopping.id)
            starting = WukongServiceStub(channel).StartWukong(
                service_pb2.StartWukongRequest(namespace=VMS, name="first"), metadata=release.user
            )
            started = await asyncio.to_thread(_task_end, channel, release.user, starting.id)
    # The held console was cut if its pod was among the victims (and then came back with a new ticket); either way a
    # console opens and answers now.
    print(f"the held console reconnected {console.reconnects} times (close codes {console.closes})")
    await _console_answers(release, "console-vm")

    assert (stopped.state, started.state) == (task_pb2.SUCCEEDED, task_pb2.SUCCEEDED), (stopped, started)
    assert_no_drop(Load(), views, truth, created=None, streams=STREAMS, reasons=CHAOS_REASONS)


def _check(channel: grpc.Channel) -> str:
    """gRPC health of the API server behind the Envoy the channel reached (the typeshed HealthStub has no methods)."""
    check = channel.unary_unary(
        "/grpc.health.v1.Health/Check",
        request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
        response_deserializer=health_pb2.HealthCheckResponse.FromString,
    )
    reply = check(health_pb2.HealthCheckRequest(), timeout=5)
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))


def _health(release: Release) -> str:
    """What one of the Envoys (a new connection: any of them) reports for its API server."""
    try:
        with release.channel() as channel:
            return _check(channel)
    except grpc.RpcError as error:
        return str(error.code().name)


def test_pods_turn_not_serving_without_kube_apiserver_and_serve_again(release: Release) -> None:
    def during_the_outage() -> None:
        kube_helpers.eventually(
            lambda: all(_health(release) == "NOT_SERVING" for _ in range(2 * REPLICAS)) or None,
            timeout=60,
            what="every pod to report NOT_SERVING",
        )

    release.plane.restart_apiserver(down=during_the_outage)

    kube_helpers.eventually(
        lambda: all(_health(release) == "SERVING" for _ in range(2 * REPLICAS)) or None,
        timeout=60,
        what="every pod to serve again",
    )
    kube_helpers.eventually(lambda: len(release.ready_pods()) == REPLICAS or None, timeout=60, what="three ready pods")


def test_uninstall_leaves_the_vms_and_removes_what_the_chart_made(release: Release) -> None:
    custom = kubernetes.client.CustomObjectsApi(release.kube)
    wukongs = sorted(kube_helpers.wukong_names(release.kube, VMS))

    def settled() -> dict[str, Any] | None:
        """The VMs once each Wukong has its own and no other is left (a Wukong deleted by an earlier test takes its
        VM with it a moment later)."""
        found = kube_helpers.json_object(
            custom.list_namespaced_custom_object("kubevirt.io", "v1", VMS, "virtualmachines")
        )
        names = sorted(vm["metadata"]["name"] for vm in found["items"])
        return found if names == sorted(f"{name}-vm" for name in wukongs) else None

    vms = kube_helpers.eventually(settled, timeout=60, what="one VM per Wukong")

    release.helm("uninstall", chart.RELEASE, "--wait", "--timeout", "2m")

    kube_helpers.eventually(lambda: not release.pods() or None, timeout=60, what="the pods to go")
    assert sorted(kube_helpers.wukong_names(release.kube, VMS)) == wukongs
    after = kube_helpers.json_object(custom.list_namespaced_custom_object("kubevirt.io", "v1", VMS, "virtualmachines"))
    assert [vm["metadata"]["uid"] for vm in after["items"]] == [vm["metadata"]["uid"] for vm in vms["items"]]
    assert vms["items"]
    apps = kubernetes.client.AppsV1Api(release.kube)
    assert not apps.list_namespaced_deployment(chart.NAMESPACE).items
    assert not kubernetes.client.CoreV1Api(release.kube).list_namespaced_service(chart.NAMESPACE).items
    assert release.node.task_pids() == []  # every container of the release is gone from the node
    # Documented: the CRDs stay (read_… raises if not), and with them the task history.
    kubernetes.client.ApiextensionsV1Api(release.kube).read_custom_resource_definition("tasks.api.novasphere.dev")
