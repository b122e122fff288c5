"""A VM's resource use, for charts: CPU and memory from metrics-server's latest sample of its launcher pod
(`metrics.k8s.io`, which carries nothing else), network and disk from Prometheus (KubeVirt's `kubevirt_vmi_*`
counters) when one is configured.

A source that cannot answer makes its group UNAVAILABLE with a reason, never zeros: a chart must not draw an outage
as an idle VM. A VM without a running launcher pod is NOT_RUNNING, an answer rather than an error. Streams poll;
concurrent callers asking about the same VM within a second share one request to each source, so a hundred open
dashboards cost what one does.
"""

from __future__ import annotations

import asyncio
import datetime
import enum
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from server import errors
from server.auth import Caller
from server.kube import kubevirt, pod_metrics
from server.kube.client import KubeClient
from server.prometheus import Prometheus, PrometheusError
from server.wukongs.cache import WukongState
from server.wukongs.queries import WukongQueries
from server.wukongs.status import PowerState

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_INTERVAL_SECONDS = 5
MIN_INTERVAL_SECONDS, MAX_INTERVAL_SECONDS = 1, 60
KEEPALIVE_SECONDS = 15.0
"""A stream re-sends the latest answer this often while nothing changes (proxies cut silent streams)."""
SHARED_SECONDS = 1.0
RATE_RANGE = "2m"
"""The window of Prometheus's `rate()`: at least two scrapes at the usual 30 s interval, and then some."""
NETWORK_SERIES = {
    "receive_bytes_per_second": "kubevirt_vmi_network_receive_bytes_total",
    "transmit_bytes_per_second": "kubevirt_vmi_network_transmit_bytes_total",
    "receive_packets_per_second": "kubevirt_vmi_network_receive_packets_total",
    "transmit_packets_per_second": "kubevirt_vmi_network_transmit_packets_total",
}
DISK_SERIES = {
    "read_bytes_per_second": "kubevirt_vmi_storage_read_traffic_bytes_total",
    "write_bytes_per_second": "kubevirt_vmi_storage_write_traffic_bytes_total",
    "read_iops": "kubevirt_vmi_storage_iops_read_total",
    "write_iops": "kubevirt_vmi_storage_iops_write_total",
}
NO_PROMETHEUS = (
    "network and disk metrics need a Prometheus that scrapes KubeVirt (kubevirt_vmi_* series), and none is "
    "configured (NOVASPHERE_PROMETHEUS_URL)"
)


class MetricsState(enum.Enum):
    AVAILABLE = "AVAILABLE"
    NOT_RUNNING = "NOT_RUNNING"
    COLLECTING = "COLLECTING"
    UNAVAILABLE = "UNAVAILABLE"


@dataclass(frozen=True)
class Cpu:
    cores: float
    vcpus: int
    percent: float


@dataclass(frozen=True)
class Memory:
    used_bytes: int
    guest_bytes: int
    percent: float


@dataclass(frozen=True)
class Rates:
    """Per-second rates of one group (network or disk), keyed by the API's field names; empty unless AVAILABLE."""

    state: MetricsState
    message: str = ""
    values: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class VmMetrics:
    namespace: str
    name: str
    uid: str
    power_state: PowerState
    state: MetricsState
    message: str
    sample_time: datetime.datetime | None
    window_seconds: float
    cpu: Cpu | None
    memory: Memory | None
    network: Rates
    disk: Rates

    def same_sample(self, other: VmMetrics) -> bool:
        """Whether a stream would show nothing new: only a new sample, state or power state is news."""
        return (self.state, self.power_state, self.sample_time, self.network, self.disk) == (
            other.state,
            other.power_state,
            other.sample_time,
            other.network,
            other.disk,
        )


