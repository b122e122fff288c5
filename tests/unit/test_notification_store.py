"""What the notification API keeps and checks without a cluster: where the server may post (the SSRF guard), how
devices, webhooks and preferences are read back from their objects, and the outbox entry's round trip."""

from __future__ import annotations

import base64
import datetime
import json

import pytest

from server.kube.auth_objects import KIND_LABEL
from server.kube.informer import Kind
from server.notifications import outbox, store
from server.notifications.coalesce import Batch
from server.notifications.events import Event, EventKind
from server.notifications.preferences import parse_preferences
from server.notifications.providers import DEFAULT_WEBHOOK_HOSTS, check_destination, host_allowed
from server.tasks.model import Operation

AT = datetime.datetime(2026, 12, 5, 8, 30, tzinfo=datetime.UTC)
SECRETS = Kind("notification-secrets", "/x")
CONFIG_MAPS = Kind("notification-configmaps", "/y")


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("oapi.dingtalk.com", True),
        ("OAPI.dingtalk.com.", True),
        ("evil-oapi.dingtalk.com", False),
        ("oapi.dingtalk.com.evil.example", False),
        ("169.254.169.254", False),
        ("kubernetes.default.svc", False),
    ],
)
def test_only_the_hosts_an_operator_allows_are_posted_to(host: str, allowed: bool) -> None:
    assert host_allowed(host, DEFAULT_WEBHOOK_HOSTS) is allowed


def test_a_wildcard_covers_subdomains_not_the_bare_suffix() -> None:
    assert host_allowed("a.push.example", ("*.push.example",))
    assert not host_allowed("push.example", ("*.push.example",))
    assert not host_allowed("xpush.example", ("*.push.example",))


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("", "is required"),
        ("http://oapi.dingtalk.com/robot/send", "must be an https:// URL"),
        ("https://user:pw@oapi.dingtalk.com/robot/send", "must not carry user info"),
        ("https://169.254.169.254/latest/meta-data", "is not one this installation posts to"),
        ("https://oapi.dingtalk.com:99999/", "is not a URL"),
    ],
)
def test_a_destination_is_refused_with_what_to_fix(url: str, problem: str) -> None:
    (violation,) = check_destination(url, DEFAULT_WEBHOOK_HOSTS, "url", setting="NOVASPHERE_NOTIFY_WEBHOOK_HOSTS")
    assert violation.field == "url"
    assert problem in violation.description


def test_the_refusal_of_a_host_names_the_setting_to_change() -> None:
    (violation,) = check_destination("https://hooks.example.com/x", ("a.example",), "url", setting="SETTING_X")
    assert "SETTING_X" in violation.description


def test_an_allowed_https_destination_passes() -> None:
    assert (
        check_destination(
            "https://oapi.dingtalk.com/robot/send?access_token=x", DEFAULT_WEBHOOK_HOSTS, "url", setting="S"
        )
        == []
    )


def _secret(kind: str, name: str, annotations: dict[str, str], data: dict[str, str]) -> dict[str, object]:
    return {
        "metadata": {"name": name, "uid": f"uid-{name}", "labels": {KIND_LABEL: kind}, "annotations": annotations},
        "data": {key: base64.b64encode(value.encode()).decode() for key, value in data.items()},
    }


