"""The server span of every RPC, continuing the trace Envoy (or a client) began: installed only while tracing is on."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import grpc

from server import tracing
from server.transport import interceptors
from server.transport.interceptors import Context, Continuation, Handler, client_type

REQUEST_ID = "x-request-id"
UNTRACED = ("/grpc.health.v1.Health/", "/grpc.reflection.")
"""Probes (the kubelet's, every few seconds) and tooling: a trace each would bury the requests'."""
# The codes that mean the server failed; the others are the client's to fix (OpenTelemetry's gRPC conventions).
_SERVER_FAULTS = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)


class TraceInterceptor(grpc.aio.ServerInterceptor):
    """Outermost: one SERVER span per RPC, child of the incoming `traceparent`, with the final status code; the
    Kubernetes calls and tasks the RPC makes become its children. Of the metadata it reads only the trace headers,
    the request id and what tells the client type."""

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or method.startswith(UNTRACED):
            return handler
        metadata = handler_call_details.invocation_metadata or ()
        headers = {key: value for key, value in metadata if isinstance(value, str)}
        carrier = {key: headers[key] for key in tracing.CARRIED if key in headers}
        service, _, rpc = method.lstrip("/").partition("/")
        attributes: dict[str, tracing.Attribute] = {
            "rpc.system": "grpc",
            "rpc.service": service,
            "rpc.method": rpc,
            "novasphere.client_type": client_type(metadata),
        }
        if request_id := headers.get(REQUEST_ID, "")[:64]:  # Envoy's, so logs and traces can be joined
            attributes["novasphere.request_id"] = request_id

        @contextlib.asynccontextmanager
        async def traced(request: Any, context: Context) -> AsyncIterator[None]:
            with tracing.span(
                method.lstrip("/"), kind=tracing.Kind.SERVER, carrier=carrier, attributes=attributes
            ) as span:
                code = grpc.StatusCode.OK
                try:
                    yield
                    code = context.code() or grpc.StatusCode.OK
                except asyncio.CancelledError:
                    code = grpc.StatusCode.CANCELLED
                    raise
                except BaseException:
                    code = context.code() or grpc.StatusCode.UNKNOWN
                    raise
                finally:
                    if isinstance(code, grpc.StatusCode):
                        span.set("rpc.grpc.status_code", code.value[0])
                        if code in _SERVER_FAULTS:
                            span.fail(code.name)
                        else:
                            span.succeed()

        return interceptors.wrap_handler(handler, traced)
