"""Notifications end to end: an API server of the test's own (its own namespace, so it leads its own notifier) with
FCM and webhook endpoints pointed at local stand-ins that check the wire format (tests/notification_servers.py), and
VMs the simulator makes fail.

- VMs that fail notify every device of every subscribed user of their tenant, as one notification (coalesced), and
  the tenant's webhook; a user of another tenant hears nothing.
- A token FCM calls unregistered is removed; a delivery outcome is recorded on the device.
- The leader killed after writing its outbox entry and before sending, or after sending and before recording: the
  next leader sends it (again), with the same collapse key.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import json
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import grpc
import kubernetes.client
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from devcluster import accounts, procs
from devcluster import stack as devstack
from novasphere.v1 import auth_service_pb2, console_service_pb2
from novasphere.v1 import notification_service_pb2 as pb
from novasphere.v1.auth_service_pb2_grpc import AuthServiceStub
from novasphere.v1.console_service_pb2_grpc import ConsoleServiceStub
from novasphere.v1.notification_service_pb2_grpc import NotificationServiceStub
from novasphere.v1.wukong_service_pb2_grpc import WukongServiceStub
from server.kube.auth_objects import KIND_LABEL
from server.notifications import outbox, store
from server.notifications.preferences import parse_preferences
from server.notifications.subscriptions import preferences_object_name
from sim import faults
from tests import kube_helpers
from tests.conftest import API_ENV, TENANT
from tests.e2e.test_tasks import Power, annotate, wait_power
from tests.e2e.test_wukong_api import SPEC
from tests.notification_servers import Clock, FakeFcm, FakeRobots, RobotCredentials, Scripted, Tls, pem

T = TypeVar("T")
PROJECT = "novasphere-e2e"
CLIENT_EMAIL = "notifier@novasphere-e2e.iam.gserviceaccount.com"
KEY_ID = "e2e-key"
OTHER_TENANT = "elsewhere"
WAIT = 60.0
PASSWORD = "a password of 123"
ROLES = (
    "subscriber: [vm:query, task:query, notification:subscribe, notification:webhook:manage]\n"
    "runs-the-tenant: [binding:manage, notification:subscribe]\n"
    "console-user: [vm:query, vm:console:access, notification:subscribe]\n"
    "console-manager: [vm:query, vm:console:access, vm:console:manage]\n"
)


class LiveClock(Clock):
    """The stand-ins check token times against the wall clock, as the API server's own."""

    def __call__(self) -> float:
        return time.time()


class Providers:
    """FCM (its token endpoint and messages:send) and the webhook receivers, on an event loop of their own."""

    def __init__(self, directory: Path) -> None:
        self.tls = Tls.create(directory)
        self.credentials = RobotCredentials()
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        clock = LiveClock()
        self.fcm = FakeFcm(
            clock, project_id=PROJECT, client_email=CLIENT_EMAIL, key_id=KEY_ID, public_key=key.public_key()
        )
        self.robots = FakeRobots(clock, self.credentials)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self.run(self.fcm.start())
        self.run(self.robots.start(self.tls.server_context(alpn=["http/1.1"])))
        self.account = directory / "fcm.json"
        self.account.write_text(
            json.dumps(
                {
                    "type": "service_account",
                    "project_id": PROJECT,
                    "private_key_id": KEY_ID,
                    "private_key": pem(key),
                    "client_email": CLIENT_EMAIL,
                    "token_uri": self.fcm.token_uri,
                }
            )
        )

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=30)

    def settings(self) -> dict[str, str]:
        return {
            "NOVASPHERE_NOTIFY_FCM_CREDENTIALS": str(self.account),
            "NOVASPHERE_NOTIFY_FCM_URL": self.fcm.url,
            "NOVASPHERE_NOTIFY_WEBHOOK_HOSTS": "127.0.0.1",
            "NOVASPHERE_NOTIFY_CA_FILE": str(self.tls.certificate),
            "NOVASPHERE_NOTIFY_WINDOW_SECONDS": "3",
            "NOVASPHERE_NOTIFY_LONGEST_SECONDS": "10",
        }

    def messages_to(self, token: str, *, naming: Iterable[str] = (), kind: str = "") -> list[dict[str, Any]]:
        """What FCM accepted for `token`; only those naming one of these VMs, or telling of this kind, when given
        (the tenant's other VMs and tasks, of tests before, may be told too)."""
        found = [message for message in list(self.fcm.messages) if message["token"] == token]
        if naming:
            found = [m for m in found if set(m["data"].get("names", "").split(",")) & set(naming)]
        if kind:
            found = [m for m in found if kind in m["data"]["kinds"].split(",")]
        return found

    def close(self) -> None:
        self.run(self.fcm.stop())
        self.run(self.robots.stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


@pytest.fixture(scope="module")
def providers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Providers]:
    made = Providers(tmp_path_factory.mktemp("providers"))
    yield made
    made.close()