def test_devices_webhooks_and_preferences_are_read_back_from_their_objects() -> None:
    mirrored = store.NotificationStore()
    web = {"endpoint": "https://fcm.googleapis.com/wp/abc", "p256dh": "key", "auth": "auth"}
    mirrored.replace(
        SECRETS,
        [
            _secret(
                "notification-device",
                "notification-device-aaa",
                {store.USER_ANNOTATION: "ada", store.PLATFORM_ANNOTATION: "android", store.LOCALE_ANNOTATION: "zh-CN"},
                {store.TOKEN_KEY: "tok"},
            ),
            _secret(
                "notification-device",
                "notification-device-bbb",
                {store.USER_ANNOTATION: "ada", store.PLATFORM_ANNOTATION: "web"},
                {store.SUBSCRIPTION_KEY: json.dumps(web)},
            ),
            _secret(
                "notification-device",
                "notification-device-bad",
                {store.USER_ANNOTATION: "ada", store.PLATFORM_ANNOTATION: "pager"},
                {store.TOKEN_KEY: "x"},
            ),
            _secret(
                "notification-webhook",
                "notification-webhook-ccc",
                {
                    store.TENANT_ANNOTATION: "demo",
                    store.NAME_ANNOTATION: "ops",
                    store.WEBHOOK_KIND_ANNOTATION: "wecom",
                    store.EVENTS_ANNOTATION: '["VM_FAILED"]',
                },
                {store.URL_KEY: "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k"},
            ),
        ],
        1,
    )
    preferences = parse_preferences(
        events=["VM_FAILED"], quiet_start="22:00", quiet_end="07:00", time_zone="Asia/Shanghai"
    )
    mirrored.replace(
        CONFIG_MAPS,
        [
            {
                "metadata": {"name": "notification-preferences-x", "labels": {KIND_LABEL: "notification-preferences"}},
                "data": {store.USER_KEY: "ada", store.PREFERENCES_KEY: store.preferences_json(preferences)},
            }
        ],
        1,
    )

    assert mirrored.synced
    devices = {device.id: device for device in mirrored.devices_of("ada")}
    assert set(devices) == {"aaa", "bbb"}, "the one of an unknown platform is ignored, not fatal"
    assert (devices["aaa"].token, devices["aaa"].locale) == ("tok", "zh-CN")
    assert devices["bbb"].web_push is not None
    assert devices["bbb"].web_push.endpoint == web["endpoint"]
    (hook,) = mirrored.webhooks_of("demo")
    assert (hook.id, hook.kind, hook.events) == ("demo/ops", "wecom", frozenset({EventKind.VM_FAILED}))
    assert mirrored.webhooks_of("other") == []
    assert mirrored.preferences_of("ada") == preferences
    assert mirrored.preferences_of("bob") is None

    mirrored.apply(SECRETS, "DELETED", _secret("notification-device", "notification-device-aaa", {}, {}), 2)
    mirrored.replace(CONFIG_MAPS, [], 3)
    assert [device.id for device in mirrored.devices_of("ada")] == ["bbb"]
    assert mirrored.preferences_of("ada") is None


def test_an_outbox_entry_reads_back_as_the_same_batch_with_the_same_collapse_key() -> None:
    events = (
        Event("e1", EventKind.VM_FAILED, "demo", "ns", AT, wukong="a", wukong_uid="u1", labels={"app": "web"}),
        Event(
            "e2",
            EventKind.TASK_FAILED,
            "demo",
            "ns",
            AT,
            wukong="b",
            task_id="t1",
            task_operation=Operation.RESTART,
            owner="ada",
            details={"state": "Failed"},
        ),
    )
    entry = outbox.Entry(
        Batch("user:ada", events),
        (outbox.Destination("device", "aaa"), outbox.Destination("webhook", "demo/ops")),
        AT,
        2,
    )

    again = outbox.loads(outbox.dumps(entry))

    assert again == entry
    assert again.batch.collapse_key == entry.batch.collapse_key
    assert again.name == entry.name
    assert again.name.startswith(outbox.NAME_PREFIX)
    assert len(again.name) <= 63


def test_devices_of_deleted_users_are_orphans_and_webhooks_never_are() -> None:
    mirrored = store.NotificationStore()
    mirrored.replace(
        SECRETS,
        [
            _secret(
                "notification-device",
                f"notification-device-{user}",
                {store.USER_ANNOTATION: user, store.PLATFORM_ANNOTATION: "android"},
                {store.TOKEN_KEY: f"tok-{user}"},
            )
            for user in ("ada", "gone")
        ]
        + [
            _secret(
                "notification-webhook",
                f"notification-webhook-{tenant}",
                {store.TENANT_ANNOTATION: tenant, store.NAME_ANNOTATION: "ops", store.WEBHOOK_KIND_ANNOTATION: "wecom"},
                {store.URL_KEY: "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k"},
            )
            for tenant in ("demo", "closed")
        ],
        1,
    )

    orphans = mirrored.orphans(user_exists=lambda user: user == "ada")

    assert orphans == ["notification-device-gone"], "a tenant without namespaces for a while keeps its webhooks"
