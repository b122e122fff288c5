"""WukongService end to end: create, read, list, update and watch through native gRPC, REST and SSE via Envoy, and
gRPC-Web with an independent client (Connect's gRPC-Web transport under Node), against the real kube-apiserver and
the simulator; with a second API process where a behaviour must hold on any replica."""

from __future__ import annotations

import concurrent.futures
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import kubernetes.client
import pytest
from google.protobuf import field_mask_pb2

from devcluster import stack as devstack
from novasphere.v1 import wukong_pb2
from novasphere.v1 import wukong_service_pb2 as service_pb2
from novasphere.v1.wukong_service_pb2_grpc import WukongServiceStub
from server.kube import wukongs as kube_wukongs
from server.wukongs.passwords import hash_password
from tests import grpc_web_node, kube_helpers
from tests.conftest import TENANT_LABELS, api_process
from tests.kubectl import Kubectl
from tests.status_helpers import details_of, details_of_status
from tests.watching import Collector, PowerState, Type, grpc_watch, is_event, rest_json, sse_watch

ROOT_DISK = {"name": "root", "size": "1Gi", "storageClassName": "local-path"}
SPEC: dict[str, Any] = {"cpu": 1, "memory": "1Gi", "disks": [ROOT_DISK]}
Action = wukong_pb2.Wukong.Action


@pytest.fixture
def http(stack: devstack.Stack) -> Iterator[httpx.Client]:
    with stack.edge.http_client() as client:
        yield client


@pytest.fixture(scope="module")
def kubectl(stack: devstack.Stack) -> Kubectl:
    return Kubectl(stack.cluster.kubeconfig, "default")


def create(stub: WukongServiceStub, namespace: str, name: str, **spec: Any) -> wukong_pb2.Wukong:
    wukong = wukong_pb2.Wukong(name=name)
    wukong.spec.MergeFrom(kube_helpers_spec({**SPEC, **spec}))
    return stub.CreateWukong(service_pb2.CreateWukongRequest(namespace=namespace, wukong=wukong))


def kube_helpers_spec(spec: dict[str, Any]) -> wukong_pb2.WukongSpec:
    from google.protobuf import json_format

    return json_format.ParseDict(spec, wukong_pb2.WukongSpec())


