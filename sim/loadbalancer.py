"""Simulated load-balancer controller (what K3s' ServiceLB or a cloud controller does): a Service of type
LoadBalancer of the default class gets `status.loadBalancer.ingress` with an address from 127.0.2.0/24, so nothing
points outside loopback. The address is the simulation's; no traffic is forwarded to it."""

from __future__ import annotations

import contextlib

from sim import kubeapi
from sim.kubeapi import KubeApi
from sim.runtime import Informer, Key, deep_get

ADDRESS_PREFIX = "127.0.2."


class LoadBalancers:
    def __init__(self, *, api: KubeApi, services: Informer) -> None:
        self._api = api
        self._services = services

    async def reconcile(self, key: Key) -> float | None:
        service = self._services.get(*key)
        if service is None or service["metadata"].get("deletionTimestamp"):
            return None
        wanted = deep_get(service, "spec", "type") == "LoadBalancer" and not deep_get(
            service, "spec", "loadBalancerClass"
        )
        ingress = deep_get(service, "status", "loadBalancer", "ingress", default=[]) or []
        if wanted and not ingress:
            status = {"loadBalancer": {"ingress": [{"ip": self._free_address(), "ipMode": "VIP"}]}}
        elif not wanted and ingress and not deep_get(service, "spec", "loadBalancerClass"):
            status = {"loadBalancer": {}}
        else:
            return None
        with contextlib.suppress(kubeapi.NotFound):
            await self._api.patch(kubeapi.SERVICES, key[0], key[1], {"status": status}, subresource="status")
        return None

    def _free_address(self) -> str:
        taken = {
            entry.get("ip")
            for service in self._services.items()
            for entry in deep_get(service, "status", "loadBalancer", "ingress", default=[]) or []
        }
        for last in range(1, 255):
            if ADDRESS_PREFIX + str(last) not in taken:
                return ADDRESS_PREFIX + str(last)
        raise RuntimeError("the simulated load-balancer range 127.0.2.0/24 is exhausted")