@pytest.fixture
def home(kube: kubernetes.client.ApiClient) -> Iterator[str]:
    """The replica's namespace, with users, roles and bindings of its own: `developer` (the development identity the
    test calls as) and the others in the test tenant, `outsider` in another. (Devices of users that do not exist are
    swept.)"""
    with kube_helpers.api_home(kube, "notify") as name:
        bindings = [
            {"user": "developer", "tenant": TENANT, "role": "subscriber"},
            {"user": "outsider", "tenant": OTHER_TENANT, "role": "subscriber"},
            {"user": "lark", "tenant": TENANT, "role": "subscriber"},
            {"user": "owl", "tenant": TENANT, "role": "subscriber"},
            {"user": "boss", "tenant": TENANT, "role": "runs-the-tenant"},
            {"user": "developer", "tenant": TENANT, "role": "console-user"},
            {"user": "hawk", "tenant": TENANT, "role": "console-manager"},
        ]
        kubernetes.client.CoreV1Api(kube).create_namespaced_config_map(
            name,
            kubernetes.client.V1ConfigMap(
                metadata=kubernetes.client.V1ObjectMeta(name="novasphere-authz", labels={KIND_LABEL: "authz"}),
                data={"roles.yaml": ROLES, "bindings.yaml": json.dumps(bindings)},
            ),
        )
        for user in sorted({binding["user"] for binding in bindings} - {"developer"}):  # the development identity
            secret: Any = accounts.user_secret(user, PASSWORD)  # the client accepts plain JSON
            secret["metadata"]["namespace"] = name
            kubernetes.client.CoreV1Api(kube).create_namespaced_secret(name, secret)
        yield name


@dataclass
class Replica:
    process: procs.Process
    channel: grpc.Channel

    @property
    def notifications(self) -> NotificationServiceStub:
        return NotificationServiceStub(self.channel)

    @property
    def wukongs(self) -> WukongServiceStub:
        return WukongServiceStub(self.channel)


@pytest.fixture
def replicas(
    stack: devstack.Stack, home: str, providers: Providers, tmp_path: Path
) -> Iterator[Callable[[str], Replica]]:
    """Starts API servers in `home` with the providers' settings and the failpoints given; stops them at the end."""
    made: list[Replica] = []

    def start(failpoints: str = "") -> Replica:
        env = {**API_ENV, **providers.settings(), "NOVASPHERE_NAMESPACE": home, "NOVASPHERE_FAILPOINTS": failpoints}
        api = devstack.start_api_server(
            api_kubeconfig=stack.api_kubeconfig, log_path=tmp_path / f"api-{len(made)}.log", extra_env=env
        )
        made.append(Replica(api.process, grpc.insecure_channel(api.target)))
        return made[-1]

    yield start
    for replica in made:
        replica.channel.close()
        if replica.process.alive():
            replica.process.stop()


def register(replica: Replica, token: str, name: str) -> pb.Device:
    return replica.notifications.RegisterDevice(
        pb.RegisterDeviceRequest(platform=pb.ANDROID, token=token, name=name, locale="zh-CN")
    )