def stored(kube: kubernetes.client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    raw = kubernetes.client.CustomObjectsApi(kube).get_namespaced_custom_object(
        kube_wukongs.GROUP, kube_wukongs.VERSION, namespace, kube_wukongs.PLURAL, name
    )
    assert isinstance(raw, dict)
    return raw


# -- the whole life of a VM, seen through every door


def test_create_watch_update_vmi_change_and_delete_through_every_door(
    stack: devstack.Stack,
    grpc_envoy: WukongServiceStub,
    second_api: WukongServiceStub,
    http: httpx.Client,
    kube: kubernetes.client.ApiClient,
    kubectl: Kubectl,
    namespace: str,
) -> None:
    grpc_events = grpc_watch(grpc_envoy, service_pb2.WatchWukongRequest(namespace=namespace))
    sse_events = sse_watch(stack.edge, "/api/v1/watch/wukongs", {"namespace": namespace})
    watches = (grpc_events, sse_events)
    try:
        for events in watches:
            events.wait_for(is_event(Type.BOOKMARK), what="the initial BOOKMARK")

        # Create over REST: the password is hashed before it is stored, and never returned.
        body = {
            "name": "life",
            "labels": {"app": "demo"},
            "spec": {**SPEC, "cloudInitUser": {"name": "ada", "password": "correct horse"}},
        }
        created = http.post("/api/v1/wukongs", params={"namespace": namespace}, json=body)
        assert created.status_code == 200, created.text
        wukong = rest_json(created)
        user = wukong["spec"]["cloudInitUser"]
        assert {"password", "passwordHash"} & set(user) == set()  # not even ""
        assert "correct horse" not in created.text
        assert wukong["spec"]["startStrategy"]["autoStart"] is True  # the API's explicit default
        password_hash = stored(kube, namespace, "life")["spec"]["cloudInitUser"]["passwordHash"]
        salt = password_hash.split("$")[2]
        assert password_hash == hash_password("correct horse", salt=salt)
        assert "password" not in stored(kube, namespace, "life")["spec"]["cloudInitUser"]

        # Read-your-writes on another replica: the create's cursor makes the read wait until it has the Wukong.
        again = second_api.GetWukong(
            service_pb2.GetWukongRequest(namespace=namespace, name="life", cursor=wukong["cursor"])
        )
        assert again.uid == wukong["uid"]

        for events in watches:
            events.wait_for(is_event(Type.ADDED, "life"), what="ADDED life")
            running = events.wait_for(
                is_event(Type.MODIFIED, "life", PowerState.RUNNING), what="life RUNNING", timeout=90
            )
        status = running.wukong.status
        assert status.node.startswith("sim-node-")
        assert status.interfaces[0].ip_address.startswith("127.")
        assert (status.cpu, status.memory_mb, status.ready) == (1, 1024, True)
        assert Action.STOP in running.wukong.available_actions
        assert Action.START not in running.wukong.available_actions

        # Update over gRPC with the etag just read: the VM now needs a restart to get its second core.
        current = grpc_envoy.GetWukong(service_pb2.GetWukongRequest(namespace=namespace, name="life"))
        change = wukong_pb2.Wukong(name="life", namespace=namespace, etag=current.etag)
        change.spec.cpu = 2
        updated = grpc_envoy.UpdateWukong(
            service_pb2.UpdateWukongRequest(wukong=change, update_mask=field_mask_pb2.FieldMask(paths=["spec.cpu"]))
        )
        assert (updated.spec.cpu, updated.spec.memory, updated.spec.cloud_init_user.name) == (2, "1Gi", "ada")
        assert stored(kube, namespace, "life")["spec"]["cloudInitUser"]["passwordHash"] == password_hash
        for events in watches:
            events.wait_for(
                lambda e: e.wukong.name == "life" and e.wukong.status.restart_required, what="restartRequired"
            )

        # A change made only on the VMI (KubeVirt's pause subresource): the Wukong itself does not change.
        paused_call = kubectl.raw(
            "replace", f"/apis/subresources.kubevirt.io/v1/namespaces/{namespace}/virtualmachineinstances/life-vm/pause"
        )
        assert paused_call.returncode == 0, paused_call.stderr
        for events in watches:
            paused = events.wait_for(is_event(Type.MODIFIED, "life", PowerState.PAUSED), what="life PAUSED")
        assert Action.RESUME in paused.wukong.available_actions

        # gRPC-Web, as a browser library speaks it: the detail read and the watch.
        got = grpc_web_node.call(
            stack.edge, "GetWukong", service_pb2.GetWukongRequest(namespace=namespace, name="life")
        )
        assert got.code == 0, got
        detail = got.messages[0]
        assert detail["status"]["powerState"] == "PAUSED"
        assert detail["detail"]["console"] == {"protocols": ["vnc", "serial"], "available": True}
        assert [d["claimName"] for d in detail["detail"]["disks"]] == ["life-root"]
        assert any(e["objectKind"] == "VirtualMachine" for e in detail["detail"]["events"])
        web_watch = grpc_web_node.call(
            stack.edge, "WatchWukong", service_pb2.WatchWukongRequest(namespace=namespace), max_messages=2
        )
        assert [(m["type"], m.get("wukong", {}).get("name")) for m in web_watch.messages] == [
            ("ADDED", "life"),
            ("BOOKMARK", None),
        ]

        # Deleted with kubectl: every watch gets DELETED.
        kubernetes.client.CustomObjectsApi(kube).delete_namespaced_custom_object(
            kube_wukongs.GROUP, kube_wukongs.VERSION, namespace, kube_wukongs.PLURAL, "life"
        )
        for events in watches:
            events.wait_for(is_event(Type.DELETED, "life"), what="DELETED life", timeout=90)
    finally:
        for events in watches:
            events.close()


# -- lists


def test_paging_sorting_and_filtering_over_200_wukongs_with_changes_between_pages(
    grpc_direct: WukongServiceStub, http: httpx.Client, kube: kubernetes.client.ApiClient, namespace: str
) -> None:
    for index in range(210):
        kube_helpers.create_wukong(
            kube,
            namespace,
            f"vm-{index:03d}",
            {**SPEC, "cpu": index % 7 + 1, "startStrategy": {"autoStart": False}},
            labels={"tier": ("web", "db", "cache")[index % 3]},
        )
    expected_all = {f"vm-{i:03d}": i % 7 + 1 for i in range(210)}
    wait_listed(grpc_direct, namespace, 210)

    # gRPC: cpu descending, web tier only, 25 a page; a Wukong deleted and others added between pages.
    request = service_pb2.ListWukongsRequest(
        namespace=namespace, page_size=25, sort_by="cpu", sort_order="desc", label_selector="tier=web"
    )
    seen: list[wukong_pb2.Wukong] = []
    page = grpc_direct.ListWukongs(request)
    assert (page.total, page.pages) == (70, 3)
    deleted: set[str] = set()
    added: list[str] = []
    while True:
        seen += page.wukongs
        if not page.next_page_token:
            break
        unseen = sorted({n for n, _ in expected_all.items() if int(n[3:]) % 3 == 0} - {w.name for w in seen} - deleted)
        kubernetes.client.CustomObjectsApi(kube).delete_namespaced_custom_object(
            kube_wukongs.GROUP, kube_wukongs.VERSION, namespace, kube_wukongs.PLURAL, unseen[0]
        )
        deleted.add(unseen[0])
        late = f"late-{len(added)}"
        created = kube_helpers.create_wukong(kube, namespace, late, {**SPEC, "cpu": 7}, labels={"tier": "web"})
        added.append(late)
        # The replica has seen both once it has the later one: a read with its cursor waits for that.
        cursor = created["metadata"]["resourceVersion"]
        grpc_direct.GetWukong(service_pb2.GetWukongRequest(namespace=namespace, name=late, cursor=cursor))
        request.page_token = page.next_page_token
        page = grpc_direct.ListWukongs(request)
    names = [w.name for w in seen]
    assert len(names) == len(set(names)), "a Wukong appeared twice"
    web = {n for n in expected_all if int(n[3:]) % 3 == 0}
    assert web - deleted <= set(names), "a Wukong present throughout was skipped"
    keys = [(w.status.cpu, w.name) for w in seen]
    assert keys == sorted(keys, key=lambda k: (-k[0], _reverse(k[1])))

    # REST: a name filter and a page by number, against an independent computation.
    response = http.get(
        "/api/v1/wukongs",
        params={"namespace": namespace, "nameLike": "VM-1", "sortBy": "cpu", "pageSize": 20, "page": 2},
    )
    assert response.status_code == 200, response.text
    body = rest_json(response)
    matching = sorted((n for n in expected_all if "vm-1" in n and n not in deleted), key=lambda n: (expected_all[n], n))
    assert (body["total"], body["page"], body["pages"]) == (len(matching), 2, -(-len(matching) // 20))
    assert [w["name"] for w in body["wukongs"]] == matching[20:40]


def _reverse(name: str) -> str:
    """Descending order of names within one cpu value, as the API sorts (namespace, name) descending."""
    return "".join(chr(0x10FFFF - ord(c)) for c in name)


def wait_listed(stub: WukongServiceStub, namespace: str, count: int) -> None:
    kube_helpers.eventually(
        lambda: stub.ListWukongs(service_pb2.ListWukongsRequest(namespace=namespace, page_size=1)).total >= count,
        timeout=60,
        what=f"{count} Wukongs listed",
    )


# -- writes: validation, conflicts, idempotency, disks


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "Bad_Name", "spec": SPEC}, "name"),
        ({"name": "x", "spec": {**SPEC, "cpu": 65}}, "spec.cpu"),
        ({"name": "x", "spec": {**SPEC, "memory": "lots"}}, "spec.memory"),
        ({"name": "x", "spec": {**SPEC, "disks": []}}, "spec.disks"),
        ({"name": "x", "spec": {**SPEC, "disks": [{**ROOT_DISK, "size": "-1Gi"}]}}, "spec.disks[0].size"),
        (
            {"name": "x", "spec": {**SPEC, "disks": [{**ROOT_DISK, "storageClassName": "gold"}]}},
            "spec.disks[0].storageClassName",
        ),
        ({"name": "x", "spec": {**SPEC, "disks": [ROOT_DISK, ROOT_DISK]}}, "spec.disks[1].name"),
        ({"name": "x", "spec": {**SPEC, "networks": [{"name": "n", "type": "wifi"}]}}, "spec.networks[0].type"),
        (
            {"name": "x", "spec": {**SPEC, "cloudInitUser": {"name": "ada", "password": "short"}}},
            "spec.cloudInitUser.password",
        ),
        ({"name": "x", "labels": {"bad key!": "v"}, "spec": SPEC}, "labels[bad key!]"),
    ],
)
def test_every_invalid_create_is_a_400_naming_the_field_and_writes_nothing(
    http: httpx.Client, grpc_direct: WukongServiceStub, namespace: str, body: dict[str, Any], field: str
) -> None:
    response = http.post("/api/v1/wukongs", params={"namespace": namespace}, json=body)
    assert response.status_code == 400, response.text
    violations = {
        v["field"]: v["description"]
        for d in rest_json(response)["details"]
        if d["@type"].endswith("BadRequest")
        for v in d["fieldViolations"]
    }
    assert field in violations, violations
    assert grpc_direct.ListWukongs(service_pb2.ListWukongsRequest(namespace=namespace)).total == 0


