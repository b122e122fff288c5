"""Per-VM metrics end to end: CPU and memory through kube-apiserver's aggregation layer from the simulated
metrics-server (`metrics.k8s.io`), network and disk from the simulated Prometheus; values that move over time for a
running VM, NOT_RUNNING for a stopped one, UNAVAILABLE (not zero) without Prometheus, the live stream over gRPC and
SSE, and tenancy and validation errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import pytest

from devcluster import stack as devstack
from novasphere.v1 import metrics_service_pb2 as metrics_pb2
from novasphere.v1 import wukong_pb2
from novasphere.v1 import wukong_service_pb2 as service_pb2
from novasphere.v1.metrics_service_pb2_grpc import MetricsServiceStub
from novasphere.v1.wukong_service_pb2_grpc import WukongServiceStub
from tests import kube_helpers
from tests.conftest import api_process
from tests.e2e.test_tasks import running_wukong, wait_power
from tests.e2e.test_wukong_api import create
from tests.kubectl import Kubectl

State = metrics_pb2.MetricsState
Power = wukong_pb2.WukongStatus.PowerState
TIMEOUT = 60.0


@pytest.fixture(scope="module")
def metrics(stack: devstack.Stack) -> Iterator[MetricsServiceStub]:
    with grpc.insecure_channel(stack.grpc_direct) as channel:
        yield MetricsServiceStub(channel)


@pytest.fixture
def http(stack: devstack.Stack) -> Iterator[httpx.Client]:
    with stack.edge.http_client() as client:
        yield client


def available(metrics: MetricsServiceStub, namespace: str, name: str) -> metrics_pb2.WukongMetrics:
    """The VM's metrics once metrics-server has a sample (it needs a full resolution after the start)."""

    def probe() -> metrics_pb2.WukongMetrics | None:
        found = metrics.GetWukongMetrics(metrics_pb2.GetWukongMetricsRequest(namespace=namespace, name=name))
        assert found.state in (State.AVAILABLE, State.COLLECTING), found
        return found if found.state == State.AVAILABLE else None

    return kube_helpers.eventually(probe, timeout=TIMEOUT, what=f"metrics of {name}")


def test_metrics_server_is_an_aggregated_api_with_samples_of_launcher_pods(
    stack: devstack.Stack, grpc_direct: WukongServiceStub, metrics: MetricsServiceStub, namespace: str
) -> None:
    running_wukong(grpc_direct, namespace, "topped")
    available(metrics, namespace, "topped")
    kubectl = Kubectl(stack.cluster.kubeconfig, namespace)
    service = kubectl.get("apiservice", "v1beta1.metrics.k8s.io")
    assert service is not None
    assert service["spec"]["caBundle"]
    listing = json.loads(kubectl.raw("get", f"/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods").stdout)
    assert listing["kind"] == "PodMetricsList"
    (pod,) = listing["items"]
    assert pod["metadata"]["labels"]["vm.kubevirt.io/name"] == "topped-vm"
    assert [c["name"] for c in pod["containers"]] == ["compute"]
    assert pod["containers"][0]["usage"]["cpu"].endswith("n")
    assert pod["containers"][0]["usage"]["memory"].endswith("Ki")
    nodes = json.loads(kubectl.raw("get", "/apis/metrics.k8s.io/v1beta1/nodes").stdout)
    assert nodes["kind"] == "NodeMetricsList"
    assert nodes["items"]


def test_a_running_vms_metrics_change_over_time_through_grpc_and_rest(
    grpc_direct: WukongServiceStub, metrics: MetricsServiceStub, http: httpx.Client, namespace: str
) -> None:
    running_wukong(grpc_direct, namespace, "busy", cpu=2, memory="2Gi")
    first = available(metrics, namespace, "busy")
    assert (first.name, first.namespace, first.power_state) == ("busy", namespace, Power.RUNNING)
    assert first.vm_id
    assert first.cpu.vcpus == 2
    assert 0 < first.cpu.cores <= 2
    assert first.cpu.percent == pytest.approx(first.cpu.cores / 2 * 100, abs=0.01)
    assert first.memory.guest_bytes == 2 << 30
    assert 0 < first.memory.used_bytes < first.memory.guest_bytes + (512 << 20)
    assert first.HasField("sample_time")
    assert first.window.ToTimedelta().total_seconds() > 0
    assert first.network.state == State.AVAILABLE
    assert first.disk.state == State.AVAILABLE
    assert first.network.receive_bytes_per_second > 0
    assert first.network.transmit_packets_per_second > 0
    assert first.disk.read_bytes_per_second > 0
    assert first.disk.write_iops > 0

    def moved() -> metrics_pb2.WukongMetrics | None:
        later = available(metrics, namespace, "busy")
        return later if later.sample_time.ToDatetime() > first.sample_time.ToDatetime() else None

    later = kube_helpers.eventually(moved, timeout=TIMEOUT, what="a newer sample")
    assert later.cpu.cores != first.cpu.cores
    assert later.network.receive_bytes_per_second != first.network.receive_bytes_per_second

    response = http.get("/api/v1/wukongs/busy/metrics", params={"namespace": namespace})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["state"], body["powerState"]) == ("AVAILABLE", "RUNNING")
    assert body["cpu"]["vcpus"] == 2
    assert body["cpu"]["cores"] > 0
    assert int(body["memory"]["guestBytes"]) == 2 << 30
    assert body["network"]["state"] == "AVAILABLE"
    assert body["network"]["receiveBytesPerSecond"] > 0
    by_uid = http.get(f"/api/v1/vms/{first.vm_id}/metrics")
    assert by_uid.status_code == 200, by_uid.text
    assert by_uid.json()["name"] == "busy"