def device_of(kube: kubernetes.client.ApiClient, home: str, user: str, token: str) -> None:
    """A device of another user, as RegisterDevice writes it for them (the test calls as `developer`)."""
    kubernetes.client.CoreV1Api(kube).create_namespaced_secret(
        home,
        kubernetes.client.V1Secret(
            metadata=kubernetes.client.V1ObjectMeta(
                name=f"notification-device-{user}{uuid.uuid4().hex[:8]}",
                labels={KIND_LABEL: "notification-device"},
                annotations={"novasphere.dev/user": user, "novasphere.dev/platform": "android"},
            ),
            data={"token": base64.b64encode(token.encode()).decode()},
        ),
    )


def failing_vms(kube: kubernetes.client.ApiClient, replica: Replica, namespace: str, names: list[str]) -> None:
    """Running VMs that then crash after every boot (KubeVirt's CrashLoopBackOff: ERROR)."""
    for name in names:
        kube_helpers.create_wukong(kube, namespace, name, {**SPEC, "startStrategy": {"autoStart": True}})
    for name in names:
        wait_power(replica.wukongs, namespace, name, Power.RUNNING)
    for name in names:
        annotate(kube, namespace, name, {faults.CRASH_AFTER_SECONDS: "1"})


def until(condition: Callable[[], T], what: str, timeout: float = WAIT) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout:g} s: {what}")


def named(messages: list[dict[str, Any]]) -> set[str]:
    return {name for message in messages for name in message["data"].get("names", "").split(",") if name}


def test_failing_vms_notify_their_tenant_on_every_device_in_one_message_and_nobody_else(
    kube: kubernetes.client.ApiClient,
    replicas: Callable[..., Replica],
    providers: Providers,
    home: str,
    namespace: str,
) -> None:
    replica = replicas()
    phone, tablet, stranger = (f"tok-{uuid.uuid4().hex}" for _ in range(3))
    register(replica, phone, "phone")
    register(replica, tablet, "tablet")
    device_of(kube, home, "outsider", stranger)
    hook = replica.notifications.CreateWebhook(
        pb.CreateWebhookRequest(
            kind=pb.GENERIC,
            name="ops",
            url=f"{providers.robots.url}/hooks/novasphere",
            secret=providers.credentials.webhook_secret,
            locale="en-US",
        )
    )
    assert (hook.host, hook.signed) == ("127.0.0.1", True)
    names = ["crash-a", "crash-b", "crash-c"]

    failing_vms(kube, replica, namespace, names)

    def told_all(token: str) -> Callable[[], bool]:
        return lambda: set(names) <= named(providers.messages_to(token, naming=names))

    for token in (phone, tablet):
        until(told_all(token), f"all three VMs told to {token}")
    first = providers.messages_to(phone, naming=names)[0]
    assert set(first["data"]["kinds"].split(",")) <= {"VM_FAILED", "VM_STOPPED_UNEXPECTEDLY"}, first
    assert len(named([first])) >= 2, f"a burst is one notification, not one per VM: {first}"
    assert first["data"]["count"] == str(len(named([first]))), f"one event per VM, not one per crash: {first}"
    assert "台虚拟机" in first["notification"]["title"] + first["notification"]["body"], first  # zh-CN, the device's
    assert first["android"]["collapse_key"] == providers.messages_to(tablet, naming=names)[0]["android"]["collapse_key"]
    received = until(lambda: [r for r in providers.robots.received if r[0] == "webhook"], "the tenant's webhook")
    assert received[0][2]["X-NovaSphere-Event-Id"], received[0]
    assert providers.messages_to(stranger) == []
    assert providers.fcm.problems == []
    assert providers.robots.problems == []
    devices = until(
        lambda: [
            d for d in replica.notifications.ListDevices(pb.ListDevicesRequest()).devices if d.last_delivery.outcome
        ],
        "a delivery outcome recorded",
    )
    assert {d.last_delivery.outcome for d in devices} == {"delivered"}, devices


