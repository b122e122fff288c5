"""NotificationService through Envoy's REST door, as a mobile app calls it: register a device (again after a token
refresh: the same device), read it back without its token, replace the preferences with PUT, refuse what is wrong
with the field to fix and change nothing, replay a registration by its request_id, and keep webhook credentials out
of every answer."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from devcluster import stack as devstack
from server.notifications.webpush import b64url_encode, uncompressed

DEVICES = "/api/v1/notifications/devices"
PREFERENCES = "/api/v1/notifications/preferences"
WEBHOOKS = "/api/v1/notifications/webhooks"


@pytest.fixture
def http(stack: devstack.Stack) -> Iterator[httpx.Client]:
    """Envoy's REST door, as the development identity."""
    with stack.edge.http_client() as client:
        yield client


def test_a_phone_registers_lists_and_forgets_its_device_over_rest(http: httpx.Client) -> None:
    token = f"fcm-{uuid.uuid4().hex}"
    body = {"platform": "ANDROID", "token": token, "name": "Ada's Pixel", "appVersion": "2.3.0", "locale": "zh-CN"}

    first = http.post(DEVICES, json=body)
    again = http.post(DEVICES, json={**body, "appVersion": "2.3.1"})

    assert first.status_code == 200, first.text
    device = again.json()
    assert device["id"] == first.json()["id"], "the same token is the same device"
    assert (device["platform"], device["appVersion"], device["locale"]) == ("ANDROID", "2.3.1", "zh-CN")
    listed = http.get(DEVICES).json()["devices"]
    assert device["id"] in {d["id"] for d in listed}
    assert token not in http.get(DEVICES).text, "a token is a credential: never returned"
    deleted = http.delete(f"{DEVICES}/{device['id']}")
    assert deleted.status_code == 200, deleted.text
    missing = http.delete(f"{DEVICES}/{device['id']}")
    assert missing.status_code == 404
    assert missing.json()["details"][0]["reason"] == "DEVICE_NOT_FOUND"


def test_a_registration_replayed_by_its_request_id_returns_the_first_answer(http: httpx.Client) -> None:
    request_id = str(uuid.uuid4())
    body = {"platform": "ANDROID", "token": f"fcm-{uuid.uuid4().hex}", "requestId": request_id}

    first = http.post(DEVICES, json=body).json()
    replayed = http.post(DEVICES, json=body).json()
    other = http.post(DEVICES, json={**body, "name": "another request"})

    assert replayed == first
    assert other.status_code == 400, other.text  # the same key for another request
    http.delete(f"{DEVICES}/{first['id']}")


def test_a_browser_subscription_is_checked_before_it_is_kept(http: httpx.Client) -> None:
    browser_key = uncompressed(ec.generate_private_key(ec.SECP256R1()).public_key())
    subscription = {
        "endpoint": "https://169.254.169.254/latest/meta-data",
        "p256dh": b64url_encode(browser_key),
        "auth": base64.urlsafe_b64encode(b"short").decode(),
    }

    refused = http.post(DEVICES, json={"platform": "WEB", "webPush": subscription})

    assert refused.status_code == 400, refused.text
    fields = {v["field"]: v["description"] for v in refused.json()["details"][1]["fieldViolations"]}
    assert set(fields) == {"webPush.endpoint", "webPush.auth"}, fields  # REST names fields as its JSON does
    assert "NOVASPHERE_NOTIFY_PUSH_HOSTS" in fields["webPush.endpoint"]
    assert all(d["platform"] != "WEB" for d in http.get(DEVICES).json().get("devices", []))


def test_preferences_are_replaced_with_put_and_a_bad_field_changes_nothing(http: httpx.Client) -> None:
    wanted = {
        "events": ["TASK_FAILED", "VM_FAILED"],
        "vmLabels": {"team": "web"},
        "quietHours": {"start": "22:00", "end": "07:00", "timeZone": "Asia/Shanghai"},
        "locale": "zh-CN",
    }

    saved = http.put(PREFERENCES, json=wanted)
    refused = http.put(
        PREFERENCES, json={**wanted, "quietHours": {"start": "25:00", "end": "07:00", "timeZone": "UTC"}}
    )

    assert saved.status_code == 200, saved.text
    assert saved.json() == {**wanted, "vmNames": []}
    assert refused.status_code == 400, refused.text
    (violation,) = refused.json()["details"][1]["fieldViolations"]
    assert violation["field"] == "quietHours.start"  # named within the body it sent
    assert http.get(PREFERENCES).json() == saved.json()


def test_a_webhooks_url_and_secret_are_never_returned(http: httpx.Client) -> None:
    secret = f"SEC{uuid.uuid4().hex}"
    url = f"https://oapi.dingtalk.com/robot/send?access_token={uuid.uuid4().hex}"
    name = f"ops-{uuid.uuid4().hex[:6]}"

    created = http.post(WEBHOOKS, json={"kind": "DINGTALK", "name": name, "url": url, "secret": secret})

    assert created.status_code == 200, created.text
    assert created.json()["host"] == "oapi.dingtalk.com"
    assert created.json()["signed"] is True
    for answer in (created, http.get(WEBHOOKS)):
        assert url not in answer.text
        assert secret not in answer.text
    assert http.post(WEBHOOKS, json={"kind": "DINGTALK", "name": name, "url": url}).status_code == 409
    assert http.delete(f"{WEBHOOKS}/{name}").status_code == 200
