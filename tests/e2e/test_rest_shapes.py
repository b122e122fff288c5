"""The JSON a REST client (a mobile or desktop app) gets through Envoy, shape by shape: values that fit in 32 bits
are JSON numbers, clamped rather than overflowing; input-only secrets appear in no response, not even as ""; an
access Service's type has one name both ways; a validate-only answer invents no uid, creation time or etag; every
timestamp has whole seconds, `YYYY-MM-DDTHH:MM:SSZ`; and GetWukong's `view` is a query parameter by value name."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import kubernetes.client
import pytest
from google.protobuf import json_format

from devcluster import stack as devstack
from novasphere.v1 import task_pb2, wukong_pb2
from novasphere.v1 import wukong_service_pb2 as service_pb2
from novasphere.v1.task_service_pb2_grpc import TaskServiceStub
from novasphere.v1.wukong_service_pb2_grpc import WukongServiceStub
from tests import kube_helpers
from tests.e2e.test_auth import PASSWORD, Secure, login, secure, user
from tests.e2e.test_tasks import running_wukong, wait_task
from tests.e2e.test_wukong_api import SPEC

__all__ = ["secure", "user"]  # fixtures shared with test_auth

INT32_MAX = 2**31 - 1
WHOLE_SECONDS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


@pytest.fixture
def http(stack: devstack.Stack) -> Iterator[httpx.Client]:
    with stack.edge.http_client() as client:
        yield client


def resource_quota(kube: kubernetes.client.ApiClient, namespace: str, hard: dict[str, str]) -> None:
    quota = kubernetes.client.V1ResourceQuota(
        metadata=kubernetes.client.V1ObjectMeta(name="vms"), spec=kubernetes.client.V1ResourceQuotaSpec(hard=hard)
    )
    kubernetes.client.CoreV1Api(kube).create_namespaced_resource_quota(namespace, quota)


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body, dict)
    return body


def times(value: Any) -> dict[str, str]:
    """Every timestamp in a JSON document (the API names them `…Time`), by its path."""
    found: dict[str, str] = {}
    if isinstance(value, dict):
        for key, item in value.items():
            if key.endswith("Time") and isinstance(item, str):
                found[key] = item
            found |= {f"{key}.{path}": text for path, text in times(item).items()}
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found |= {f"[{index}].{path}": text for path, text in times(item).items()}
    return found


def assert_whole_seconds(body: dict[str, Any], *expected: str) -> None:
    found = times(body)
    assert set(expected) <= set(found), found
    assert {path: text for path, text in found.items() if not WHOLE_SECONDS.fullmatch(text)} == {}


# 1. Values that fit in 32 bits are numbers.


def test_memory_cpu_and_counts_are_json_numbers(
    http: httpx.Client, kube: kubernetes.client.ApiClient, namespace: str
) -> None:
    resource_quota(kube, namespace, {"requests.cpu": "2500m", "requests.memory": "6Gi"})
    created = ok(
        http.post(
            "/api/v1/wukongs",
            params={"namespace": namespace},
            json={"name": "sized", "spec": {**SPEC, "memory": "1536Mi", "startStrategy": {"autoStart": False}}},
        )
    )
    assert created["status"]["memoryMb"] == 1536  # was "1536", an int64 string

    def stats() -> dict[str, Any] | None:
        body = ok(http.get("/api/v1/stats", params={"namespace": namespace}))
        return body if body["namespaces"][0].get("quota") and body["total"]["vms"] == 1 else None

    body = kube_helpers.eventually(stats, timeout=30, what="the stats to count the VM and the quota")
    assert (body["total"]["memoryMbTotal"], body["total"]["memoryMbAllocated"], body["total"]["vcpuTotal"]) == (
        1536,
        0,
        1,
    )
    assert body["namespaces"][0]["quota"] == {
        "cpuHardMillis": 2500,
        "cpuUsedMillis": 0,
        "memoryHardMb": 6144,
        "memoryUsedMb": 0,
    }


def test_quantities_beyond_32_bits_are_clamped_not_overflowed(
    http: httpx.Client, kube: kubernetes.client.ApiClient, namespace: str
) -> None:
    """Kubernetes quantities go to 8Ei, which the API's own validation refuses but kubectl writes: such values answer
    with the int32 maximum instead of failing the call."""
    resource_quota(kube, namespace, {"requests.cpu": "3M", "requests.memory": "5Ei"})
    kube_helpers.create_wukong(
        kube, namespace, "huge", {**kube_helpers.MINIMAL_SPEC, "memory": "4Pi", "startStrategy": {"autoStart": False}}
    )

    def stats() -> dict[str, Any] | None:
        body = ok(http.get("/api/v1/stats", params={"namespace": namespace}))
        return body if body["namespaces"][0].get("quota") and body["total"]["vms"] == 1 else None

    body = kube_helpers.eventually(stats, timeout=30, what="the stats to count the VM and the quota")
    assert body["total"]["memoryMbTotal"] == INT32_MAX
    assert (body["namespaces"][0]["quota"]["cpuHardMillis"], body["namespaces"][0]["quota"]["memoryHardMb"]) == (
        INT32_MAX,
        INT32_MAX,
    )
    assert ok(http.get("/api/v1/wukongs/huge", params={"namespace": namespace}))["status"]["memoryMb"] == INT32_MAX


# 2. Input-only secrets never appear in a response.


def test_a_wukongs_password_is_in_no_response_not_even_empty(http: httpx.Client, namespace: str) -> None:
    body = {"name": "secret", "spec": {**SPEC, "cloudInitUser": {"name": "ada", "password": "correct horse"}}}
    created = ok(http.post("/api/v1/wukongs", params={"namespace": namespace}, json=body))
    read = ok(http.get("/api/v1/wukongs/secret", params={"namespace": namespace, "cursor": created["cursor"]}))
    (listed,) = ok(http.get("/api/v1/wukongs", params={"namespace": namespace}))["wukongs"]
    for wukong in (created, read, listed):
        assert wukong["spec"]["cloudInitUser"]["name"] == "ada"
        assert {"password", "passwordHash"} & set(wukong["spec"]["cloudInitUser"]) == set()

    # A client that sends the user back with an empty password (now a set field) keeps the stored hash.
    changed = ok(
        http.patch(
            "/api/v1/wukongs/secret",
            params={"wukong.namespace": namespace, "updateMask": "spec.cloudInitUser"},
            json={"spec": {"cloudInitUser": {"name": "ada", "password": "", "passwordHash": ""}}},
        )
    )
    assert {"password", "passwordHash"} & set(changed["spec"]["cloudInitUser"]) == set()


def test_an_administrators_user_responses_carry_no_password(secure: Secure, user: Callable[..., str]) -> None:
    headers = {"Authorization": f"Bearer {login(secure.first, user('admin')).access_token}"}
    name = f"shape-{uuid.uuid4().hex[:8]}"
    created = ok(
        secure.http.post("/api/v1/admin/users", json={"username": name, "password": PASSWORD}, headers=headers)
    )
    try:
        changed = ok(
            secure.http.patch(
                f"/api/v1/admin/users/{name}",
                json={"password": PASSWORD + "!", "updateMask": "password"},
                headers=headers,
            )
        )
        listed = [
            u for u in ok(secure.http.get("/api/v1/admin/users", headers=headers))["users"] if u["username"] == name
        ]
        for shown in (created, changed, *listed):
            assert (shown["username"], "password" in shown) == (name, False)
    finally:
        assert secure.http.delete(f"/api/v1/admin/users/{name}", headers=headers).status_code == 200


# 3. One name for an access Service's type.


def test_an_access_services_type_is_service_type_both_ways(
    http: httpx.Client, grpc_direct: WukongServiceStub, namespace: str
) -> None:
    running_wukong(grpc_direct, namespace, "exposed")
    created = ok(
        http.post(
            "/api/v1/wukongs/exposed/access-services",
            params={"namespace": namespace},
            json={"serviceType": "NodePort", "serviceName": "exposed-ssh", "ports": [{"port": 22}]},
        )
    )
    (listed,) = ok(http.get("/api/v1/wukongs/exposed/access-services", params={"namespace": namespace}))["services"]
    (on_vm,) = ok(http.get("/api/v1/wukongs/exposed", params={"namespace": namespace}))["serviceInfo"]
    for service in (created, listed, on_vm):
        assert (service["name"], service["serviceType"], "type" in service) == ("exposed-ssh", "NodePort", False)


# 4. validateOnly invents nothing.


def test_validate_only_returns_no_uid_creation_time_or_etag(
    http: httpx.Client, grpc_direct: WukongServiceStub, namespace: str
) -> None:
    dry = ok(
        http.post(
            "/api/v1/wukongs",
            params={"namespace": namespace, "validateOnly": "true"},
            json={"name": "dry", "spec": SPEC},
        )
    )
    assert (dry["name"], dry["uid"], dry["etag"], "createTime" in dry) == ("dry", "", "", False)
    assert dry["spec"]["cpu"] == 1

    wukong = json_format.ParseDict({"name": "dry", "spec": SPEC}, wukong_pb2.Wukong())
    request = service_pb2.CreateWukongRequest(namespace=namespace, wukong=wukong, validate_only=True)
    answered = grpc_direct.CreateWukong(request)
    assert (answered.name, answered.uid, answered.etag, answered.HasField("create_time")) == ("dry", "", "", False)
    assert grpc_direct.ListWukongs(service_pb2.ListWukongsRequest(namespace=namespace)).total == 0


def test_a_validate_only_operation_returns_a_task_without_id_or_creation_time(
    http: httpx.Client, grpc_direct: WukongServiceStub, namespace: str
) -> None:
    running_wukong(grpc_direct, namespace, "kept")
    task = ok(http.post("/api/v1/wukongs/kept/stop", params={"namespace": namespace}, json={"validateOnly": True}))
    assert (task["id"], task["state"], task["cancellable"], times(task)) == ("", "PENDING", False, {})
    batch = grpc_direct.BatchWukongOperation(
        service_pb2.BatchWukongOperationRequest(
            operation=task_pb2.Task.Operation.STOP, namespace=namespace, names=["kept"], validate_only=True
        )
    )
    assert (batch.id, batch.HasField("create_time"), batch.batch.total, list(batch.batch.child_ids)) == (
        "",
        False,
        1,
        [],
    )


# 5. Timestamps in whole seconds.


def test_wukong_task_and_console_timestamps_have_whole_seconds(
    http: httpx.Client, grpc_direct: WukongServiceStub, tasks_direct: TaskServiceStub, namespace: str
) -> None:
    running_wukong(grpc_direct, namespace, "timed")
    wukong = ok(http.get("/api/v1/wukongs/timed", params={"namespace": namespace}))
    assert_whole_seconds(wukong, "createTime", "status.startTime")

    accepted = ok(http.post("/api/v1/wukongs/timed/restart", params={"namespace": namespace}, json={}))
    assert_whole_seconds(accepted, "createTime")  # accepted at a microsecond, shown in whole seconds
    assert wait_task(tasks_direct, accepted["id"]).state == task_pb2.TaskState.SUCCEEDED
    ended = ok(http.get(f"/api/v1/tasks/{accepted['id']}"))
    assert_whole_seconds(ended, "createTime", "startTime", "endTime")
    detail = ok(http.get("/api/v1/wukongs/timed", params={"namespace": namespace}))
    assert_whole_seconds(detail, "detail.recentTasks.[0].createTime", "detail.recentTasks.[0].endTime")

    session = ok(
        http.post("/api/v1/wukongs/timed/console", params={"namespace": namespace}, json={"protocol": "SERIAL"})
    )
    assert_whole_seconds(session, "createTime", "ticketExpireTime", "expireTime")
    assert (session["bytesToClient"], session["bytesFromClient"]) == ("0", "0")  # int64: strings, as documented
    status = ok(http.get("/api/v1/wukongs/timed/console/status", params={"namespace": namespace, "protocol": "SERIAL"}))
    assert_whole_seconds(status, "createTime", "expireTime")


def test_login_session_and_api_key_timestamps_have_whole_seconds(secure: Secure, user: Callable[..., str]) -> None:
    name = user("operator")
    login(secure.first, name)  # once the replica knows the user
    grant = ok(secure.http.post("/api/v1/auth/login", json={"username": name, "password": PASSWORD}))
    assert_whole_seconds(grant, "expireTime", "refreshExpireTime")
    headers = {"Authorization": f"Bearer {grant['accessToken']}"}
    sessions = ok(secure.http.get("/api/v1/auth/sessions", headers=headers))
    assert_whole_seconds(sessions, "sessions.[0].createTime", "sessions.[0].lastUseTime", "sessions.[0].expireTime")

    key = ok(
        secure.http.post(
            "/api/v1/auth/api-keys",
            json={"name": "timed", "permissions": ["vm:query"], "expireTime": "2099-01-02T03:04:05.678901Z"},
            headers=headers,
        )
    )
    assert_whole_seconds(key, "createTime", "expireTime")
    assert key["expireTime"] == "2099-01-02T03:04:05Z"
    listed = ok(secure.http.get("/api/v1/auth/api-keys", headers=headers))
    assert_whole_seconds(listed, "apiKeys.[0].createTime", "apiKeys.[0].expireTime")


# 6. GetWukong's view is a query parameter.


def test_a_get_takes_its_view_as_a_query_parameter_by_enum_value_name(
    http: httpx.Client, grpc_direct: WukongServiceStub, namespace: str
) -> None:
    running_wukong(grpc_direct, namespace, "viewed")
    at = {"namespace": namespace}

    basic = ok(http.get("/api/v1/wukongs/viewed", params={**at, "view": "WUKONG_VIEW_BASIC"}))
    full = ok(http.get("/api/v1/wukongs/viewed", params={**at, "view": "WUKONG_VIEW_FULL"}))
    default = ok(http.get("/api/v1/wukongs/viewed", params=at))

    assert "detail" not in basic
    assert (basic["name"], basic["status"]["powerState"]) == ("viewed", "RUNNING")
    assert "STOP" in basic["availableActions"]
    for wukong in (full, default):
        assert [d["claimName"] for d in wukong["detail"]["disks"]] == ["viewed-root"]
        assert wukong["detail"]["console"]["available"] is True
    by_uid = ok(http.get(f"/api/v1/vms/{basic['uid']}", params={"view": "WUKONG_VIEW_BASIC"}))
    assert (by_uid["name"], "detail" in by_uid) == ("viewed", False)
    # The transcoder takes the value's full name only (as the OpenAPI document lists them), and says which field.
    short = http.get("/api/v1/wukongs/viewed", params={**at, "view": "BASIC"})
    assert short.status_code == 400, short.text
    violations = [v for detail in short.json()["details"] for v in detail.get("fieldViolations", [])]
    assert [v["field"] for v in violations] == ["view"]
