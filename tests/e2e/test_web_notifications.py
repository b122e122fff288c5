"""The web console's Notifications page in Debian's chromium, against the real stack (which configures no push provider
and no VAPID key): the caller's devices (one registered through the API is listed, sent a test whose outcome the page
shows, and deleted in the page), this browser's Web Push explained as not configured on this installation,
preferences saved with quiet hours and read back after a reload, the server's field violation for a bad time zone on
its field, and the tenant's chat webhooks (created in the page, listed by host only) for a tenant administrator, not
for an operator. Screenshots in both languages go to test-artifacts/web/notifications-*.png."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import grpc
import kubernetes.client
import pytest

from devcluster import accounts
from novasphere.v1 import notification_service_pb2 as pb
from novasphere.v1.notification_service_pb2_grpc import NotificationServiceStub
from tests import kube_helpers
from tests.conftest import TENANT
from tests.e2e.test_auth import PASSWORD
from tests.web_browser import Browser, Tab
from tests.web_console import Web, api_token, bearer, can_log_in, open_signed_in, shot

CHINESE = pytest.mark.parametrize("browser", ["zh-CN"], indirect=True)
NOT_CONFIGURED = "android push is not configured on this installation"
NARROW = 768
DINGTALK_URL = "https://oapi.dingtalk.com/robot/send?access_token=abc"


@pytest.fixture
def tenant_admin(kube: kubernetes.client.ApiClient) -> Iterator[str]:
    name = f"notify-{uuid.uuid4().hex[:8]}"
    accounts.create_user(kube, name, PASSWORD, tenant=TENANT, role="tenant-admin")
    yield name
    accounts.unbind(kube, name)


def call(web: Web, username: str, method: str, request: object) -> object:
    """One NotificationService call to the replica as `username`."""
    token = kube_helpers.eventually(lambda: api_token(web, username), timeout=20, what=f"{username} to be known")
    with grpc.insecure_channel(web.api_target) as channel:
        return getattr(NotificationServiceStub(channel), method)(request, metadata=bearer(token))


def register_phone(web: Web, username: str, name: str) -> pb.Device:
    device = call(
        web,
        username,
        "RegisterDevice",
        pb.RegisterDeviceRequest(
            platform=pb.ANDROID, token=f"fcm-{uuid.uuid4().hex}", name=name, app_version="2.4.1", locale="zh-CN"
        ),
    )
    assert isinstance(device, pb.Device)
    return device


def devices_of(web: Web, username: str) -> list[pb.Device]:
    answer = call(web, username, "ListDevices", pb.ListDevicesRequest())
    assert isinstance(answer, pb.ListDevicesResponse)
    return list(answer.devices)


def delete_webhook(web: Web, username: str, name: str) -> None:
    """Cleans up a webhook a test made, unless the test deleted it already."""
    try:
        call(web, username, "DeleteWebhook", pb.DeleteWebhookRequest(name=name))
    except grpc.RpcError as error:
        if error.code() != grpc.StatusCode.NOT_FOUND:
            raise


def device_row(device_id: str) -> str:
    return f"[data-testid=devices] tr[data-row-key='{device_id}']"


def webhook_row(name: str) -> str:
    return f"[data-testid=webhooks] tr[data-row-key='{name}']"


def dialog(name: str) -> str:
    return f".dialog-{name} .ant-modal"


def value(tab: Tab, selector: str) -> str:
    return str(tab.evaluate(f"document.querySelector({selector!r}).value"))


def checked(tab: Tab, selector: str) -> bool:
    return bool(tab.evaluate(f"document.querySelector({selector!r}).checked"))


def at_narrow_width(tab: Tab, name: str) -> None:
    """The page at 768 px wide: nothing wider than the window (tables scroll inside their cards); a screenshot."""
    tab.viewport(NARROW, 900)
    try:
        assert tab.evaluate("document.documentElement.scrollWidth") <= NARROW
        shot(tab, f"{name}-{NARROW}")
    finally:
        tab.viewport(1440, 900)


def set_time_zone(tab: Tab, zone: str) -> None:
    """Types a zone into the time zone field (any text: the server judges it) and closes its suggestions."""
    tab.fill("#preferences_timeZone", zone)
    tab.press("#preferences_timeZone", "Escape")


def test_a_device_registered_through_the_api_is_listed_tested_and_deleted_in_the_page(
    web: Web, browser: Browser, operator: str
) -> None:
    kube_helpers.eventually(lambda: can_log_in(web, operator), timeout=20, what="the user to be known")
    phone = register_phone(web, operator, "Ada's Pixel")
    tab = open_signed_in(browser, web, operator, path="/notifications")
    tab.wait(device_row(phone.id))
    assert tab.text("h3") == "Notifications"
    assert "Notifications" in tab.texts(".shell-nav a")
    row = tab.text(device_row(phone.id))
    for shown in ("Android", "Ada's Pixel", "2.4.1", "简体中文", "Nothing sent yet"):
        assert shown in row, row

    # this browser: the session stack has no VAPID key, so no offer, and why
    tab.wait("[data-testid=web-push] [data-state=unconfigured]")
    assert "Web Push is not configured on this installation" in tab.text("[data-testid=web-push]")
    assert tab.count("[data-testid=enable-web-push]") == 0
    # where it is configured, the page registers the worker at the web root: served as script, allowed by the CSP
    scope = tab.evaluate(
        "navigator.serviceWorker.register('/notifications-sw.js').then(async (r) => { await r.unregister(); "
        "return r.scope; })"
    )
    assert scope == web.url + "/"
    # an operator holds notification:subscribe, not notification:webhook:manage
    assert tab.count("[data-testid=webhooks]") == 0

    # a test send: no FCM credentials on this installation, so it failed, with the server's words
    tab.click("[data-testid=send-test]")
    results = f"[data-testid=test-results] [data-device-id='{phone.id}']"
    tab.wait(results)
    assert "Ada's Pixel" in tab.text(results)
    assert "Failed" in tab.text(results)
    assert NOT_CONFIGURED in tab.text(results)
    assert tab.text("[data-testid=test-results] .ant-alert-title") == "Test notification: 0 of 1 device reached"
    shot(tab, "notifications-test-sent")

    # the outcome is recorded on the device: after a reload its row says so
    kube_helpers.eventually(
        lambda: devices_of(web, operator)[0].last_delivery.outcome == "failed" or None,
        timeout=10,
        what="the test's outcome on the device",
    )
    tab.reload()
    tab.wait(f"{device_row(phone.id)} [data-outcome=failed]")
    assert NOT_CONFIGURED in tab.text(device_row(phone.id))
    assert tab.axe() == []
    shot(tab, "notifications")
    at_narrow_width(tab, "notifications")

    tab.click(f"{device_row(phone.id)} button:has-text('Delete')")
    tab.wait(dialog("delete-device"))
    assert "Delete device Ada's Pixel?" in tab.text(dialog("delete-device"))
    shot(tab, "notifications-delete-device-dialog")
    tab.click(f"{dialog('delete-device')} .ant-modal-footer button.ant-btn-dangerous")
    tab.wait(device_row(phone.id), state="detached")
    assert "No devices yet" in tab.text("[data-testid=devices]")
    kube_helpers.eventually(lambda: devices_of(web, operator) == [] or None, timeout=10, what="the device to go")


def test_preferences_with_quiet_hours_are_saved_and_a_bad_time_zone_is_marked_on_its_field(
    web: Web, browser: Browser, operator: str
) -> None:
    tab = open_signed_in(browser, web, operator, path="/notifications")
    tab.wait("#preferences_events")
    # the defaults: everything but the end of one's own tasks, every VM, no quiet hours
    assert checked(tab, "#preferences_events input[value=VM_FAILED]")
    assert not checked(tab, "#preferences_events input[value=TASK_ENDED]")
    assert checked(tab, "#preferences_scope input[value=all]")
    assert tab.count("#preferences_quietStart") == 0

    tab.click("#preferences_events input[value=TASK_ENDED]")
    tab.click("#preferences_quiet")
    tab.wait("#preferences_quietStart")
    assert value(tab, "#preferences_timeZone") == tab.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone")
    tab.fill("#preferences_quietStart", "22:30")
    tab.fill("#preferences_quietEnd", "06:45")
    set_time_zone(tab, "Asia/Shanghai")
    tab.click("#preferences_locale")
    tab.click(".ant-select-dropdown:visible .ant-select-item-option[title='简体中文']")
    tab.click("[data-testid=save-preferences]")
    tab.wait("text=Preferences saved")
    saved = call(web, operator, "GetNotificationPreferences", pb.GetNotificationPreferencesRequest())
    assert isinstance(saved, pb.NotificationPreferences)
    assert (saved.quiet_hours.start, saved.quiet_hours.end, saved.quiet_hours.time_zone) == (
        "22:30",
        "06:45",
        "Asia/Shanghai",
    )
    assert "TASK_ENDED" in saved.events
    assert saved.locale == "zh-CN"

    tab.reload()
    tab.wait("#preferences_quietStart")
    assert value(tab, "#preferences_quietStart") == "22:30"
    assert value(tab, "#preferences_quietEnd") == "06:45"
    assert value(tab, "#preferences_timeZone") == "Asia/Shanghai"
    assert checked(tab, "#preferences_events input[value=TASK_ENDED]")
    assert "简体中文" in tab.text(".ant-form-item:has(#preferences_locale)")
    shot(tab, "notifications-preferences")

    # the server judges the zone: its violation goes on the field, and nothing changes
    set_time_zone(tab, "Mars/Olympus_Mons")
    tab.click("[data-testid=save-preferences]")
    error = ".ant-form-item:has(#preferences_timeZone) .ant-form-item-explain-error"
    tab.wait(error)
    assert tab.text(error) == "'Mars/Olympus_Mons' is not an IANA time zone like Asia/Shanghai"
    assert "Could not save the preferences" in tab.text("[data-testid=preferences] [data-testid=refusal]")
    shot(tab, "notifications-preferences-violation")
    unchanged = call(web, operator, "GetNotificationPreferences", pb.GetNotificationPreferencesRequest())
    assert isinstance(unchanged, pb.NotificationPreferences)
    assert unchanged.quiet_hours.time_zone == "Asia/Shanghai"

    # corrected, the mark goes
    set_time_zone(tab, "Europe/Berlin")
    tab.click("[data-testid=save-preferences]")
    tab.wait(error, state="detached")
    tab.wait("[data-testid=preferences] [data-testid=refusal]", state="detached")


def test_a_tenant_administrator_adds_a_webhook_listed_by_host_only_and_deletes_it(
    web: Web, browser: Browser, tenant_admin: str
) -> None:
    name = f"ops-{uuid.uuid4().hex[:8]}"
    tab = open_signed_in(browser, web, tenant_admin, path="/notifications")
    tab.wait("[data-testid=webhooks] .ant-table")
    tab.click("[data-testid=webhooks] button:has-text('Add webhook')")
    tab.wait(dialog("create-webhook"))
    assert "never shown again" in tab.text(dialog("create-webhook"))
    tab.fill("#newWebhook_name", name)
    tab.fill("#newWebhook_url", DINGTALK_URL)
    shot(tab, "notifications-webhook-create-dialog")
    tab.click(f"{dialog('create-webhook')} button[type=submit]")
    try:
        tab.wait(webhook_row(name))
        tab.wait(dialog("create-webhook"), state="detached")
        row = tab.text(webhook_row(name))
        for shown in ("DingTalk", "oapi.dingtalk.com", "Not signed", "A VM failed", tenant_admin, "Nothing sent yet"):
            assert shown in row, row
        html = str(tab.evaluate("document.body.innerHTML"))
        assert "access_token" not in html  # the URL's credential is never shown
        assert tab.axe() == []
        shot(tab, "notifications-webhooks")

        # the same name again is refused, in words, in the dialog
        tab.click("[data-testid=webhooks] button:has-text('Add webhook')")
        tab.fill("#newWebhook_name", name)
        tab.fill("#newWebhook_url", DINGTALK_URL)
        tab.click(f"{dialog('create-webhook')} button[type=submit]")
        tab.wait(f"{dialog('create-webhook')} [data-testid=refusal]")
        assert "already has a webhook of this name" in tab.text(f"{dialog('create-webhook')} [data-testid=refusal]")
        tab.click(f"{dialog('create-webhook')} .ant-modal-footer button:has-text('Cancel')")
        tab.wait(dialog("create-webhook"), state="detached")

        tab.click(f"{webhook_row(name)} button:has-text('Delete')")
        tab.click(f"{dialog('delete-webhook')} .ant-modal-footer button.ant-btn-dangerous")
        tab.wait(webhook_row(name), state="detached")
    finally:
        delete_webhook(web, tenant_admin, name)


@CHINESE
def test_the_page_in_chinese(web: Web, browser: Browser, tenant_admin: str) -> None:
    kube_helpers.eventually(lambda: can_log_in(web, tenant_admin), timeout=20, what="the user to be known")
    phone = register_phone(web, tenant_admin, "Ada 的手机")
    name = f"oncall-{uuid.uuid4().hex[:8]}"
    call(
        web,
        tenant_admin,
        "CreateWebhook",
        pb.CreateWebhookRequest(kind=pb.DINGTALK, name=name, url=DINGTALK_URL, secret="SECabc", locale="zh-CN"),
    )
    try:
        tab = open_signed_in(browser, web, tenant_admin, path="/notifications")
        tab.wait(device_row(phone.id))
        tab.wait(webhook_row(name))
        assert tab.text("h3") == "通知"
        assert "本系统未配置 Web Push" in tab.text("[data-testid=web-push]")
        assert "钉钉" in tab.text(webhook_row(name))
        assert "已签名" in tab.text(webhook_row(name))
        tab.click("[data-testid=send-test]")
        tab.wait(f"[data-testid=test-results] [data-device-id='{phone.id}']")
        assert "失败" in tab.text("[data-testid=test-results]")
        assert "notifications." not in tab.text("body")  # no message key instead of its message
        assert tab.axe() == []
        shot(tab, "notifications-zh")
        tab.click("[data-testid=webhooks] button.ant-btn-primary")
        tab.wait(dialog("create-webhook"))
        shot(tab, "notifications-webhook-create-dialog-zh")
    finally:
        delete_webhook(web, tenant_admin, name)
