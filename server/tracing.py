"""OpenTelemetry tracing: off unless NOVASPHERE_OTLP_ENDPOINT names a collector, then spans go there over OTLP.

Domain-free (no grpc), so the transport, the Kubernetes client, the console proxy and the tasks all record spans
through the same few calls. While off, `span()` hands out one shared no-op context manager and the OpenTelemetry
SDK is never imported: a call costs a global check. Trace context travels as W3C `traceparent`/`tracestate`
(Envoy's OpenTelemetry tracer sends them), and a Task keeps the `traceparent` of the RPC that created it, so the
span of its work, recorded when it ends on whichever replica, joins that RPC's trace.
"""

from __future__ import annotations

import contextlib
import datetime
import enum
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span as OtelSpan
    from opentelemetry.trace import Tracer

SERVICE_NAME = "novasphere-api"
TRACEPARENT = "traceparent"
CARRIED = (TRACEPARENT, "tracestate")
"""The headers (gRPC metadata keys) that carry trace context in and out."""
Attribute = str | int | float | bool
EXPORT_TIMEOUT_SECONDS = 5
"""One export's limit, retries included: a collector that is down delays the final flush of a drain by this much at
most (spans are sent from the SDK's own thread otherwise)."""


class OtlpProtocol(enum.StrEnum):
    """How spans reach the collector (OTEL_EXPORTER_OTLP_PROTOCOL's values)."""

    GRPC = "grpc"
    HTTP = "http/protobuf"


@dataclass(frozen=True)
class TraceSettings:
    endpoint: str
    """The collector's base URL (http:// or https://); empty: tracing off."""
    protocol: OtlpProtocol
    """OTLP over gRPC (the endpoint is e.g. http://collector:4317) or over HTTP (e.g. http://collector:4318; spans
    are posted to its /v1/traces)."""
    sample_ratio: float
    """Share of new traces recorded (0-1); a trace begun upstream (Envoy, a client) keeps its own decision."""
    replica: str
    """This replica's identity, as the resource's service.instance.id."""


class Kind(enum.Enum):
    SERVER = "SERVER"
    CLIENT = "CLIENT"
    INTERNAL = "INTERNAL"


class Span:
    """A span being recorded, or nothing at all while tracing is off: callers never need to ask which."""

    __slots__ = ("_span", "outcome_set")

    def __init__(self, span: OtelSpan | None) -> None:
        self._span = span
        self.outcome_set = False

    def set(self, key: str, value: Attribute) -> None:
        if self._span is not None:
            self._span.set_attribute(key, value)

    def fail(self, description: str) -> None:
        """Marks the span as an error, whatever exception (if any) ends it."""
        self.outcome_set = True
        if self._span is not None:
            from opentelemetry.trace import Status, StatusCode

            self._span.set_status(Status(StatusCode.ERROR, description))

    def succeed(self) -> None:
        """Records no error even if an exception ends the span (e.g. a gRPC abort carrying a client's mistake)."""
        self.outcome_set = True


_OFF = contextlib.nullcontext(Span(None))
_tracer: Tracer | None = None
_provider: TracerProvider | None = None


def configure(settings: TraceSettings) -> None:
    """Starts exporting spans when an endpoint is set; otherwise leaves tracing off (and the SDK unimported)."""
    global _tracer, _provider
    if not settings.endpoint:
        return
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    exporter: SpanExporter
    if settings.protocol is OtlpProtocol.GRPC:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        exporter = GrpcExporter(
            endpoint=settings.endpoint, insecure=settings.endpoint.startswith("http://"), timeout=EXPORT_TIMEOUT_SECONDS
        )
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

        exporter = HttpExporter(endpoint=f"{settings.endpoint}/v1/traces", timeout=EXPORT_TIMEOUT_SECONDS)
    resource = Resource.create({"service.name": SERVICE_NAME, "service.instance.id": settings.replica})
    _provider = TracerProvider(resource=resource, sampler=ParentBased(TraceIdRatioBased(settings.sample_ratio)))
    _provider.add_span_processor(BatchSpanProcessor(exporter))
    _tracer = _provider.get_tracer("novasphere")


def enabled() -> bool:
    return _tracer is not None


def shutdown() -> None:
    """Sends the spans still buffered (at the end of a drain)."""
    global _tracer, _provider
    if _provider is not None:
        _provider.shutdown()
    _tracer = _provider = None


def span(
    name: str,
    *,
    kind: Kind = Kind.INTERNAL,
    carrier: Mapping[str, str] | None = None,
    attributes: Mapping[str, Attribute] | None = None,
    only_in_trace: bool = False,
) -> contextlib.AbstractContextManager[Span]:
    """A span around the block, current within it; its parent comes from `carrier` (incoming headers) when given,
    else from the current span. `only_in_trace`: recorded only inside a trace already begun, so that background loops
    (lease renewals, informers) do not each start a trace of one Kubernetes call."""
    if _tracer is None:
        return _OFF
    if only_in_trace:
        from opentelemetry import trace

        if not trace.get_current_span().get_span_context().is_valid:
            return _OFF
    return _recording(_tracer, name, kind, carrier, attributes)


@contextlib.contextmanager
def _recording(
    tracer: Tracer,
    name: str,
    kind: Kind,
    carrier: Mapping[str, str] | None,
    attributes: Mapping[str, Attribute] | None,
) -> Iterator[Span]:
    from opentelemetry.trace import SpanKind, Status, StatusCode

    parent = _extract(carrier) if carrier is not None else None
    with tracer.start_as_current_span(
        name,
        context=parent,
        kind=SpanKind[kind.value],
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as otel_span:
        recorded = Span(otel_span)
        try:
            yield recorded
        except BaseException as error:
            if not recorded.outcome_set:
                otel_span.record_exception(error)
                otel_span.set_status(Status(StatusCode.ERROR, type(error).__name__))
            raise


def traceparent() -> str:
    """The current span's W3C `traceparent`, to store with work that outlives the request; "" when there is none."""
    if _tracer is None:
        return ""
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)
    return carrier.get(TRACEPARENT, "")


def record(
    name: str,
    *,
    parent: str,
    start: datetime.datetime,
    end: datetime.datetime,
    attributes: Mapping[str, Attribute],
    error: str = "",
) -> None:
    """A span already over (e.g. a task's whole life, from acceptance to its end), child of the span whose
    `traceparent` is `parent`; nothing when tracing is off or `parent` is empty (work begun outside any trace)."""
    if _tracer is None or not parent:
        return
    from opentelemetry.trace import Status, StatusCode

    otel_span = _tracer.start_span(
        name, context=_extract({TRACEPARENT: parent}), attributes=attributes, start_time=_nanoseconds(start)
    )
    if error:
        otel_span.set_status(Status(StatusCode.ERROR, error))
    otel_span.end(end_time=_nanoseconds(max(start, end)))


def _extract(carrier: Mapping[str, str]) -> Context:
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    return TraceContextTextMapPropagator().extract(dict(carrier))


def _nanoseconds(moment: datetime.datetime) -> int:
    return round(moment.timestamp() * 1_000_000) * 1000
