"""Who hears what, as people manage it: a user's devices and preferences, a tenant's webhooks, and the record of what
became of each send (on the device's or webhook's own Secret, where its owner sees it).

A device is its token: registering the same token again updates the same device (its id derives from the user,
the platform and the token), and a token registered by another user moves to them (one phone, a new login): a token
reaches one person at a time.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime
import hashlib
import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from server import errors, timestamps
from server.auth import Caller
from server.kube import errors as kube_errors
from server.kube import notification_objects as objects
from server.kube.auth_objects import KIND_LABEL, encoded
from server.kube.client import KubeClient
from server.kube.services import MANAGED_BY, MANAGED_BY_LABEL
from server.notifications import store as records
from server.notifications import texts
from server.notifications.delivery import Delivery, Notification
from server.notifications.events import VM_KINDS, EventKind
from server.notifications.preferences import DEFAULT_LOCALE, Preferences, parse_preferences
from server.notifications.providers import Providers, ProviderSettings, check_destination
from server.notifications.store import DeviceRecord, LastDelivery, NotificationStore, WebhookRecord

MAX_DEVICES = 20
MAX_WEBHOOKS = 20
MAX_TOKEN = 4096
MAX_DEVICE_NAME = 64
MAX_APP_VERSION = 32
MIN_GENERIC_SECRET = 16
MAX_SECRET = 256
WEBHOOK_EVENTS = frozenset({*VM_KINDS, EventKind.QUOTA_NEARLY_USED})
"""A tenant's webhooks hear what concerns the tenant, never one person's tasks or consoles."""
_WEBHOOK_NAME = re.compile(r"[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?")
_APNS_TOKEN = re.compile(r"[0-9A-Fa-f]{64,200}")


@dataclass(frozen=True)
class DeviceRegistration:
    platform: str
    token: str = ""
    web_push_endpoint: str = ""
    web_push_p256dh: str = ""
    web_push_auth: str = ""
    name: str = ""
    app_version: str = ""
    locale: str = ""


@dataclass(frozen=True)
class NewWebhook:
    kind: str
    name: str
    url: str
    secret: str = ""
    events: Sequence[str] = ()
    locale: str = ""


def _digest(*parts: str, length: int = 24) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:length]


def preferences_object_name(user: str) -> str:
    return f"{objects.PREFERENCES}-{_digest(user)}"


class Recorder:
    """Writes what became of a send where its owner reads it, and forgets a device its provider calls gone."""

    def __init__(self, *, kube: KubeClient, namespace: str, store: NotificationStore) -> None:
        self._kube = kube
        self._namespace = namespace
        self._store = store

    async def record(self, target: DeviceRecord | WebhookRecord, delivery: Delivery, at: datetime.datetime) -> None:
        try:
            if isinstance(target, DeviceRecord) and delivery.outcome == "gone":
                await objects.delete_secret(
                    self._kube, namespace=self._namespace, name=target.secret_name, uid=target.uid
                )
                self._store.forgot(objects.DEVICE, target.secret_name)
                return
            last = LastDelivery(at, delivery.outcome, delivery.detail)
            written = await objects.annotate_secret(
                self._kube,
                namespace=self._namespace,
                name=target.secret_name,
                annotations={records.LAST_DELIVERY_ANNOTATION: last.annotation()},
            )
            self._store.wrote(written)
        except (kube_errors.NotFound, kube_errors.Conflict):
            pass  # deleted or replaced meanwhile: nothing left to record on


class Subscriptions:
    """NotificationService's part for one's own devices and preferences, and the webhooks of one's tenant."""

    def __init__(
        self,
        *,
        kube: KubeClient,
        namespace: str,
        store: NotificationStore,
        providers: Providers,
        settings: ProviderSettings,
        recorder: Recorder,
    ) -> None:
        self._kube = kube
        self._namespace = namespace
        self._store = store
        self._providers = providers
        self._settings = settings
        self._recorder = recorder

    # -- devices

    def devices(self, caller: Caller) -> list[DeviceRecord]:
        epoch = datetime.datetime.min.replace(tzinfo=datetime.UTC)
        return sorted(self._store.devices_of(caller.user), key=lambda d: (d.updated or epoch, d.id), reverse=True)

    async def register_device(self, caller: Caller, registration: DeviceRegistration) -> DeviceRecord:
        credential, data = self._credential(registration)
        device_id = _digest(caller.user, registration.platform, credential)
        mine = self._store.devices_of(caller.user)
        if len(mine) >= MAX_DEVICES and all(device.id != device_id for device in mine):
            raise errors.FailedPrecondition(
                f"{caller.user} already has {MAX_DEVICES} devices; delete ones no longer used (ListDevices)",
                reason=errors.Reason.TOO_MANY_DEVICES,
            )
        now = timestamps.now()
        existing = self._store.device(device_id)
        created = existing.created if existing is not None and existing.created is not None else now
        annotations = {
            records.USER_ANNOTATION: caller.user,
            records.PLATFORM_ANNOTATION: registration.platform,
            records.NAME_ANNOTATION: registration.name.strip(),
            records.APP_VERSION_ANNOTATION: registration.app_version.strip(),
            records.LOCALE_ANNOTATION: registration.locale,
            records.CREATED_ANNOTATION: timestamps.format_micro(created),
            records.UPDATED_ANNOTATION: timestamps.format_micro(now),
        }
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {
                "name": f"{objects.DEVICE}-{device_id}",
                "namespace": self._namespace,
                "labels": {KIND_LABEL: objects.DEVICE, MANAGED_BY_LABEL: MANAGED_BY},
                "annotations": annotations,
            },
            "data": encoded(data),
        }
        written = records.device_from(await objects.apply(self._kube, secret))
        for other in self._others_with(registration.platform, credential, caller.user):
            with contextlib.suppress(kube_errors.NotFound, kube_errors.Conflict):
                await objects.delete_secret(
                    self._kube, namespace=self._namespace, name=other.secret_name, uid=other.uid
                )
        return written

    async def delete_device(self, caller: Caller, device_id: str) -> None:
        device = self._store.device(device_id)
        if device is None or device.user != caller.user:
            raise errors.DeviceNotFound(device_id[:64])
        try:
            await objects.delete_secret(self._kube, namespace=self._namespace, name=device.secret_name, uid=device.uid)
        except kube_errors.NotFound as error:
            raise errors.DeviceNotFound(device_id) from error
        finally:
            self._store.forgot(objects.DEVICE, device.secret_name)

    def _others_with(self, platform: str, credential: str, user: str) -> list[DeviceRecord]:
        return [
            device
            for device in self._store.devices()
            if device.user != user and device.platform == platform and _credential_of(device) == credential
        ]

    def _credential(self, registration: DeviceRegistration) -> tuple[str, dict[str, str]]:
        """The credential that identifies the device, and the Secret's data; InvalidArgument naming what to fix."""
        violations: list[errors.FieldViolation] = []
        platform = registration.platform
        if platform not in records.PLATFORMS:
            violations.append(errors.FieldViolation("platform", "is required: ANDROID, IOS or WEB"))
        if len(registration.name) > MAX_DEVICE_NAME or not registration.name.isprintable():
            violations.append(errors.FieldViolation("name", f"at most {MAX_DEVICE_NAME} printable characters"))
        if len(registration.app_version) > MAX_APP_VERSION or not registration.app_version.isprintable():
            violations.append(errors.FieldViolation("app_version", f"at most {MAX_APP_VERSION} printable characters"))
        if registration.locale:
            try:
                parse_preferences(locale=registration.locale, field="device")
            except errors.InvalidArgument as error:
                violations += error.violations
        credential, data = "", {}
        if platform == "web":
            if registration.token:
                violations.append(errors.FieldViolation("token", "is for ANDROID and IOS; a browser sends web_push"))
            violations += check_destination(
                registration.web_push_endpoint,
                self._settings.push_hosts,
                "web_push.endpoint",
                setting="NOVASPHERE_NOTIFY_PUSH_HOSTS",
            )
            violations += _key_violations(registration.web_push_p256dh, "web_push.p256dh", size=65, first=0x04)
            violations += _key_violations(registration.web_push_auth, "web_push.auth", size=16)
            credential = registration.web_push_endpoint
            subscription = {
                "endpoint": registration.web_push_endpoint,
                "p256dh": registration.web_push_p256dh,
                "auth": registration.web_push_auth,
            }
            data = {records.SUBSCRIPTION_KEY: json.dumps(subscription, sort_keys=True)}
        elif platform in ("android", "ios"):
            token = registration.token
            if registration.web_push_endpoint:
                violations.append(errors.FieldViolation("web_push", "is for WEB; a phone sends its token"))
            if not token:
                violations.append(errors.FieldViolation("token", "is required: the app's push token on this device"))
            elif len(token) > MAX_TOKEN or not token.isprintable() or any(c.isspace() for c in token):
                violations.append(errors.FieldViolation("token", f"at most {MAX_TOKEN} characters, no spaces"))
            elif platform == "ios" and not _APNS_TOKEN.fullmatch(token):
                violations.append(errors.FieldViolation("token", "an APNs device token is 64 or more hex digits"))
            credential, data = token, {records.TOKEN_KEY: token}
        if violations:
            raise errors.InvalidArgument(violations)
        return credential, data

    # -- preferences

    def preferences(self, caller: Caller) -> Preferences:
        return self._store.preferences_of(caller.user) or Preferences()

    async def update_preferences(self, caller: Caller, preferences: Preferences) -> Preferences:
        body = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": preferences_object_name(caller.user),
                "namespace": self._namespace,
                "labels": {KIND_LABEL: objects.PREFERENCES, MANAGED_BY_LABEL: MANAGED_BY},
            },
            "data": {records.USER_KEY: caller.user, records.PREFERENCES_KEY: records.preferences_json(preferences)},
        }
        self._store.wrote(await objects.apply(self._kube, body))
        return preferences

    # -- test

    async def send_test(self, caller: Caller, device_id: str) -> list[tuple[DeviceRecord, Delivery]]:
        devices = self.devices(caller)
        if device_id:
            devices = [device for device in devices if device.id == device_id]
            if not devices:
                raise errors.DeviceNotFound(device_id[:64])
        locale = self.preferences(caller).locale
        results = []
        for device in devices:
            notification: Notification = texts.test_notification(uuid.uuid4().hex, device.locale or locale)
            delivery = await self._providers.to_device(device, notification)
            await self._recorder.record(device, delivery, timestamps.now())
            results.append((device, delivery))
        return results

    # -- webhooks

    def webhooks(self, caller: Caller) -> list[WebhookRecord]:
        return self._store.webhooks_of(caller.tenant)

    async def create_webhook(self, caller: Caller, new: NewWebhook) -> WebhookRecord:
        events = self._check_webhook(new)
        if len(self._store.webhooks_of(caller.tenant)) >= MAX_WEBHOOKS:
            raise errors.FailedPrecondition(
                f"tenant '{caller.tenant}' already has {MAX_WEBHOOKS} webhooks; delete one first",
                reason=errors.Reason.TOO_MANY_WEBHOOKS,
            )
        annotations = {
            records.TENANT_ANNOTATION: caller.tenant,
            records.NAME_ANNOTATION: new.name,
            records.WEBHOOK_KIND_ANNOTATION: new.kind,
            records.EVENTS_ANNOTATION: json.dumps(sorted(str(kind) for kind in events)),
            records.LOCALE_ANNOTATION: texts.language(new.locale or DEFAULT_LOCALE),
            records.CREATED_BY_ANNOTATION: caller.user,
            records.CREATED_ANNOTATION: timestamps.format_micro(timestamps.now()),
        }
        data = {records.URL_KEY: new.url} | ({records.SECRET_KEY: new.secret} if new.secret else {})
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {
                "name": webhook_object_name(caller.tenant, new.name),
                "namespace": self._namespace,
                "labels": {KIND_LABEL: objects.WEBHOOK, MANAGED_BY_LABEL: MANAGED_BY},
                "annotations": annotations,
            },
            "data": encoded(data),
        }
        try:
            created = await objects.create_secret(self._kube, secret)
        except kube_errors.Conflict as error:
            raise errors.WebhookAlreadyExists(tenant=caller.tenant, name=new.name) from error
        self._store.wrote(created)
        return records.webhook_from(created)

    async def delete_webhook(self, caller: Caller, name: str) -> None:
        webhook = self._store.webhook(f"{caller.tenant}/{name}")
        if webhook is None:
            raise errors.WebhookNotFound(tenant=caller.tenant, webhook_id=name[:64])
        try:
            await objects.delete_secret(
                self._kube, namespace=self._namespace, name=webhook.secret_name, uid=webhook.uid
            )
        except kube_errors.NotFound as error:
            raise errors.WebhookNotFound(tenant=caller.tenant, webhook_id=name) from error

    def _check_webhook(self, new: NewWebhook) -> frozenset[EventKind]:
        violations: list[errors.FieldViolation] = []
        if new.kind not in records.WEBHOOK_KINDS:
            violations.append(errors.FieldViolation("kind", "is required: DINGTALK, FEISHU, WECOM or GENERIC"))
        if not _WEBHOOK_NAME.fullmatch(new.name):
            violations.append(
                errors.FieldViolation("name", "lower-case letters, digits and '-', at most 40, like ops-oncall")
            )
        violations += check_destination(
            new.url, self._settings.webhook_hosts, "url", setting="NOVASPHERE_NOTIFY_WEBHOOK_HOSTS"
        )
        if new.kind == "wecom" and new.secret:
            violations.append(errors.FieldViolation("secret", "WeCom robots are not signed: the key is in the URL"))
        if new.kind == "generic" and len(new.secret) < MIN_GENERIC_SECRET:
            violations.append(
                errors.FieldViolation(
                    "secret", f"a generic webhook is signed: at least {MIN_GENERIC_SECRET} characters"
                )
            )
        if len(new.secret) > MAX_SECRET or not new.secret.isprintable():
            violations.append(errors.FieldViolation("secret", f"at most {MAX_SECRET} printable characters"))
        if new.locale and new.locale not in ("zh-CN", "en-US"):
            violations.append(errors.FieldViolation("locale", "zh-CN or en-US"))
        known = {str(kind) for kind in WEBHOOK_EVENTS}
        for index, event in enumerate(new.events):
            if event not in known:
                violations.append(
                    errors.FieldViolation(
                        f"events[{index}]", f"'{event[:64]}' is not one of {', '.join(sorted(known))}"
                    )
                )
        if violations:
            raise errors.InvalidArgument(violations)
        return frozenset(EventKind(event) for event in new.events) or WEBHOOK_EVENTS


def webhook_object_name(tenant: str, name: str) -> str:
    return f"{objects.WEBHOOK}-{_digest(tenant, name)}"


def _credential_of(device: DeviceRecord) -> str:
    return device.web_push.endpoint if device.web_push is not None else device.token


def _key_violations(value: str, field: str, *, size: int, first: int | None = None) -> list[errors.FieldViolation]:
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != size or (first is not None and raw[0] != first):
        return [errors.FieldViolation(field, f"must be the subscription's base64url key of {size} bytes")]
    return []
