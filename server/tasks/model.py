"""A Task as the API sees it: a read-only view of the `Task` object's JSON (deploy/crds/tasks.api.novasphere.dev.yaml),
with the vocabulary its spec and status use."""

from __future__ import annotations

import datetime
import enum
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from server import timestamps

Raw = Mapping[str, Any]
WukongKey = tuple[str, str]

LABEL_PREFIX = "api.novasphere.dev/"
TENANT_LABEL = LABEL_PREFIX + "tenant"
NAMESPACE_LABEL = LABEL_PREFIX + "namespace"
WUKONG_LABEL = LABEL_PREFIX + "wukong"
OPERATION_LABEL = LABEL_PREFIX + "operation"
PARENT_LABEL = LABEL_PREFIX + "parent"
TRACEPARENT_ANNOTATION = LABEL_PREFIX + "traceparent"
"""The W3C `traceparent` of the request that accepted the task (when traced): the span of the task's work, recorded
when it ends, is that request's child."""
ORIGIN_REQUEST_ANNOTATION = LABEL_PREFIX + "origin-request-id"
"""The id of the request that created the task (`logs.request_id`), to find it in the access logs."""


class Operation(enum.StrEnum):
    START = "Start"
    STOP = "Stop"
    RESTART = "Restart"
    PAUSE = "Pause"
    RESUME = "Resume"
    DELETE = "Delete"
    BATCH = "Batch"


class State(enum.StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELLED = "Cancelled"


OPEN = frozenset({State.PENDING, State.RUNNING})


class Delivery(enum.StrEnum):
    """Where the task's action stands: recorded before it is sent and after, so it is sent once."""

    NONE = ""
    SENDING = "Sending"
    SENT = "Sent"


@dataclass(frozen=True)
class BatchTarget:
    namespace: str
    name: str
    uid: str
    child: str


class Task:
    """An immutable snapshot of one Task object."""

    __slots__ = ("__dict__", "raw")

    def __init__(self, raw: Raw) -> None:
        self.raw = raw

    @cached_property
    def _spec(self) -> Raw:
        return self.raw.get("spec") or {}

    @cached_property
    def _status(self) -> Raw:
        return self.raw.get("status") or {}

    @property
    def id(self) -> str:
        return str(self.raw["metadata"]["name"])

    @property
    def home(self) -> str:
        """The namespace the Task object lives in (the API's own)."""
        return str(self.raw["metadata"]["namespace"])

    @property
    def resource_version(self) -> str:
        return str(self.raw["metadata"].get("resourceVersion") or "")

    @cached_property
    def created(self) -> datetime.datetime | None:
        """When the operation was accepted (to the microsecond, so tasks of one second keep their order)."""
        return timestamps.parse(self._spec.get("acceptedTime")) or timestamps.parse(
            self.raw["metadata"].get("creationTimestamp")
        )

    @property
    def tenant(self) -> str:
        return str((self._spec.get("requestedBy") or {}).get("tenant") or "")

    @property
    def user(self) -> str:
        return str((self._spec.get("requestedBy") or {}).get("user") or "")

    @property
    def operation(self) -> Operation:
        return Operation(self._spec["operation"])

    @property
    def namespace(self) -> str:
        return str((self._spec.get("target") or {}).get("namespace") or "")

    @property
    def name(self) -> str:
        return str((self._spec.get("target") or {}).get("name") or "")

    @property
    def uid(self) -> str:
        return str((self._spec.get("target") or {}).get("uid") or "")

    @property
    def wukong_key(self) -> WukongKey:
        return (self.namespace, self.name)

    @property
    def request_id(self) -> str:
        return str(self._spec.get("requestId") or "")

    @property
    def traceparent(self) -> str:
        return str((self.raw["metadata"].get("annotations") or {}).get(TRACEPARENT_ANNOTATION) or "")

    @property
    def origin_request_id(self) -> str:
        return str((self.raw["metadata"].get("annotations") or {}).get(ORIGIN_REQUEST_ANNOTATION) or "")

    @property
    def request_digest(self) -> str:
        return str(self._spec.get("requestDigest") or "")

    @property
    def force(self) -> bool:
        return bool(self._spec.get("force") or (self._spec.get("batch") or {}).get("force"))

    @property
    def delete_disks(self) -> bool:
        return bool(self._spec.get("deleteDisks") or (self._spec.get("batch") or {}).get("deleteDisks"))

    @property
    def disks(self) -> tuple[str, ...]:
        return tuple(self._spec.get("disks") or ())

    @property
    def timeout_seconds(self) -> int:
        return int(self._spec.get("timeoutSeconds") or 0)

    @property
    def parent(self) -> str:
        return str(self._spec.get("parent") or "")

    @property
    def batch_operation(self) -> Operation | None:
        operation = (self._spec.get("batch") or {}).get("operation")
        return Operation(operation) if operation else None

    @cached_property
    def batch_targets(self) -> tuple[BatchTarget, ...]:
        return tuple(
            BatchTarget(str(t.get("namespace", "")), str(t.get("name", "")), str(t.get("uid", "")), str(t["child"]))
            for t in (self._spec.get("batch") or {}).get("targets") or ()
        )

    @property
    def state(self) -> State:
        return State(self._status.get("state") or State.PENDING)

    @property
    def open(self) -> bool:
        return self.state in OPEN

    @property
    def progress(self) -> int:
        return int(self._status.get("progress") or 0)

    @property
    def step(self) -> str:
        return str(self._status.get("step") or "")

    @property
    def message(self) -> str:
        return str(self._status.get("message") or "")

    @property
    def reason(self) -> str:
        return str(self._status.get("reason") or "")

    @property
    def start_time(self) -> datetime.datetime | None:
        return timestamps.parse(self._status.get("startTime"))

    @property
    def completion_time(self) -> datetime.datetime | None:
        return timestamps.parse(self._status.get("completionTime"))

    @property
    def delivery(self) -> Delivery:
        return Delivery((self._status.get("action") or {}).get("phase") or "")

    @property
    def sending_time(self) -> datetime.datetime | None:
        return timestamps.parse((self._status.get("action") or {}).get("sendingTime"))

    @property
    def sent_time(self) -> datetime.datetime | None:
        return timestamps.parse((self._status.get("action") or {}).get("sentTime"))

    @property
    def instance_uid(self) -> str:
        """A restart: the VirtualMachineInstance that was running when the action was sent."""
        return str((self._status.get("action") or {}).get("instanceUid") or "")

    @property
    def summary(self) -> Mapping[str, int]:
        return dict(self._status.get("summary") or {})

    @property
    def result(self) -> str:
        return self.step if self.state is State.SUCCEEDED else ""


def newest_first(task: Task) -> tuple[float, str]:
    """A sort key: newest first, then by ID."""
    created = task.created
    return (-(created.timestamp() if created else 0.0), task.id)
