"""Domain errors: what went wrong, in terms a client can act on. No gRPC here; `transport/errors.py` maps each class
to a status code in one table.

    NovaError
    ├── NotFound
    │   ├── WukongNotFound
    │   ├── NamespaceNotFound
    │   ├── TaskNotFound
    │   ├── ApiKeyNotFound
    │   ├── ConsoleSessionNotFound
    │   ├── LoginSessionNotFound
    │   ├── AccessServiceNotFound
    │   ├── SshKeyNotFound
    │   └── AdminObjectNotFound  (a tenant, user, role or role binding)
    ├── AlreadyExists
    │   ├── AccessServiceAlreadyExists
    │   ├── SshKeyAlreadyExists
    │   └── AdminObjectExists
    ├── PermissionDenied
    ├── Unauthenticated
    ├── RateLimited              (a per-user limit; carries the delay)
    │   └── TooManyAttempts      (login lockout)
    ├── InvalidArgument          (carries field violations)
    ├── Conflict                 (a stale etag: read again, then retry)
    ├── FailedPrecondition       (not valid in the current state: an invalid transition, a task in progress)
    │   └── ConsoleInUse
    ├── ResyncRequired           (a watch cursor older than the replica can vouch for)
    ├── SlowConsumer             (a watch client that did not keep up)
    └── Unavailable              (retrying later may help)
        ├── CursorNotReached
        ├── Starting             (this replica has not loaded its caches yet)
        ├── Stale                (this replica lost kube-apiserver: its caches may be old)
        └── ShuttingDown         (this replica is draining: reconnect, another one answers)

Each error has a stable `reason` (AIP-193 `ErrorInfo.reason`, domain `novasphere.dev`) and one message that says
what to fix; lower-layer text (kube-apiserver's own wording) never leaks into it.
"""

from __future__ import annotations

import datetime
import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

DOMAIN = "novasphere.dev"


