"""The interceptor chain, outermost first: access log + metrics, then error mapping.

Each interceptor wraps the handler's behaviour by kind (unary or server-streaming) in one async context manager,
so streams get exactly the treatment unary calls get.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, cast

import grpc

from server.metrics import CLIENT_TYPES, Metrics
from server.transport import errors

log = logging.getLogger("novasphere.access")

Context = grpc.aio.ServicerContext[Any, Any]
Handler = grpc.RpcMethodHandler[Any, Any]
Around = Callable[[Context], contextlib.AbstractAsyncContextManager[None]]
Continuation = Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]]
UnaryBehaviour = Callable[[Any, Context], Awaitable[Any]]
StreamBehaviour = Callable[[Any, Context], AsyncIterator[Any]]


def _wrap(handler: Handler, around: Around) -> Handler:
    """The same handler, its behaviour running inside `around(context)`. Every servicer is async, so behaviours
    are coroutines (unary) or async generators (server streams)."""
    if handler.request_streaming:
        raise NotImplementedError("client-streaming RPCs are not part of the API")
    if handler.response_streaming:
        stream = cast(StreamBehaviour, handler.unary_stream)

        async def unary_stream(request: Any, context: Context) -> AsyncIterator[Any]:
            async with around(context):
                async for response in stream(request, context):
                    yield response

        return grpc.unary_stream_rpc_method_handler(
            unary_stream, handler.request_deserializer, handler.response_serializer
        )
    unary = cast(UnaryBehaviour, handler.unary_unary)

    async def unary_unary(request: Any, context: Context) -> Any:
        async with around(context):
            return await unary(request, context)

    return grpc.unary_unary_rpc_method_handler(unary_unary, handler.request_deserializer, handler.response_serializer)


def client_type(metadata: tuple[tuple[str, str | bytes], ...] | None) -> str:
    """`x-client-type` when the client says (vmctl, web, mobile, ...), else what the door tells: Envoy marks
    gRPC-Web and transcoded REST calls (see envoy/), and anything else is native gRPC."""
    headers = {key: value for key, value in metadata or () if isinstance(value, str)}
    declared = headers.get("x-client-type", "").strip().lower()
    if declared:
        return declared if declared in CLIENT_TYPES else "other"
    door = headers.get("x-novasphere-door")  # "ct=<the content-type the client sent>", set by Envoy
    if door is None:
        return "grpc"  # not through Envoy
    if door.startswith("ct=application/grpc-web"):
        return "grpc-web"
    return "grpc" if door.startswith("ct=application/grpc") else "rest"


class ObserveInterceptor(grpc.aio.ServerInterceptor):
    """One access-log line and one metrics sample per RPC, with its final status code. Logs no metadata values,
    so no credential can reach the log."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        kind = client_type(handler_call_details.invocation_metadata)

        @contextlib.asynccontextmanager
        async def observed(context: Context) -> AsyncIterator[None]:
            started = time.monotonic()
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
                seconds = time.monotonic() - started
                code_name = code.name if isinstance(code, grpc.StatusCode) else str(code)
                self._metrics.observe(method=method, code=code_name, client_type=kind, seconds=seconds)
                log.info("%s %s %s %.1fms peer=%s", method, code_name, kind, seconds * 1000, context.peer())

        return _wrap(handler, observed)


class ErrorInterceptor(grpc.aio.ServerInterceptor):
    """Turns every exception a servicer raises into a rich status (`transport.errors.status_of`)."""

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        return None if handler is None else _wrap(handler, _mapped)


@contextlib.asynccontextmanager
async def _mapped(context: Context) -> AsyncIterator[None]:
    try:
        yield
    except (asyncio.CancelledError, grpc.aio.AbortError):
        raise
    except Exception as error:  # noqa: BLE001 - the one place every error becomes a status
        code, status = errors.status_of(error)
        await context.abort(
            code, status.message, trailing_metadata=(("grpc-status-details-bin", status.SerializeToString()),)
        )