def test_a_token_fcm_calls_unregistered_is_removed(
    kube: kubernetes.client.ApiClient, replicas: Callable[..., Replica], providers: Providers, namespace: str
) -> None:
    replica = replicas()
    gone = register(replica, f"tok-{uuid.uuid4().hex}", "old phone")
    providers.fcm.script.append(
        Scripted(
            404,
            {
                "error": {
                    "code": 404,
                    "status": "NOT_FOUND",
                    "message": "Requested entity was not found.",
                    "details": [
                        {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "UNREGISTERED"}
                    ],
                }
            },
        )
    )

    failing_vms(kube, replica, namespace, ["crash-gone"])

    until(
        lambda: gone.id not in {d.id for d in replica.notifications.ListDevices(pb.ListDevicesRequest()).devices},
        "the unregistered device removed",
    )
    assert providers.fcm.script == []


@pytest.mark.parametrize("failpoint", ["notification-outbox-written:1", "notification-sent:1"])
def test_a_leader_killed_around_a_send_still_delivers_under_the_same_collapse_key(
    failpoint: str,
    kube: kubernetes.client.ApiClient,
    replicas: Callable[..., Replica],
    providers: Providers,
    home: str,
    namespace: str,
) -> None:
    dying = replicas(failpoint)
    token = f"tok-{uuid.uuid4().hex}"
    register(dying, token, "phone")

    failing_vms(kube, dying, namespace, [f"crash-{failpoint.split('-')[1][:4]}"])
    until(lambda: not dying.process.alive(), f"the leader killed at {failpoint}")
    (left,) = (
        kubernetes.client.CoreV1Api(kube)
        .list_namespaced_config_map(home, label_selector=f"{KIND_LABEL}=notification-outbox")
        .items
    )
    assert left.data is not None
    key = outbox.loads(left.data[outbox.DATA_KEY]).batch.collapse_key
    before = [m for m in providers.messages_to(token) if m["android"]["collapse_key"] == key]
    assert len(before) == (1 if failpoint.startswith("notification-sent") else 0), before

    replicas()  # the next leader

    until(
        lambda: len([m for m in providers.messages_to(token) if m["android"]["collapse_key"] == key]) > len(before),
        "the notification sent (again) by the next leader, under the same collapse key",
    )
    assert providers.fcm.problems == []


def test_preferences_and_quiet_hours_are_honoured(
    kube: kubernetes.client.ApiClient,
    replicas: Callable[..., Replica],
    providers: Providers,
    home: str,
    namespace: str,
) -> None:
    """`developer` wants task failures only, `owl` is in quiet hours, `lark` wants the defaults: lark hears of the
    failure at once, owl once the quiet hours end, developer never."""
    replica = replicas()
    mine, owls, larks = (f"tok-{uuid.uuid4().hex}" for _ in range(3))
    register(replica, mine, "phone")
    replica.notifications.UpdateNotificationPreferences(
        pb.UpdateNotificationPreferencesRequest(preferences=pb.NotificationPreferences(events=["TASK_FAILED"]))
    )
    device_of(kube, home, "owl", owls)
    device_of(kube, home, "lark", larks)
    now = datetime.datetime.now(datetime.UTC)
    start = now.replace(second=0, microsecond=0)
    end = (now + datetime.timedelta(seconds=20)).replace(second=0, microsecond=0) + datetime.timedelta(minutes=1)
    quiet = parse_preferences(quiet_start=f"{start:%H:%M}", quiet_end=f"{end:%H:%M}", time_zone="UTC")
    kubernetes.client.CoreV1Api(kube).create_namespaced_config_map(
        home,
        kubernetes.client.V1ConfigMap(
            metadata=kubernetes.client.V1ObjectMeta(
                name=preferences_object_name("owl"), labels={KIND_LABEL: "notification-preferences"}
            ),
            data={store.USER_KEY: "owl", store.PREFERENCES_KEY: store.preferences_json(quiet)},
        ),
    )
    until(
        lambda: (
            replica.notifications.GetNotificationPreferences(pb.GetNotificationPreferencesRequest()).events
            == ["TASK_FAILED"]
        ),
        "developer's preferences in force",
    )

    failing_vms(kube, replica, namespace, ["crash-quiet"])

    until(lambda: providers.messages_to(larks, naming=["crash-quiet"]), "lark told at once")
    assert providers.messages_to(owls) == [], "owl is in quiet hours"
    until(lambda: providers.messages_to(owls, naming=["crash-quiet"]), "owl told when the quiet hours end", timeout=120)
    assert time.time() >= end.timestamp() - 1, "not before the quiet hours end"
    assert providers.messages_to(mine, kind="VM_FAILED") == [], "developer does not want VM failures"
    assert providers.messages_to(mine, kind="VM_STOPPED_UNEXPECTEDLY") == []


