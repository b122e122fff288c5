"""The interceptor chain, outermost first: access log + metrics, error mapping, then authorisation.

Each interceptor wraps the handler's behaviour, whatever its kind, in one async context manager, so streams get
exactly the treatment unary calls get.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeAlias

import grpc

from server import auth
from server import errors as domain_errors
from server.auth.limits import RateLimits
from server.lifecycle import Lifecycle
from server.metrics import CLIENT_TYPES, Metrics
from server.transport import edge, errors, permissions
from server.transport.streams import OpenStreams

log = logging.getLogger("novasphere.access")

# Quoted: grpc's classes are generic only in the type stubs.
Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"
Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"
Around: TypeAlias = "Callable[[Context], contextlib.AbstractAsyncContextManager[None]]"
Continuation: TypeAlias = "Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]]"
CoroutineBehaviour: TypeAlias = "Callable[[Any, Context], Awaitable[Any]]"
GeneratorBehaviour: TypeAlias = "Callable[[Any, Context], AsyncIterator[Any]]"

_FACTORIES = {
    (False, False): ("unary_unary", grpc.unary_unary_rpc_method_handler),
    (False, True): ("unary_stream", grpc.unary_stream_rpc_method_handler),
    (True, False): ("stream_unary", grpc.stream_unary_rpc_method_handler),
    (True, True): ("stream_stream", grpc.stream_stream_rpc_method_handler),
}


def _wrap(handler: Handler, around: Around) -> Handler:
    """The same handler, its behaviour running inside `around(context)`, for every kind of RPC (reflection is
    bidirectional). A behaviour is an async generator (it yields its responses) or a coroutine (it returns its one
    response, or writes a stream with context.write, as the health service's Watch does); the wrapper keeps that."""
    attribute, factory = _FACTORIES[(handler.request_streaming, handler.response_streaming)]
    behaviour = getattr(handler, attribute)
    wrapped = (
        _around_generator(behaviour, around)
        if inspect.isasyncgenfunction(behaviour)
        else _around_coroutine(behaviour, around)
    )
    return factory(wrapped, handler.request_deserializer, handler.response_serializer)


def _around_coroutine(behaviour: CoroutineBehaviour, around: Around) -> CoroutineBehaviour:
    async def wrapped(request: Any, context: Context) -> Any:
        async with around(context):
            return await behaviour(request, context)

    return wrapped


def _around_generator(behaviour: GeneratorBehaviour, around: Around) -> GeneratorBehaviour:
    async def wrapped(request: Any, context: Context) -> AsyncIterator[Any]:
        async with around(context):
            async for response in behaviour(request, context):
                yield response

    return wrapped


def client_type(metadata: Sequence[tuple[str, str | bytes]] | None) -> str:
    """`x-client-type` when the client says (web, electron, flutter, cli, service, ...), else what its User-Agent
    tells (Electron, Dart/Flutter, vmctl, a browser), else the door: Envoy marks gRPC-Web and transcoded REST calls
    (see envoy/), and anything else is native gRPC. Values outside `CLIENT_TYPES` count as `other`."""
    headers = {key: value for key, value in metadata or () if isinstance(value, str)}
    declared = headers.get("x-client-type", "").strip().lower()
    if declared:
        return declared if declared in CLIENT_TYPES else "other"
    agent = headers.get("user-agent", "")
    for marker, kind in _USER_AGENTS:
        if marker in agent:
            return kind
    door = headers.get("x-novasphere-door")  # "ct=<the content-type the client sent>", set by Envoy
    if door is None:
        return "grpc"  # not through Envoy
    if door.startswith("ct=application/grpc-web"):
        return "grpc-web"
    return "grpc" if door.startswith("ct=application/grpc") else "rest"


_USER_AGENTS = (("Electron/", "electron"), ("Dart/", "flutter"), ("vmctl/", "cli"), ("Mozilla/", "web"))


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
            # Read now: after a client cancels a stream, context.peer() dereferences a freed call inside grpcio's C
            # extension (the intermittent segfault of issue 6, caught by faulthandler at the log line below).
            peer = context.peer()
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
                log.info("%s %s %s %.1fms peer=%s", method, code_name, kind, seconds * 1000, peer)

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


class AuthorizeInterceptor(grpc.aio.ServerInterceptor):
    """Establishes the caller of every RPC (unary and streaming), checks the permission `permissions.REQUIRED` names
    for it, the caller's rate limits and that this replica's caches are fresh, before the servicer runs; servicers
    read the caller with `auth.current()`. Every server stream holds a slot (the caller's, or for a public stream such
    as the health service's Watch, its client address's) and is registered in `streams`, so it can be ended."""

    def __init__(
        self, callers: auth.CallerSource, limits: RateLimits, *, lifecycle: Lifecycle, streams: OpenStreams
    ) -> None:
        self._callers = callers
        self._limits = limits
        self._lifecycle = lifecycle
        self._streams = streams

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        required = permissions.REQUIRED.get(method)
        streaming = handler.response_streaming
        if required == permissions.PUBLIC and not streaming:
            return handler
        metadata = tuple(handler_call_details.invocation_metadata or ())

        @contextlib.asynccontextmanager
        async def public_stream(context: Context) -> AsyncIterator[None]:
            address = edge.client_address(metadata, context.peer())
            with self._limits.public_stream(address), self._streams.held(method):
                yield

        @contextlib.asynccontextmanager
        async def authorised(context: Context) -> AsyncIterator[None]:
            if required is None:
                log.error("%s is served but missing from the permission table; refused", method)
                raise domain_errors.PermissionDenied("admin")
            self._lifecycle.check_fresh()
            caller = await self._callers.caller(metadata, address=edge.client_address(metadata, context.peer()))
            if required != permissions.AUTHENTICATED and not caller.may(required):
                raise domain_errors.PermissionDenied(required)
            self._limits.charge(caller, method)
            token = auth.acting_as(caller)
            try:
                if streaming:
                    with self._limits.stream(caller), self._streams.held(method):
                        yield
                else:
                    yield
            finally:
                auth.done_acting(token)

        return _wrap(handler, public_stream if required == permissions.PUBLIC else authorised)