class Reason(enum.StrEnum):
    """Every `ErrorInfo.reason` the API sends. UPPER_SNAKE, at most 63 characters, never reused for another cause."""

    WUKONG_NOT_FOUND = "WUKONG_NOT_FOUND"
    NAMESPACE_NOT_FOUND = "NAMESPACE_NOT_FOUND"
    TASK_NOT_FOUND = "TASK_NOT_FOUND"
    API_KEY_NOT_FOUND = "API_KEY_NOT_FOUND"
    TOO_MANY_API_KEYS = "TOO_MANY_API_KEYS"
    ACCESS_SERVICE_NOT_FOUND = "ACCESS_SERVICE_NOT_FOUND"
    ACCESS_SERVICE_ALREADY_EXISTS = "ACCESS_SERVICE_ALREADY_EXISTS"
    SSH_KEY_NOT_FOUND = "SSH_KEY_NOT_FOUND"
    SSH_KEY_ALREADY_EXISTS = "SSH_KEY_ALREADY_EXISTS"
    DEVICE_NOT_FOUND = "DEVICE_NOT_FOUND"
    WEBHOOK_NOT_FOUND = "WEBHOOK_NOT_FOUND"
    WEBHOOK_ALREADY_EXISTS = "WEBHOOK_ALREADY_EXISTS"
    TOO_MANY_DEVICES = "TOO_MANY_DEVICES"
    TOO_MANY_WEBHOOKS = "TOO_MANY_WEBHOOKS"
    VM_NOT_CREATED = "VM_NOT_CREATED"
    INVALID_TRANSITION = "INVALID_TRANSITION"
    TASK_IN_PROGRESS = "TASK_IN_PROGRESS"
    TASK_NOT_CANCELLABLE = "TASK_NOT_CANCELLABLE"
    WUKONG_ALREADY_EXISTS = "WUKONG_ALREADY_EXISTS"
    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    ETAG_MISMATCH = "ETAG_MISMATCH"
    REQUEST_IN_PROGRESS = "REQUEST_IN_PROGRESS"
    RESYNC_REQUIRED = "RESYNC_REQUIRED"
    SLOW_CONSUMER = "SLOW_CONSUMER"
    CURSOR_NOT_REACHED = "CURSOR_NOT_REACHED"
    BACKEND_UNAVAILABLE = "BACKEND_UNAVAILABLE"
    BACKEND_OVERLOADED = "BACKEND_OVERLOADED"
    BACKEND_FORBIDDEN = "BACKEND_FORBIDDEN"
    REPLICA_STARTING = "REPLICA_STARTING"
    REPLICA_STALE = "REPLICA_STALE"
    REPLICA_SHUTTING_DOWN = "REPLICA_SHUTTING_DOWN"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    LOGIN_FAILED = "LOGIN_FAILED"
    REFRESH_TOKEN_REUSED = "REFRESH_TOKEN_REUSED"  # noqa: S105 (a reason, not a secret)
    TOO_MANY_LOGIN_ATTEMPTS = "TOO_MANY_LOGIN_ATTEMPTS"
    RATE_LIMITED = "RATE_LIMITED"
    TENANT_NOT_FOUND = "TENANT_NOT_FOUND"
    USER_NOT_FOUND = "USER_NOT_FOUND"
    ROLE_NOT_FOUND = "ROLE_NOT_FOUND"
    ROLE_BINDING_NOT_FOUND = "ROLE_BINDING_NOT_FOUND"
    TENANT_ALREADY_EXISTS = "TENANT_ALREADY_EXISTS"
    USER_ALREADY_EXISTS = "USER_ALREADY_EXISTS"
    NAMESPACE_NOT_AVAILABLE = "NAMESPACE_NOT_AVAILABLE"
    ROLE_IN_USE = "ROLE_IN_USE"
    SELF_LOCKOUT = "SELF_LOCKOUT"
    AUTHZ_NOT_INSTALLED = "AUTHZ_NOT_INSTALLED"
    VM_NOT_RUNNING = "VM_NOT_RUNNING"
    CONSOLE_IN_USE = "CONSOLE_IN_USE"
    PARTIALLY_APPLIED = "PARTIALLY_APPLIED"
    OBJECT_CHANGED = "OBJECT_CHANGED"
    OBJECT_GONE = "OBJECT_GONE"
    REJECTED_BY_KUBERNETES = "REJECTED_BY_KUBERNETES"
    CONSOLE_SESSION_NOT_FOUND = "CONSOLE_SESSION_NOT_FOUND"
    LOGIN_SESSION_NOT_FOUND = "LOGIN_SESSION_NOT_FOUND"
    INTERNAL = "INTERNAL"
    # Sent by Envoy, not by the API server: its own replies to REST clients (envoy/novasphere_envoy/config.py's
    # LOCAL_REPLIES; a request that reaches the API server never gets these).
    MALFORMED_REQUEST = "MALFORMED_REQUEST"  # a body that is not JSON of the method's request message
    ROUTE_NOT_FOUND = "ROUTE_NOT_FOUND"  # no RPC at this path
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"  # RPCs at this path, none for this HTTP method (see `Allow`)
    REQUEST_TIMEOUT = "REQUEST_TIMEOUT"  # the request's headers did not arrive in time
    REQUEST_TOO_LARGE = "REQUEST_TOO_LARGE"  # a body over Envoy's limit
    HEADERS_TOO_LARGE = "HEADERS_TOO_LARGE"  # headers over Envoy's limit
    API_SERVER_UNAVAILABLE = "API_SERVER_UNAVAILABLE"  # the API server is down, restarting or overloaded: retry
    API_SERVER_TIMEOUT = "API_SERVER_TIMEOUT"  # the API server did not answer within the edge's time limit


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