def test_a_quota_nearly_used_is_told_to_the_tenants_administrators_only(
    kube: kubernetes.client.ApiClient,
    replicas: Callable[..., Replica],
    providers: Providers,
    home: str,
    namespace: str,
) -> None:
    """kube-controller-manager counts the namespace's ConfigMaps against a quota of 10: the 9th crosses 90%."""
    replica = replicas()
    mine, bosses = (f"tok-{uuid.uuid4().hex}" for _ in range(2))
    register(replica, mine, "phone")
    device_of(kube, home, "boss", bosses)
    core = kubernetes.client.CoreV1Api(kube)
    core.create_namespaced_resource_quota(
        namespace,
        kubernetes.client.V1ResourceQuota(
            metadata=kubernetes.client.V1ObjectMeta(name="few-configmaps"),
            spec=kubernetes.client.V1ResourceQuotaSpec(hard={"count/configmaps": "10"}),
        ),
    )

    def used() -> int:
        status = core.read_namespaced_resource_quota("few-configmaps", namespace).status
        return int(((status and status.used) or {}).get("count/configmaps", "-1"))

    until(lambda: used() >= 0, "the quota counted")
    for index in range(10 - used()):
        core.create_namespaced_config_map(
            namespace, kubernetes.client.V1ConfigMap(metadata=kubernetes.client.V1ObjectMeta(name=f"filler-{index}"))
        )

    (told,) = until(lambda: providers.messages_to(bosses, kind="QUOTA_NEARLY_USED"), "the tenant's administrator told")
    assert told["data"]["kinds"] == "QUOTA_NEARLY_USED", told
    assert told["data"]["namespace"] == namespace, told
    assert "count/configmaps" in told["notification"]["body"], told
    assert providers.messages_to(mine, kind="QUOTA_NEARLY_USED") == [], "an operator can do nothing about a quota"


def test_a_console_taken_over_is_told_to_the_one_who_held_it(
    kube: kubernetes.client.ApiClient,
    replicas: Callable[..., Replica],
    providers: Providers,
    namespace: str,
) -> None:
    """`developer` holds a VM's console (a ticket issued); `hawk` takes it over: developer is told, hawk is not."""
    replica = replicas()
    mine = f"tok-{uuid.uuid4().hex}"
    register(replica, mine, "phone")
    only = pb.NotificationPreferences(events=["CONSOLE_TAKEN_OVER"])  # not the tenant's other VMs' news
    replica.notifications.UpdateNotificationPreferences(pb.UpdateNotificationPreferencesRequest(preferences=only))
    kube_helpers.create_wukong(kube, namespace, "shared", {**SPEC, "startStrategy": {"autoStart": True}})
    wait_power(replica.wukongs, namespace, "shared", Power.RUNNING)
    consoles = ConsoleServiceStub(replica.channel)
    request = console_service_pb2.CreateConsoleSessionRequest(
        namespace=namespace, name="shared", protocol=console_service_pb2.SERIAL
    )
    held = consoles.CreateConsoleSession(request)
    login = AuthServiceStub(replica.channel).Login(
        auth_service_pb2.LoginRequest(username="hawk", password=PASSWORD, tenant_id=TENANT)
    )
    as_hawk = (("authorization", f"Bearer {login.access_token}"),)

    request.take_over = True
    taken = consoles.CreateConsoleSession(request, metadata=as_hawk)

    assert taken.session_id != held.session_id
    (told,) = until(lambda: providers.messages_to(mine, kind="CONSOLE_TAKEN_OVER"), "developer told of the takeover")
    assert told["data"]["kinds"] == "CONSOLE_TAKEN_OVER", told
    assert "hawk" in told["notification"]["body"], told
