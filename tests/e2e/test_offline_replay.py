"""The offline-safe contract, as a mobile app uses it over REST: while the API cannot be reached, the app queues 20
mixed operations, each with its own `request_id`; once it reconnects it replays the whole queue, twice (it cannot know
which calls got through before a connection dropped), and once more through a second replica. Every operation happens
exactly once (Kubernetes is checked directly), and every replay answers with the same task or object as the first
call: the same Task, the same Wukong, the same recorded answer (an API key's secret only the first time)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import kubernetes.client
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from devcluster import accounts, procs
from devcluster import stack as devstack
from tests import kube_helpers
from tests.conftest import TENANT
from tests.e2e.test_auth import PASSWORD, SECURE_ENV

RUNNING = ("w-a", "w-b", "w-c", "w-d", "w-e")


@dataclass
class Doors:
    """Two API replicas, each behind its own Envoy: the mobile app's REST door, and the one it lands on later."""

    first: devstack.Edge
    second: devstack.Edge


@pytest.fixture(scope="module")
def doors(stack: devstack.Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Doors]:
    state = tmp_path_factory.mktemp("offline")
    apis = [
        devstack.start_api_server(
            api_kubeconfig=stack.api_kubeconfig, log_path=state / f"api-{n}.log", extra_env=SECURE_ENV
        )
        for n in (0, 1)
    ]
    with procs.stopping([api.process for api in apis]):
        envoys = [
            devstack.start_front(api, tls=stack.tls, state_dir=state, name=f"envoy-{n}") for n, api in enumerate(apis)
        ]
        with procs.stopping([envoy.process for envoy in envoys]):
            yield Doors(envoys[0].edge, envoys[1].edge)


@dataclass
class Queued:
    """One operation the app queued: a REST call, the request id it was given, and what identifies its answer."""

    label: str
    method: str
    path: str
    body: dict[str, Any] | None = None
    params: dict[str, str] = field(default_factory=dict)
    identity: Callable[[dict[str, Any]], Any] = lambda answer: answer
    """What must be equal between the first answer and every replay's."""

    def keyed(self) -> Queued:
        """With a fresh request id, where the REST mapping reads it: the body when the body is the request (`*`),
        else the query (a create's or an update's body is the Wukong; a DELETE has none)."""
        request_id = str(uuid.uuid4())
        if self.method == "POST" and self.path != "/api/v1/wukongs":
            self.body = {**(self.body or {}), "requestId": request_id}
        else:
            self.params = {**self.params, "requestId": request_id}
        return self

    def send(self, http: httpx.Client) -> dict[str, Any]:
        response = http.request(self.method, self.path, params=self.params, json=self.body)
        assert response.status_code == 200, f"{self.label}: {response.status_code} {response.text}"
        answer: dict[str, Any] = response.json()
        return answer


def _task(answer: dict[str, Any]) -> Any:
    return ("task", answer["id"], answer["operation"])


def _wukong(answer: dict[str, Any]) -> Any:
    return ("wukong", answer["uid"], answer["name"])


def _without_key(answer: dict[str, Any]) -> Any:
    return {key: value for key, value in answer.items() if key != "key"}


def _queue(namespace: str, *, old_service: str, old_api_key: str, old_ssh_key: str) -> list[Queued]:
    """Twenty operations, in the order the app made them."""
    at = {"namespace": namespace}
    spec = {"cpu": 1, "memory": "1Gi", "disks": [{"name": "root", "size": "10Gi", "storageClassName": "local-path"}]}

    def label(name: str, labels: dict[str, str]) -> Queued:
        body = {**at, "labels": labels}  # an update's body is the Wukong, with its namespace
        return Queued(f"label {name}", "PATCH", f"/api/v1/wukongs/{name}", body, {"updateMask": "labels"})

    def create(name: str) -> Queued:
        return Queued(f"create {name}", "POST", "/api/v1/wukongs", {"name": name, "spec": spec}, at, _wukong)

    def operation(verb: str, name: str) -> Queued:
        return Queued(f"{verb} {name}", "POST", f"/api/v1/wukongs/{name}/{verb}", dict(at), identity=_task)

    expose = "/api/v1/wukongs/w-c/access-services"
    queue = [
        create("m-1"),
        create("m-2"),
        label("w-a", {"tier": "db"}),
        Queued("grow w-b", "PATCH", "/api/v1/wukongs/w-b", {**at, "spec": {"cpu": 2}}, {"updateMask": "spec.cpu"}),
        operation("stop", "w-a"),
        operation("restart", "w-b"),
        Queued("stop w-d, w-e", "POST", "/api/v1/wukongs:batch", {"operation": "STOP", **at, "names": ["w-d", "w-e"]},
               identity=_task),
        Queued("expose ssh", "POST", expose, {**at, "serviceType": "NodePort", "ports": [{"port": 22}]}),
        Queued("expose web", "POST", expose, {**at, "serviceType": "LoadBalancer", "serviceName": "w-c-web",
                                              "ports": [{"port": 80}]}),
        Queued("unexpose", "DELETE", f"{expose}/{old_service}", None, dict(at)),
        Queued("new api key", "POST", "/api/v1/auth/api-keys", {"name": "phone", "permissions": ["vm:query"]},
               identity=_without_key),
        Queued("revoke api key", "DELETE", f"/api/v1/auth/api-keys/{old_api_key}"),
        Queued("new ssh key", "POST", "/api/v1/ssh-keys", {**at, "name": "phone-key", "publicKey": PHONE_KEY}),
        Queued("delete ssh key", "DELETE", f"/api/v1/ssh-keys/{old_ssh_key}", None, dict(at)),
        label("m-1", {"app": "new"}),
        Queued("delete m-2", "DELETE", "/api/v1/wukongs/m-2", None, dict(at), _task),
        create("m-3"),
        label("w-c", {"tier": "web"}),
        operation("pause", "w-c"),
        label("w-e", {"tier": "batch"}),
    ]  # fmt: skip
    return [queued.keyed() for queued in queue]


