"""Every device, webhook, preference set and outbox entry, mirrored on every replica by two informers (an
`informer.Handler` for the Secrets and one for the ConfigMaps of `kube.notification_objects`). The API's reads and
the notifier's audience come from here; writes go to the cluster and come back through the informers."""

from __future__ import annotations

import datetime
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from server import timestamps
from server.kube.auth_objects import KIND_LABEL, secret_data
from server.kube.informer import Kind
from server.kube.notification_objects import DEVICE, OUTBOX, PREFERENCES, WEBHOOK
from server.notifications import outbox
from server.notifications.events import EventKind
from server.notifications.preferences import Preferences, parse_preferences
from server.notifications.webhooks import Webhook
from server.notifications.webpush import WebPushSubscription

log = logging.getLogger(__name__)

Platform = Literal["android", "ios", "web"]
WebhookKind = Literal["dingtalk", "feishu", "wecom", "generic"]
PLATFORMS: tuple[Platform, ...] = ("android", "ios", "web")
WEBHOOK_KINDS: tuple[WebhookKind, ...] = ("dingtalk", "feishu", "wecom", "generic")

USER_ANNOTATION = "novasphere.dev/user"
TENANT_ANNOTATION = "novasphere.dev/tenant"
NAME_ANNOTATION = "novasphere.dev/name"
PLATFORM_ANNOTATION = "novasphere.dev/platform"
APP_VERSION_ANNOTATION = "novasphere.dev/app-version"
LOCALE_ANNOTATION = "novasphere.dev/locale"
CREATED_ANNOTATION = "novasphere.dev/created"
UPDATED_ANNOTATION = "novasphere.dev/updated"
CREATED_BY_ANNOTATION = "novasphere.dev/created-by"
EVENTS_ANNOTATION = "novasphere.dev/events"
WEBHOOK_KIND_ANNOTATION = "novasphere.dev/webhook-kind"
LAST_DELIVERY_ANNOTATION = "novasphere.dev/last-delivery"
TOKEN_KEY = "token"  # noqa: S105 (a data key, not a secret)
SUBSCRIPTION_KEY = "subscription"
URL_KEY = "url"
SECRET_KEY = "secret"  # noqa: S105 (a data key, not a secret)
PREFERENCES_KEY = "preferences.json"
USER_KEY = "user"


@dataclass(frozen=True)
class LastDelivery:
    time: datetime.datetime
    outcome: str
    detail: str

    def annotation(self) -> str:
        return json.dumps(
            {"time": timestamps.format_micro(self.time), "outcome": self.outcome, "detail": self.detail},
            sort_keys=True,
        )


@dataclass(frozen=True)
class DeviceRecord:
    id: str
    secret_name: str
    uid: str
    user: str
    platform: Platform
    name: str
    app_version: str
    locale: str
    created: datetime.datetime | None
    updated: datetime.datetime | None
    token: str
    web_push: WebPushSubscription | None
    last_delivery: LastDelivery | None


@dataclass(frozen=True)
class WebhookRecord:
    tenant: str
    name: str
    secret_name: str
    uid: str
    kind: WebhookKind
    webhook: Webhook
    events: frozenset[EventKind]
    locale: str
    created_by: str
    created: datetime.datetime | None
    last_delivery: LastDelivery | None

    @property
    def id(self) -> str:
        """How an outbox entry names it."""
        return f"{self.tenant}/{self.name}"


