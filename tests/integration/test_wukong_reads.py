"""ListWukongs / GetWukong over native gRPC, straight to the API server, against Wukongs in the real kube-apiserver."""

from __future__ import annotations

from typing import Any

import grpc
import kubernetes.client
import pytest

from novasphere.v1 import wukong_pb2
from novasphere.v1 import wukong_service_pb2 as service_pb2
from novasphere.v1.wukong_service_pb2_grpc import WukongServiceStub
from tests import kube_helpers
from tests.conftest import TENANT_LABELS
from tests.status_helpers import details_of

FULL_SPEC = {
    "cpu": 4,
    "memory": "8Gi",
    "osImage": "ubuntu-22.04",
    "sshKeySecret": "ssh-keys",
    "cloudInitUser": {
        "name": "ubuntu",
        "passwordHash": "$6$rounds=4096$salt$hash",
        "shell": "/bin/zsh",
        "groups": ["wheel"],
        "lockPasswd": True,
    },
    "networks": [
        {
            "name": "storage",
            "type": "bridge",
            "vlanId": 42,
            "bridgeName": "br-storage",
            "ipConfig": {
                "mode": "static",
                "address": "192.0.2.10/24",
                "gateway": "192.0.2.1",
                "dnsServers": ["192.0.2.53"],
            },
        }
    ],
    "disks": [
        {"name": "root", "size": "20Gi", "storageClassName": "local-path", "boot": True, "image": "docker://img:1"},
        {"name": "data", "size": "100Gi", "storageClassName": "local-path"},
    ],
    "highAvailability": {
        "restartPolicy": "Always",
        "antiAffinity": True,
        "nodeSelector": {"zone": "a"},
        "tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule", "tolerationSeconds": 30}],
    },
    "startStrategy": {"runStrategy": "Manual", "autoStart": False},
}


def test_get_returns_every_spec_field_and_the_metadata(
    grpc_direct: WukongServiceStub, kube: kubernetes.client.ApiClient, namespace: str
) -> None:
    created = kube_helpers.create_wukong(kube, namespace, "full", FULL_SPEC, labels={"app": "db"})

    wukong = grpc_direct.GetWukong(
        service_pb2.GetWukongRequest(namespace=namespace, name="full", cursor=created["metadata"]["resourceVersion"])
    )

    assert (wukong.name, wukong.namespace, dict(wukong.labels)) == ("full", namespace, {"app": "db"})
    assert wukong.uid == created["metadata"]["uid"]
    # The etag follows what clients write (spec: generation 1, labels), not vmoperator's status writes.
    assert wukong.etag.startswith("1-")
    assert wukong.create_time.ToDatetime().isoformat() + "Z" == created["metadata"]["creationTimestamp"]
    spec = wukong.spec
    assert (spec.cpu, spec.memory, spec.os_image, spec.ssh_key_secret) == (4, "8Gi", "ubuntu-22.04", "ssh-keys")
    assert (spec.cloud_init_user.name, spec.cloud_init_user.shell, list(spec.cloud_init_user.groups)) == (
        "ubuntu",
        "/bin/zsh",
        ["wheel"],
    )
    assert spec.cloud_init_user.lock_passwd is True
    network = spec.networks[0]
    assert (network.name, network.type, network.vlan_id, network.bridge_name) == ("storage", "bridge", 42, "br-storage")
    assert (network.ip_config.mode, network.ip_config.address, list(network.ip_config.dns_servers)) == (
        "static",
        "192.0.2.10/24",
        ["192.0.2.53"],
    )
    assert [(d.name, d.size, d.boot, d.image) for d in spec.disks] == [
        ("root", "20Gi", True, "docker://img:1"),
        ("data", "100Gi", False, ""),
    ]
    assert dict(spec.high_availability.node_selector) == {"zone": "a"}
    assert spec.high_availability.tolerations[0].key == "gpu"
    assert spec.start_strategy.HasField("auto_start")
    assert spec.start_strategy.auto_start is False
    assert spec.start_strategy.run_strategy == "Manual"


def test_no_response_carries_a_password_hash(
    grpc_direct: WukongServiceStub, kube: kubernetes.client.ApiClient, namespace: str
) -> None:
    cursor = kube_helpers.create_wukong(kube, namespace, "secret", FULL_SPEC)["metadata"]["resourceVersion"]

    got = grpc_direct.GetWukong(service_pb2.GetWukongRequest(namespace=namespace, name="secret", cursor=cursor))
    listed = grpc_direct.ListWukongs(service_pb2.ListWukongsRequest(namespace=namespace))

    for user in (got.spec.cloud_init_user, listed.wukongs[0].spec.cloud_init_user):
        assert (user.name, user.HasField("password_hash"), user.HasField("password")) == ("ubuntu", False, False)
    assert b"$6$" not in got.SerializeToString() + listed.SerializeToString()


