"""Domain objects to protobuf messages (and back), field for field."""

from __future__ import annotations

import copy
from typing import Any

from google.protobuf import json_format

from novasphere.v1 import wukong_pb2
from server.kube.wukongs import WukongObject

# Secrets in the CRD's spec that no response may carry (DESIGN §5).
_SECRET_USER_FIELDS = ("password", "passwordHash")


def wukong_to_pb(wukong: WukongObject) -> wukong_pb2.Wukong:
    message = wukong_pb2.Wukong(
        name=wukong.name,
        namespace=wukong.namespace,
        uid=wukong.uid,
        labels=dict(wukong.labels),
        etag=wukong.resource_version,
        spec=spec_to_pb(wukong.raw_spec),
        operator_status=wukong_pb2.OperatorStatus(
            phase=str(wukong.raw_status.get("phase", "")),
            vm_name=str(wukong.raw_status.get("vmName", "")),
            node_name=str(wukong.raw_status.get("nodeName", "")),
        ),
    )
    if wukong.create_time is not None:
        message.create_time.FromDatetime(wukong.create_time)
    return message


def spec_to_pb(raw_spec: Any) -> wukong_pb2.WukongSpec:
    """The CRD's JSON field names are the proto's JSON names, so the spec converts directly; fields the proto does
    not model (`tolerationSeconds`, which vmoperator drops anyway) are skipped, secrets removed."""
    spec = copy.deepcopy(dict(raw_spec))
    user = spec.get("cloudInitUser")
    if isinstance(user, dict):
        for field in _SECRET_USER_FIELDS:
            user.pop(field, None)
    return json_format.ParseDict(spec, wukong_pb2.WukongSpec(), ignore_unknown_fields=True)