class NamespaceNotFound(NotFound):
    reason = Reason.NAMESPACE_NOT_FOUND
    resource_type = "Namespace"

    def __init__(self, namespace: str) -> None:
        super().__init__(
            f"namespace '{namespace}' not found among your tenant's namespaces; leave it empty to use all of them "
            "(or, for a single Wukong, the default one)",
            resource_name=f"namespaces/{namespace}",
        )


class TaskNotFound(NotFound):
    reason = Reason.TASK_NOT_FOUND
    resource_type = "novasphere.dev/Task"

    def __init__(self, task_id: str) -> None:
        super().__init__(
            f"task '{task_id}' not found; tasks are kept 7 days (ListTasks shows your tenant's tasks)",
            resource_name=f"tasks/{task_id}",
        )


class ApiKeyNotFound(NotFound):
    reason = Reason.API_KEY_NOT_FOUND
    resource_type = "novasphere.dev/ApiKey"

    def __init__(self, key_id: str) -> None:
        super().__init__(
            f"API key '{key_id[:32]}' not found among yours (ListApiKeys shows them)",
            resource_name=f"apikeys/{key_id[:32]}",
        )


class AdminObjectNotFound(NotFound):
    """A tenant, user, role or role binding that does not exist."""

    _REASONS: ClassVar[dict[str, Reason]] = {
        "tenant": Reason.TENANT_NOT_FOUND,
        "user": Reason.USER_NOT_FOUND,
        "role": Reason.ROLE_NOT_FOUND,
        "role binding": Reason.ROLE_BINDING_NOT_FOUND,
    }

    def __init__(self, kind: str, name: str, *, hint: str) -> None:
        super().__init__(f"{kind} '{name}' not found; {hint}", resource_name=f"{kind.replace(' ', '')}s/{name}")
        self.reason = self._REASONS[kind]
        self.resource_type = f"novasphere.dev/{kind.title().replace(' ', '')}"


class ConsoleSessionNotFound(NotFound):
    reason = Reason.CONSOLE_SESSION_NOT_FOUND
    resource_type = "novasphere.dev/ConsoleSession"

    def __init__(self, what: str) -> None:
        super().__init__(
            f"no console session: {what} (ListConsoleSessions shows the VM's sessions)", resource_name=what[:80]
        )


class LoginSessionNotFound(NotFound):
    reason = Reason.LOGIN_SESSION_NOT_FOUND
    resource_type = "novasphere.dev/LoginSession"

    def __init__(self, session_id: str) -> None:
        super().__init__(
            f"you have no live login session '{session_id[:64]}'; ListSessions shows yours",
            resource_name=session_id[:64],
        )


class AccessServiceNotFound(NotFound):
    reason = Reason.ACCESS_SERVICE_NOT_FOUND
    resource_type = "Service"

    def __init__(self, *, namespace: str, name: str, wukong: str) -> None:
        super().__init__(
            f"Wukong '{wukong}' has no access Service '{name}' in namespace '{namespace}' (ListAccessServices shows "
            "its Services; only NovaSphere's own can be managed here)",
            resource_name=f"namespaces/{namespace}/services/{name}",
        )


class SshKeyNotFound(NotFound):
    reason = Reason.SSH_KEY_NOT_FOUND
    resource_type = "Secret"

    def __init__(self, *, namespace: str, name: str) -> None:
        super().__init__(
            f"namespace '{namespace}' has no SSH key '{name}' (ListSshKeys shows them; only NovaSphere's own can be "
            "managed here)",
            resource_name=f"namespaces/{namespace}/secrets/{name}",
        )


class DeviceNotFound(NotFound):
    reason = Reason.DEVICE_NOT_FOUND
    resource_type = "novasphere.dev/Device"

    def __init__(self, device_id: str) -> None:
        super().__init__(
            f"you have no device '{device_id}' (ListDevices shows yours)", resource_name=f"devices/{device_id}"
        )


