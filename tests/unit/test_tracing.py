"""Tracing off costs nothing: no OpenTelemetry SDK loaded, one shared no-op span; on, spans nest and carry context."""

from __future__ import annotations

import datetime
import subprocess
import sys
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from server import tracing
from server.kube.client import resource_of

OFF_CHECK = """
import sys
from server import main, tracing
tracing.configure(tracing.TraceSettings(endpoint="", protocol=tracing.OtlpProtocol.GRPC, sample_ratio=1, replica="r"))
first, second = tracing.span("a"), tracing.span("b", kind=tracing.Kind.CLIENT, carrier={"traceparent": "x"})
assert first is second, "a span made while off"
assert not tracing.enabled() and tracing.traceparent() == ""
loaded = sorted(m for m in sys.modules if m.startswith("opentelemetry"))
assert not loaded, loaded
"""


def test_off_loads_no_opentelemetry_and_hands_out_one_no_op_span() -> None:
    # In a fresh interpreter: the composition root imported, tracing configured off.
    result = subprocess.run([sys.executable, "-c", OFF_CHECK], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr


@pytest.fixture
def exported(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    """Tracing on, with spans kept in memory instead of sent."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(tracing, "_tracer", provider.get_tracer("test"))
    yield exporter
    provider.shutdown()


def test_spans_continue_the_incoming_trace_and_nest(exported: InMemorySpanExporter) -> None:
    trace_id, parent = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    with tracing.span("rpc", kind=tracing.Kind.SERVER, carrier={"traceparent": f"00-{trace_id}-{parent}-01"}):
        with tracing.span("kube GET pods", kind=tracing.Kind.CLIENT, only_in_trace=True) as call:
            call.set("k8s.resource", "pods")
        stored = tracing.traceparent()
    with tracing.span("background call", only_in_trace=True):
        pass  # outside any trace: not recorded

    kube, rpc = _by_name(exported.get_finished_spans(), "kube GET pods", "rpc")
    assert [s.name for s in exported.get_finished_spans()] == ["kube GET pods", "rpc"]
    assert format(rpc.context.trace_id, "032x") == trace_id
    assert rpc.parent is not None
    assert format(rpc.parent.span_id, "016x") == parent
    assert kube.parent is not None
    assert kube.parent.span_id == rpc.context.span_id
    assert kube.attributes == {"k8s.resource": "pods"}
    assert stored == f"00-{trace_id}-{format(rpc.context.span_id, '016x')}-01"


def test_a_finished_task_is_recorded_under_the_stored_traceparent(exported: InMemorySpanExporter) -> None:
    trace_id, parent = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    accepted = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    ended = accepted + datetime.timedelta(seconds=3)
    tracing.record(
        "task Start",
        parent=f"00-{trace_id}-{parent}-01",
        start=accepted,
        end=ended,
        attributes={"novasphere.task.state": "Failed"},
        error="START_FAILED",
    )
    tracing.record("task Stop", parent="", start=accepted, end=ended, attributes={})  # untraced: nothing

    (task,) = exported.get_finished_spans()
    assert task.parent is not None
    assert format(task.parent.span_id, "016x") == parent
    assert (task.end_time or 0) - (task.start_time or 0) == 3_000_000_000
    assert task.status.description == "START_FAILED"


def test_an_exception_marks_the_span_unless_the_outcome_was_set(exported: InMemorySpanExporter) -> None:
    with pytest.raises(KeyError), tracing.span("failing"):
        raise KeyError("x")
    with pytest.raises(KeyError):
        _refused()

    failing, refused_span = _by_name(exported.get_finished_spans(), "failing", "refused")
    assert not failing.status.is_ok
    assert failing.events[0].name == "exception"
    assert refused_span.status.is_unset


@pytest.mark.parametrize(
    ("path", "resource"),
    [
        ("/api/v1/namespaces/x/pods", "pods"),
        ("/api/v1/namespaces/x", "namespaces"),
        ("/apis/api.novasphere.dev/v1/namespaces/ns/tasks/t-1/status", "tasks/status"),
        ("/apis/subresources.kubevirt.io/v1/namespaces/n/virtualmachines/vm/start", "virtualmachines/start"),
        ("/api/v1/nodes", "nodes"),
    ],
)
def test_kubernetes_calls_are_named_by_resource_never_by_object(path: str, resource: str) -> None:
    assert resource_of(path) == resource


def _refused() -> None:
    with tracing.span("refused") as refused:
        refused.succeed()  # e.g. NOT_FOUND: the client's mistake, not the server's
        raise KeyError("x")


def _by_name(spans: tuple[ReadableSpan, ...], *names: str) -> list[ReadableSpan]:
    return [next(s for s in spans if s.name == name) for name in names]
