"""Domain errors: what went wrong, in terms a client can act on. No gRPC here; `transport/errors.py` maps each class
to a status code in one table.

    NovaError
    ├── NotFound
    │   └── WukongNotFound
    ├── InvalidArgument          (carries field violations)
    └── Unavailable              (retrying later may help)

Each error has a stable `reason` (AIP-193 `ErrorInfo.reason`, domain `novasphere.dev`) and one message that says
what to fix; lower-layer text (kube-apiserver's own wording) never leaks into it.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

DOMAIN = "novasphere.dev"


class Reason(enum.StrEnum):
    """Every `ErrorInfo.reason` the API sends. UPPER_SNAKE, at most 63 characters, never reused for another cause."""

    WUKONG_NOT_FOUND = "WUKONG_NOT_FOUND"
    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    BACKEND_UNAVAILABLE = "BACKEND_UNAVAILABLE"
    BACKEND_OVERLOADED = "BACKEND_OVERLOADED"
    BACKEND_FORBIDDEN = "BACKEND_FORBIDDEN"
    INTERNAL = "INTERNAL"


@dataclass(frozen=True)
class FieldViolation:
    """One bad request field: its path as in the proto (`page_size`, `spec.disks[0].size`) and what is wrong."""

    field: str
    description: str


class NovaError(Exception):
    """Base of every error the API reports on purpose."""

    reason: Reason = Reason.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(NovaError):
    """The resource does not exist, or the caller may not know that it exists."""

    resource_type: str = ""

    def __init__(self, message: str, *, resource_name: str) -> None:
        super().__init__(message)
        self.resource_name = resource_name


class WukongNotFound(NotFound):
    reason = Reason.WUKONG_NOT_FOUND
    resource_type = "novasphere.dev/Wukong"

    def __init__(self, *, namespace: str, name: str) -> None:
        super().__init__(
            f"Wukong '{name}' not found in namespace '{namespace}'; check the name and the namespace "
            "(ListWukongs shows the Wukongs you can see)",
            resource_name=f"namespaces/{namespace}/wukongs/{name}",
        )


class InvalidArgument(NovaError):
    """The request is malformed; nothing was changed."""

    reason = Reason.INVALID_ARGUMENT

    def __init__(self, violations: Sequence[FieldViolation]) -> None:
        if not violations:
            raise ValueError("InvalidArgument needs at least one field violation")
        text = "; ".join(f"{v.field}: {v.description}" for v in violations)
        super().__init__(f"invalid request: {text}")
        self.violations = tuple(violations)

    @classmethod
    def field(cls, field: str, description: str) -> InvalidArgument:
        return cls([FieldViolation(field, description)])


class Unavailable(NovaError):
    """A dependency (kube-apiserver) cannot serve now; the same request may succeed later."""

    reason = Reason.BACKEND_UNAVAILABLE

    def __init__(self, message: str, *, retry_after_seconds: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds
