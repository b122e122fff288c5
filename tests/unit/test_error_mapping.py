"""One table maps every error to its gRPC status, ErrorInfo reason and details."""

from __future__ import annotations

import grpc
import pytest

from server import errors
from server.kube import errors as kube_errors
from server.transport.errors import status_of
from tests.status_helpers import details_of_status


def test_not_found_carries_reason_and_resource() -> None:
    code, status = status_of(errors.WukongNotFound(namespace="ns", name="vm"))

    details = details_of_status(status)
    assert code is grpc.StatusCode.NOT_FOUND
    assert status.code == grpc.StatusCode.NOT_FOUND.value[0]
    assert (details.reason, details.domain) == ("WUKONG_NOT_FOUND", "novasphere.dev")
    assert details.resource_name == "namespaces/ns/wukongs/vm"


def test_invalid_argument_carries_every_field_violation() -> None:
    error = errors.InvalidArgument(
        [errors.FieldViolation("page_size", "too big"), errors.FieldViolation("name", "is required")]
    )

    code, status = status_of(error)

    assert code is grpc.StatusCode.INVALID_ARGUMENT
    assert details_of_status(status).field_violations == {"page_size": "too big", "name": "is required"}
    assert status.message == "invalid request: page_size: too big; name: is required"


@pytest.mark.parametrize(
    ("error", "code", "reason", "retry"),
    [
        (
            kube_errors.Unreachable("dial tcp 10.0.0.1: connection refused"),
            grpc.StatusCode.UNAVAILABLE,
            "BACKEND_UNAVAILABLE",
            1.0,
        ),
        (
            kube_errors.TooManyRequests("storage is (re)initializing", status=429, retry_after_seconds=3),
            grpc.StatusCode.UNAVAILABLE,
            "BACKEND_OVERLOADED",
            3.0,
        ),
        (
            kube_errors.Forbidden('User "x" cannot list resource', status=403),
            grpc.StatusCode.INTERNAL,
            "BACKEND_FORBIDDEN",
            None,
        ),
        (
            kube_errors.Conflict("the object has been modified", status=409),
            grpc.StatusCode.ABORTED,
            "OBJECT_CHANGED",
            None,
        ),
        (kube_errors.NotFound('wukongs "x" not found', status=404), grpc.StatusCode.NOT_FOUND, "OBJECT_GONE", None),
        (
            kube_errors.Invalid("spec.cpu: Invalid value", status=422),
            grpc.StatusCode.INVALID_ARGUMENT,
            "REJECTED_BY_KUBERNETES",
            None,
        ),
        (
            kube_errors.Gone("too old resource version", status=410),
            grpc.StatusCode.UNAVAILABLE,
            "BACKEND_UNAVAILABLE",
            1.0,
        ),
        (RuntimeError("KeyError in a servicer"), grpc.StatusCode.INTERNAL, "INTERNAL", None),
        (errors.Unavailable("later", retry_after_seconds=2.5), grpc.StatusCode.UNAVAILABLE, "BACKEND_UNAVAILABLE", 2.5),
    ],
)
def test_lower_layer_errors_get_their_code_and_our_own_words(
    error: BaseException, code: grpc.StatusCode, reason: str, retry: float | None
) -> None:
    mapped_code, status = status_of(error)

    details = details_of_status(status)
    assert (mapped_code, details.reason, details.retry_seconds) == (code, reason, retry)
    if not isinstance(error, errors.NovaError):
        assert str(error) not in status.message  # kube-apiserver's (or a bug's) text never reaches clients
        assert "reference " in status.message


def test_every_reason_is_upper_snake_and_short() -> None:
    for reason in errors.Reason:
        assert reason.value.isupper()
        assert len(reason.value) <= 63
