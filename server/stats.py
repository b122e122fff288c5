"""A tenant's VMs at a glance: counts by power state and vCPU / memory asked for and allocated, per namespace, with
the namespaces' ResourceQuotas. Computed from the caches (Wukongs and ResourceQuotas): no call per VM."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from server import quantity
from server.auth import Caller
from server.kube.informer import Kind
from server.tenancy import Tenancy
from server.wukongs.cache import WukongCache, WukongState
from server.wukongs.status import PowerState

_BUCKET = {
    PowerState.RUNNING: "running",
    PowerState.STOPPED: "stopped",
    PowerState.PAUSED: "paused",
    PowerState.PROVISIONING: "provisioning",
    PowerState.ERROR: "error",
}
# States in which the VM's instance exists, so its vCPUs and memory are allocated on a node.
_ALLOCATED = frozenset({PowerState.RUNNING, PowerState.PAUSED, PowerState.STOPPING, PowerState.MIGRATING})


@dataclass
class Usage:
    vms: int = 0
    running: int = 0
    stopped: int = 0
    paused: int = 0
    provisioning: int = 0
    error: int = 0
    transitioning: int = 0
    vcpu_total: int = 0
    vcpu_allocated: int = 0
    memory_mb_total: int = 0
    memory_mb_allocated: int = 0

    def add(self, state: WukongState) -> None:
        status = state.status
        bucket = _BUCKET.get(status.power_state, "transitioning")
        setattr(self, bucket, getattr(self, bucket) + 1)
        self.vms += 1
        memory_mb = quantity.to_mib(status.memory_bytes)
        self.vcpu_total += status.cpu
        self.memory_mb_total += memory_mb
        if status.power_state in _ALLOCATED or (status.power_state is PowerState.STARTING and state.vmi is not None):
            self.vcpu_allocated += status.cpu
            self.memory_mb_allocated += memory_mb

    def merge(self, other: Usage) -> None:
        for name in vars(other):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass(frozen=True)
class Quota:
    cpu_hard_millis: int
    cpu_used_millis: int
    memory_hard_mb: int
    memory_used_mb: int


@dataclass
class NamespaceStats:
    namespace: str
    usage: Usage = field(default_factory=Usage)
    quota: Quota | None = None


@dataclass(frozen=True)
class Stats:
    total: Usage
    namespaces: list[NamespaceStats]


class QuotaCache:
    """ResourceQuotas by namespace (informer handler)."""

    def __init__(self) -> None:
        self._quotas: dict[tuple[str, str], Mapping[str, Any]] = {}
        self.synced = False
        self.listeners: list[Callable[[Mapping[str, Any] | None, Mapping[str, Any]], None]] = []
        """Told `(before, after)` of every quota that changed after the first list (before None: a new one)."""

    def of(self, namespace: str) -> Quota | None:
        found = [quota for (ns, _), quota in sorted(self._quotas.items()) if ns == namespace]
        return _summed(found) if found else None

    def hard_limits(self, namespace: str) -> list[dict[str, str]]:
        """`spec.hard` of each of the namespace's quotas."""
        return [
            dict((quota.get("spec") or {}).get("hard") or {})
            for (ns, _), quota in sorted(self._quotas.items())
            if ns == namespace
        ]

    def replace(self, kind: Kind, items: list[dict[str, Any]], resource_version: int) -> None:
        self._quotas = {(i["metadata"]["namespace"], i["metadata"]["name"]): i for i in items}
        self.synced = True

    def apply(self, kind: Kind, event_type: str, item: dict[str, Any], resource_version: int) -> None:
        key = (item["metadata"]["namespace"], item["metadata"]["name"])
        if event_type == "DELETED":
            self._quotas.pop(key, None)
            return
        before = self._quotas.get(key)
        self._quotas[key] = item
        for listener in self.listeners:
            listener(before, item)

    def progress(self, kind: Kind, resource_version: int) -> None:
        """Bookmarks carry nothing the stats need."""


class StatsQueries:
    def __init__(self, *, wukongs: WukongCache, quotas: QuotaCache, tenancy: Tenancy) -> None:
        self._wukongs = wukongs
        self._quotas = quotas
        self._tenancy = tenancy

    async def get(self, caller: Caller, *, namespace: str) -> Stats:
        scope = await self._tenancy.scope(caller, namespace)
        per_namespace = {name: NamespaceStats(name, quota=self._quotas.of(name)) for name in sorted(scope)}
        for state in self._wukongs.states():
            if state.namespace in per_namespace:
                per_namespace[state.namespace].usage.add(state)
        return Stats(_total(n.usage for n in per_namespace.values()), list(per_namespace.values()))


def _total(usages: Iterable[Usage]) -> Usage:
    total = Usage()
    for usage in usages:
        total.merge(usage)
    return total


def _summed(quotas: list[Mapping[str, Any]]) -> Quota:
    """The tightest hard limit and the largest use over the namespace's quotas (each quota counts every pod)."""

    def value(section: str, keys: tuple[str, ...], parse: Any) -> list[int]:
        found = []
        for quota in quotas:
            values = (quota.get("status") or {}).get(section) or (quota.get("spec") or {}).get(section) or {}
            text = next((values[k] for k in keys if k in values), None)
            if text is not None:
                with contextlib.suppress(ValueError):
                    found.append(parse(str(text)))
        return found

    cpu_keys, memory_keys = ("requests.cpu", "cpu"), ("requests.memory", "memory")
    cpu_hard, cpu_used = value("hard", cpu_keys, quantity.parse_millis), value("used", cpu_keys, quantity.parse_millis)
    mem_hard = value("hard", memory_keys, lambda t: quantity.to_mib(quantity.parse_bytes(t)))
    mem_used = value("used", memory_keys, lambda t: quantity.to_mib(quantity.parse_bytes(t)))
    return Quota(
        cpu_hard_millis=min(cpu_hard, default=0),
        cpu_used_millis=max(cpu_used, default=0),
        memory_hard_mb=min(mem_hard, default=0),
        memory_used_mb=max(mem_used, default=0),
    )
