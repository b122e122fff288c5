"""Replays (server/replays.py) against the real kube-apiserver: a call sent with a `request_id` runs once and every
replay gets its recorded answer; the same key for another request is refused; a failed call leaves no record; a call
running now makes its replay wait, one left pending by a dead replica runs again; a client that goes away does not
stop the call; expired records are found for the sweep."""

from __future__ import annotations

import asyncio
import datetime

import pytest

import devcluster
from devcluster import stack as devstack
from server import errors, timestamps
from server.auth import Caller
from server.kube import request_records
from server.kube.client import JsonObject, KubeClient
from server.replays import Replays, ReplaySettings, record_name


@pytest.fixture(autouse=True, scope="module")
def _request_record_crd(cluster: devcluster.ClusterInfo) -> None:
    """deploy/crds, where the RequestRecord CRD is (the API's stack installs it too)."""
    devstack.install(cluster)


ADA = Caller(user="ada", tenant="tests", permissions=frozenset())
METHOD = "/novasphere.v1.AccessService/CreateAccessService"


class Calls:
    """A call that counts its runs and answers with its run number."""

    def __init__(
        self,
        *,
        records: bool = True,
        fail: bool = False,
        started: asyncio.Event | None = None,
        release: asyncio.Event | None = None,
    ):
        self.runs = 0
        self._records = records
        self._fail = fail
        self._started = started
        self._release = release

    async def run(self) -> tuple[str, bytes]:
        self.runs += 1
        if self._started is not None:
            self._started.set()
        if self._release is not None:
            await self._release.wait()
        if self._fail:
            raise errors.FailedPrecondition("not now", reason=errors.Reason.VM_NOT_CREATED)
        answer = f"run {self.runs}"
        return answer, f"recorded {self.runs}".encode() if self._records else b""


def replays_in(kube: KubeClient, namespace: str, *, ttl: float = 3600, pending: float = 60) -> Replays:
    return Replays(kube, ReplaySettings(namespace=namespace, ttl_seconds=ttl, pending_seconds=pending))


async def once(
    replays: Replays, calls: Calls, *, request_id: str = "r-1", digest: str = "d1", caller: Caller = ADA
) -> str:
    return await replays.once(
        caller, request_id=request_id, method=METHOD, digest=digest, run=calls.run, answer=bytes.decode
    )


async def test_a_call_runs_once_and_every_replay_gets_its_recorded_answer(
    admin_kube: KubeClient, namespace: str
) -> None:
    replays, calls = replays_in(admin_kube, namespace), Calls()

    first = await once(replays, calls)
    again = [await once(replays, calls), await once(replays_in(admin_kube, namespace), calls)]  # a second replica

    assert (first, again, calls.runs) == ("run 1", ["recorded 1", "recorded 1"], 1)
    record = await request_records.get(admin_kube, namespace=namespace, name=record_name(ADA, "r-1"))
    assert record["spec"]["state"] == "Done"
    assert (record["spec"]["method"], record["spec"]["requestedBy"]) == (METHOD, {"user": "ada", "tenant": "tests"})
    assert "startTime" not in record["spec"]


async def test_an_empty_answer_is_recorded_too(admin_kube: KubeClient, namespace: str) -> None:
    """A delete answers with an empty message: its replay gets it back (and does not delete again)."""
    replays, calls = replays_in(admin_kube, namespace), Calls(records=False)

    assert (await once(replays, calls), await once(replays, calls), calls.runs) == ("run 1", "", 1)


async def test_the_same_key_for_another_request_is_refused_and_other_callers_have_their_own(
    admin_kube: KubeClient, namespace: str
) -> None:
    replays, calls = replays_in(admin_kube, namespace), Calls()
    await once(replays, calls)

    with pytest.raises(errors.InvalidArgument) as refused:
        await once(replays, calls, digest="another request")
    assert [v.field for v in refused.value.violations] == ["request_id"]
    bob = Caller(user="bob", tenant="tests", permissions=frozenset())
    assert await once(replays, calls, caller=bob) == "run 2"  # bob's r-1 is not ada's
    with pytest.raises(errors.InvalidArgument):
        await once(replays, calls, request_id="not a key!")
    assert calls.runs == 2


async def test_a_failed_call_leaves_no_record_so_its_replay_runs_again(admin_kube: KubeClient, namespace: str) -> None:
    replays = replays_in(admin_kube, namespace)
    with pytest.raises(errors.FailedPrecondition):
        await once(replays, Calls(fail=True))

    assert await once(replays, Calls()) == "run 1"


async def test_a_replay_of_a_running_call_is_told_to_retry_and_a_dead_replicas_call_runs_again(
    admin_kube: KubeClient, namespace: str
) -> None:
    started, release = asyncio.Event(), asyncio.Event()
    slow, replays = Calls(started=started, release=release), replays_in(admin_kube, namespace, pending=30)
    running = asyncio.create_task(once(replays, slow))
    await started.wait()

    with pytest.raises(errors.RequestInProgress) as told:
        await once(replays, Calls())
    assert 1 <= told.value.retry_after_seconds <= 30
    release.set()
    assert await running == "run 1"

    # A record left Pending (its replica died mid-call) longer than a call can take: the replay runs the call.
    name = record_name(ADA, "r-2")
    long_ago = timestamps.format_micro(timestamps.now() - datetime.timedelta(seconds=31))
    await request_records.create(admin_kube, _pending(namespace, name, long_ago))
    taken_over = Calls()
    assert await once(replays, taken_over, request_id="r-2") == "run 1"
    assert await once(replays, taken_over, request_id="r-2") == "recorded 1"


async def test_a_client_that_goes_away_does_not_stop_the_call(admin_kube: KubeClient, namespace: str) -> None:
    started, release = asyncio.Event(), asyncio.Event()
    calls, replays = Calls(started=started, release=release), replays_in(admin_kube, namespace)
    client = asyncio.create_task(once(replays, calls))
    await started.wait()
    client.cancel()  # the phone lost its network
    with pytest.raises(asyncio.CancelledError):
        await client
    release.set()

    async def answered() -> str:
        while True:
            try:
                return await once(replays, calls)
            except errors.RequestInProgress:
                await asyncio.sleep(0.05)

    assert await asyncio.wait_for(answered(), 10) == "recorded 1"
    assert calls.runs == 1


async def test_records_past_their_expiry_are_found_for_the_sweep(admin_kube: KubeClient, namespace: str) -> None:
    replays = replays_in(admin_kube, namespace, ttl=60)
    await once(replays, Calls(), request_id="kept")
    await request_records.create(admin_kube, _pending(namespace, "r-old", timestamps.format_micro(timestamps.now())))

    later = timestamps.now() + datetime.timedelta(seconds=61)
    assert await replays.expired(timestamps.now()) == []
    assert sorted(await replays.expired(later)) == sorted([record_name(ADA, "kept"), "r-old"])
    for name in await replays.expired(later):
        await replays.delete(name)
    assert await replays.expired(later) == []


def _pending(namespace: str, name: str, start_time: str) -> JsonObject:
    return {
        "apiVersion": request_records.API_VERSION,
        "kind": "RequestRecord",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "method": METHOD,
            "digest": "d1",
            "requestedBy": {"user": "ada", "tenant": "tests"},
            "state": "Pending",
            "startTime": start_time,
            "expireTime": timestamps.format_micro(timestamps.now() + datetime.timedelta(seconds=60)),
        },
    }
