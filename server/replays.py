"""Replays of mutating calls sent with a `request_id`: the same call sent again (a mobile app's offline queue replayed
after reconnecting, a retry after a timeout, on any replica) returns the first call's answer and changes nothing.

Each call is recorded in a `RequestRecord` (server/kube/request_records.py) named after the caller and the key:
1. the record is created `Pending` before the call runs: a replay that arrives meanwhile is told to retry shortly
   (ABORTED, REQUEST_IN_PROGRESS), never run a second time;
2. the call runs; if it fails, the record is deleted, so the replay runs it again (a failure changed nothing);
3. the record becomes `Done` with the response (secrets cleared by the caller of `once`), which every replay returns.
A call runs to its end even when its client goes away meanwhile.
A replica that dies between 1 and 3 leaves a `Pending` record; once it is older than a call can take
(`pending_seconds`), the next replay takes it over and runs the call again.

The same key with a different request (another method, other fields) is refused. VM operations keep their own record
(their Task); this covers the other mutating calls.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from server import errors, names, timestamps
from server.auth import Caller
from server.kube import errors as kube_errors
from server.kube import request_records
from server.kube.client import JsonObject, KubeClient

log = logging.getLogger(__name__)

T = TypeVar("T")
PENDING, DONE = "Pending", "Done"
CLAIM_ATTEMPTS = 3


@dataclass(frozen=True)
class ReplaySettings:
    namespace: str
    """The API's namespace, where records live."""
    ttl_seconds: float
    """How long a replay finds the first answer (NOVASPHERE_REQUEST_RECORD_TTL_SECONDS)."""
    pending_seconds: float
    """After this long a `Pending` record is taken to belong to a replica that died."""


@dataclass(frozen=True)
class _Claimed:
    resource_version: str


@dataclass(frozen=True)
class _Answered:
    response: bytes


class Replays:
    def __init__(self, kube: KubeClient, settings: ReplaySettings) -> None:
        self._kube = kube
        self._settings = settings
        self._running: set[asyncio.Future[Any]] = set()

    async def once(
        self,
        caller: Caller,
        *,
        request_id: str,
        method: str,
        digest: str,
        run: Callable[[], Awaitable[tuple[T, bytes]]],
        answer: Callable[[bytes], T],
    ) -> T:
        """`run()`'s result the first time (it returns the result and the bytes to record), `answer(recorded bytes)`
        for every replay of the same `request_id` by the same caller."""
        names.check_request_id(request_id)
        name = record_name(caller, request_id)
        claim = await self._claim(name, caller, method, digest)
        if isinstance(claim, _Answered):
            return answer(claim.response)
        # Shielded: a client that goes away mid-call (a phone losing its network) does not stop a change half-way;
        # it ends and is recorded, and the client's replay gets its answer.
        call = asyncio.ensure_future(self._recorded(name, claim, run))
        self._running.add(call)
        call.add_done_callback(self._running.discard)
        return await asyncio.shield(call)

    async def _recorded(self, name: str, claim: _Claimed, run: Callable[[], Awaitable[tuple[T, bytes]]]) -> T:
        try:
            result, recorded = await run()
        except Exception:
            await self._release(name)
            raise
        await self._complete(name, claim, recorded)
        return result

    async def expired(self, now: datetime.datetime) -> list[str]:
        """The records past their expiry: the leader's sweep."""
        found = []
        async for name, expire_time in request_records.names_and_expiry(self._kube, namespace=self._settings.namespace):
            expiry = timestamps.parse(expire_time)
            if expiry is None or expiry <= now:
                found.append(name)
        return found

    async def delete(self, name: str) -> None:
        await request_records.delete(self._kube, namespace=self._settings.namespace, name=name)

    async def _claim(self, name: str, caller: Caller, method: str, digest: str) -> _Claimed | _Answered:
        namespace = self._settings.namespace
        for _ in range(CLAIM_ATTEMPTS):
            try:
                record = await request_records.get(self._kube, namespace=namespace, name=name)
            except kube_errors.NotFound:
                try:
                    created = await request_records.create(self._kube, self._pending(name, caller, method, digest))
                except kube_errors.Conflict:
                    continue  # a concurrent call with the same key created it first: read what it says
                return _Claimed(created["metadata"]["resourceVersion"])
            spec = record.get("spec") or {}
            if (spec.get("method"), spec.get("digest")) != (method, digest):
                raise errors.InvalidArgument.field(
                    "request_id", "was already used for a different request; send a new request_id for a new request"
                )
            if spec.get("state") == DONE:
                return _Answered(base64.b64decode(spec.get("response") or ""))
            started = timestamps.parse(spec.get("startTime"))
            running_for = (timestamps.now() - started).total_seconds() if started else self._settings.pending_seconds
            if running_for < self._settings.pending_seconds:
                raise errors.RequestInProgress(
                    retry_after_seconds=max(1.0, self._settings.pending_seconds - running_for)
                )
            log.warning("request record %s was left pending by a replica that stopped; running the call again", name)
            try:
                taken = await request_records.update_spec(
                    self._kube,
                    namespace=namespace,
                    name=name,
                    spec={"startTime": timestamps.format_micro(timestamps.now())},
                    resource_version=record["metadata"]["resourceVersion"],
                )
            except kube_errors.Conflict:
                continue  # another replay took it over first
            return _Claimed(taken["metadata"]["resourceVersion"])
        raise errors.RequestInProgress(retry_after_seconds=1.0)

    def _pending(self, name: str, caller: Caller, method: str, digest: str) -> JsonObject:
        now = timestamps.now()
        return {
            "apiVersion": request_records.API_VERSION,
            "kind": "RequestRecord",
            "metadata": {"name": name, "namespace": self._settings.namespace},
            "spec": {
                "method": method,
                "digest": digest,
                "requestedBy": {"user": caller.user, "tenant": caller.tenant},
                "state": PENDING,
                "startTime": timestamps.format_micro(now),
                "expireTime": timestamps.format_micro(now + datetime.timedelta(seconds=self._settings.ttl_seconds)),
            },
        }

    async def _complete(self, name: str, claim: _Claimed, recorded: bytes) -> None:
        # An empty response (a delete's) is no `response` at all: the CRD's base64 `byte` format refuses "".
        spec = {"state": DONE, "startTime": None, "response": base64.b64encode(recorded).decode() or None}
        try:
            await request_records.update_spec(
                self._kube,
                namespace=self._settings.namespace,
                name=name,
                spec=spec,
                resource_version=claim.resource_version,
            )
        except kube_errors.KubeError as error:  # the call happened: its answer stands, a replay may run it again
            log.error("request record %s: the call succeeded but its answer was not recorded: %r", name, error)

    async def _release(self, name: str) -> None:
        try:
            await request_records.delete(self._kube, namespace=self._settings.namespace, name=name)
        except kube_errors.KubeError as error:  # it stays Pending: a replay runs the call once pending_seconds pass
            log.warning("request record %s: not deleted after the call failed: %r", name, error)


def record_name(caller: Caller, request_id: str) -> str:
    """One per caller and key: another user's replay of the same key is another request, and learns nothing."""
    return "r-" + hashlib.sha256(f"{caller.tenant}\0{caller.user}\0{request_id}".encode()).hexdigest()[:40]