def test_validate_only_checks_and_writes_nothing(
    http: httpx.Client, grpc_direct: WukongServiceStub, namespace: str
) -> None:
    response = http.post(
        "/api/v1/wukongs", params={"namespace": namespace, "validateOnly": "true"}, json={"name": "dry", "spec": SPEC}
    )
    assert response.status_code == 200, response.text
    assert rest_json(response)["status"]["powerState"] == "PROVISIONING"
    assert grpc_direct.ListWukongs(service_pb2.ListWukongsRequest(namespace=namespace)).total == 0


@pytest.mark.parametrize(
    ("mask", "field"),
    [("spec.colour", "updateMask"), ("name", "updateMask"), ("", "updateMask")],
)
def test_updates_refuse_bad_masks(
    http: httpx.Client, kube: kubernetes.client.ApiClient, namespace: str, mask: str, field: str
) -> None:
    kube_helpers.create_wukong(kube, namespace, "masked")
    params = {"wukong.namespace": namespace} | ({"updateMask": mask} if mask else {})
    response = http.patch("/api/v1/wukongs/masked", params=params, json={"spec": {"cpu": 2}})
    assert response.status_code == 400, response.text
    assert field in response.text


def test_a_stale_etag_is_a_conflict_and_changes_nothing(
    http: httpx.Client, grpc_direct: WukongServiceStub, kube: kubernetes.client.ApiClient, namespace: str
) -> None:
    cursor = kube_helpers.create_wukong(kube, namespace, "contended")["metadata"]["resourceVersion"]
    first = grpc_direct.GetWukong(service_pb2.GetWukongRequest(namespace=namespace, name="contended", cursor=cursor))
    change = wukong_pb2.Wukong(name="contended", namespace=namespace, etag=first.etag)
    change.labels["owner"] = "a"
    grpc_direct.UpdateWukong(
        service_pb2.UpdateWukongRequest(wukong=change, update_mask=field_mask_pb2.FieldMask(paths=["labels"]))
    )

    change.labels["owner"] = "b"  # still the first etag
    with pytest.raises(grpc.RpcError) as raised:
        grpc_direct.UpdateWukong(
            service_pb2.UpdateWukongRequest(wukong=change, update_mask=field_mask_pb2.FieldMask(paths=["labels"]))
        )
    assert raised.value.code() is grpc.StatusCode.ABORTED
    assert details_of(raised.value).reason == "ETAG_MISMATCH"

    response = http.patch(
        "/api/v1/wukongs/contended",
        params={"wukong.namespace": namespace, "updateMask": "labels"},
        json={"etag": first.etag, "labels": {"owner": "c"}},
    )
    assert response.status_code == 409, response.text
    assert stored(kube, namespace, "contended")["metadata"]["labels"] == {"owner": "a"}