class WebhookNotFound(NotFound):
    reason = Reason.WEBHOOK_NOT_FOUND
    resource_type = "novasphere.dev/Webhook"

    def __init__(self, *, tenant: str, webhook_id: str) -> None:
        super().__init__(
            f"tenant '{tenant}' has no webhook '{webhook_id}' (ListWebhooks shows them)",
            resource_name=f"tenants/{tenant}/webhooks/{webhook_id}",
        )


class AlreadyExists(NovaError):
    reason = Reason.WUKONG_ALREADY_EXISTS
    resource_type = "novasphere.dev/Wukong"

    def __init__(self, *, namespace: str, name: str) -> None:
        super().__init__(
            f"a Wukong named '{name}' already exists in namespace '{namespace}'; choose another name (or, to retry "
            "a create safely, send the same request_id)"
        )
        self.resource_name = f"namespaces/{namespace}/wukongs/{name}"


class AccessServiceAlreadyExists(AlreadyExists):
    reason = Reason.ACCESS_SERVICE_ALREADY_EXISTS
    resource_type = "Service"

    def __init__(self, *, namespace: str, name: str) -> None:
        NovaError.__init__(
            self,
            f"a Service named '{name}' already exists in namespace '{namespace}'; choose another service_name (or "
            "leave it empty for a generated one)",
        )
        self.resource_name = f"namespaces/{namespace}/services/{name}"


class SshKeyAlreadyExists(AlreadyExists):
    reason = Reason.SSH_KEY_ALREADY_EXISTS
    resource_type = "Secret"

    def __init__(self, *, namespace: str, name: str) -> None:
        NovaError.__init__(
            self, f"a Secret named '{name}' already exists in namespace '{namespace}'; choose another name"
        )
        self.resource_name = f"namespaces/{namespace}/secrets/{name}"


class WebhookAlreadyExists(AlreadyExists):
    reason = Reason.WEBHOOK_ALREADY_EXISTS
    resource_type = "novasphere.dev/Webhook"

    def __init__(self, *, tenant: str, name: str) -> None:
        NovaError.__init__(self, f"tenant '{tenant}' already has a webhook named '{name}'; choose another name")
        self.resource_name = f"tenants/{tenant}/webhooks/{name}"


class AdminObjectExists(AlreadyExists):
    """A tenant or user that already exists."""

    def __init__(self, kind: str, name: str, *, hint: str) -> None:
        NovaError.__init__(self, f"{kind} '{name}' already exists; {hint}")
        self.reason = {"tenant": Reason.TENANT_ALREADY_EXISTS, "user": Reason.USER_ALREADY_EXISTS}[kind]
        self.resource_type = f"novasphere.dev/{kind.title()}"
        self.resource_name = f"{kind}s/{name}"


class PermissionDenied(NovaError):
    reason = Reason.PERMISSION_DENIED

    def __init__(self, permission: str, *, message: str = "") -> None:
        super().__init__(
            message or f"permission '{permission}' is required; ask your tenant's administrator for a role with it"
        )
        self.permission = permission


class Unauthenticated(NovaError):
    """No valid credentials: none given, or a token or key that is expired, revoked or not ours. The message is
    the same whatever the cause, so it tells an attacker nothing; the cause goes to the log."""

    def __init__(self, message: str = "", *, reason: Reason = Reason.UNAUTHENTICATED) -> None:
        super().__init__(
            message
            or "authentication required: send a valid access token (authorization: Bearer …) or API key "
            "(X-API-Key); log in again if yours expired"
        )
        self.reason = reason


class RateLimited(NovaError):
    """The caller went over a per-user limit; the same request may succeed after the delay."""

    reason = Reason.RATE_LIMITED

    def __init__(self, message: str, *, retry_after_seconds: float) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class TooManyAttempts(RateLimited):
    """Too many failed logins for this username; try again after the delay."""

    reason = Reason.TOO_MANY_LOGIN_ATTEMPTS

    def __init__(self, *, retry_after_seconds: float) -> None:
        super().__init__(
            f"too many failed logins: try again in {max(1, round(retry_after_seconds))} s",
            retry_after_seconds=retry_after_seconds,
        )


