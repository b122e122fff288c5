"""Domain objects to protobuf messages (and back), field for field."""

from __future__ import annotations

import copy
import datetime
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

from google.protobuf import json_format, timestamp_pb2

from novasphere.v1 import wukong_pb2, wukong_service_pb2
from server import errors, quantity
from server.access.cache import ExposedService
from server.wukongs.actions import Action
from server.wukongs.cache import ChangeType, WukongState
from server.wukongs.commands import WukongInput, etag_of
from server.wukongs.detail import Detail, View
from server.wukongs.status import DerivedStatus

# Secrets in the CRD's spec that no response may carry (DESIGN §5).
_SECRET_USER_FIELDS = ("password", "passwordHash")
_INT32_MAX = 2**31 - 1


def wukong_to_pb(
    state: WukongState,
    actions: tuple[Action, ...],
    detail: Detail | None = None,
    exposed: Sequence[ExposedService] = (),
) -> wukong_pb2.Wukong:
    message = wukong_pb2.Wukong()
    message.CopyFrom(_converted(state))
    message.available_actions.extend(wukong_pb2.Wukong.Action.Value(action.value) for action in actions)
    message.service_info.extend(access_service_to_pb(service) for service in exposed)
    if detail is not None:
        message.detail.CopyFrom(detail_to_pb(detail))
        message.detail.access_services.extend(message.service_info)
    return message


_VIEWS: dict[int, View] = {
    wukong_service_pb2.WUKONG_VIEW_UNSPECIFIED: View.FULL,  # AIP-157: the default is what clients got before `view`
    wukong_service_pb2.WUKONG_VIEW_BASIC: View.BASIC,
    wukong_service_pb2.WUKONG_VIEW_FULL: View.FULL,
}


def view_of(value: int) -> View:
    """GetWukongRequest's `view`; a number this server does not know is refused rather than guessed."""
    view = _VIEWS.get(value)
    if view is None:
        raise errors.InvalidArgument.field("view", f"{value} is not a view: give WUKONG_VIEW_BASIC or WUKONG_VIEW_FULL")
    return view


def access_service_to_pb(service: ExposedService) -> wukong_pb2.AccessServiceInfo:
    message = wukong_pb2.AccessServiceInfo(
        name=service.name,
        service_type=service.type,
        pending=service.pending,
        ports=[wukong_pb2.AccessPort(**vars(port)) for port in service.ports],
    )
    set_time(message.create_time, service.create_time)
    return message


# States are immutable, so each is converted once, however many pages and watch groups show it; an entry goes when
# its state does.
_CONVERTED: weakref.WeakKeyDictionary[WukongState, wukong_pb2.Wukong] = weakref.WeakKeyDictionary()


def _converted(state: WukongState) -> wukong_pb2.Wukong:
    message = _CONVERTED.get(state)
    if message is None:
        raw_status = state.wukong.get("status") or {}
        message = wukong_pb2.Wukong(
            name=state.name,
            namespace=state.namespace,
            uid=state.uid,
            labels=dict(state.labels),
            etag=etag_of(state.wukong),
            spec=spec_to_pb(state.wukong.get("spec") or {}),
            operator_status=wukong_pb2.OperatorStatus(
                phase=str(raw_status.get("phase", "")),
                vm_name=str(raw_status.get("vmName", "")),
                node_name=str(raw_status.get("nodeName", "")),
            ),
            status=status_to_pb(state.status),
            cursor=str(state.cursor),
        )
        set_time(message.create_time, state.create_time)
        _CONVERTED[state] = message
    return message


def status_to_pb(status: DerivedStatus) -> wukong_pb2.WukongStatus:
    message = wukong_pb2.WukongStatus(
        power_state=wukong_pb2.WukongStatus.PowerState.Value(status.power_state.value),
        printable_status=status.printable_status,
        message=status.message,
        node=status.node,
        interfaces=[
            wukong_pb2.InterfaceStatus(
                name=i.name,
                ip_address=i.ip_address,
                ip_addresses=list(i.ip_addresses),
                mac=i.mac,
                interface_name=i.interface_name,
            )
            for i in status.interfaces
        ],
        cpu=saturated(status.cpu),
        memory_mb=saturated(quantity.to_mib(status.memory_bytes)),
        image=status.image,
        restart_required=status.restart_required,
        ready=status.ready,
        guest_os=status.guest_os,
    )
    set_time(message.start_time, status.start_time)
    return message


def detail_to_pb(detail: Detail) -> wukong_pb2.WukongDetail:
    message = wukong_pb2.WukongDetail(
        disks=[wukong_pb2.DiskInfo(**vars(disk)) for disk in detail.disks],
        networks=[wukong_pb2.NetworkInfo(**vars(network)) for network in detail.networks],
        console=wukong_pb2.ConsoleInfo(protocols=list(detail.console_protocols), available=detail.console_available),
    )
    for event in detail.events:
        info = message.events.add(
            type=event.type,
            reason=event.reason,
            message=event.message,
            object_kind=event.object_kind,
            object_name=event.object_name,
            count=event.count,
            source=event.source,
        )
        set_time(info.last_time, event.last_time)
    return message


def event_to_pb(
    change_type: ChangeType,
    state: WukongState,
    cursor: int,
    actions: tuple[Action, ...],
    exposed: Sequence[ExposedService],
) -> bytes:
    event = wukong_pb2.WukongEvent(
        type=wukong_pb2.WukongEvent.Type.Value(change_type.value),
        wukong=wukong_to_pb(state, actions, exposed=exposed),
        cursor=str(cursor),
    )
    return event.SerializeToString()


def spec_to_pb(raw_spec: Mapping[str, Any]) -> wukong_pb2.WukongSpec:
    """The CRD's JSON field names are the proto's JSON names, so the spec converts directly; fields the proto does
    not model (`tolerationSeconds`, which vmoperator drops anyway) are skipped, secrets removed."""
    spec = copy.deepcopy(dict(raw_spec))
    user = spec.get("cloudInitUser")
    if isinstance(user, dict):
        for field in _SECRET_USER_FIELDS:
            user.pop(field, None)
    return json_format.ParseDict(spec, wukong_pb2.WukongSpec(), ignore_unknown_fields=True)


def wukong_input(message: wukong_pb2.Wukong) -> WukongInput:
    """The writable fields of a request's Wukong, the spec as the CRD's JSON (proto3 JSON leaves defaults out, as the
    CRD's `omitempty` does)."""
    spec: dict[str, Any] = json_format.MessageToDict(message.spec)
    user = spec.get("cloudInitUser")
    if isinstance(user, dict):
        for field in _SECRET_USER_FIELDS:
            if user.get(field) == "":  # set but empty (they are `optional`): no secret, as when absent
                del user[field]
    return WukongInput(name=message.name, labels=dict(message.labels), spec=spec)


def set_time(field: timestamp_pb2.Timestamp, value: datetime.datetime | None) -> None:
    """Whole seconds, for every Timestamp the API sends: protobuf JSON prints 0, 3, 6 or 9 fractional digits as the
    nanos happen to fall, so only whole seconds render the same way every time (Kubernetes' own are whole already)."""
    if value is not None:
        field.FromDatetime(value.replace(microsecond=0))


def saturated(value: int) -> int:
    """An int32 field's value, capped at 2^31-1: JSON keeps int32 a number a mobile client can hold, and only a
    Kubernetes quantity far beyond any cluster (2 PiB as MiB, 2 million cores as millicores) would be larger."""
    return min(value, _INT32_MAX)
