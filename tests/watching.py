"""Following WatchWukong from tests: over native gRPC and over REST (Server-Sent Events through Envoy), each read in a
thread of its own, so a test can act and then wait for the event its action causes."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
from google.protobuf import json_format

from devcluster.stack import Edge
from novasphere.v1 import wukong_pb2, wukong_service_pb2
from novasphere.v1.wukong_service_pb2_grpc import WukongServiceStub

Event = wukong_pb2.WukongEvent
Type = wukong_pb2.WukongEvent.Type
PowerState = wukong_pb2.WukongStatus.PowerState


class Collector:
    """Events of one stream, appended as they arrive; `ended` holds how it ended (an exception or "eof")."""

    def __init__(self, events: Iterator[Event], cancel: Callable[[], None]) -> None:
        self.events: list[Event] = []
        self.ended: BaseException | str | None = None
        self._cancel = cancel
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(events,), daemon=True)
        self._thread.start()

    def _read(self, events: Iterator[Event]) -> None:
        try:
            for event in events:
                with self._changed:
                    self.events.append(event)
                    self._changed.notify_all()
            ended: BaseException | str = "eof"
        except Exception as error:  # noqa: BLE001 - recorded for the test to assert on
            ended = error
        with self._changed:
            self.ended = ended
            self._changed.notify_all()

    def wait_for(
        self, predicate: Callable[[Event], bool], *, timeout: float = 60.0, what: str, start: int = 0
    ) -> Event:
        """The first event from index `start` on that satisfies `predicate`."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for event in self.events[start:]:
                    if predicate(event):
                        return event
                if self.ended is not None:
                    raise AssertionError(f"the stream ended ({self.ended!r}) before {what}; got {self.summary()}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"timed out waiting for {what}; got {self.summary()}")
                self._changed.wait(remaining)

    def wait_ended(self, timeout: float = 30.0) -> BaseException | str:
        self._thread.join(timeout)
        assert self.ended is not None, "the stream did not end"
        return self.ended

    def summary(self) -> list[str]:
        return [
            f"{Type.Name(e.type)}:{e.wukong.name}:{PowerState.Name(e.wukong.status.power_state)}" for e in self.events
        ][-20:]

    def close(self) -> None:
        self._cancel()
        self._thread.join(10)


def grpc_watch(stub: WukongServiceStub, request: wukong_service_pb2.WatchWukongRequest) -> Collector:
    call = stub.WatchWukong(request, timeout=300)

    def cancel() -> None:
        call.cancel()

    return Collector(call, cancel)


def sse_watch(edge: Edge, path: str, params: dict[str, str]) -> Collector:
    """`GET path` at Envoy's listener as Server-Sent Events: every `data:` line holds one WukongEvent as proto3 JSON."""
    client = edge.http_client(timeout=httpx.Timeout(10.0, read=300.0))
    request = client.build_request("GET", path, params=params, headers={"accept": "text/event-stream"})
    response = client.send(request, stream=True)
    assert response.status_code == 200, response.read()
    assert response.headers["content-type"].startswith("text/event-stream")

    def events() -> Iterator[Event]:
        for line in response.iter_lines():
            if line.startswith("data:"):
                yield json_format.ParseDict(json.loads(line[5:]), Event())

    def cancel() -> None:
        response.close()
        client.close()

    return Collector(events(), cancel)


def is_event(kind: int, name: str = "", state: int | None = None) -> Callable[[Event], bool]:
    def predicate(event: Event) -> bool:
        return (
            event.type == kind
            and (not name or event.wukong.name == name)
            and (state is None or event.wukong.status.power_state == state)
        )

    return predicate


def rest_json(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert isinstance(body, dict)
    return body
