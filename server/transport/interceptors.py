"""The interceptor chain, outermost first: access log + metrics, error mapping, then authorisation.

Each interceptor wraps the handler's behaviour, whatever its kind, in one async context manager, so streams get
exactly the treatment unary calls get.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import DecodeError, Message
from google.rpc import error_details_pb2

from server import auth, logs
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
Around: TypeAlias = "Callable[[Any, Context], contextlib.AbstractAsyncContextManager[None]]"
Continuation: TypeAlias = "Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]]"
CoroutineBehaviour: TypeAlias = "Callable[[Any, Context], Awaitable[Any]]"
GeneratorBehaviour: TypeAlias = "Callable[[Any, Context], AsyncIterator[Any]]"

_FACTORIES = {
    (False, False): ("unary_unary", grpc.unary_unary_rpc_method_handler),
    (False, True): ("unary_stream", grpc.unary_stream_rpc_method_handler),
    (True, False): ("stream_unary", grpc.stream_unary_rpc_method_handler),
    (True, True): ("stream_stream", grpc.stream_stream_rpc_method_handler),
}


def wrap_handler(handler: Handler, around: Around, deserializer: Callable[[bytes], Any] | None = None) -> Handler:
    """The same handler, its behaviour running inside `around(request, context)`, for every kind of RPC (reflection
    is bidirectional), with `deserializer` as its request parser if given. A behaviour is an async generator (it
    yields its responses) or a coroutine (it returns its one response, or writes a stream with context.write, as the
    health service's Watch does); the wrapper keeps that."""
    attribute, factory = _FACTORIES[(handler.request_streaming, handler.response_streaming)]
    behaviour = getattr(handler, attribute)
    wrapped = (
        _around_generator(behaviour, around)
        if inspect.isasyncgenfunction(behaviour)
        else _around_coroutine(behaviour, around)
    )
    return factory(wrapped, deserializer or handler.request_deserializer, handler.response_serializer)


def _around_coroutine(behaviour: CoroutineBehaviour, around: Around) -> CoroutineBehaviour:
    async def wrapped(request: Any, context: Context) -> Any:
        async with around(request, context):
            return await behaviour(request, context)

    return wrapped


def _around_generator(behaviour: GeneratorBehaviour, around: Around) -> GeneratorBehaviour:
    async def wrapped(request: Any, context: Context) -> AsyncIterator[Any]:
        async with around(request, context):
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
    return door(metadata)


_USER_AGENTS = (("Electron/", "electron"), ("Dart/", "flutter"), ("vmctl/", "cli"), ("Mozilla/", "web"))


def door(metadata: Sequence[tuple[str, str | bytes]] | None) -> str:
    """The door a call came through: `rest` or `grpc-web` (Envoy translated it) or `grpc`, from the header Envoy
    always sets (overwriting a client's own); a call without it did not come through Envoy: native gRPC."""
    # "ct=<the content-type the client sent>": a REST GET has none
    value = next((v for k, v in metadata or () if k == "x-novasphere-door" and isinstance(v, str)), None)
    if value is None:
        return "grpc"
    if value.startswith("ct=application/grpc-web"):
        return "grpc-web"
    return "grpc" if value.startswith("ct=application/grpc") else "rest"


@dataclass
class _Access:
    """What the access event of the call being served says beyond its start: filled in by the inner interceptors
    (the caller, the error's reason) and the response counter as they learn it."""

    user: str = ""
    tenant: str = ""
    reason: str = ""
    bytes_out: int = 0
    responses: int = 0
    first_response: float | None = None


_ACCESS: contextvars.ContextVar[_Access | None] = contextvars.ContextVar("access", default=None)


def _note(**facts: Any) -> None:
    """Records `facts` for the access event of the call being served, if any."""
    access = _ACCESS.get()
    if access is not None:
        for name, value in facts.items():
            setattr(access, name, value)


def note_caller(user: str, tenant: str) -> None:
    """Names the caller in the access event of a call that authenticates it itself (Login, Refresh), which the
    authorising interceptor passed without knowing who it was."""
    _note(user=user, tenant=tenant)


def _size(message: Any) -> int | None:
    """A message's size on the wire (pre-serialised responses are bytes already); None when not known."""
    if isinstance(message, bytes):
        return len(message)
    return message.ByteSize() if isinstance(message, Message) else None


def _counting(handler: Handler) -> Handler:
    """`handler` whose responses are counted (number, bytes, time of the first) for the access event."""
    attribute, factory = _FACTORIES[(handler.request_streaming, handler.response_streaming)]
    behaviour = getattr(handler, attribute)

    def counted(response: Any) -> None:
        access = _ACCESS.get()
        if access is not None:
            access.responses += 1
            access.bytes_out += _size(response) or 0
            if access.first_response is None:
                access.first_response = time.monotonic()

    async def coroutine(request: Any, context: Context) -> Any:
        response = await behaviour(request, context)
        if response is not None:
            counted(response)
        return response

    async def generator(request: Any, context: Context) -> AsyncIterator[Any]:
        async for response in behaviour(request, context):
            counted(response)
            yield response

    wrapped = generator if inspect.isasyncgenfunction(behaviour) else coroutine
    return factory(wrapped, handler.request_deserializer, handler.response_serializer)


class ObserveInterceptor(grpc.aio.ServerInterceptor):
    """One access event and one metrics sample per RPC, with its final status code. It sets the request id (Envoy's
    `x-request-id` when well-formed, else a new one) for everything the call does. Logs no metadata value but the
    request id, so no credential can reach the log."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        metadata = tuple(handler_call_details.invocation_metadata or ())
        kind = client_type(metadata)
        sent_id = next((v for k, v in metadata if k == "x-request-id" and isinstance(v, str)), None)
        streaming = handler.response_streaming

        @contextlib.asynccontextmanager
        async def observed(request: Any, context: Context) -> AsyncIterator[None]:
            started = time.monotonic()
            # Read now: after a client cancels a stream, context.peer() dereferences a freed call inside grpcio's C
            # extension (the intermittent segfault of issue 6, caught by faulthandler at the log line below).
            raw_peer = context.peer()
            peer = edge.client_address(metadata, raw_peer)
            entrance = door(metadata) if edge.from_envoy(edge.peer_address(raw_peer)) else "grpc"
            request_id = logs.well_formed_request_id(sent_id)
            logs.request_id.set(request_id)  # each RPC runs in a task of its own: nothing to restore
            access = _Access()
            _ACCESS.set(access)
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
                ended = time.monotonic()
                seconds = ended - started
                code_name = code.name if isinstance(code, grpc.StatusCode) else str(code)
                self._metrics.observe(method=method, code=code_name, client_type=kind, seconds=seconds)
                fields: dict[str, Any] = {
                    "method": method,
                    "door": entrance,
                    "client_type": kind,
                    "user": access.user,
                    "tenant": access.tenant,
                    "peer": peer,
                    "code": code_name,
                    "reason": access.reason,
                    "bytes_in": _size(request),
                    "bytes_out": access.bytes_out,
                }
                if streaming:
                    first = access.first_response
                    fields["latency_ms"] = round(((first or ended) - started) * 1000, 1)
                    fields["duration_ms"] = round(seconds * 1000, 1)
                    fields["responses"] = access.responses
                else:
                    fields["latency_ms"] = round(seconds * 1000, 1)
                message = f"{method} {code_name} {kind} {seconds * 1000:.1f}ms peer={peer}"
                logs.event(log, "access", message, **fields)

        return wrap_handler(_counting(handler), observed)


class ErrorInterceptor(grpc.aio.ServerInterceptor):
    """Turns every exception a servicer raises into a rich status (`transport.errors.status_of`), and a request that
    does not parse into INVALID_ARGUMENT."""

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        return None if handler is None else wrap_handler(_refusing_undecodable(handler), _mapped)


@dataclass(frozen=True)
class _Undecodable:
    """A request message that did not parse, handed to the behaviour instead of grpcio's own failure (UNKNOWN, a
    500 to REST clients, with the parser's text). Envoy's transcoder writes such messages for some JSON it should
    have refused, e.g. an object as the value of a `map<string, string>`; a gRPC client can send them too."""

    message_type: str


def _refusing_undecodable(handler: Handler) -> Handler:
    """`handler` with a request parser that never raises, and a behaviour that refuses what did not parse."""
    deserializer = handler.request_deserializer
    if handler.request_streaming or deserializer is None:
        return handler  # reflection's stream: grpcio's own handling
    message_type = getattr(getattr(deserializer, "__self__", None), "DESCRIPTOR", None)
    name = message_type.full_name if message_type is not None else "request"

    def tolerant(data: bytes) -> Any:
        try:
            return deserializer(data)
        except DecodeError:
            return _Undecodable(name)

    @contextlib.asynccontextmanager
    async def parsed(request: Any, context: Context) -> AsyncIterator[None]:
        if isinstance(request, _Undecodable):
            raise domain_errors.InvalidArgument.field(
                "*",
                f"the request is not a valid {request.message_type}: a field has a value of the wrong type (for "
                "example an object or a number where a map or list expects strings); check it against the API",
            )
        yield

    return wrap_handler(handler, parsed, tolerant)


@contextlib.asynccontextmanager
async def _mapped(request: Any, context: Context) -> AsyncIterator[None]:
    try:
        yield
    except (asyncio.CancelledError, grpc.aio.AbortError):
        raise
    except Exception as error:  # noqa: BLE001 - the one place every error becomes a status
        code, status = errors.status_of(error)
        _note(reason=next((_reason(detail) for detail in status.details if detail.Is(_ERROR_INFO)), ""))
        await context.abort(
            code, status.message, trailing_metadata=(("grpc-status-details-bin", status.SerializeToString()),)
        )


_ERROR_INFO = error_details_pb2.ErrorInfo.DESCRIPTOR


def _reason(detail: any_pb2.Any) -> str:
    info = error_details_pb2.ErrorInfo()
    detail.Unpack(info)
    return str(info.reason)


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

    @contextlib.asynccontextmanager
    async def _fresh(self, request: Any, context: Context) -> AsyncIterator[None]:
        """A public call that reads the replica's caches (Login, Refresh): only once they are synced and fresh."""
        self._streams.admit()
        self._lifecycle.check_fresh()
        yield

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
            if method in permissions.ANSWERED_WHILE_STARTING:
                return handler
            return wrap_handler(handler, self._fresh)
        metadata = tuple(handler_call_details.invocation_metadata or ())

        @contextlib.asynccontextmanager
        async def public_stream(request: Any, context: Context) -> AsyncIterator[None]:
            address = edge.client_address(metadata, context.peer())
            with self._limits.public_stream(address), self._streams.held(method):
                yield

        @contextlib.asynccontextmanager
        async def authorised(request: Any, context: Context) -> AsyncIterator[None]:
            if required is None:
                log.error("%s is served but missing from the permission table; refused", method)
                raise domain_errors.PermissionDenied("admin")
            self._streams.admit()
            self._lifecycle.check_fresh()
            caller = await self._callers.caller(metadata, address=edge.client_address(metadata, context.peer()))
            _note(user=caller.user, tenant=caller.tenant)
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

        return wrap_handler(handler, public_stream if required == permissions.PUBLIC else authorised)
