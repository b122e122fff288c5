"""MetricsService over gRPC: requests in, domain calls, messages out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from novasphere.v1 import metrics_service_pb2, metrics_service_pb2_grpc, wukong_pb2
from server import auth
from server.transport.convert import set_time
from server.wukongs.metrics import Rates, VmMetrics, VmMetricsQueries

Context = grpc.aio.ServicerContext[Any, Any]
SERVICE = metrics_service_pb2.DESCRIPTOR.services_by_name["MetricsService"]


class MetricsServicer(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self, queries: VmMetricsQueries) -> None:
        self._queries = queries

    async def GetWukongMetrics(
        self, request: metrics_service_pb2.GetWukongMetricsRequest, context: Context
    ) -> metrics_service_pb2.WukongMetrics:
        found = await self._queries.get(
            auth.current(), namespace=request.namespace, name=request.name, vm_id=request.vm_id
        )
        return _metrics(found)

    async def WatchWukongMetrics(
        self, request: metrics_service_pb2.WatchWukongMetricsRequest, context: Context
    ) -> AsyncIterator[metrics_service_pb2.WukongMetrics]:
        stream = self._queries.watch(
            auth.current(),
            namespace=request.namespace,
            name=request.name,
            vm_id=request.vm_id,
            interval_seconds=request.interval_seconds,
        )
        async for found in stream:
            yield _metrics(found)


def _metrics(found: VmMetrics) -> metrics_service_pb2.WukongMetrics:
    message = metrics_service_pb2.WukongMetrics(
        name=found.name,
        namespace=found.namespace,
        vm_id=found.uid,
        power_state=wukong_pb2.WukongStatus.PowerState.Value(found.power_state.value),
        state=metrics_service_pb2.MetricsState.Value(found.state.value),
        message=found.message,
        network=metrics_service_pb2.NetworkUsage(**_rates(found.network)),
        disk=metrics_service_pb2.DiskUsage(**_rates(found.disk)),
    )
    if found.sample_time is not None:
        set_time(message.sample_time, found.sample_time)
        message.window.FromNanoseconds(round(found.window_seconds * 1e9))
    if found.cpu is not None:
        message.cpu.CopyFrom(metrics_service_pb2.CpuUsage(**vars(found.cpu)))
    if found.memory is not None:
        message.memory.CopyFrom(metrics_service_pb2.MemoryUsage(**vars(found.memory)))
    return message


def _rates(rates: Rates) -> dict[str, Any]:
    return {
        "state": metrics_service_pb2.MetricsState.Value(rates.state.value),
        "message": rates.message,
        **rates.values,
    }
