"""`vmctl notifications` as users get it (the installed wheel, run as a subprocess) against the real stack: devices
registered with a token, listed (never the token), sent a test and deleted; preferences changed one part at a time;
the tenant's webhooks created (URL and secret never echoed), listed by host, refused and deleted.

The session's stack has no push provider configured and the default allowed webhook hosts. The API reads devices,
preferences and webhooks from informers, so what was just written shows up eventually, not at once."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes.client
import pytest
import yaml

from devcluster import accounts
from tests import kube_helpers
from tests.conftest import TENANT
from tests.e2e import test_vmctl
from tests.e2e.test_auth import PASSWORD
from tests.e2e.test_vmctl import ARTIFACTS, EXIT, Front, Installed, Vmctl

installed = test_vmctl.installed  # its module's fixtures, for this module too: vmctl from its wheel, a TLS front
front = test_vmctl.front

NOT_CONFIGURED = "android push is not configured on this installation"
DEFAULT_EVENTS = ["CONSOLE_TAKEN_OVER", "QUOTA_NEARLY_USED", "TASK_FAILED", "VM_FAILED", "VM_STOPPED_UNEXPECTEDLY"]


@pytest.fixture
def vmctl(installed: Installed, front: Front, tmp_path: Path, namespace: str) -> Vmctl:
    return Vmctl(installed, front, tmp_path, namespace)


@pytest.fixture
def subscriber(kube: kubernetes.client.ApiClient) -> Iterator[str]:
    """An operator: `notification:subscribe`, not `notification:webhook:manage`."""
    name = f"cli-notify-{uuid.uuid4().hex[:8]}"
    accounts.create_user(kube, name, PASSWORD, tenant=TENANT, role="operator")
    yield name
    accounts.unbind(kube, name)


@pytest.fixture
def tenant_admin(kube: kubernetes.client.ApiClient) -> Iterator[str]:
    name = f"cli-hooks-{uuid.uuid4().hex[:8]}"
    accounts.create_user(kube, name, PASSWORD, tenant=TENANT, role="tenant-admin")
    yield name
    accounts.unbind(kube, name)


def both(vmctl: Vmctl, *args: str) -> subprocess.CompletedProcess[str]:
    """A run whose stdout and stderr both matter (a test send prints outcomes, then fails if any failed)."""
    return subprocess.run([str(vmctl.path), *args], capture_output=True, text=True, env=vmctl.env, timeout=120)


def listed(vmctl: Vmctl, *args: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = json.loads(vmctl.run(*args, "-o", "json"))["items"]
    return items


def shown(vmctl: Vmctl) -> dict[str, Any]:
    preferences: dict[str, Any] = json.loads(vmctl.run("notifications", "preferences", "-o", "json"))
    return preferences


def test_a_device_registered_with_a_token_is_listed_without_it_tested_and_deleted(
    vmctl: Vmctl, subscriber: str
) -> None:
    vmctl.login(subscriber)
    assert vmctl.run("notifications", "push-settings").splitlines() == [
        "Platforms:        none (an operator configures FCM, APNs or Web Push)",
        "VAPID public key: none (Web Push is not configured)",
    ]
    assert json.loads(vmctl.run("notifications", "push-settings", "-o", "json")) == {}
    assert listed(vmctl, "notifications", "devices") == []
    assert "you have no devices" in vmctl.run("notifications", "test")

    token = f"fcm-{uuid.uuid4().hex}{uuid.uuid4().hex}"
    register = ("notifications", "devices", "register", "--platform", "android", "--token", token)
    details = ("--name", "Ada's Pixel", "--locale", "zh-CN", "--app-version", "1.2.3")
    out = vmctl.run(*register, *details)
    assert out.startswith("device/")
    assert out.endswith(" registered (android, Ada's Pixel)\n")
    assert token not in out
    device_id = out.split()[0].removeprefix("device/")
    assert vmctl.run(*register, *details).split()[0] == f"device/{device_id}"  # the same token: the same device

    devices = kube_helpers.eventually(lambda: listed(vmctl, "notifications", "devices"), what="the device listed")
    assert len(devices) == 1
    device = devices[0]
    assert {k: device[k] for k in ("id", "platform", "name", "appVersion", "locale")} == {
        "id": device_id,
        "platform": "ANDROID",
        "name": "Ada's Pixel",
        "appVersion": "1.2.3",
        "locale": "zh-CN",
    }
    assert "lastDelivery" not in device
    table = vmctl.run("notifications", "devices")
    header, row = table.splitlines()
    for title in ("ID", "PLATFORM", "NAME", "APP VERSION", "LOCALE", "PUSH SERVICE", "LAST DELIVERY", "DETAIL"):
        assert title in header
    assert row.split()[:2] == [device_id, "android"]
    assert row.rstrip().endswith("never")
    assert vmctl.run("notifications", "devices", "list", "-o", "name") == f"device/{device_id}\n"
    for output in (
        table,
        vmctl.run("notifications", "devices", "-o", "json"),
        vmctl.run("notifications", "devices", "-o", "yaml"),
    ):
        assert token not in output

    sent = both(vmctl, "notifications", "test", "-o", "json")  # no provider on the stack: the send fails, and says why
    assert (sent.returncode, sent.stderr) == (EXIT["failed"], "error: 1 of 1 test notifications not delivered\n")
    assert json.loads(sent.stdout)["items"] == [{"deviceId": device_id, "outcome": "failed", "detail": NOT_CONFIGURED}]
    sent = both(vmctl, "notifications", "test", "--device", device_id)
    assert sent.returncode == EXIT["failed"]
    assert [line.split(None, 2) for line in sent.stdout.splitlines()] == [
        ["DEVICE", "OUTCOME", "DETAIL"],
        [device_id, "failed", NOT_CONFIGURED],
    ]
    refused = vmctl.run("notifications", "test", "--device", "nothing-here", expect="not found")
    assert refused == "error: you have no device 'nothing-here' (ListDevices shows yours)"

    def delivered() -> dict[str, Any] | None:
        last: dict[str, Any] = listed(vmctl, "notifications", "devices")[0].get("lastDelivery", {})
        return last if last.get("outcome") == "failed" else None

    last = kube_helpers.eventually(delivered, what="the test's outcome on the device")
    assert (last["outcome"], last["detail"]) == ("failed", NOT_CONFIGURED)
    table = vmctl.run("notifications", "devices")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)  # what a person sees, kept to look at
    (ARTIFACTS / "notifications-devices.txt").write_text(table + sent.stdout)
    row = table.splitlines()[1]
    assert row.split()[:2] == [device_id, "android"]
    assert " failed " in row
    assert " ago " in row
    assert row.endswith(f"   {NOT_CONFIGURED}")

    refused = vmctl.run("notifications", "devices", "register", "--platform", "ios", "--token", "abc", expect="usage")
    assert "an APNs device token is 64 or more hex digits" in refused
    refused = vmctl.run("notifications", "devices", "register", "--token", "x", expect="usage")
    assert refused == "error: --platform is required: android or ios"

    assert vmctl.run("notifications", "devices", "delete", device_id) == f"device/{device_id} deleted\n"
    kube_helpers.eventually(lambda: listed(vmctl, "notifications", "devices") == [], what="the device gone")
    refused = vmctl.run("notifications", "devices", "delete", device_id, expect="not found")
    assert refused == f"error: you have no device '{device_id}' (ListDevices shows yours)"


def test_preferences_change_only_what_is_given(vmctl: Vmctl, subscriber: str) -> None:
    vmctl.login(subscriber)
    assert vmctl.run("notifications", "preferences").splitlines() == [
        f"Events:      {', '.join(DEFAULT_EVENTS)}",
        "VMs:         every VM you may see",
        "Quiet hours: none",
        "Locale:      en-US",
    ]
    out = vmctl.run(
        "notifications",
        "preferences",
        "set",
        "--events",
        "vm_failed,TASK_FAILED",
        "--vms",
        "web-1,prod/db",
        "--quiet",
        "22:00-07:00",
        "--time-zone",
        "Asia/Shanghai",
    )
    assert out == "notification preferences saved: events, VMs, quiet hours\n"
    wanted = {
        "events": ["TASK_FAILED", "VM_FAILED"],
        "vmNames": ["prod/db", "web-1"],
        "quietHours": {"start": "22:00", "end": "07:00", "timeZone": "Asia/Shanghai"},
        "locale": "en-US",
    }
    kube_helpers.eventually(lambda: shown(vmctl) == wanted, what="the preferences saved")
    described = vmctl.run("notifications", "preferences", "show")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "notifications-preferences.txt").write_text(described)
    assert described.splitlines() == [
        "Events:      TASK_FAILED, VM_FAILED",
        "VMs:         prod/db, web-1",
        "Quiet hours: 22:00-07:00 Asia/Shanghai",
        "Locale:      en-US",
    ]
    assert yaml.safe_load(vmctl.run("notifications", "preferences", "-o", "yaml")) == wanted

    # the rest stays: only the locale, then only the VMs (by label now), then only the time zone
    vmctl.run("notifications", "preferences", "set", "--locale", "zh-CN")
    wanted["locale"] = "zh-CN"
    kube_helpers.eventually(lambda: shown(vmctl) == wanted, what="the locale changed, the rest kept")
    vmctl.run("notifications", "preferences", "set", "--vm-label", "tier=web", "--vm-label", "team=ops")
    del wanted["vmNames"]
    wanted["vmLabels"] = {"team": "ops", "tier": "web"}
    kube_helpers.eventually(lambda: shown(vmctl) == wanted, what="VMs by label")
    vmctl.run("notifications", "preferences", "set", "--time-zone", "Europe/Berlin")
    wanted["quietHours"] = {"start": "22:00", "end": "07:00", "timeZone": "Europe/Berlin"}
    kube_helpers.eventually(lambda: shown(vmctl) == wanted, what="the time zone changed, the hours kept")

    # an unknown time zone: refused, with the field and what would do, and nothing changed
    refused = vmctl.run(
        "notifications", "preferences", "set", "--quiet", "23:00-06:00", "--time-zone", "Mars/Olympus", expect="usage"
    )
    assert refused == (
        "error: invalid request: preferences.quiet_hours.time_zone: 'Mars/Olympus' is not an IANA time zone like "
        "Asia/Shanghai"
    )
    assert shown(vmctl) == wanted
    refused = vmctl.run("notifications", "preferences", "set", "--quiet", "22:00", expect="usage")
    assert refused == "error: --quiet '22:00' is not START-END, e.g. 22:00-07:00"
    assert "nothing to change" in vmctl.run("notifications", "preferences", "set", expect="usage")
    refused = vmctl.run("notifications", "preferences", "set", "--no-quiet", "--time-zone", "UTC", expect="usage")
    assert refused == "error: --no-quiet takes neither --quiet nor --time-zone"

    vmctl.run("notifications", "preferences", "set", "--events", "none", "--no-quiet", "--all-vms")
    kube_helpers.eventually(lambda: shown(vmctl) == {"locale": "zh-CN"}, what="everything muted")
    assert vmctl.run("notifications", "preferences").splitlines() == [
        "Events:      none (muted)",
        "VMs:         every VM you may see",
        "Quiet hours: none",
        "Locale:      zh-CN",
    ]


def test_webhooks_are_created_without_echoing_credentials_listed_by_host_and_deleted(
    vmctl: Vmctl, subscriber: str, tenant_admin: str
) -> None:
    vmctl.login(subscriber)
    refused = vmctl.run("notifications", "webhooks", expect="denied")
    assert "notification:webhook:manage" in refused

    vmctl.login(tenant_admin)
    suffix = uuid.uuid4().hex[:6]
    oncall, wecom = f"ops-oncall-{suffix}", f"wecom-{suffix}"
    refused = vmctl.run(
        "notifications",
        "webhooks",
        "create",
        oncall,
        "--kind",
        "generic",
        "--url",
        "https://hooks.example.com/receive",
        "--secret-stdin",
        stdin="a-secret-of-32-characters-or-so!\n",
        expect="usage",
    )
    assert refused == (
        "error: invalid request: url: host 'hooks.example.com' is not one this installation posts to "
        "(oapi.dingtalk.com, open.feishu.cn, open.larksuite.com, qyapi.weixin.qq.com); an operator can add it to "
        "NOVASPHERE_NOTIFY_WEBHOOK_HOSTS"
    )

    access_token, secret = f"tok{uuid.uuid4().hex}", f"SEC{uuid.uuid4().hex}"
    wecom_key = uuid.uuid4().hex
    out = vmctl.run(
        "notifications",
        "webhooks",
        "create",
        oncall,
        "--kind",
        "dingtalk",
        "--url",
        "-",
        "--secret-stdin",
        stdin=f"https://oapi.dingtalk.com/robot/send?access_token={access_token}\n{secret}\n",
    )
    assert out == f"webhook/{oncall} created (dingtalk to oapi.dingtalk.com, signed)\n"
    url = f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={wecom_key}"
    out = vmctl.run(
        "notifications",
        "webhooks",
        "create",
        wecom,
        "--kind",
        "wecom",
        "--url",
        url,
        "--events",
        "vm_failed",
        "--locale",
        "zh-CN",
    )
    assert out == f"webhook/{wecom} created (wecom to qyapi.weixin.qq.com, not signed)\n"
    refused = vmctl.run(
        "notifications", "webhooks", "create", wecom, "--kind", "wecom", "--url", url, expect="conflict"
    )
    assert f"already has a webhook named '{wecom}'" in refused

    def mine() -> list[dict[str, Any]]:
        return [w for w in listed(vmctl, "notifications", "webhooks") if w["name"] in (oncall, wecom)]

    hooks = kube_helpers.eventually(lambda: mine() if len(mine()) == 2 else None, what="both webhooks listed")
    shape = [
        {k: w.get(k) for k in ("name", "kind", "host", "signed", "events", "locale", "createdBy", "tenant")}
        for w in hooks
    ]
    assert shape == [
        {
            "name": oncall,
            "kind": "DINGTALK",
            "host": "oapi.dingtalk.com",
            "signed": True,
            "events": ["QUOTA_NEARLY_USED", "VM_FAILED", "VM_STOPPED_UNEXPECTEDLY"],
            "locale": "en-US",
            "createdBy": tenant_admin,
            "tenant": TENANT,
        },
        {
            "name": wecom,
            "kind": "WECOM",
            "host": "qyapi.weixin.qq.com",
            "signed": None,
            "events": ["VM_FAILED"],
            "locale": "zh-CN",
            "createdBy": tenant_admin,
            "tenant": TENANT,
        },
    ]
    table = vmctl.run("notifications", "webhooks")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "notifications-webhooks.txt").write_text(table)
    rows = {line.split()[0]: line.split() for line in table.splitlines()[1:]}
    assert rows[oncall] == [
        oncall,
        "dingtalk",
        "oapi.dingtalk.com",
        "yes",
        "QUOTA_NEARLY_USED,VM_FAILED,VM_STOPPED_UNEXPECTEDLY",
        "en-US",
        tenant_admin,
        "never",
    ]
    assert rows[wecom] == [wecom, "wecom", "qyapi.weixin.qq.com", "no", "VM_FAILED", "zh-CN", tenant_admin, "never"]
    header = table.splitlines()[0]
    for title in ("NAME", "KIND", "HOST", "SIGNED", "EVENTS", "LOCALE", "CREATED BY", "LAST DELIVERY"):
        assert title in header
    everything = (
        table
        + vmctl.run("notifications", "webhooks", "-o", "json")
        + vmctl.run("notifications", "webhooks", "-o", "yaml")
    )
    for credential in (access_token, secret, wecom_key):
        assert credential not in everything

    assert vmctl.run("notifications", "webhooks", "delete", oncall) == f"webhook/{oncall} deleted\n"
    kube_helpers.eventually(lambda: [w["name"] for w in mine()] == [wecom], what="the webhook gone")
    assert f"has no webhook '{oncall}'" in vmctl.run("notifications", "webhooks", "delete", oncall, expect="not found")
    vmctl.run("notifications", "webhooks", "delete", wecom)
    kube_helpers.eventually(lambda: mine() == [], what="both webhooks gone")
