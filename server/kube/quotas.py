"""`ResourceQuota`s of the tenants' namespaces, mirrored by one informer, for the stats."""

from __future__ import annotations

from server.kube.informer import Kind

RESOURCE_QUOTAS = Kind("resourcequotas", "/api/v1/resourcequotas")
