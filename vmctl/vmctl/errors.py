"""How vmctl fails: one line on stderr, from the google.rpc details the API attaches, and an exit code per kind of
failure, so scripts can tell them apart.

    0  success
    1  an operation failed (a task ended FAILED or CANCELLED), or an unexpected error
    2  usage: a bad flag or argument, or input the API refused as invalid (INVALID_ARGUMENT, OUT_OF_RANGE)
    3  not signed in, or the credentials expired (UNAUTHENTICATED): run `vmctl login`
    4  permission denied
    5  not found
    6  conflict: changed meanwhile, already exists, or not possible in the current state (ABORTED, ALREADY_EXISTS,
       FAILED_PRECONDITION)
    7  unavailable: the API cannot serve now or asks to slow down (UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import grpc

OK, FAILED, USAGE, UNAUTHENTICATED, DENIED, NOT_FOUND, CONFLICT, UNAVAILABLE = range(8)
_BY_CODE = {
    "INVALID_ARGUMENT": USAGE,
    "OUT_OF_RANGE": USAGE,
    "UNAUTHENTICATED": UNAUTHENTICATED,
    "PERMISSION_DENIED": DENIED,
    "NOT_FOUND": NOT_FOUND,
    "ABORTED": CONFLICT,
    "ALREADY_EXISTS": CONFLICT,
    "FAILED_PRECONDITION": CONFLICT,
    "UNAVAILABLE": UNAVAILABLE,
    "DEADLINE_EXCEEDED": UNAVAILABLE,
    "RESOURCE_EXHAUSTED": UNAVAILABLE,
}


class VmctlError(Exception):
    """A failure to report in one line, with its exit code."""

    def __init__(self, message: str, exit_code: int = FAILED, *, status: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.status = status
        """The gRPC status code's name, for a refusal of the API."""


def from_rpc(error: grpc.RpcError) -> VmctlError:
    """The API's refusal in one line: its message, each field violation, the retry delay, and a hint to log in."""
    from google.rpc import error_details_pb2, status_pb2

    code = error.code().name if hasattr(error, "code") else "UNKNOWN"
    message = str(error.details() if hasattr(error, "details") else error) or ""
    parts = [message or code]
    trailers: Any = error.trailing_metadata() if hasattr(error, "trailing_metadata") else None
    for key, value in trailers or ():
        if key != "grpc-status-details-bin" or not isinstance(value, bytes):
            continue
        for detail in status_pb2.Status.FromString(value).details:
            if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                detail.Unpack(bad)
                parts += [f"{v.field}: {v.description}" for v in bad.field_violations if v.description not in message]
            elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                retry = error_details_pb2.RetryInfo()
                detail.Unpack(retry)
                parts.append(f"retry in {retry.retry_delay.seconds + (1 if retry.retry_delay.nanos else 0)} s")
    exit_code = _BY_CODE.get(code, FAILED)
    if exit_code == UNAUTHENTICATED:
        parts.append("run `vmctl login` (or give --token / --api-key)")
    return VmctlError("; ".join(parts), exit_code, status=code)
