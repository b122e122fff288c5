"""The one place where errors become gRPC statuses (`google.rpc.Status` with details, AIP-193).

The table is keyed by exception class and looked up along the MRO, so a subclass inherits its base's code. Servicers
never abort themselves: they raise, and the error interceptor calls `status_of`.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2

from server import errors, logs
from server.kube import errors as kube_errors

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Rule:
    code: grpc.StatusCode
    # For lower-layer errors, which carry no client-facing text of their own:
    reason: errors.Reason | None = None
    message: str | None = None


_TABLE: dict[type[BaseException], _Rule] = {
    errors.NotFound: _Rule(grpc.StatusCode.NOT_FOUND),
    errors.AlreadyExists: _Rule(grpc.StatusCode.ALREADY_EXISTS),
    errors.PermissionDenied: _Rule(grpc.StatusCode.PERMISSION_DENIED),
    errors.Unauthenticated: _Rule(grpc.StatusCode.UNAUTHENTICATED),
    errors.RateLimited: _Rule(grpc.StatusCode.RESOURCE_EXHAUSTED),
    errors.InvalidArgument: _Rule(grpc.StatusCode.INVALID_ARGUMENT),
    errors.Conflict: _Rule(grpc.StatusCode.ABORTED),
    errors.RequestInProgress: _Rule(grpc.StatusCode.ABORTED),
    errors.FailedPrecondition: _Rule(grpc.StatusCode.FAILED_PRECONDITION),
    errors.ResyncRequired: _Rule(grpc.StatusCode.OUT_OF_RANGE),
    errors.SlowConsumer: _Rule(grpc.StatusCode.RESOURCE_EXHAUSTED),
    errors.Unavailable: _Rule(grpc.StatusCode.UNAVAILABLE),
    errors.NovaError: _Rule(grpc.StatusCode.INTERNAL),
    # What a domain call did not expect of kube-apiserver still gets the code its meaning has, never INTERNAL.
    kube_errors.NotFound: _Rule(
        grpc.StatusCode.NOT_FOUND,
        errors.Reason.OBJECT_GONE,
        "what this call works on was deleted meanwhile; read it again",
    ),
    kube_errors.Conflict: _Rule(
        grpc.StatusCode.ABORTED,
        errors.Reason.OBJECT_CHANGED,
        "what this call works on was changed by someone else meanwhile; read it again and retry",
    ),
    kube_errors.Invalid: _Rule(
        grpc.StatusCode.INVALID_ARGUMENT,
        errors.Reason.REJECTED_BY_KUBERNETES,
        "Kubernetes refused the change as invalid; check the values against the documented limits",
    ),
    kube_errors.Gone: _Rule(
        grpc.StatusCode.UNAVAILABLE,
        errors.Reason.BACKEND_UNAVAILABLE,
        "the Kubernetes API's view moved on while this call ran; retry",
    ),
    kube_errors.Unreachable: _Rule(
        grpc.StatusCode.UNAVAILABLE,
        errors.Reason.BACKEND_UNAVAILABLE,
        "the Kubernetes API is not reachable right now; retry shortly",
    ),
    kube_errors.TooManyRequests: _Rule(
        grpc.StatusCode.UNAVAILABLE,
        errors.Reason.BACKEND_OVERLOADED,
        "the Kubernetes API is overloaded; retry after the delay given",
    ),
    kube_errors.Forbidden: _Rule(
        grpc.StatusCode.INTERNAL,
        errors.Reason.BACKEND_FORBIDDEN,
        "the NovaSphere API's service account is not allowed to do this in Kubernetes; "
        "an administrator must grant it in deploy/rbac",
    ),
}
_INTERNAL = _Rule(grpc.StatusCode.INTERNAL, errors.Reason.INTERNAL, "internal error")
DEFAULT_RETRY_SECONDS = 1.0
# Bounds on what an error carries: messages and violations may quote what the client sent, and a status travels in
# HTTP/2 headers (grpc-message, grpc-status-details-bin), which Envoy refuses past 60 KiB by failing the whole
# connection (a 1 MiB value echoed back was a 502 for every call on it, found by the OWASP suite).
MAX_MESSAGE_CHARS = 1024
MAX_DETAIL_CHARS = 512
MAX_VIOLATIONS = 20


def status_of(error: BaseException) -> tuple[grpc.StatusCode, status_pb2.Status]:
    """The status code and rich status to send for `error`, with the request's id (`RequestInfo`) when serving one;
    unexpected errors are logged with a reference id."""
    rule = next((_TABLE[cls] for cls in type(error).__mro__ if cls in _TABLE), _INTERNAL)
    details: list[any_pb2.Any] = []

    if isinstance(error, errors.NovaError):
        reason, message = error.reason, error.message
    else:
        reference = uuid.uuid4().hex[:12]
        reason = rule.reason or errors.Reason.INTERNAL
        message = f"{rule.message or _INTERNAL.message} (reference {reference})"
        log.error("%s, reference %s: %r", reason, reference, error, exc_info=rule is _INTERNAL)

    message = _bounded(message, MAX_MESSAGE_CHARS)
    details.append(_pack(error_details_pb2.ErrorInfo(reason=reason, domain=errors.DOMAIN)))
    if isinstance(error, errors.InvalidArgument):
        details.append(
            _pack(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(
                            field=_bounded(v.field, MAX_DETAIL_CHARS),
                            description=_bounded(v.description, MAX_DETAIL_CHARS),
                        )
                        for v in error.violations[:MAX_VIOLATIONS]
                    ]
                )
            )
        )
    if isinstance(error, (errors.NotFound, errors.AlreadyExists)):
        details.append(
            _pack(
                error_details_pb2.ResourceInfo(
                    resource_type=error.resource_type, resource_name=_bounded(error.resource_name, MAX_DETAIL_CHARS)
                )
            )
        )
    if rule.code is grpc.StatusCode.UNAVAILABLE or isinstance(error, errors.RateLimited | errors.RequestInProgress):
        retry = getattr(error, "retry_after_seconds", None) or DEFAULT_RETRY_SECONDS
        delay = duration_pb2.Duration(seconds=int(retry), nanos=int(retry % 1 * 1e9))
        details.append(_pack(error_details_pb2.RetryInfo(retry_delay=delay)))
    if request_id := logs.request_id.get():  # what to quote to an operator: it finds the call in every log
        details.append(_pack(error_details_pb2.RequestInfo(request_id=request_id)))
    return rule.code, status_pb2.Status(code=rule.code.value[0], message=message, details=details)


def _bounded(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _pack(message: Message) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed
