"""Core/v1 Events as KubeVirt records them (shared/reference/kubevirt.md §5): reason, message, type and source
component exactly; switched off for benchmarks (`--no-events`)."""

from __future__ import annotations

import logging
import uuid

from sim import kubeapi
from sim.kubeapi import Body, KubeApi
from sim.runtime import now_rfc3339

log = logging.getLogger("sim.events")

VM_CONTROLLER = "virtualmachine-controller"
VIRT_HANDLER = "virt-handler"


class EventRecorder:
    def __init__(self, api: KubeApi, *, enabled: bool) -> None:
        self._api = api
        self.enabled = enabled

    async def record(
        self, obj: Body, *, reason: str, message: str, warning: bool = False, component: str, host: str = ""
    ) -> None:
        if not self.enabled:
            return
        metadata = obj["metadata"]
        now = now_rfc3339()
        source: Body = {"component": component}
        if host:
            source["host"] = host
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{metadata['name']}.{uuid.uuid4().hex[:16]}", "namespace": metadata["namespace"]},
            "involvedObject": {
                "apiVersion": obj["apiVersion"],
                "kind": obj["kind"],
                "name": metadata["name"],
                "namespace": metadata["namespace"],
                "uid": metadata["uid"],
                "resourceVersion": metadata.get("resourceVersion", ""),
            },
            "reason": reason,
            "message": message,
            "type": "Warning" if warning else "Normal",
            "source": source,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "reportingComponent": component,
            "reportingInstance": host,
        }
        try:
            await self._api.create(kubeapi.EVENTS, metadata["namespace"], event)
        except kubeapi.ApiError as error:  # an event is best effort, as in client-go's recorder
            log.debug("event %s on %s/%s not recorded: %s", reason, metadata["namespace"], metadata["name"], error)