def test_auto_start_absent_is_distinguishable_from_false(
    grpc_direct: WukongServiceStub, kube: kubernetes.client.ApiClient, namespace: str
) -> None:
    kube_helpers.create_wukong(kube, namespace, "plain")
    created = kube_helpers.create_wukong(
        kube, namespace, "empty-strategy", {**kube_helpers.MINIMAL_SPEC, "startStrategy": {}}
    )
    cursor = created["metadata"]["resourceVersion"]

    plain = grpc_direct.GetWukong(service_pb2.GetWukongRequest(namespace=namespace, name="plain", cursor=cursor))
    empty = grpc_direct.GetWukong(
        service_pb2.GetWukongRequest(namespace=namespace, name="empty-strategy", cursor=cursor)
    )

    assert not plain.spec.HasField("start_strategy")
    assert empty.spec.HasField("start_strategy")
    assert not empty.spec.start_strategy.HasField("auto_start")


def test_operator_status_is_reported_as_stored(
    grpc_direct: WukongServiceStub, kube: kubernetes.client.ApiClient, namespace: str
) -> None:
    kube_helpers.create_wukong(kube, namespace, "w")

    def running() -> Any:
        listed = grpc_direct.ListWukongs(service_pb2.ListWukongsRequest(namespace=namespace)).wukongs
        return listed[0].operator_status if listed and listed[0].operator_status.phase == "Running" else None

    status = kube_helpers.eventually(running, what="the simulated vmoperator to report Running")
    assert status.vm_name == "w-vm"
    assert status.node_name.startswith("sim-node-")


def test_the_basic_view_is_the_wukong_with_its_status_and_no_detail(
    grpc_direct: WukongServiceStub, kube: kubernetes.client.ApiClient, namespace: str
) -> None:
    disks = [
        {"name": "root", "size": "1Gi", "storageClassName": "local-path"},
        {"name": "data", "size": "2Gi", "storageClassName": "sim-expandable"},
    ]
    created = kube_helpers.create_wukong(kube, namespace, "viewed", {**kube_helpers.MINIMAL_SPEC, "disks": disks})
    cursor = created["metadata"]["resourceVersion"]  # read-your-writes: the informer may not have seen it yet

    def get(view: service_pb2.WukongView.ValueType) -> wukong_pb2.Wukong:
        request = service_pb2.GetWukongRequest(namespace=namespace, name="viewed", view=view, cursor=cursor)
        return grpc_direct.GetWukong(request)

    def full_with_events() -> wukong_pb2.Wukong | None:
        wukong = get(service_pb2.WUKONG_VIEW_UNSPECIFIED)
        running = wukong.status.power_state == wukong_pb2.WukongStatus.RUNNING
        bound = all(d.claim_phase == "Bound" for d in wukong.detail.disks)
        return wukong if running and bound and wukong.detail.events else None

    unspecified = kube_helpers.eventually(full_with_events, what="viewed running, its claims bound, with Events")
    basic, full = get(service_pb2.WUKONG_VIEW_BASIC), get(service_pb2.WUKONG_VIEW_FULL)

    # BASIC: the Wukong and its derived status as lists show it, and no detail at all.
    assert not basic.HasField("detail")
    assert (basic.name, basic.uid, basic.etag) == ("viewed", unspecified.uid, unspecified.etag)
    assert basic.status.power_state == wukong_pb2.WukongStatus.RUNNING
    assert basic.status.node.startswith("sim-node-")
    assert [d.name for d in basic.spec.disks] == ["root", "data"]
    assert wukong_pb2.Wukong.Action.STOP in basic.available_actions

    def as_listed() -> bool:  # two reads: retried in case the simulator changed the VM between them
        (listed,) = grpc_direct.ListWukongs(service_pb2.ListWukongsRequest(namespace=namespace)).wukongs
        return get(service_pb2.WUKONG_VIEW_BASIC) == listed

    kube_helpers.eventually(as_listed, what="GetWukong's basic view to be the Wukong as ListWukongs shows it")
    # FULL, and UNSPECIFIED (what clients sent before `view` existed): the detail, StorageClasses from the informer.
    for wukong in (full, unspecified):
        disks_seen = [(d.name, d.claim_name, d.claim_phase, d.expandable) for d in wukong.detail.disks]
        assert disks_seen == [("root", "viewed-root", "Bound", False), ("data", "viewed-data", "Bound", True)]
        assert wukong.detail.console.available
        assert [n.name for n in wukong.detail.networks] == ["default"]
    assert any(e.object_kind == "VirtualMachine" for e in full.detail.events)


