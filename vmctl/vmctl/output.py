"""Printing what the API returned: `-o table|wide|json|yaml|name|custom-columns=HEADER:.path,...`.

`json` and `yaml` are the API's canonical JSON (camelCase, as REST clients see it); several objects print as a
`List` with `items`, which `vmctl create -f` reads back. Tables are plain text in kubectl's style, so they are cheap
to print and easy to grep."""

from __future__ import annotations

import datetime
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message

from vmctl.errors import USAGE, VmctlError

FORMATS = ("table", "wide", "json", "yaml", "name")
Column = tuple[str, Callable[[Any], str]]


def check_format(output: str) -> str:
    if output in FORMATS or output.startswith("custom-columns="):
        return output
    raise VmctlError(f"unknown output format '{output}': use one of {', '.join(FORMATS)} or custom-columns=…", USAGE)


def as_dict(message: Message) -> dict[str, Any]:
    return json_format.MessageToDict(message)


def document(messages: Sequence[Message], *, single: bool) -> Any:
    if single and len(messages) == 1:
        return as_dict(messages[0])
    return {"kind": "List", "items": [as_dict(m) for m in messages]}


def emit(
    messages: Sequence[Message],
    output: str,
    *,
    columns: Sequence[Column],
    wide: Sequence[Column] = (),
    kind: str,
    single: bool = False,
    name: Callable[[Any], str] = lambda m: str(getattr(m, "name", "")),
) -> None:
    """Prints `messages` in `output`; `single`: one object asked for by name prints as itself, not in a List."""
    if output == "json":
        print(json.dumps(document(messages, single=single), indent=2))
    elif output == "yaml":
        import yaml

        print(yaml.safe_dump(document(messages, single=single), sort_keys=False), end="")
    elif output == "name":
        for message in messages:
            print(f"{kind}/{name(message)}")
    elif output.startswith("custom-columns="):
        table(_custom(output.removeprefix("custom-columns=")), [as_dict(m) for m in messages])
    else:
        table([*columns, *wide] if output == "wide" else list(columns), list(messages))


def table(columns: Sequence[Column], rows: Sequence[Any], *, header: bool = True) -> None:
    cells = [[title for title, _ in columns]] if header else []
    cells += [[value(row) or "" for _, value in columns] for row in rows]
    if not cells:
        return
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    for line in cells:
        print("   ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())


def _custom(spec: str) -> list[Column]:
    columns: list[Column] = []
    for part in filter(None, spec.split(",")):
        title, _, path = part.partition(":")
        if not path.startswith("."):
            raise VmctlError(f"custom-columns: '{part}' is not HEADER:.path (e.g. NAME:.name,CPU:.spec.cpu)", USAGE)
        columns.append((title, _digger(path.strip(".").split("."))))
    if not columns:
        raise VmctlError("custom-columns: give at least one HEADER:.path", USAGE)
    return columns


def _digger(keys: Sequence[str]) -> Callable[[Any], str]:
    return lambda row: _dig(row, keys)


def _dig(value: Any, keys: Sequence[str]) -> str:
    for key in keys:
        if not isinstance(value, dict) or key not in value:
            return "<none>"
        value = value[key]
    return json.dumps(value) if isinstance(value, (dict, list)) else str(value)


def age(timestamp: Any) -> str:
    """A Timestamp as kubectl shows ages: 45s, 12m, 3h, 5d."""
    if not timestamp.seconds:
        return "<unknown>"
    seconds = max(int(datetime.datetime.now(datetime.UTC).timestamp()) - timestamp.seconds, 0)
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 172800:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def warn(message: str) -> None:
    print(message, file=sys.stderr)