def _public_key(comment: str) -> str:
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    return key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode() + f" {comment}"


PHONE_KEY, OLD_KEY = _public_key("phone"), _public_key("old")


def test_a_queue_replayed_twice_and_on_another_replica_does_everything_once(
    doors: Doors, kube: kubernetes.client.ApiClient, namespace: str
) -> None:
    username = f"phone-{uuid.uuid4().hex[:8]}"
    accounts.create_user(kube, username, PASSWORD, tenant=TENANT, role="operator")
    try:
        _replay_a_queue(doors, kube, namespace, username)
    finally:
        accounts.unbind(kube, username)


def _replay_a_queue(doors: Doors, kube: kubernetes.client.ApiClient, namespace: str, username: str) -> None:
    for name in RUNNING:
        kube_helpers.create_wukong(kube, namespace, name)
    with doors.first.http_client() as anonymous:
        token = kube_helpers.eventually(lambda: _login(anonymous, username), what=f"{username} to log in")
    headers = {"Authorization": f"Bearer {token}"}
    with doors.first.http_client(headers=headers) as first, doors.second.http_client(headers=headers) as second:
        kube_helpers.eventually(lambda: all(_running(first, namespace, n) for n in RUNNING), what="w-a … w-e running")
        old_service = {
            "namespace": namespace,
            "serviceType": "NodePort",
            "serviceName": "w-c-old",
            "ports": [{"port": 9}],
        }
        made = [
            first.post(path, json=body)
            for path, body in (
                ("/api/v1/wukongs/w-c/access-services", old_service),
                ("/api/v1/auth/api-keys", {"name": "old", "permissions": ["vm:query"]}),
                ("/api/v1/ssh-keys", {"namespace": namespace, "name": "old-key", "publicKey": OLD_KEY}),
            )
        ]
        assert [response.status_code for response in made] == [200] * 3, [response.text for response in made]
        queue = _queue(
            namespace,
            old_service=made[0].json()["name"],
            old_api_key=made[1].json()["id"],
            old_ssh_key=made[2].json()["name"],
        )
        assert len(queue) == 20

        # Offline: every attempt fails to connect, so the app keeps each operation in its queue, request id and all.
        unreachable = devstack.Edge(procs.free_ports(1)[0], doors.first.ca_cert)
        with unreachable.http_client(headers=headers, timeout=2) as offline:
            for queued in queue:
                with pytest.raises(httpx.ConnectError):
                    queued.send(offline)

        answers = [[queued.send(first) for queued in queue]]
        _wait_for_tasks(first, [answer["id"] for queued, answer in zip(queue, answers[0], strict=True)
                                if queued.identity is _task])  # fmt: skip
        after_first = _snapshot(kube, first, namespace, username)
        answers.append([queued.send(first) for queued in queue])
        answers.append([queued.send(second) for queued in queue])
        after_replays = _snapshot(kube, first, namespace, username)

    for queued, (one, *replays) in zip(queue, zip(*answers, strict=True), strict=True):
        for replay in replays:
            assert queued.identity(replay) == queued.identity(one), queued.label
    assert answers[0][10]["key"], "the first CreateApiKey shows the key"
    assert not any(replayed[10].get("key") for replayed in answers[1:]), "a replay showed the key again"
    assert after_replays == after_first, "a replay changed something"
    _assert_done_once(after_first, answers[0])


