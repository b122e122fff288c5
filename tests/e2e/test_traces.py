"""Traces end to end: an API server and its Envoy, both told to trace, send OTLP to a small receiver this test runs,
and a client's create -> start -> task end forms one tree: the client's trace, Envoy's span per request under it, the
API's RPC span under each of Envoy's, the Kubernetes calls under the RPC, and the task's span under StartWukong."""

from __future__ import annotations

import concurrent.futures
import secrets
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import aiohttp
import grpc
import kubernetes.client
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1 import common_pb2

from devcluster import stack as devstack
from novasphere.v1 import console_service_pb2 as console_pb2
from novasphere.v1 import task_pb2, wukong_pb2
from novasphere.v1 import wukong_service_pb2 as service_pb2
from novasphere.v1.console_service_pb2_grpc import ConsoleServiceStub
from novasphere.v1.task_service_pb2_grpc import TaskServiceStub
from novasphere.v1.wukong_service_pb2_grpc import WukongServiceStub
from novasphere_envoy import local_http
from tests import kube_helpers
from tests.conftest import API_ENV, fronted_api
from tests.e2e.test_tasks import wait_power, wait_task
from tests.e2e.test_wukong_api import SPEC, kube_helpers_spec

Power = wukong_pb2.WukongStatus.PowerState
SPAN_TIMEOUT = 60.0


@dataclass(frozen=True)
class Span:
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_id: str
    attributes: dict[str, object]
    start_ns: int
    end_ns: int


class Receiver(trace_service_pb2_grpc.TraceServiceServicer):
    """An OTLP/gRPC trace receiver keeping every span it is sent."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._spans: list[Span] = []

    def Export(  # noqa: N802 - the OTLP service's method name
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: grpc.ServicerContext
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        received = []
        for resource_spans in request.resource_spans:
            resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                received += [
                    Span(
                        service=resource.get("service.name", ""),
                        name=span.name,
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_id=span.parent_span_id.hex(),
                        attributes={a.key: _value(a.value) for a in span.attributes},
                        start_ns=span.start_time_unix_nano,
                        end_ns=span.end_time_unix_nano,
                    )
                    for span in scope_spans.spans
                ]
        with self._lock:
            self._spans += received
        return trace_service_pb2.ExportTraceServiceResponse()

    def all(self) -> list[Span]:
        with self._lock:
            return list(self._spans)

    def trace(self, trace_id: str) -> list[Span]:
        with self._lock:
            return [span for span in self._spans if span.trace_id == trace_id]


def _value(value: common_pb2.AnyValue) -> object:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


@dataclass(frozen=True)
class Traced:
    spans: Receiver
    edge: devstack.Edge
    channel: grpc.Channel


@pytest.fixture(scope="module")
def traced(
    stack: devstack.Stack, kube: kubernetes.client.ApiClient, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Traced]:
    """An OTLP receiver on loopback, and an API server (leading the tasks of a namespace of its own) and its Envoy
    that both send their spans to it; all stopped afterwards."""
    spans = Receiver()
    receiver = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(spans, receiver)
    port = receiver.add_insecure_port("127.0.0.1:0")
    receiver.start()
    try:
        with kube_helpers.api_home(kube, "traces") as home:
            env = {**API_ENV, "NOVASPHERE_NAMESPACE": home, "NOVASPHERE_OTLP_ENDPOINT": f"http://127.0.0.1:{port}"}
            collector = local_http.HostPort("127.0.0.1", port)
            state = tmp_path_factory.mktemp("traced")
            with (
                fronted_api(stack, state, env, otlp_collector=collector) as (_, envoy),
                envoy.edge.channel() as channel,
            ):
                yield Traced(spans, envoy.edge, channel)
    finally:
        receiver.stop(grace=None)


def new_trace() -> tuple[str, str, tuple[tuple[str, str]]]:
    """A trace begun by the client: its id, the client's span id, and the metadata carrying them."""
    trace_id, client_span = secrets.token_hex(16), secrets.token_hex(8)
    return trace_id, client_span, (("traceparent", f"00-{trace_id}-{client_span}-01"),)


def test_create_start_and_the_task_end_form_one_trace_through_envoy(traced: Traced, namespace: str) -> None:
    trace_id, client_span, metadata = new_trace()
    wukongs, tasks = WukongServiceStub(traced.channel), TaskServiceStub(traced.channel)
    wukong = wukong_pb2.Wukong(name="traced")
    wukong.spec.MergeFrom(kube_helpers_spec({**SPEC, "startStrategy": {"autoStart": False}}))
    wukongs.CreateWukong(
        service_pb2.CreateWukongRequest(namespace=namespace, wukong=wukong), metadata=metadata, timeout=30
    )
    wait_power(wukongs, namespace, "traced", Power.STOPPED)
    task = wukongs.StartWukong(
        service_pb2.StartWukongRequest(namespace=namespace, name="traced"), metadata=metadata, timeout=30
    )
    assert wait_task(tasks, task.id).state == task_pb2.TaskState.SUCCEEDED
    tree = kube_helpers.eventually(
        lambda: _complete(traced.spans.trace(trace_id), ("novasphere-api", "task Start"), edge_spans=2),
        timeout=SPAN_TIMEOUT,
        what="the task's span",
    )

    create = tree.one("novasphere-api", "novasphere.v1.WukongService/CreateWukong")
    start = tree.one("novasphere-api", "novasphere.v1.WukongService/StartWukong")
    ended = tree.one("novasphere-api", "task Start")
    # client -> Envoy -> API, for both calls
    assert {tree.parent(create).service, tree.parent(start).service} == {"novasphere-envoy"}
    assert {tree.parent(create).parent_id, tree.parent(start).parent_id} == {client_span}
    assert len([s for s in tree.spans if s.service == "novasphere-envoy"]) == 2
    assert create.attributes["rpc.grpc.status_code"] == start.attributes["rpc.grpc.status_code"] == 0
    assert create.attributes["novasphere.request_id"] != start.attributes["novasphere.request_id"]
    # the RPCs' Kubernetes calls are their children
    assert "kube POST wukongs" in tree.names_under(create)
    assert {"kube POST tasks", "kube PATCH tasks/status"} <= tree.names_under(start)
    # the task's work, from acceptance to its end, is StartWukong's child
    assert ended.parent_id == start.span_id
    assert ended.attributes["novasphere.task.id"] == task.id
    assert ended.attributes["novasphere.task.state"] == "Succeeded"
    assert start.start_ns <= ended.start_ns < ended.end_ns
    tree.assert_connected(client_span)