def test_get_missing_is_not_found_with_reason_and_resource(grpc_direct: WukongServiceStub, namespace: str) -> None:
    with pytest.raises(grpc.RpcError) as raised:
        grpc_direct.GetWukong(service_pb2.GetWukongRequest(namespace=namespace, name="nope"))

    assert raised.value.code() is grpc.StatusCode.NOT_FOUND
    details = details_of(raised.value)
    assert (details.reason, details.domain) == ("WUKONG_NOT_FOUND", "novasphere.dev")
    assert details.resource_name == f"namespaces/{namespace}/wukongs/nope"
    assert "nope" in details.message
    assert namespace in details.message


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (service_pb2.GetWukongRequest(name=""), "name"),
        (service_pb2.GetWukongRequest(name="Not_A_Name"), "name"),
        (service_pb2.GetWukongRequest(name="x" * 41), "name"),
        (service_pb2.GetWukongRequest(name="ok", namespace="Bad/Namespace"), "namespace"),
        (service_pb2.GetWukongRequest(name="ok", view=7), "view"),  # type: ignore[arg-type]  # a newer client's
    ],
)
def test_get_rejects_malformed_names(
    grpc_direct: WukongServiceStub, request_: service_pb2.GetWukongRequest, field: str
) -> None:
    with pytest.raises(grpc.RpcError) as raised:
        grpc_direct.GetWukong(request_)

    assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    details = details_of(raised.value)
    assert details.reason == "INVALID_ARGUMENT"
    assert field in details.field_violations


def test_list_pages_through_a_namespace_in_name_order(
    grpc_direct: WukongServiceStub, kube: kubernetes.client.ApiClient, namespace: str
) -> None:
    names = [f"vm-{i}" for i in range(5)]
    for name in reversed(names):
        cursor = kube_helpers.create_wukong(kube, namespace, name)["metadata"]["resourceVersion"]

    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        page = grpc_direct.ListWukongs(
            service_pb2.ListWukongsRequest(namespace=namespace, page_size=2, page_token=token, cursor=cursor)
        )
        pages += 1
        assert len(page.wukongs) <= 2
        seen += [w.name for w in page.wukongs]
        token = page.next_page_token
        if not token:
            break

    assert seen == names
    assert pages == 3


def test_list_without_namespace_spans_namespaces(
    grpc_direct: WukongServiceStub, kube: kubernetes.client.ApiClient, namespace: str
) -> None:
    other = f"{namespace}-b"
    kube_helpers.create_namespace(kube, other, TENANT_LABELS)
    try:
        kube_helpers.create_wukong(kube, namespace, "a")
        cursor = kube_helpers.create_wukong(kube, other, "b")["metadata"]["resourceVersion"]

        listed = grpc_direct.ListWukongs(service_pb2.ListWukongsRequest(page_size=500, cursor=cursor))

        found = {(w.namespace, w.name) for w in listed.wukongs}
        assert {(namespace, "a"), (other, "b")} <= found
    finally:
        kube_helpers.delete_namespace(kube, other)


@pytest.mark.parametrize("page_size", [-1, 501, 10_000])
def test_list_refuses_page_sizes_out_of_range(grpc_direct: WukongServiceStub, page_size: int) -> None:
    with pytest.raises(grpc.RpcError) as raised:
        grpc_direct.ListWukongs(service_pb2.ListWukongsRequest(page_size=page_size))

    assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "500" in details_of(raised.value).field_violations["page_size"]


def test_list_refuses_a_page_token_from_other_filters(
    grpc_direct: WukongServiceStub, kube: kubernetes.client.ApiClient, namespace: str
) -> None:
    for name in ("a", "b"):
        cursor = kube_helpers.create_wukong(kube, namespace, name)["metadata"]["resourceVersion"]
    first = service_pb2.ListWukongsRequest(namespace=namespace, page_size=1, cursor=cursor)
    token = grpc_direct.ListWukongs(first).next_page_token
    assert token

    with pytest.raises(grpc.RpcError) as raised:
        grpc_direct.ListWukongs(
            service_pb2.ListWukongsRequest(namespace=namespace, page_size=1, page_token=token, name_like="a")
        )

    assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "page_token" in details_of(raised.value).field_violations


def test_list_refuses_a_forged_page_token(grpc_direct: WukongServiceStub) -> None:
    with pytest.raises(grpc.RpcError) as raised:
        grpc_direct.ListWukongs(service_pb2.ListWukongsRequest(page_token="not-a-token"))

    assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "page_token" in details_of(raised.value).field_violations


def test_deleting_a_namespace_deletes_its_wukongs(
    grpc_direct: WukongServiceStub, kube: kubernetes.client.ApiClient
) -> None:
    """kube-controller-manager's namespace controller really runs: the namespace and everything in it goes."""
    doomed = "t-doomed"
    kube_helpers.create_namespace(kube, doomed, TENANT_LABELS)
    for name in ("a", "b", "c"):
        cursor = kube_helpers.create_wukong(kube, doomed, name)["metadata"]["resourceVersion"]
    listed = grpc_direct.ListWukongs(service_pb2.ListWukongsRequest(namespace=doomed, cursor=cursor))
    assert len(listed.wukongs) == 3

    kube_helpers.delete_namespace(kube, doomed)

    kube_helpers.eventually(lambda: not kube_helpers.namespace_exists(kube, doomed), what="the namespace to go")
    everything = grpc_direct.ListWukongs(service_pb2.ListWukongsRequest(page_size=500))
    assert doomed not in {w.namespace for w in everything.wukongs}
    with pytest.raises(grpc.RpcError) as raised:
        grpc_direct.ListWukongs(service_pb2.ListWukongsRequest(namespace=doomed))
    assert raised.value.code() is grpc.StatusCode.NOT_FOUND
