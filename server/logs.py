"""How the API server writes its log: one JSON object per line (the default, for log pipelines) or the classic text
line (`NOVASPHERE_LOG_FORMAT=text`, for people reading a terminal).

A JSON line always has `time`, `level`, `logger`, `event` and `message`; `request_id` when it was written while
serving a request; then the fields of its event. Events are named for what happened (`access`, `task.state`,
`console.connected`, `auth.login`, ...) so a pipeline can select them without parsing messages; plain log calls are
the event `log`. Nothing here knows gRPC or the domain, so any module can write events and read the request id.
"""

from __future__ import annotations

import contextvars
import datetime
import json
import logging
import re
import sys
import uuid
from collections.abc import Mapping
from typing import Any, TextIO

FORMATS = ("json", "text")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
"""The id of the request being served (Envoy's `x-request-id`, or one made up by the API for a call that came
without a well-formed one): in every log line written while serving it, in its error responses and on the Task it
creates."""

# What a request id may look like: Envoy's UUIDs, and the ids of proxies and clients in front of it (1-64 of these
# characters), never anything that could forge a log field or carry a credential-sized payload.
REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,64}")

_BASE_KEYS = ("time", "level", "logger", "event", "message")


def well_formed_request_id(value: str | None) -> str:
    """`value` when it is a well-formed request id, else a new one."""
    return value if value and REQUEST_ID_PATTERN.fullmatch(value) else str(uuid.uuid4())


def event(logger: logging.Logger, name: str, message: str, /, *, level: int = logging.INFO, **fields: Any) -> None:
    """Writes the event `name` with its fields. `message` is the line people read (and what the text format prints);
    it is not %-formatted. Never pass a credential as a field."""
    logger.log(level, "%s", message, extra={"event": name, "fields": fields})


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (newlines inside values are escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "event": getattr(record, "event", "log"),
            "message": record.getMessage(),
        }
        current = request_id.get()
        if current:
            line["request_id"] = current
        fields: Mapping[str, Any] = getattr(record, "fields", {})
        line.update((key, value) for key, value in fields.items() if key not in _BASE_KEYS)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def configure(*, log_format: str, level: str, stream: TextIO = sys.stderr) -> None:
    """Sends every log record to `stream` in `log_format` (one of FORMATS) from `level` up."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level, handlers=[handler], force=True)