class NotificationStore:
    def __init__(self) -> None:
        self._devices: dict[str, DeviceRecord] = {}
        self._webhooks: dict[str, WebhookRecord] = {}
        self._preferences: dict[str, Preferences] = {}
        self._preference_objects: dict[str, str] = {}  # ConfigMap name -> user
        self._outbox: dict[str, outbox.Entry] = {}
        self._versions: dict[str, int] = {}  # object name -> the resourceVersion last applied
        self._synced: set[str] = set()

    @property
    def synced(self) -> bool:
        return len(self._synced) == 2

    def devices(self) -> list[DeviceRecord]:
        return list(self._devices.values())

    def devices_of(self, user: str) -> list[DeviceRecord]:
        return [device for device in self._devices.values() if device.user == user]

    def device(self, device_id: str) -> DeviceRecord | None:
        return self._devices.get(device_id)

    def webhooks_of(self, tenant: str) -> list[WebhookRecord]:
        return sorted((w for w in self._webhooks.values() if w.tenant == tenant), key=lambda w: w.name)

    def webhook(self, webhook_id: str) -> WebhookRecord | None:
        return self._webhooks.get(webhook_id)

    def orphans(self, *, user_exists: Callable[[str], bool]) -> list[str]:
        """The Secrets of devices whose user was deleted: nobody can list or delete them through the API any more, and
        nothing is sent to them. (A tenant's webhooks stay with it: a tenant is its namespaces, and one may have none
        for a while.)"""
        return sorted(d.secret_name for d in self._devices.values() if not user_exists(d.user))

    def preferences_of(self, user: str) -> Preferences | None:
        """None: the user never set any (the defaults apply)."""
        return self._preferences.get(user)

    def outbox(self) -> list[outbox.Entry]:
        return sorted(self._outbox.values(), key=lambda entry: entry.written)

    def wrote(self, item: Mapping[str, Any]) -> None:
        """An object this replica just wrote: in force here at once, ahead of its watch event (read your writes)."""
        self._put(item)

    def forgot(self, label: str, name: str) -> None:
        """An object this replica just deleted."""
        self._remove({"metadata": {"name": name, "labels": {KIND_LABEL: label}}})

    # -- informer.Handler

    def replace(self, kind: Kind, items: list[dict[str, Any]], resource_version: int) -> None:
        for item in [*self._objects_of(kind)]:
            self._remove(item)
        for item in items:
            self._put(item)
        self._synced.add(kind.name)

    def apply(self, kind: Kind, event_type: str, item: dict[str, Any], resource_version: int) -> None:
        if event_type == "DELETED":
            self._remove(item)
        else:
            self._put(item)

    def progress(self, kind: Kind, resource_version: int) -> None:
        """Bookmarks carry nothing here."""

    def _objects_of(self, kind: Kind) -> list[dict[str, Any]]:
        """Stand-ins naming what this kind put here (for `_remove`, which reads names and labels only)."""
        if kind.name.endswith("secrets"):
            objects = [(DEVICE, d.secret_name) for d in self._devices.values()]
            objects += [(WEBHOOK, w.secret_name) for w in self._webhooks.values()]
        else:
            objects = [(PREFERENCES, name) for name in self._preference_objects]
            objects += [(OUTBOX, name) for name in self._outbox]
        return [{"metadata": {"name": name, "labels": {KIND_LABEL: label}}} for label, name in objects]

    def _put(self, item: Mapping[str, Any]) -> None:
        metadata = item["metadata"]
        label = (metadata.get("labels") or {}).get(KIND_LABEL)
        version = int(metadata.get("resourceVersion") or 0)
        if version and version < self._versions.get(metadata["name"], 0):
            return  # older than a write of this replica's already in force
        self._versions[metadata["name"]] = version
        try:
            if label == DEVICE:
                device = device_from(item)
                self._devices[device.id] = device
            elif label == WEBHOOK:
                webhook = webhook_from(item)
                self._webhooks[webhook.id] = webhook
            elif label == PREFERENCES:
                data = item.get("data") or {}
                user = data[USER_KEY]
                self._preferences[user] = preferences_from_json(data[PREFERENCES_KEY])
                self._preference_objects[metadata["name"]] = user
            elif label == OUTBOX:
                self._outbox[metadata["name"]] = outbox.loads((item.get("data") or {})[outbox.DATA_KEY])
        except (ValueError, KeyError, TypeError) as error:
            log.error("ignoring %s %s: %s", label, metadata.get("name"), error)  # a bad edit must not stop the rest

    def _remove(self, item: Mapping[str, Any]) -> None:
        metadata = item["metadata"]
        label = (metadata.get("labels") or {}).get(KIND_LABEL)
        name = metadata["name"]
        self._versions.pop(name, None)
        if label == DEVICE:
            self._devices = {k: d for k, d in self._devices.items() if d.secret_name != name}
        elif label == WEBHOOK:
            self._webhooks = {k: w for k, w in self._webhooks.items() if w.secret_name != name}
        elif label == PREFERENCES:
            user = self._preference_objects.pop(name, None)
            if user is not None:
                self._preferences.pop(user, None)
        elif label == OUTBOX:
            self._outbox.pop(name, None)


