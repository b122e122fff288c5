"""Errors of the Kubernetes API, as our own classes. Only this module looks at `ApiException`.

    KubeError
    ├── NotFound           404
    ├── Conflict           409
    ├── Gone               410 (an expired resourceVersion or continue token)
    ├── Invalid            400, 422 (the request was malformed)
    ├── Forbidden          401, 403 (our service account lacks an RBAC verb: a deployment bug)
    ├── TooManyRequests    429
    └── Unreachable        5xx, connection and TLS failures, timeouts
        └── Malformed      an answer that is not a JSON object (an aggregated API answering badly)

Messages keep at most `MAX_DETAIL` characters of kube-apiserver's text for the logs; the domain writes its own
message for clients.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator

import urllib3.exceptions
from kubernetes.client.exceptions import ApiException

# Kubernetes Status messages can embed whole objects; a log line needs only the start.
MAX_DETAIL = 256


class KubeError(Exception):
    """A failed call to kube-apiserver."""

    def __init__(self, detail: str, *, status: int = 0, retry_after_seconds: float | None = None) -> None:
        super().__init__(detail[:MAX_DETAIL])
        self.detail = detail[:MAX_DETAIL]
        self.status = status
        self.retry_after_seconds = retry_after_seconds


class NotFound(KubeError):
    pass


class Conflict(KubeError):
    pass


class Gone(KubeError):
    pass


class Invalid(KubeError):
    pass


class Forbidden(KubeError):
    pass


class TooManyRequests(KubeError):
    pass


class Unreachable(KubeError):
    pass


class Malformed(Unreachable):
    pass


_BY_STATUS: dict[int, type[KubeError]] = {
    400: Invalid,
    401: Forbidden,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    410: Gone,
    422: Invalid,
    429: TooManyRequests,
}


@contextlib.contextmanager
def translated() -> Iterator[None]:
    """Turns the client's exceptions into `KubeError`s, chained to the original."""
    try:
        yield
    except ApiException as error:
        status = int(error.status or 0)
        cls = _BY_STATUS.get(status, Unreachable if status == 0 or status >= 500 else Invalid)
        retry_after = _retry_after(error)
        raise cls(_status_message(error), status=status, retry_after_seconds=retry_after) from error
    except (urllib3.exceptions.HTTPError, OSError) as error:
        raise Unreachable(f"kube-apiserver unreachable: {error}") from error


def _status_message(error: ApiException) -> str:
    """The `message` of a Kubernetes Status body, else the HTTP reason."""
    with contextlib.suppress(TypeError, ValueError, AttributeError):
        body = json.loads(error.body or "")
        if isinstance(body, dict) and body.get("kind") == "Status":
            return str(body.get("message", ""))
    return f"{error.status} {error.reason}"


def _retry_after(error: ApiException) -> float | None:
    headers = error.headers or {}
    with contextlib.suppress(TypeError, ValueError):
        return float(headers.get("Retry-After", ""))
    return None
