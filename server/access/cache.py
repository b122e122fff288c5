"""NovaSphere's access Services and the cluster's Nodes, mirrored by two informers: what a Wukong's list item and
detail show (its exposed ports and the addresses to reach them) without a call per request."""

from __future__ import annotations

import datetime
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from server import timestamps
from server.kube import services
from server.kube.informer import Kind

SELECTOR_LABEL = "vm.kubevirt.io/name"
"""KubeVirt's label on a VM's launcher pod (value: the VM's name), which an access Service selects."""
WUKONG_LABEL = "api.novasphere.dev/wukong"

Raw = Mapping[str, Any]


@dataclass(frozen=True)
class ExposedPort:
    name: str
    protocol: str
    port: int
    target_port: int
    node_port: int
    access_addr: str


@dataclass(frozen=True)
class ExposedService:
    name: str
    type: str
    ports: tuple[ExposedPort, ...]
    pending: bool
    create_time: datetime.datetime | None
    uid: str


class AccessCache:
    def __init__(self) -> None:
        self._services: dict[tuple[str, str], Raw] = {}
        self._by_wukong: defaultdict[tuple[str, str], set[str]] = defaultdict(set)
        self._nodes: dict[str, Raw] = {}
        self._synced: set[str] = set()

    @property
    def synced(self) -> bool:
        return self._synced >= {services.SERVICES.name, services.NODES.name}

    def of_wukong(self, namespace: str, name: str) -> list[ExposedService]:
        """The Wukong's access Services, by name."""
        node_address = self.node_address()
        found = [self._services.get((namespace, s)) for s in sorted(self._by_wukong.get((namespace, name), ()))]
        return [exposed(raw, node_address) for raw in found if raw is not None]

    def node_address(self) -> str:
        """The address a node port is reached at: the first Ready node's external address, else its internal one."""
        for name in sorted(self._nodes):
            status = self._nodes[name].get("status") or {}
            ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
            addresses = {a.get("type"): a.get("address") for a in status.get("addresses") or []}
            address = addresses.get("ExternalIP") or addresses.get("InternalIP")
            if ready and address:
                return str(address)
        return ""

    # -- informer.Handler

    def replace(self, kind: Kind, items: list[dict[str, Any]], resource_version: int) -> None:
        if kind.name == services.NODES.name:
            self._nodes = {item["metadata"]["name"]: item for item in items}
        else:
            self._services.clear()
            self._by_wukong.clear()
            for item in items:
                self._put(item)
        self._synced.add(kind.name)

    def apply(self, kind: Kind, event_type: str, item: dict[str, Any], resource_version: int) -> None:
        if kind.name == services.NODES.name:
            if event_type == "DELETED":
                self._nodes.pop(item["metadata"]["name"], None)
            else:
                self._nodes[item["metadata"]["name"]] = item
        elif event_type == "DELETED":
            self._remove(item)
        else:
            self._put(item)

    def progress(self, kind: Kind, resource_version: int) -> None:
        """Bookmarks carry nothing this cache needs."""

    def _put(self, item: Raw) -> None:
        metadata = item["metadata"]
        self._services[(metadata["namespace"], metadata["name"])] = item
        wukong = (metadata.get("labels") or {}).get(WUKONG_LABEL)
        if wukong:
            self._by_wukong[(metadata["namespace"], wukong)].add(metadata["name"])

    def _remove(self, item: Raw) -> None:
        metadata = item["metadata"]
        self._services.pop((metadata["namespace"], metadata["name"]), None)
        wukong = (metadata.get("labels") or {}).get(WUKONG_LABEL)
        names = self._by_wukong.get((metadata["namespace"], wukong or ""))
        if names is not None:
            names.discard(metadata["name"])
            if not names:
                self._by_wukong.pop((metadata["namespace"], wukong or ""), None)


def exposed(raw: Raw, node_address: str) -> ExposedService:
    """What a client needs of a Service: its ports and where to reach each from outside the cluster."""
    spec, status = raw.get("spec") or {}, raw.get("status") or {}
    service_type = str(spec.get("type") or "")
    ingress = (status.get("loadBalancer") or {}).get("ingress") or []
    lb_address = str((ingress[0].get("ip") or ingress[0].get("hostname") or "") if ingress else "")
    ports = []
    for port in spec.get("ports") or []:
        node_port = int(port.get("nodePort") or 0)
        if service_type == "LoadBalancer":
            address = f"{lb_address}:{port.get('port')}" if lb_address else ""
        else:
            address = f"{node_address}:{node_port}" if node_address and node_port else ""
        target = port.get("targetPort", port.get("port"))
        ports.append(
            ExposedPort(
                name=str(port.get("name") or ""),
                protocol=str(port.get("protocol") or "TCP"),
                port=int(port.get("port") or 0),
                target_port=int(target) if isinstance(target, int) or str(target).isdigit() else 0,
                node_port=node_port,
                access_addr=address,
            )
        )
    return ExposedService(
        name=str(raw["metadata"]["name"]),
        type=service_type,
        ports=tuple(ports),
        pending=service_type == "LoadBalancer" and not lb_address,
        create_time=timestamps.parse(raw["metadata"].get("creationTimestamp")),
        uid=str(raw["metadata"].get("uid") or ""),
    )