def preferences_json(preferences: Preferences) -> str:
    quiet = preferences.quiet_hours
    return json.dumps(
        {
            "events": sorted(str(kind) for kind in preferences.events),
            "vm_names": sorted(preferences.vms.names),
            "vm_labels": dict(preferences.vms.labels),
            "quiet_hours": None
            if quiet is None
            else {
                "start": quiet.start.strftime("%H:%M"),
                "end": quiet.end.strftime("%H:%M"),
                "time_zone": quiet.time_zone,
            },
            "locale": preferences.locale,
        },
        sort_keys=True,
    )


def preferences_from_json(text: str) -> Preferences:
    raw = json.loads(text)
    quiet = raw.get("quiet_hours") or {}
    return parse_preferences(
        events=list(raw.get("events") or []),
        vm_names=list(raw.get("vm_names") or []),
        vm_labels=dict(raw.get("vm_labels") or {}),
        quiet_start=quiet.get("start", ""),
        quiet_end=quiet.get("end", ""),
        time_zone=quiet.get("time_zone", ""),
        locale=raw.get("locale", ""),
    )


def _last_delivery(annotations: Mapping[str, str]) -> LastDelivery | None:
    text = annotations.get(LAST_DELIVERY_ANNOTATION)
    if not text:
        return None
    raw = json.loads(text)
    at = timestamps.parse(raw.get("time"))
    return None if at is None else LastDelivery(at, str(raw.get("outcome", "")), str(raw.get("detail", "")))


def device_from(item: Mapping[str, Any]) -> DeviceRecord:
    metadata = item["metadata"]
    annotations = metadata.get("annotations") or {}
    platform = annotations[PLATFORM_ANNOTATION]
    if platform not in PLATFORMS:
        raise ValueError(f"unknown platform {platform!r}")
    data = secret_data(item)
    web_push = None
    if platform == "web":
        raw = json.loads(data[SUBSCRIPTION_KEY])
        web_push = WebPushSubscription(endpoint=raw["endpoint"], p256dh=raw["p256dh"], auth=raw["auth"])
    return DeviceRecord(
        id=str(metadata["name"]).removeprefix(f"{DEVICE}-"),
        secret_name=metadata["name"],
        uid=metadata.get("uid", ""),
        user=annotations[USER_ANNOTATION],
        platform=platform,
        name=annotations.get(NAME_ANNOTATION, ""),
        app_version=annotations.get(APP_VERSION_ANNOTATION, ""),
        locale=annotations.get(LOCALE_ANNOTATION, ""),
        created=timestamps.parse(annotations.get(CREATED_ANNOTATION)),
        updated=timestamps.parse(annotations.get(UPDATED_ANNOTATION)),
        token=data.get(TOKEN_KEY, ""),
        web_push=web_push,
        last_delivery=_last_delivery(annotations),
    )


def webhook_from(item: Mapping[str, Any]) -> WebhookRecord:
    metadata = item["metadata"]
    annotations = metadata.get("annotations") or {}
    kind = annotations[WEBHOOK_KIND_ANNOTATION]
    if kind not in WEBHOOK_KINDS:
        raise ValueError(f"unknown webhook kind {kind!r}")
    data = secret_data(item)
    return WebhookRecord(
        tenant=annotations[TENANT_ANNOTATION],
        name=annotations[NAME_ANNOTATION],
        secret_name=metadata["name"],
        uid=metadata.get("uid", ""),
        kind=kind,
        webhook=Webhook(url=data[URL_KEY], secret=data.get(SECRET_KEY, "")),
        events=frozenset(EventKind(event) for event in json.loads(annotations.get(EVENTS_ANNOTATION, "[]"))),
        locale=annotations.get(LOCALE_ANNOTATION, ""),
        created_by=annotations.get(CREATED_BY_ANNOTATION, ""),
        created=timestamps.parse(annotations.get(CREATED_ANNOTATION)),
        last_delivery=_last_delivery(annotations),
    )