@dataclass(frozen=True)
class Snapshot:
    """What the queue's operations change, read from Kubernetes (and the API's lists of keys)."""

    wukongs: dict[str, tuple[str, int, dict[str, str], int]]
    """name: (uid, generation, labels, cpu)"""
    services: frozenset[str]
    api_keys: tuple[str, ...]
    ssh_keys: tuple[str, ...]
    tasks: tuple[tuple[str, str, str], ...]
    """(request id or batch, operation, Wukong) of each task the user's operations made"""


def _snapshot(kube: kubernetes.client.ApiClient, http: httpx.Client, namespace: str, username: str) -> Snapshot:
    custom, core = kubernetes.client.CustomObjectsApi(kube), kubernetes.client.CoreV1Api(kube)
    wukongs: list[dict[str, Any]] = custom.list_namespaced_custom_object(
        "vm.novasphere.dev", "v1alpha1", namespace, "wukongs"
    )["items"]  # type: ignore[index]
    tasks: list[dict[str, Any]] = custom.list_namespaced_custom_object(
        "api.novasphere.dev", "v1alpha1", devstack.API_NAMESPACE, "tasks"
    )["items"]  # type: ignore[index]
    services = kube.sanitize_for_serialization(
        core.list_namespaced_service(namespace, label_selector="api.novasphere.dev/wukong=w-c")
    )["items"]
    return Snapshot(
        wukongs={
            w["metadata"]["name"]: (
                w["metadata"]["uid"],
                w["metadata"]["generation"],
                w["metadata"].get("labels") or {},
                w["spec"]["cpu"],
            )
            for w in wukongs
            if w["metadata"]["name"] != "m-2"  # being deleted by the queue: it goes whenever vmoperator is done
        },
        services=frozenset(service["metadata"]["name"] for service in services),
        api_keys=tuple(sorted(key["name"] for key in http.get("/api/v1/auth/api-keys").json()["apiKeys"])),
        ssh_keys=tuple(key["name"] for key in http.get("/api/v1/ssh-keys", params={"namespace": namespace})
                       .json().get("sshKeys", [])),
        tasks=tuple(sorted(
            (
                task["spec"].get("requestId") or task["spec"].get("parent", ""),
                task["spec"]["operation"],
                (task["spec"].get("target") or {}).get("name", ""),
            )
            for task in tasks
            if task["spec"]["requestedBy"]["user"] == username
        )),
    )  # fmt: skip


def _assert_done_once(state: Snapshot, first: list[dict[str, Any]]) -> None:
    """Each operation of the queue happened: once, as the replays then changed nothing."""
    assert {"m-1", "m-3"} <= state.wukongs.keys()
    assert state.wukongs["m-1"][0] == first[0]["uid"]
    assert state.wukongs["w-b"][3] == 2
    labels = {name: value[2] for name, value in state.wukongs.items()}
    assert (labels["w-a"], labels["m-1"], labels["w-c"], labels["w-e"]) == (
        {"tier": "db"}, {"app": "new"}, {"tier": "web"}, {"tier": "batch"}
    )  # fmt: skip
    assert state.services == {first[7]["name"], "w-c-web"}
    assert (state.api_keys, state.ssh_keys) == (("phone",), ("phone-key",))
    operations = sorted((operation, wukong) for _, operation, wukong in state.tasks)
    assert operations == sorted([
        ("Stop", "w-a"), ("Restart", "w-b"), ("Batch", ""), ("Stop", "w-d"), ("Stop", "w-e"), ("Delete", "m-2"),
        ("Pause", "w-c"),
    ]), operations  # fmt: skip


def _wait_for_tasks(http: httpx.Client, ids: list[str]) -> None:
    """Until every task has ended: what they change (a stopped Wukong's autoStart) is then in the snapshot."""

    def ended() -> bool:
        states = [http.get(f"/api/v1/tasks/{task_id}").json()["state"] for task_id in ids]
        return all(state in ("SUCCEEDED", "FAILED", "CANCELLED") for state in states)

    kube_helpers.eventually(ended, timeout=120, what="the queue's tasks to end")


def _login(http: httpx.Client, username: str) -> str | None:
    response = http.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD})
    return str(response.json()["accessToken"]) if response.status_code == 200 else None


def _running(http: httpx.Client, namespace: str, name: str) -> bool:
    response = http.get(f"/api/v1/wukongs/{name}", params={"namespace": namespace, "view": "WUKONG_VIEW_BASIC"})
    return response.status_code == 200 and response.json()["status"]["powerState"] == "RUNNING"