def test_a_retried_create_returns_the_same_wukong_on_any_replica(
    grpc_direct: WukongServiceStub, second_api: WukongServiceStub, namespace: str
) -> None:
    wukong = wukong_pb2.Wukong(name="once", spec=kube_helpers_spec(SPEC))
    request = service_pb2.CreateWukongRequest(namespace=namespace, wukong=wukong, request_id=str(uuid.uuid4()))
    first = grpc_direct.CreateWukong(request)
    retried = second_api.CreateWukong(request)
    assert retried.uid == first.uid

    request.wukong.spec.cpu = 3  # the same key for another request
    with pytest.raises(grpc.RpcError) as raised:
        second_api.CreateWukong(request)
    assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "request_id" in details_of(raised.value).field_violations

    with pytest.raises(grpc.RpcError) as raised:
        grpc_direct.CreateWukong(service_pb2.CreateWukongRequest(namespace=namespace, wukong=wukong))
    assert raised.value.code() is grpc.StatusCode.ALREADY_EXISTS


def test_disks_grow_where_the_storage_class_allows_and_never_shrink(
    grpc_direct: WukongServiceStub, kube: kubernetes.client.ApiClient, namespace: str
) -> None:
    disks = [
        {"name": "root", "size": "1Gi", "storageClassName": "local-path"},
        {"name": "data", "size": "2Gi", "storageClassName": "sim-expandable"},
    ]
    create(grpc_direct, namespace, "disky", disks=disks)

    def claims() -> dict[str, dict[str, Any]]:
        listed = kubernetes.client.CoreV1Api(kube).list_namespaced_persistent_volume_claim(namespace)
        return {c["metadata"]["name"]: c for c in kube.sanitize_for_serialization(listed)["items"]}

    kube_helpers.eventually(
        lambda: len(claims()) == 2 and all(c["status"].get("phase") == "Bound" for c in claims().values()),
        what="both claims bound",
        timeout=90,
    )

    def update(root: str, data: str) -> wukong_pb2.Wukong:
        change = wukong_pb2.Wukong(name="disky", namespace=namespace)
        change.spec.MergeFrom(
            kube_helpers_spec({**SPEC, "disks": [{**disks[0], "size": root}, {**disks[1], "size": data}]})
        )
        return grpc_direct.UpdateWukong(
            service_pb2.UpdateWukongRequest(wukong=change, update_mask=field_mask_pb2.FieldMask(paths=["spec.disks"]))
        )

    grown = update("1Gi", "5Gi")
    assert [d.size for d in grown.spec.disks] == ["1Gi", "5Gi"]
    assert claims()["disky-data"]["spec"]["resources"]["requests"]["storage"] == "5Gi"

    for root, data, field, text in [
        ("1Gi", "3Gi", "wukong.spec.disks[1].size", "cannot shrink"),
        ("4Gi", "5Gi", "wukong.spec.disks[0].size", "does not allow volume expansion"),
    ]:
        with pytest.raises(grpc.RpcError) as raised:
            update(root, data)
        assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert text in details_of(raised.value).field_violations[field]
    assert claims()["disky-root"]["spec"]["resources"]["requests"]["storage"] == "1Gi"