class VmMetricsQueries:
    def __init__(self, *, kube: KubeClient, wukongs: WukongQueries, prometheus: Prometheus | None) -> None:
        self._kube = kube
        self._wukongs = wukongs
        self._prometheus = prometheus
        self._shared = _SharedFetches(SHARED_SECONDS)

    async def get(self, caller: Caller, *, namespace: str, name: str, vm_id: str) -> VmMetrics:
        state = await self._wukongs.get(caller, namespace=namespace, name=name, vm_id=vm_id)
        return await self._measure(state)

    async def watch(
        self, caller: Caller, *, namespace: str, name: str, vm_id: str, interval_seconds: int
    ) -> AsyncIterator[VmMetrics]:
        """The latest answer now, then each change, polled every `interval_seconds`; follows the Wukong by UID, so
        the stream ends with NOT_FOUND when it is deleted (even if another is created under the same name)."""
        interval = interval_seconds or DEFAULT_INTERVAL_SECONDS
        if not MIN_INTERVAL_SECONDS <= interval <= MAX_INTERVAL_SECONDS:
            raise errors.InvalidArgument.field(
                "interval_seconds", f"must be {MIN_INTERVAL_SECONDS}-{MAX_INTERVAL_SECONDS} (or 0 for the default)"
            )
        state = await self._wukongs.get(caller, namespace=namespace, name=name, vm_id=vm_id)
        uid = state.uid
        sent = await self._measure(state)
        sent_at = time.monotonic()
        yield sent
        while True:
            await asyncio.sleep(interval)
            latest = await self._measure(await self._wukongs.get(caller, namespace="", name="", vm_id=uid))
            if not latest.same_sample(sent) or time.monotonic() - sent_at >= KEEPALIVE_SECONDS:
                sent, sent_at = latest, time.monotonic()
                yield latest

    async def _measure(self, state: WukongState) -> VmMetrics:
        power = state.status.power_state
        pod = state.pod
        running = pod is not None and (pod.get("status") or {}).get("phase") == "Running"
        if pod is None or not running:
            message = f"the VM is {power.value}: metrics exist only while it runs"
            idle = Rates(MetricsState.NOT_RUNNING, message)
            return VmMetrics(
                state.namespace,
                state.name,
                state.uid,
                power,
                MetricsState.NOT_RUNNING,
                message,
                None,
                0.0,
                None,
                None,
                idle,
                idle,
            )
        instance = kubevirt.vm_name(state.name)
        pod_name = str(pod["metadata"]["name"])
        usage, (network, disk) = await asyncio.gather(
            self._shared.get(("pod", state.namespace, pod_name), lambda: self._pod_sample(state.namespace, pod_name)),
            self._shared.get(("io", state.namespace, instance), lambda: self._io_rates(state.namespace, instance)),
        )
        metrics_state, message, sample = usage
        cpu = memory = None
        if sample is not None:
            vcpus, guest = state.status.cpu, state.status.memory_bytes
            cpu = Cpu(sample.cpu_cores, vcpus, _percent(sample.cpu_cores, vcpus))
            memory = Memory(sample.memory_bytes, guest, _percent(sample.memory_bytes, guest))
        return VmMetrics(
            namespace=state.namespace,
            name=state.name,
            uid=state.uid,
            power_state=power,
            state=metrics_state,
            message=message,
            sample_time=sample.timestamp if sample else None,
            window_seconds=sample.window_seconds if sample else 0.0,
            cpu=cpu,
            memory=memory,
            network=network,
            disk=disk,
        )

    async def _pod_sample(self, namespace: str, pod: str) -> tuple[MetricsState, str, pod_metrics.PodSample | None]:
        try:
            sample = await pod_metrics.sample(
                self._kube, namespace=namespace, pod=pod, container=pod_metrics.COMPUTE_CONTAINER
            )
        except pod_metrics.MetricsApiUnavailable as error:
            log.warning("VM metrics of %s/%s unavailable: %s", namespace, pod, error)
            return MetricsState.UNAVAILABLE, str(error), None
        if sample is None:
            message = "the VM has just started: metrics-server has no sample of it yet (it scrapes every ~15 s)"
            return MetricsState.COLLECTING, message, None
        return MetricsState.AVAILABLE, "", sample

    async def _io_rates(self, namespace: str, instance: str) -> tuple[Rates, Rates]:
        if self._prometheus is None:
            return Rates(MetricsState.UNAVAILABLE, NO_PROMETHEUS), Rates(MetricsState.UNAVAILABLE, NO_PROMETHEUS)
        selector = f'{{namespace="{_escape(namespace)}",name="{_escape(instance)}"}}'
        return await asyncio.gather(
            self._rates(self._prometheus, NETWORK_SERIES, selector, "network"),
            self._rates(self._prometheus, DISK_SERIES, selector, "disk"),
        )

    @staticmethod
    async def _rates(prometheus: Prometheus, series: Mapping[str, str], selector: str, group: str) -> Rates:
        queries = {key: f"sum(rate({name}{selector}[{RATE_RANGE}]))" for key, name in series.items()}
        try:
            answers = await asyncio.gather(*(prometheus.scalar(query) for query in queries.values()))
        except PrometheusError as error:
            log.warning("%s metrics unavailable: %s", group, error)
            return Rates(MetricsState.UNAVAILABLE, f"Prometheus is not answering; {group} metrics are unavailable")
        values = {key: value for key, value in zip(queries, answers, strict=True) if value is not None}
        if not values:
            return Rates(
                MetricsState.COLLECTING,
                f"Prometheus has no {group} series of this VM yet (kubevirt_vmi_* appear after a scrape or two)",
            )
        return Rates(MetricsState.AVAILABLE, values=values)


class _SharedFetches:
    """One fetch per key at a time and for `ttl` seconds after it started; every caller in that time gets its
    result (or its error)."""

    def __init__(self, ttl: float) -> None:
        self._ttl = ttl
        self._entries: dict[Hashable, tuple[float, asyncio.Future[Any]]] = {}

    async def get(self, key: Hashable, fetch: Callable[[], Awaitable[T]]) -> T:
        now = time.monotonic()
        for stale in [k for k, (expires, _) in self._entries.items() if expires <= now]:
            del self._entries[stale]
        entry = self._entries.get(key)
        if entry is None:
            future: asyncio.Future[Any] = asyncio.ensure_future(fetch())
            future.add_done_callback(_retrieve)
            entry = self._entries[key] = (now + self._ttl, future)
        result: T = await asyncio.shield(entry[1])
        return result


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Marks an error as seen: every waiter may have gone (cancelled streams), which is not worth a warning."""
    if not future.cancelled():
        future.exception()


def _percent(part: float, whole: float) -> float:
    return round(100.0 * part / whole, 2) if whole > 0 else 0.0


def _escape(label_value: str) -> str:
    return label_value.replace("\\", "\\\\").replace('"', '\\"')
