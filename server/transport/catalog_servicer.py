"""CatalogService over gRPC: requests in, domain calls, messages out."""

from __future__ import annotations

from typing import Any

import grpc

from novasphere.v1 import catalog_service_pb2, catalog_service_pb2_grpc
from server import auth
from server.catalog import Catalog

Context = grpc.aio.ServicerContext[Any, Any]
SERVICE = catalog_service_pb2.DESCRIPTOR.services_by_name["CatalogService"]


class CatalogServicer(catalog_service_pb2_grpc.CatalogServiceServicer):
    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog

    async def ListStorageClasses(
        self, request: catalog_service_pb2.ListStorageClassesRequest, context: Context
    ) -> catalog_service_pb2.ListStorageClassesResponse:
        found = await self._catalog.storage_classes(auth.current(), namespace=request.namespace)
        return catalog_service_pb2.ListStorageClassesResponse(
            storage_classes=[catalog_service_pb2.StorageClass(**vars(choice)) for choice in found]
        )

    async def ListNetworkAttachments(
        self, request: catalog_service_pb2.ListNetworkAttachmentsRequest, context: Context
    ) -> catalog_service_pb2.ListNetworkAttachmentsResponse:
        found = await self._catalog.network_attachments(auth.current(), namespace=request.namespace)
        return catalog_service_pb2.ListNetworkAttachmentsResponse(
            network_attachments=[catalog_service_pb2.NetworkAttachment(**vars(choice)) for choice in found]
        )