# -- tenancy


def test_other_tenants_wukongs_do_not_exist(
    grpc_direct: WukongServiceStub, kube: kubernetes.client.ApiClient, foreign_namespace: str, namespace: str
) -> None:
    foreign = kube_helpers.create_wukong(kube, foreign_namespace, "theirs")
    for call in (
        lambda: grpc_direct.GetWukong(service_pb2.GetWukongRequest(namespace=foreign_namespace, name="theirs")),
        lambda: grpc_direct.GetWukong(service_pb2.GetWukongRequest(vm_id=foreign["metadata"]["uid"])),
        lambda: grpc_direct.ListWukongs(service_pb2.ListWukongsRequest(namespace=foreign_namespace)),
        lambda: create(grpc_direct, foreign_namespace, "intruder"),
    ):
        with pytest.raises(grpc.RpcError) as raised:
            call()
        assert raised.value.code() is grpc.StatusCode.NOT_FOUND
    listed = grpc_direct.ListWukongs(service_pb2.ListWukongsRequest(page_size=500))
    assert foreign_namespace not in {w.namespace for w in listed.wukongs}


def test_lookup_by_uid_and_creation_in_the_default_namespace(
    http: httpx.Client, kube: kubernetes.client.ApiClient
) -> None:
    default = f"home-{uuid.uuid4().hex[:6]}"
    kube_helpers.create_namespace(kube, default, {**TENANT_LABELS, "novasphere.dev/default-namespace": "true"})
    try:
        created = http.post("/api/v1/wukongs", json={"name": "homed", "spec": SPEC})
        assert created.status_code == 200, created.text
        assert rest_json(created)["namespace"] == default
        by_uid = http.get(f"/api/v1/vms/{rest_json(created)['uid']}")
        assert by_uid.status_code == 200, by_uid.text
        assert rest_json(by_uid)["name"] == "homed"
    finally:
        kube_helpers.delete_namespace(kube, default)


# -- watches: resume, resync, slow consumers


def test_resume_on_another_replica_after_a_forced_disconnect(
    grpc_direct: WukongServiceStub, second_api: WukongServiceStub, kube: kubernetes.client.ApiClient, namespace: str
) -> None:
    kube_helpers.create_wukong(kube, namespace, "stays")
    kube_helpers.create_wukong(kube, namespace, "goes")
    first = grpc_watch(grpc_direct, service_pb2.WatchWukongRequest(namespace=namespace))
    bookmark = first.wait_for(is_event(Type.BOOKMARK), what="the initial BOOKMARK")
    cursor = max(int(e.cursor) for e in first.events[: first.events.index(bookmark) + 1])
    first.close()  # the client is cut off

    # During the gap:
    kube_helpers.create_wukong(kube, namespace, "arrives")
    kubernetes.client.CustomObjectsApi(kube).delete_namespaced_custom_object(
        kube_wukongs.GROUP, kube_wukongs.VERSION, namespace, kube_wukongs.PLURAL, "goes"
    )
    kubernetes.client.CustomObjectsApi(kube).patch_namespaced_custom_object(
        kube_wukongs.GROUP,
        kube_wukongs.VERSION,
        namespace,
        kube_wukongs.PLURAL,
        "stays",
        {"metadata": {"labels": {"x": "1"}}},
    )

    resumed = grpc_watch(second_api, service_pb2.WatchWukongRequest(namespace=namespace, cursor=str(cursor)))
    try:
        resumed.wait_for(is_event(Type.DELETED, "goes"), what="DELETED goes", timeout=90)
        resumed.wait_for(is_event(Type.ADDED, "arrives"), what="ADDED arrives")
        resumed.wait_for(
            lambda e: e.wukong.name == "stays" and e.wukong.labels.get("x") == "1", what="stays relabelled"
        )
    finally:
        resumed.close()


