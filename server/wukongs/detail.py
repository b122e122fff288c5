"""What GetWukong adds to a Wukong: its disks' claims, networks, consoles and recent Events (the full view).

Everything comes from this replica's caches (`detail_sources`): a detail page costs no call to kube-apiserver.
"""

from __future__ import annotations

import datetime
import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from server import timestamps
from server.kube import kubevirt
from server.wukongs.cache import WukongState
from server.wukongs.detail_sources import DetailSources, StorageClasses
from server.wukongs.status import PowerState

CONSOLE_PROTOCOLS = ("vnc", "serial")
MAX_EVENTS = 50
_CONSOLE_STATES = frozenset({PowerState.RUNNING, PowerState.PAUSED, PowerState.MIGRATING})
Raw = Mapping[str, Any]


class View(enum.Enum):
    """How much GetWukong returns (AIP-157)."""

    BASIC = "basic"
    """The Wukong as the cache holds it, with its derived status and no detail: no call to kube-apiserver."""
    FULL = "full"
    """With its `Detail`."""


@dataclass(frozen=True)
class DiskInfo:
    name: str
    claim_name: str
    claim_phase: str
    requested_size: str
    claim_requested_size: str
    capacity: str
    storage_class_name: str
    expandable: bool
    image: str


@dataclass(frozen=True)
class NetworkInfo:
    name: str
    type: str
    nad_name: str
    ip_address: str
    mac: str


@dataclass(frozen=True)
class EventInfo:
    type: str
    reason: str
    message: str
    object_kind: str
    object_name: str
    count: int
    last_time: datetime.datetime | None
    source: str


@dataclass(frozen=True)
class Detail:
    disks: tuple[DiskInfo, ...]
    networks: tuple[NetworkInfo, ...]
    console_protocols: tuple[str, ...]
    console_available: bool
    events: tuple[EventInfo, ...]


def claim_name(wukong: str, disk: str) -> str:
    """vmoperator's claim (or DataVolume) name for a disk (reference/wukong.md §4)."""
    return f"{wukong}-{disk}"


def of(sources: DetailSources, state: WukongState) -> Detail:
    disks_spec = [d for d in (state.wukong.get("spec") or {}).get("disks") or [] if isinstance(d, Mapping)]
    return Detail(
        disks=tuple(
            _disk(d, sources.claims.get(state.namespace, claim_name(state.name, d["name"])), sources.storage_classes)
            for d in disks_spec
        ),
        networks=_networks(state),
        console_protocols=CONSOLE_PROTOCOLS,
        console_available=state.status.power_state in _CONSOLE_STATES,
        events=_events(
            [
                *sources.events.about(state.namespace, state.name),
                *sources.events.about(state.namespace, kubevirt.vm_name(state.name)),
            ]
        ),
    )


def _disk(spec: Raw, claim: Raw | None, classes: StorageClasses) -> DiskInfo:
    class_name = str(spec.get("storageClassName") or "")
    claim = claim or {}
    return DiskInfo(
        name=str(spec.get("name") or ""),
        claim_name=str((claim.get("metadata") or {}).get("name") or ""),
        claim_phase=str((claim.get("status") or {}).get("phase") or ("Missing" if not claim else "")),
        requested_size=str(spec.get("size") or ""),
        claim_requested_size=str(
            (((claim.get("spec") or {}).get("resources") or {}).get("requests") or {}).get("storage") or ""
        ),
        capacity=str(((claim.get("status") or {}).get("capacity") or {}).get("storage") or ""),
        storage_class_name=class_name,
        expandable=classes.expandable(class_name),
        image=str(spec.get("image") or ""),
    )


def _networks(state: WukongState) -> tuple[NetworkInfo, ...]:
    by_name = {i.name: i for i in state.status.interfaces}
    pod_network = by_name.get("default")
    networks = [
        NetworkInfo(
            "default", "pod", "", pod_network.ip_address if pod_network else "", pod_network.mac if pod_network else ""
        )
    ]
    operator_networks = {
        n.get("name"): n for n in (state.wukong.get("status") or {}).get("networks") or [] if isinstance(n, Mapping)
    }
    for network in (state.wukong.get("spec") or {}).get("networks") or []:
        name = str(network.get("name") or "")
        interface = by_name.get(name)
        networks.append(
            NetworkInfo(
                name=name,
                type=str(network.get("type") or ""),
                nad_name=str(network.get("nadName") or (operator_networks.get(name) or {}).get("nadName") or ""),
                ip_address=interface.ip_address if interface else "",
                mac=interface.mac if interface else "",
            )
        )
    return tuple(networks)


def _events(raw_events: list[Raw]) -> tuple[EventInfo, ...]:
    infos = [
        EventInfo(
            type=str(e.get("type") or ""),
            reason=str(e.get("reason") or ""),
            message=str(e.get("message") or ""),
            object_kind=str((e.get("involvedObject") or {}).get("kind") or ""),
            object_name=str((e.get("involvedObject") or {}).get("name") or ""),
            count=int(e.get("count") or 1),
            last_time=timestamps.parse(
                e.get("lastTimestamp") or e.get("eventTime") or (e.get("metadata") or {}).get("creationTimestamp")
            ),
            source=str((e.get("source") or {}).get("component") or e.get("reportingComponent") or ""),
        )
        for e in raw_events
    ]
    epoch = datetime.datetime.min.replace(tzinfo=datetime.UTC)
    infos.sort(key=lambda info: info.last_time or epoch, reverse=True)
    return tuple(infos[:MAX_EVENTS])
