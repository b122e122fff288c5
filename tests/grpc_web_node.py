"""gRPC-Web through an independent client: @connectrpc/connect's gRPC-Web transport under Node
(tests/browser/grpcweb.mjs), with message types read at run time from the descriptor set in gen/descriptor. Unlike
tests/grpc_web.py, nothing here frames or decodes gRPC-Web by hand, so a test through it checks the wire format
against someone else's reading of the protocol.

Needs `node` on PATH and tests/browser/node_modules (`npm ci --prefix tests/browser`, which `make test` runs)."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf.message import Message

from devcluster.stack import Edge

REPO_ROOT = Path(__file__).resolve().parent.parent
SCRIPT = REPO_ROOT / "tests" / "browser" / "grpcweb.mjs"
DESCRIPTOR_SET = REPO_ROOT / "gen" / "descriptor" / "novasphere.binpb"
DEFAULT_SERVICE = "novasphere.v1.WukongService"
# The RPC's deadline (grpc-timeout) is this much shorter than the process timeout, so the client reports
# DEADLINE_EXCEEDED itself before the process is killed.
DEADLINE_MARGIN_S = 2.0

M = TypeVar("M", bound=Message)


class NodeGrpcWebError(RuntimeError):
    """The client could not report a status: a usage error, or it died."""


@dataclass(frozen=True)
class NodeGrpcWebResult:
    """What the client saw: each response message as proto3 JSON, then the final status (code 0 is OK) with its
    details, each as {"type": full message name, "value": proto3 JSON}."""

    messages: list[dict[str, Any]]
    code: int
    message: str
    details: list[dict[str, Any]]
    code_name: str = ""

    def parsed(self, cls: type[M]) -> list[M]:
        """The messages as `cls` instances; a field `cls` does not know is an error."""
        return [json_format.ParseDict(message, cls(), ignore_unknown_fields=False) for message in self.messages]


def call(
    edge: Edge,
    method: str,
    request: Message,
    *,
    service: str = DEFAULT_SERVICE,
    max_messages: int | None = None,
    timeout_s: float = 15.0,
    headers: dict[str, str] | None = None,
) -> NodeGrpcWebResult:
    """Calls `service`/`method` at Envoy's listener over gRPC-Web (HTTP/1.1; over TLS, the edge CA trusted). A server
    stream is read until it ends or, with `max_messages`, until that many messages came (then the client cancels it
    and reports code 0)."""
    command: dict[str, Any] = {
        "baseUrl": edge.url,
        "service": service,
        "method": method,
        "request": json_format.MessageToDict(request),
        "timeoutMs": max(int((timeout_s - DEADLINE_MARGIN_S) * 1000), int(timeout_s * 500), 1),
    }
    if headers is not None:
        command["headers"] = headers
    if max_messages is not None:
        command["maxMessages"] = max_messages
    completed = subprocess.run(
        ["node", str(SCRIPT), str(DESCRIPTOR_SET)],
        input=json.dumps(command),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
        cwd=REPO_ROOT,
        env={**os.environ, "NODE_EXTRA_CA_CERTS": str(edge.ca_cert or "")},
    )
    if completed.returncode != 0:
        raise NodeGrpcWebError(f"grpcweb.mjs exited {completed.returncode}: {completed.stderr.strip()}")

    messages: list[dict[str, Any]] = []
    end: dict[str, Any] | None = None
    for line in completed.stdout.splitlines():
        if not line.strip():
            continue
        parsed = json.loads(line)
        if end is not None:
            raise NodeGrpcWebError(f"grpcweb.mjs wrote after its end line: {line!r}")
        if "message" in parsed:
            messages.append(parsed["message"])
        elif "end" in parsed:
            end = parsed["end"]
        else:
            raise NodeGrpcWebError(f"grpcweb.mjs wrote an unexpected line: {line!r}")
    if end is None:
        raise NodeGrpcWebError(f"grpcweb.mjs wrote no end line; stderr: {completed.stderr.strip()}")
    return NodeGrpcWebResult(
        messages=messages,
        code=int(end["code"]),
        message=str(end["message"]),
        details=list(end["details"]),
        code_name=str(end.get("codeName", "")),
    )