def test_a_stopped_vm_reports_not_running_rather_than_an_error(
    grpc_direct: WukongServiceStub, metrics: MetricsServiceStub, http: httpx.Client, namespace: str
) -> None:
    create(grpc_direct, namespace, "idle", startStrategy={"autoStart": False})
    wait_power(grpc_direct, namespace, "idle", Power.STOPPED)
    response = http.get("/api/v1/wukongs/idle/metrics", params={"namespace": namespace})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["state"], body["powerState"]) == ("NOT_RUNNING", "STOPPED")
    assert "STOPPED" in body["message"]
    assert "cpu" not in body
    assert "memory" not in body
    assert "sampleTime" not in body
    assert body["network"]["state"] == "NOT_RUNNING"
    assert "receiveBytesPerSecond" not in body["network"]
    found = metrics.GetWukongMetrics(metrics_pb2.GetWukongMetricsRequest(namespace=namespace, name="idle"))
    assert found.state == State.NOT_RUNNING
    assert not found.HasField("cpu")


def test_the_stream_follows_the_vm_through_a_stop_and_ends_when_it_is_deleted(
    grpc_direct: WukongServiceStub, metrics: MetricsServiceStub, namespace: str
) -> None:
    running_wukong(grpc_direct, namespace, "live")
    available(metrics, namespace, "live")
    stream = metrics.WatchWukongMetrics(
        metrics_pb2.WatchWukongMetricsRequest(namespace=namespace, name="live", interval_seconds=1), timeout=TIMEOUT
    )
    samples: list[Any] = []
    for update in stream:
        assert update.state == State.AVAILABLE, update
        samples.append(update.sample_time.ToDatetime())
        if len(set(samples)) == 2:
            break
    grpc_direct.StopWukong(service_pb2.StopWukongRequest(namespace=namespace, name="live", force=True))
    for update in stream:
        if update.state == State.NOT_RUNNING:
            break
    grpc_direct.DeleteWukong(service_pb2.DeleteWukongRequest(namespace=namespace, name="live"))
    with pytest.raises(grpc.RpcError) as ended:
        list(stream)
    assert ended.value.code() == grpc.StatusCode.NOT_FOUND, ended.value


def test_the_stream_over_rest_is_server_sent_events(
    grpc_direct: WukongServiceStub, metrics: MetricsServiceStub, stack: devstack.Stack, namespace: str
) -> None:
    running_wukong(grpc_direct, namespace, "sse")
    available(metrics, namespace, "sse")
    events: list[dict[str, Any]] = []
    with (
        stack.edge.http_client(timeout=TIMEOUT) as client,
        client.stream(
            "GET", "/api/v1/watch/wukongs/sse/metrics", params={"namespace": namespace, "intervalSeconds": 1}
        ) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line.removeprefix("data: ")))
                if len({e["sampleTime"] for e in events}) == 2:
                    break
    assert all(e["state"] == "AVAILABLE" and e["cpu"]["cores"] > 0 for e in events)


def test_without_prometheus_network_and_disk_are_unavailable_not_zero(
    stack: devstack.Stack,
    grpc_direct: WukongServiceStub,
    metrics: MetricsServiceStub,
    namespace: str,
    tmp_path: Any,
) -> None:
    running_wukong(grpc_direct, namespace, "bare")
    available(metrics, namespace, "bare")
    with api_process(stack, tmp_path, prometheus_url="") as (_, target), grpc.insecure_channel(target) as channel:
        found = MetricsServiceStub(channel).GetWukongMetrics(
            metrics_pb2.GetWukongMetricsRequest(namespace=namespace, name="bare")
        )
    assert found.state == State.AVAILABLE
    assert found.cpu.cores > 0
    for group in (found.network, found.disk):
        assert group.state == State.UNAVAILABLE
        assert "Prometheus" in group.message
    assert not found.network.HasField("receive_bytes_per_second")
    assert not found.disk.HasField("read_iops")


def test_other_tenants_vms_are_not_found_and_bad_input_is_invalid_argument(
    kube: Any, metrics: MetricsServiceStub, http: httpx.Client, foreign_namespace: str, namespace: str
) -> None:
    kube_helpers.create_wukong(kube, foreign_namespace, "theirs")
    with pytest.raises(grpc.RpcError) as hidden:
        metrics.GetWukongMetrics(metrics_pb2.GetWukongMetricsRequest(namespace=foreign_namespace, name="theirs"))
    assert hidden.value.code() == grpc.StatusCode.NOT_FOUND
    missing = http.get("/api/v1/wukongs/nope/metrics", params={"namespace": namespace})
    assert missing.status_code == 404, missing.text
    bad_name = http.get("/api/v1/wukongs/Bad_Name/metrics", params={"namespace": namespace})
    assert bad_name.status_code == 400
    assert "name" in bad_name.text
    kube_helpers.create_wukong(kube, namespace, "mine")
    with pytest.raises(grpc.RpcError) as invalid:
        next(
            metrics.WatchWukongMetrics(
                metrics_pb2.WatchWukongMetricsRequest(namespace=namespace, name="mine", interval_seconds=600)
            )
        )
    assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "interval_seconds" in str(invalid.value.details())