class Conflict(NovaError):
    """The object changed since the client read it; nothing was changed."""

    reason = Reason.ETAG_MISMATCH

    def __init__(self, *, name: str, etag: str, current: str) -> None:
        super().__init__(
            f"Wukong '{name}' changed since you read it (your etag {etag}, now {current}); get it again, reapply "
            "your change and retry with the new etag"
        )


class RequestInProgress(NovaError):
    """A call with this request_id is running now (on this replica or another); its replay must wait for it."""

    reason = Reason.REQUEST_IN_PROGRESS

    def __init__(self, *, retry_after_seconds: float) -> None:
        super().__init__(
            "a call with this request_id is still running; retry it shortly with the same request_id to get its answer"
        )
        self.retry_after_seconds = retry_after_seconds


class FailedPrecondition(NovaError):
    """The request is valid but not in the current state; nothing was changed."""

    def __init__(self, message: str, *, reason: Reason) -> None:
        super().__init__(message)
        self.reason = reason


class ConsoleInUse(FailedPrecondition):
    """KubeVirt keeps one VNC and one serial connection per VM: someone else holds this one."""

    def __init__(self, *, protocol: str, name: str, user: str, since: datetime.datetime, connected: bool) -> None:
        state = "connected" if connected else "opening it"
        super().__init__(
            f"the {protocol} console of Wukong '{name}' is in use by {user} ({state} since "
            f"{since.strftime('%Y-%m-%d %H:%M:%S')} UTC); set take_over to take it (their console closes, naming you)",
            reason=Reason.CONSOLE_IN_USE,
        )


class ResyncRequired(NovaError):
    reason = Reason.RESYNC_REQUIRED

    def __init__(self, *, cursor: int, oldest: int) -> None:
        super().__init__(
            f"cannot resume from cursor {cursor}: this replica can only resume from {oldest} or later; list again "
            "(or watch without a cursor) to get the current state, then resume from its cursor"
        )


class SlowConsumer(NovaError):
    reason = Reason.SLOW_CONSUMER

    def __init__(self, *, buffered: int) -> None:
        super().__init__(
            f"the watch was dropped: {buffered} events were waiting for this client to read them; resume from the "
            "last cursor received, and read the stream faster"
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


class CursorNotReached(Unavailable):
    reason = Reason.CURSOR_NOT_REACHED

    def __init__(self, *, cursor: int, seen: int, waited: float) -> None:
        super().__init__(
            f"this replica has seen the cluster up to cursor {seen}, not yet {cursor}, after waiting {waited:g} s; "
            "retry shortly"
        )


class Starting(Unavailable):
    """This replica listens (its health service must answer) but has not loaded its caches yet: without its
    sessions it would call a valid token unknown, without its Wukongs a valid cursor too new."""

    reason = Reason.REPLICA_STARTING

    def __init__(self) -> None:
        super().__init__(
            "this API server is starting and has not loaded what it serves yet; retry shortly (another replica may "
            "answer), resuming watches from their cursor",
            retry_after_seconds=1.0,
        )


class Stale(Unavailable):
    """This replica has been cut off from kube-apiserver for longer than it may serve from its caches."""

    reason = Reason.REPLICA_STALE

    def __init__(self, *, seconds: float) -> None:
        super().__init__(
            f"this API server has not reached Kubernetes for {seconds:.0f} s, so what it knows may be out of date; "
            "retry shortly (another replica may answer), resuming watches from their cursor",
            retry_after_seconds=2.0,
        )


class ShuttingDown(Unavailable):
    """This replica is draining before it exits."""

    reason = Reason.REPLICA_SHUTTING_DOWN

    def __init__(self) -> None:
        super().__init__(
            "this API server is shutting down; reconnect (another replica answers), resuming watches from their cursor",
            retry_after_seconds=0.5,
        )
