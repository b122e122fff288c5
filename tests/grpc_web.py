"""A minimal gRPC-Web client (binary `application/grpc-web+proto`), as a browser library would speak it."""

from __future__ import annotations

import base64
import struct
from dataclasses import dataclass

import httpx
from google.protobuf.message import Message
from google.rpc import status_pb2

DATA_FRAME = 0x00
TRAILER_FRAME = 0x80


@dataclass
class GrpcWebResponse:
    http_status: int
    messages: list[bytes]
    trailers: dict[str, str]
    headers: httpx.Headers

    @property
    def grpc_status(self) -> int:
        return int(self.trailers["grpc-status"])

    def status(self) -> status_pb2.Status:
        return status_pb2.Status.FromString(base64.b64decode(self.trailers["grpc-status-details-bin"] + "=="))


def call(client: httpx.Client, base_url: str, method: str, request: Message) -> GrpcWebResponse:
    payload = request.SerializeToString()
    response = client.post(
        f"{base_url}/{method.lstrip('/')}",
        content=struct.pack(">BI", DATA_FRAME, len(payload)) + payload,
        headers={"content-type": "application/grpc-web+proto", "x-grpc-web": "1", "x-user-agent": "grpc-web-test"},
    )
    assert response.headers["content-type"].startswith("application/grpc-web"), response.headers
    messages: list[bytes] = []
    # A trailers-only response (an error before any message) carries the status in the HTTP headers.
    trailers = {key: value for key, value in response.headers.items() if key.startswith("grpc-")}
    body = response.content
    while body:
        flag, length = struct.unpack(">BI", body[:5])
        frame, body = body[5 : 5 + length], body[5 + length :]
        if flag & TRAILER_FRAME:
            for line in frame.decode().split("\r\n"):
                if line:
                    key, _, value = line.partition(":")
                    trailers[key.strip().lower()] = value.strip()
        else:
            messages.append(frame)
    return GrpcWebResponse(
        http_status=response.status_code, messages=messages, trailers=trailers, headers=response.headers
    )
