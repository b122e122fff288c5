"""The API's Prometheus client against the simulated Prometheus (on loopback): a rate of a running VMI, no series
for one that is not running, Prometheus's own error for a query it does not understand, and an unreachable server;
and the Go durations metrics-server writes."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest
import pytest_asyncio

from server.kube.pod_metrics import _seconds
from server.prometheus import Prometheus, PrometheusError
from sim import faults
from sim import prometheus as sim_prometheus
from sim.runtime import Informer

RUNNING: dict[str, Any] = {
    "metadata": {"name": "web-vm", "namespace": "team", "uid": "u-1"},
    "spec": {"domain": {"cpu": {"cores": 2}, "memory": {"guest": "1Gi"}}},
    "status": {
        "phase": "Running",
        "nodeName": "node-1",
        "phaseTransitionTimestamps": [{"phase": "Running", "phaseTransitionTimestamp": "2026-11-22T10:00:00Z"}],
    },
}


class _Instances:
    """The one lookup the simulated Prometheus makes of its VMI informer."""

    def __init__(self, *vmis: dict[str, Any]) -> None:
        self._vmis = {(v["metadata"]["namespace"], v["metadata"]["name"]): v for v in vmis}

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._vmis.get((namespace, name))


@pytest_asyncio.fixture(loop_scope="session")  # the tests' loop: the server must run while they await
async def prometheus() -> AsyncIterator[Prometheus]:
    stopped = {**RUNNING, "metadata": {**RUNNING["metadata"], "name": "off-vm"}, "status": {"phase": "Succeeded"}}
    simulated = sim_prometheus.Prometheus(vmis=cast(Informer, _Instances(RUNNING, stopped)), speed=1.0, port=0)
    async with _serving(simulated, suffix="/") as client:
        yield client


@contextlib.asynccontextmanager
async def _serving(simulated: sim_prometheus.Prometheus, *, suffix: str = "") -> AsyncIterator[Prometheus]:
    """A client of the simulated Prometheus while it serves (`suffix`: the URL as operators may write it)."""
    serving = asyncio.create_task(simulated.run())
    await asyncio.wait_for(simulated.ready.wait(), 10)
    client = Prometheus(simulated.url + suffix)
    try:
        yield client
    finally:
        await client.close()
        serving.cancel()
        await asyncio.gather(serving, return_exceptions=True)


async def test_a_running_vmis_rate_and_none_for_a_missing_series(prometheus: Prometheus) -> None:
    rate = await prometheus.scalar(
        'sum(rate(kubevirt_vmi_network_receive_bytes_total{namespace="team",name="web-vm"}[2m]))'
    )
    assert rate is not None
    assert rate > 0
    assert (
        await prometheus.scalar('sum(rate(kubevirt_vmi_storage_iops_read_total{namespace="team",name="off-vm"}[2m]))')
        is None
    )
    assert await prometheus.scalar('sum(rate(kubevirt_vmi_nothing_total{namespace="team",name="web-vm"}[2m]))') is None


async def test_a_query_prometheus_refuses_is_an_error(prometheus: Prometheus) -> None:
    with pytest.raises(PrometheusError, match="refused the query"):
        await prometheus.scalar("up{")


async def test_an_unreachable_prometheus_is_an_error() -> None:
    with socket.socket() as bound:  # bound, not listening: connections are refused, and no one else can take it
        bound.bind(("127.0.0.1", 0))
        client = Prometheus(f"http://127.0.0.1:{bound.getsockname()[1]}")
        try:
            with pytest.raises(PrometheusError, match="unreachable"):
                await client.scalar("up")
        finally:
            await client.close()


def test_go_durations_as_metrics_server_writes_them() -> None:
    assert _seconds("15.012s") == pytest.approx(15.012)
    assert _seconds("1m0s") == 60
    assert _seconds("500ms") == pytest.approx(0.5)
    assert _seconds("") == 0
    assert _seconds("15 s") == 0


@pytest_asyncio.fixture(loop_scope="session")
async def malformed_prometheus() -> AsyncIterator[Prometheus]:
    """The simulated Prometheus with one running VMI per malformed mode, `<mode>-vm`, whose Wukong asks for it."""
    vmis = [{**RUNNING, "metadata": {**RUNNING["metadata"], "name": f"{mode}-vm"}} for mode in faults.MALFORMED_MODES]
    wukongs = _Instances(
        *(
            {"metadata": {"name": m, "namespace": "team", "annotations": {faults.MALFORMED_PROMETHEUS: m}}}
            for m in faults.MALFORMED_MODES
        )
    )
    simulated = sim_prometheus.Prometheus(
        vmis=cast(Informer, _Instances(*vmis)), wukongs=cast(Informer, wukongs), speed=1.0, port=0
    )
    async with _serving(simulated) as client:
        yield client


@pytest.mark.parametrize(
    ("mode", "error"),
    [
        ("html-500", "Prometheus answered HTTP 500"),
        ("not-json", "Prometheus answered HTTP 200 without JSON"),
        ("wrong-shape", "Prometheus answered with something other than an instant vector"),
        ("truncated", "Prometheus answered HTTP 200 without JSON"),
    ],
)
async def test_a_malformed_answer_is_a_prometheus_error_that_quotes_none_of_it(
    malformed_prometheus: Prometheus, mode: str, error: str
) -> None:
    query = f'sum(rate(kubevirt_vmi_network_receive_bytes_total{{namespace="team",name="{mode}-vm"}}[2m]))'
    with pytest.raises(PrometheusError) as raised:
        await malformed_prometheus.scalar(query)
    assert str(raised.value) == error
