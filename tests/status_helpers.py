"""Reading `google.rpc.Status` details back from a failed call, as a client would."""

from __future__ import annotations

from dataclasses import dataclass, field

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2


@dataclass
class Details:
    code: int
    message: str
    reason: str = ""
    domain: str = ""
    field_violations: dict[str, str] = field(default_factory=dict)
    resource_name: str = ""
    retry_seconds: float | None = None
    request_id: str = ""


def details_of_status(status: status_pb2.Status) -> Details:
    result = Details(code=status.code, message=status.message)
    for packed in status.details:
        _unpack_into(result, packed)
    return result


def details_of(error: grpc.RpcError) -> Details:
    """The rich status of a failed gRPC call (from `grpc-status-details-bin`), synchronous or asyncio."""
    assert isinstance(error, grpc.Call | grpc.aio.AioRpcError)
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            assert isinstance(value, bytes)
            return details_of_status(status_pb2.Status.FromString(value))
    raise AssertionError(f"no grpc-status-details-bin in the trailers of {error!r}")


def _unpack_into(result: Details, packed: any_pb2.Any) -> None:
    for message_type in (
        error_details_pb2.ErrorInfo,
        error_details_pb2.BadRequest,
        error_details_pb2.ResourceInfo,
        error_details_pb2.RetryInfo,
        error_details_pb2.RequestInfo,
    ):
        if packed.Is(message_type.DESCRIPTOR):
            message = message_type()
            packed.Unpack(message)
            if isinstance(message, error_details_pb2.ErrorInfo):
                result.reason, result.domain = message.reason, message.domain
            elif isinstance(message, error_details_pb2.BadRequest):
                result.field_violations = {v.field: v.description for v in message.field_violations}
            elif isinstance(message, error_details_pb2.ResourceInfo):
                result.resource_name = message.resource_name
            elif isinstance(message, error_details_pb2.RequestInfo):
                result.request_id = message.request_id
            else:
                result.retry_seconds = message.retry_delay.ToTimedelta().total_seconds()