def test_a_clients_own_request_id_is_kept_and_its_call_traced_by_envoy(traced: Traced, namespace: str) -> None:
    """Envoy's default would pack its sampling decision into a UUID id (changing the client's id) and trace no call
    whose id is not a UUID: both ids come back as sent, and each call has Envoy's span above the API's."""
    wukongs = WukongServiceStub(traced.channel)
    for request_id in (str(uuid.uuid4()), "order-42.retry_1"):
        _, call = wukongs.ListWukongs.with_call(
            service_pb2.ListWukongsRequest(namespace=namespace), metadata=(("x-request-id", request_id),), timeout=30
        )
        assert dict(call.initial_metadata())["x-request-id"] == request_id

        def traced_call(request_id: str = request_id) -> tuple[Span, Span] | None:
            api = [s for s in traced.spans.all() if s.attributes.get("novasphere.request_id") == request_id]
            if not api:
                return None
            edge = [s for s in traced.spans.trace(api[0].trace_id) if s.span_id == api[0].parent_id]
            return (edge[0], api[0]) if edge else None

        edge, api = kube_helpers.eventually(traced_call, timeout=SPAN_TIMEOUT, what=f"the spans of {request_id}")
        assert edge.service == "novasphere-envoy"
        assert api.name == "novasphere.v1.WukongService/ListWukongs"


async def test_a_console_connection_is_traced_from_envoy_to_its_session(
    traced: Traced, kube: kubernetes.client.ApiClient, namespace: str
) -> None:
    kube_helpers.create_wukong(kube, namespace, "console-vm")
    wukongs, consoles = WukongServiceStub(traced.channel), ConsoleServiceStub(traced.channel)
    wait_power(wukongs, namespace, "console-vm", Power.RUNNING)
    trace_id, client_span, metadata = new_trace()
    issued = consoles.CreateConsoleSession(
        console_pb2.CreateConsoleSessionRequest(namespace=namespace, name="console-vm", protocol=console_pb2.SERIAL),
        metadata=metadata,
        timeout=30,
    )
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(
            issued.console_url,
            protocols=(f"ticket.novasphere.dev.{issued.ticket}", "binary"),
            headers=dict(metadata),
            ssl=traced.edge.ssl_context(),
        ) as socket,
    ):
        await socket.send_bytes(b"\r")
    tree = kube_helpers.eventually(
        lambda: _complete(traced.spans.trace(trace_id), ("novasphere-api", "console connect"), edge_spans=2),
        timeout=SPAN_TIMEOUT,
        what="the console's spans",
    )

    connect = tree.one("novasphere-api", "console connect")
    proxied = tree.one("novasphere-api", "console session")
    assert tree.parent(connect).service == "novasphere-envoy"
    assert tree.parent(connect).parent_id == client_span
    assert connect.attributes["http.response.status_code"] == 101
    assert proxied.parent_id == connect.span_id
    assert proxied.attributes["novasphere.console.close_code"] == 1000
    assert proxied.attributes["novasphere.console.bytes_from_client"] == 1
    assert "kube PATCH consolesessions/status" in tree.names_under(connect)
    tree.assert_connected(client_span)


@dataclass(frozen=True)
class Tree:
    spans: list[Span]

    @property
    def by_id(self) -> dict[str, Span]:
        return {span.span_id: span for span in self.spans}

    def one(self, service: str, name: str) -> Span:
        found = [span for span in self.spans if (span.service, span.name) == (service, name)]
        assert len(found) == 1, f"{service} {name}: {len(found)} spans in {[(s.service, s.name) for s in self.spans]}"
        return found[0]

    def parent(self, span: Span) -> Span:
        return self.by_id[span.parent_id]

    def names_under(self, span: Span) -> set[str]:
        return {child.name for child in self.spans if child.parent_id == span.span_id}

    def assert_connected(self, client_span: str) -> None:
        """One tree: every span hangs from the client's span through spans of the trace."""
        orphans = [s.name for s in self.spans if s.parent_id != client_span and s.parent_id not in self.by_id]
        assert not orphans


def _complete(spans: list[Span], last: tuple[str, str], *, edge_spans: int) -> Tree | None:
    """The trace once its `last` span and Envoy's spans arrived (each side sends in batches, seconds apart)."""
    names = {(span.service, span.name) for span in spans}
    edge = [span for span in spans if span.service == "novasphere-envoy"]
    return Tree(spans) if last in names and len(edge) >= edge_spans else None