def test_a_cursor_older_than_the_replica_can_vouch_for_requires_a_resync(
    stack: devstack.Stack,
    grpc_direct: WukongServiceStub,
    kube: kubernetes.client.ApiClient,
    namespace: str,
    tmp_path: Path,
) -> None:
    kube_helpers.create_wukong(kube, namespace, "old")
    old_cursor = grpc_direct.ListWukongs(service_pb2.ListWukongsRequest(namespace=namespace)).cursor
    kube_helpers.create_wukong(kube, namespace, "newer")
    with api_process(stack, tmp_path) as (fresh, _):  # started after the cursor: it cannot know what was deleted before
        events = grpc_watch(fresh, service_pb2.WatchWukongRequest(namespace=namespace, cursor=old_cursor))
        error = events.wait_for(is_event(Type.ERROR), what="the ERROR event")
        assert error.error.code == grpc.StatusCode.OUT_OF_RANGE.value[0]
        assert "list again" in error.error.message
        ended = events.wait_ended()
        assert isinstance(ended, grpc.Call)
        assert ended.code() is grpc.StatusCode.OUT_OF_RANGE


def test_a_slow_consumer_is_dropped_in_band_and_the_others_keep_up(
    stack: devstack.Stack, kube: kubernetes.client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    for index in range(20):
        kube_helpers.create_wukong(kube, namespace, f"busy-{index}")
    # 64 queued events: the fast reader has room to lag a little under load (with 8 it was once dropped too), while
    # the 520 events (well over 64 KiB) still overrun the slow one's window and its buffer.
    with api_process(stack, tmp_path, watch_buffer="64") as (api, api_target):
        wait_listed(api, namespace, 20)
        # Without BDP probing the client's HTTP/2 window stays at 64 KiB, so an unread stream soon pushes back.
        slow_channel = grpc.insecure_channel(api_target, options=[("grpc.http2.bdp_probe", 0)])
        slow_call = WukongServiceStub(slow_channel).WatchWukong(
            service_pb2.WatchWukongRequest(namespace=namespace), timeout=120
        )
        fast = grpc_watch(api, service_pb2.WatchWukongRequest(namespace=namespace))
        fast.wait_for(is_event(Type.BOOKMARK), what="the fast stream's BOOKMARK")
        custom = kubernetes.client.CustomObjectsApi(kube)
        rounds = 25
        for round_number in range(rounds):
            for index in range(20):
                custom.patch_namespaced_custom_object(
                    kube_wukongs.GROUP,
                    kube_wukongs.VERSION,
                    namespace,
                    kube_wukongs.PLURAL,
                    f"busy-{index}",
                    {"metadata": {"labels": {"round": str(round_number)}}},
                )
        fast.wait_for(
            lambda e: e.wukong.name == "busy-19" and e.wukong.labels.get("round") == str(rounds - 1),
            what="the fast stream to see the last change",
        )
        slow = Collector(slow_call, lambda: None)  # now read everything the slow one got
        ended = slow.wait_ended()
        slow_channel.close()
        received = slow.events
        assert isinstance(ended, grpc.Call)
        assert ended.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert received[-1].type == Type.ERROR
        assert received[-1].error.code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
        assert "resume from the last cursor" in received[-1].error.message
        assert len(received) < 20 + rounds * 20
        fast.close()


# -- one informer per kind, no LIST per request


def test_reads_never_list_from_kube_apiserver_and_a_replica_opens_one_watch_per_kind(
    stack: devstack.Stack, kubectl: Kubectl, kube: kubernetes.client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    kube_helpers.create_wukong(kube, namespace, "metered")

    def apiserver(metric: str, **labels: str) -> float:
        text = kubectl.raw("get", "/metrics").stdout
        total = 0.0
        for line in text.splitlines():
            if line.startswith(metric + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def watches() -> float:
        return apiserver("apiserver_longrunning_requests", verb="WATCH", resource="wukongs")

    watchers_before = watches()
    with api_process(stack, tmp_path) as (api, _):
        kube_helpers.eventually(
            lambda: watches() == watchers_before + 1,
            what="the new replica's one Wukong watch",
            timeout=30,
        )
        streams = [grpc_watch(api, service_pb2.WatchWukongRequest(namespace=namespace)) for _ in range(5)]
        lists_before = apiserver("apiserver_request_total", verb="LIST", resource="wukongs")
        for _ in range(50):
            api.ListWukongs(service_pb2.ListWukongsRequest(namespace=namespace, sort_by="cpu"))
            api.GetWukong(service_pb2.GetWukongRequest(namespace=namespace, name="metered"))
        # The counter is kube-apiserver's, shared with every client (the simulator's informers may relist once in
        # a while); a LIST per request would add 100.
        assert apiserver("apiserver_request_total", verb="LIST", resource="wukongs") - lists_before <= 2
        assert watches() == watchers_before + 1
        for stream in streams:
            stream.close()


def test_a_selector_or_filter_beyond_its_bounds_is_refused_naming_the_field(
    grpc_direct: WukongServiceStub, http: httpx.Client, namespace: str
) -> None:
    """Each Wukong of a list or watch is tested against every requirement, on the event loop: a huge selector is
    refused before any is (over gRPC nothing else bounds it; over REST, Envoy's 32 KiB header limit comes later)."""
    huge = ",".join(f"k{i}" for i in range(100_000))
    many = ",".join(f"k{i}" for i in range(300))
    for selector, bound in ((huge, "at most 4096"), (many, "300 requirements; at most 50")):
        for call in (
            lambda s=selector: grpc_direct.ListWukongs(service_pb2.ListWukongsRequest(label_selector=s)),
            lambda s=selector: next(iter(grpc_direct.WatchWukong(service_pb2.WatchWukongRequest(label_selector=s)))),
        ):
            with pytest.raises(grpc.RpcError) as refused:
                call()
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert bound in details_of(refused.value).field_violations["label_selector"]
    over_rest = http.get("/api/v1/wukongs", params={"namespace": namespace, "labelSelector": many})
    assert over_rest.status_code == 400
    assert "labelSelector" in over_rest.text  # the JSON name the client sent
    with pytest.raises(grpc.RpcError) as long_status:
        grpc_direct.ListWukongs(service_pb2.ListWukongsRequest(status="running," * 100))
    assert "status" in details_of(long_status.value).field_violations


def test_a_watch_follows_tenancy_while_it_is_open(
    grpc_direct: WukongServiceStub, kube: kubernetes.client.ApiClient, namespace: str
) -> None:
    """A namespace that leaves the caller's tenant leaves its open streams at once (DELETED; one that named it ends
    with NAMESPACE_NOT_FOUND), instead of until they reconnect; one that joins comes in (ADDED)."""
    kube_helpers.create_wukong(kube, namespace, "moving")
    tenant_wide = grpc_watch(grpc_direct, service_pb2.WatchWukongRequest())
    named = grpc_watch(grpc_direct, service_pb2.WatchWukongRequest(namespace=namespace))
    try:
        for stream in (tenant_wide, named):
            stream.wait_for(is_event(Type.ADDED, "moving"), what="the Wukong in the initial state")
        core = kubernetes.client.CoreV1Api(kube)
        core.patch_namespace(namespace, {"metadata": {"labels": {"novasphere.dev/tenant": "someone-else"}}})
        for stream in (tenant_wide, named):
            stream.wait_for(is_event(Type.DELETED, "moving"), timeout=5, what="the Wukong leaving with its namespace")
        ending = named.wait_for(lambda e: e.type == Type.ERROR, timeout=5, what="the named namespace's stream to end")
        assert details_of_status(ending.error).reason == "NAMESPACE_NOT_FOUND"
        seen = len(tenant_wide.events)
        core.patch_namespace(namespace, {"metadata": {"labels": TENANT_LABELS}})
        tenant_wide.wait_for(is_event(Type.ADDED, "moving"), timeout=5, start=seen, what="the namespace coming back")
    finally:
        tenant_wide.close()
        named.close()


def test_a_watch_of_a_pages_names_gets_their_changes_and_every_membership_change(
    grpc_direct: WukongServiceStub, kube: kubernetes.client.ApiClient, namespace: str
) -> None:
    """`names`: a list page's rows. Changes of other Wukongs do not reach it; Wukongs coming and going still do."""
    for name in ("shown", "elsewhere", "leaving"):
        kube_helpers.create_wukong(kube, namespace, name)
    page = grpc_watch(grpc_direct, service_pb2.WatchWukongRequest(namespace=namespace, names=["shown"]))
    try:
        for name in ("shown", "elsewhere", "leaving"):
            page.wait_for(is_event(Type.ADDED, name), what=f"{name} in the initial state")
        seen = len(page.events)
        for name in ("elsewhere", "shown"):  # in this order: the second one's event comes after the first one's
            _label(kube, namespace, name, {"touched": "yes"})
        page.wait_for(
            lambda e: e.type == Type.MODIFIED and e.wukong.labels.get("touched") == "yes",
            start=seen,
            what="the shown Wukong's change",
        )
        # the shown one's (its label, and vmoperator's status write after it may come too), never the other's
        assert {e.wukong.name for e in page.events[seen:] if e.type == Type.MODIFIED} == {"shown"}
        kube_helpers.create_wukong(kube, namespace, "arriving")
        page.wait_for(is_event(Type.ADDED, "arriving"), start=seen, what="a new Wukong (the page's counts change)")
        kubernetes.client.CustomObjectsApi(kube).delete_namespaced_custom_object(
            kube_wukongs.GROUP, kube_wukongs.VERSION, namespace, kube_wukongs.PLURAL, "leaving"
        )
        page.wait_for(is_event(Type.DELETED, "leaving"), start=seen, what="a Wukong going")
    finally:
        page.close()

    with pytest.raises(grpc.RpcError) as refused:
        next(iter(grpc_direct.WatchWukong(service_pb2.WatchWukongRequest(names=["shown"]), timeout=10)))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "needs its namespace" in details_of(refused.value).field_violations["names[0]"]


def _label(kube: kubernetes.client.ApiClient, namespace: str, name: str, labels: dict[str, str]) -> None:
    kubernetes.client.CustomObjectsApi(kube).patch_namespaced_custom_object(
        kube_wukongs.GROUP, kube_wukongs.VERSION, namespace, kube_wukongs.PLURAL, name, {"metadata": {"labels": labels}}
    )


# -- Kubernetes' refusals reach clients with their meaning


def test_a_disk_growth_kubernetes_would_refuse_changes_nothing(
    grpc_direct: WukongServiceStub, kube: kubernetes.client.ApiClient, namespace: str
) -> None:
    """A claim's growth is tried as a dry run before anything is written: over the namespace's storage quota, the
    update is refused naming the disk, and neither the Wukong nor its claim changes."""
    disks = [
        {"name": "root", "size": "1Gi", "storageClassName": "local-path"},
        {"name": "data", "size": "2Gi", "storageClassName": "sim-expandable"},
    ]
    create(grpc_direct, namespace, "quota", disks=disks)
    core = kubernetes.client.CoreV1Api(kube)

    def bound() -> bool:
        listed = core.list_namespaced_persistent_volume_claim(namespace).items
        return len(listed) == 2 and all(c.status and c.status.phase == "Bound" for c in listed)

    kube_helpers.eventually(bound, what="both claims bound", timeout=90)
    quota = kubernetes.client.V1ResourceQuota(
        metadata=kubernetes.client.V1ObjectMeta(name="storage"),
        spec=kubernetes.client.V1ResourceQuotaSpec(hard={"requests.storage": "4Gi"}),
    )
    core.create_namespaced_resource_quota(namespace, quota)

    def counted() -> bool:
        status = core.read_namespaced_resource_quota("storage", namespace).status
        return bool(status and (status.used or {}).get("requests.storage"))

    kube_helpers.eventually(counted, what="the quota controller to count the claims")
    before = kube_helpers.what_the_api_writes(stored(kube, namespace, "quota"))
    change = wukong_pb2.Wukong(name="quota", namespace=namespace)
    change.spec.MergeFrom(kube_helpers_spec({**SPEC, "cpu": 3, "disks": [disks[0], {**disks[1], "size": "8Gi"}]}))

    with pytest.raises(grpc.RpcError) as refused:
        grpc_direct.UpdateWukong(
            service_pb2.UpdateWukongRequest(
                wukong=change, update_mask=field_mask_pb2.FieldMask(paths=["spec.cpu", "spec.disks"])
            )
        )
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "storage quota" in details_of(refused.value).field_violations["wukong.spec.disks[1].size"]
    assert kube_helpers.what_the_api_writes(stored(kube, namespace, "quota")) == before
    claim = core.read_namespaced_persistent_volume_claim("quota-data", namespace)
    assert claim.spec is not None
    assert claim.spec.resources is not None
    assert claim.spec.resources.requests == {"storage": "2Gi"}


def test_updates_racing_deletions_are_not_found_never_internal(
    grpc_direct: WukongServiceStub, kube: kubernetes.client.ApiClient, namespace: str
) -> None:
    """Many updates while their Wukongs are deleted: whatever moment the deletion lands in (before the read, between
    the read and the write, after), the answer is OK, NOT_FOUND or ABORTED."""
    names = [f"racing-{i}" for i in range(20)]
    for name in names:
        kube_helpers.create_wukong(kube, namespace, name)
    cursor = stored(kube, namespace, names[-1])["metadata"]["resourceVersion"]
    grpc_direct.ListWukongs(service_pb2.ListWukongsRequest(namespace=namespace, cursor=cursor))
    seen: list[grpc.StatusCode] = []

    def keep_updating(name: str) -> None:
        for value in range(200):
            change = wukong_pb2.Wukong(name=name, namespace=namespace, labels={"n": str(value)})
            try:
                grpc_direct.UpdateWukong(
                    service_pb2.UpdateWukongRequest(
                        wukong=change, update_mask=field_mask_pb2.FieldMask(paths=["labels"])
                    )
                )
                seen.append(grpc.StatusCode.OK)
            except grpc.RpcError as error:
                seen.append(error.code())
                if error.code() is grpc.StatusCode.NOT_FOUND:
                    return

    with concurrent.futures.ThreadPoolExecutor(len(names)) as pool:
        updating = [pool.submit(keep_updating, name) for name in names]
        for name in names:
            kubernetes.client.CustomObjectsApi(kube).delete_namespaced_custom_object(
                kube_wukongs.GROUP, kube_wukongs.VERSION, namespace, kube_wukongs.PLURAL, name
            )
        for future in updating:
            future.result()
    assert set(seen) <= {grpc.StatusCode.OK, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.ABORTED}, set(seen)
    assert seen.count(grpc.StatusCode.NOT_FOUND) == len(names)
