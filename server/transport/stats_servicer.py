"""StatsService over gRPC: requests in, domain calls, messages out."""

from __future__ import annotations

from typing import Any

import grpc

from novasphere.v1 import stats_service_pb2, stats_service_pb2_grpc
from server import auth
from server.stats import Quota, StatsQueries, Usage
from server.transport.convert import saturated

Context = grpc.aio.ServicerContext[Any, Any]
SERVICE = stats_service_pb2.DESCRIPTOR.services_by_name["StatsService"]


class StatsServicer(stats_service_pb2_grpc.StatsServiceServicer):
    def __init__(self, queries: StatsQueries) -> None:
        self._queries = queries

    async def GetStats(self, request: stats_service_pb2.GetStatsRequest, context: Context) -> stats_service_pb2.Stats:
        stats = await self._queries.get(auth.current(), namespace=request.namespace)
        message = stats_service_pb2.Stats(total=_usage(stats.total))
        for namespace in stats.namespaces:
            entry = message.namespaces.add(namespace=namespace.namespace, usage=_usage(namespace.usage))
            if namespace.quota is not None:
                entry.quota.CopyFrom(_quota(namespace.quota))
        return message


def _usage(usage: Usage) -> stats_service_pb2.UsageStats:
    return stats_service_pb2.UsageStats(**{name: saturated(value) for name, value in vars(usage).items()})


def _quota(quota: Quota) -> stats_service_pb2.QuotaStats:
    return stats_service_pb2.QuotaStats(**{name: saturated(value) for name, value in vars(quota).items()})
