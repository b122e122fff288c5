"""WukongService over gRPC: requests in, domain calls, messages out."""

from __future__ import annotations

from typing import Any

import grpc

from novasphere.v1 import wukong_pb2, wukong_service_pb2, wukong_service_pb2_grpc
from server.transport import convert
from server.wukongs.queries import WukongQueries


class WukongServicer(wukong_service_pb2_grpc.WukongServiceServicer):
    def __init__(self, *, queries: WukongQueries) -> None:
        self._queries = queries

    async def ListWukongs(
        self, request: wukong_service_pb2.ListWukongsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> wukong_service_pb2.ListWukongsResponse:
        page = await self._queries.list(
            namespace=request.namespace, page_size=request.page_size, page_token=request.page_token
        )
        return wukong_service_pb2.ListWukongsResponse(
            wukongs=[convert.wukong_to_pb(w) for w in page.wukongs], next_page_token=page.next_page_token
        )

    async def GetWukong(
        self, request: wukong_service_pb2.GetWukongRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> wukong_pb2.Wukong:
        return convert.wukong_to_pb(await self._queries.get(namespace=request.namespace, name=request.name))
