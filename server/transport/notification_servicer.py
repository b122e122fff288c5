"""NotificationService over gRPC: requests in, domain calls, messages out."""

from __future__ import annotations

import urllib.parse
from typing import Any

import grpc

from novasphere.v1 import notification_service_pb2 as pb
from novasphere.v1 import notification_service_pb2_grpc
from server import auth
from server.notifications.preferences import Preferences, parse_preferences
from server.notifications.providers import Providers
from server.notifications.store import DeviceRecord, LastDelivery, WebhookRecord
from server.notifications.subscriptions import DeviceRegistration, NewWebhook, Subscriptions
from server.transport.convert import set_time

Context = grpc.aio.ServicerContext[Any, Any]
SERVICE = pb.DESCRIPTOR.services_by_name["NotificationService"]
_PLATFORMS = {pb.ANDROID: "android", pb.IOS: "ios", pb.WEB: "web"}
_PLATFORM_ENUMS = {name: value for value, name in _PLATFORMS.items()}
_KINDS = {pb.DINGTALK: "dingtalk", pb.FEISHU: "feishu", pb.WECOM: "wecom", pb.GENERIC: "generic"}
_KIND_ENUMS = {name: value for value, name in _KINDS.items()}


class NotificationServicer(notification_service_pb2_grpc.NotificationServiceServicer):
    def __init__(self, subscriptions: Subscriptions, providers: Providers) -> None:
        self._subscriptions = subscriptions
        self._providers = providers

    async def RegisterDevice(self, request: pb.RegisterDeviceRequest, context: Context) -> pb.Device:
        registration = DeviceRegistration(
            platform=_PLATFORMS.get(request.platform, ""),
            token=request.token,
            web_push_endpoint=request.web_push.endpoint,
            web_push_p256dh=request.web_push.p256dh,
            web_push_auth=request.web_push.auth,
            name=request.name,
            app_version=request.app_version,
            locale=request.locale,
        )
        return _device(await self._subscriptions.register_device(auth.current(), registration))

    async def ListDevices(self, request: pb.ListDevicesRequest, context: Context) -> pb.ListDevicesResponse:
        return pb.ListDevicesResponse(devices=[_device(d) for d in self._subscriptions.devices(auth.current())])

    async def DeleteDevice(self, request: pb.DeleteDeviceRequest, context: Context) -> pb.DeleteDeviceResponse:
        await self._subscriptions.delete_device(auth.current(), request.id)
        return pb.DeleteDeviceResponse()

    async def GetNotificationPreferences(
        self, request: pb.GetNotificationPreferencesRequest, context: Context
    ) -> pb.NotificationPreferences:
        return _preferences(self._subscriptions.preferences(auth.current()))

    async def UpdateNotificationPreferences(
        self, request: pb.UpdateNotificationPreferencesRequest, context: Context
    ) -> pb.NotificationPreferences:
        given = request.preferences
        quiet = given.quiet_hours if given.HasField("quiet_hours") else pb.QuietHours()
        preferences = parse_preferences(
            events=list(given.events),
            vm_names=list(given.vm_names),
            vm_labels=dict(given.vm_labels),
            quiet_start=quiet.start,
            quiet_end=quiet.end,
            time_zone=quiet.time_zone,
            locale=given.locale,
        )
        return _preferences(await self._subscriptions.update_preferences(auth.current(), preferences))

    async def GetPushSettings(self, request: pb.GetPushSettingsRequest, context: Context) -> pb.PushSettings:
        return pb.PushSettings(
            platforms=[_PLATFORM_ENUMS[p] for p in self._providers.platforms],
            vapid_public_key=self._providers.vapid_public_key,
        )

    async def SendTestNotification(
        self, request: pb.SendTestNotificationRequest, context: Context
    ) -> pb.SendTestNotificationResponse:
        results = await self._subscriptions.send_test(auth.current(), request.device_id)
        return pb.SendTestNotificationResponse(
            deliveries=[
                pb.TestDelivery(device_id=device.id, outcome=delivery.outcome, detail=delivery.detail)
                for device, delivery in results
            ]
        )

    async def CreateWebhook(self, request: pb.CreateWebhookRequest, context: Context) -> pb.Webhook:
        new = NewWebhook(
            kind=_KINDS.get(request.kind, ""),
            name=request.name,
            url=request.url,
            secret=request.secret,
            events=list(request.events),
            locale=request.locale,
        )
        return _webhook(await self._subscriptions.create_webhook(auth.current(), new))

    async def ListWebhooks(self, request: pb.ListWebhooksRequest, context: Context) -> pb.ListWebhooksResponse:
        return pb.ListWebhooksResponse(webhooks=[_webhook(w) for w in self._subscriptions.webhooks(auth.current())])

    async def DeleteWebhook(self, request: pb.DeleteWebhookRequest, context: Context) -> pb.DeleteWebhookResponse:
        await self._subscriptions.delete_webhook(auth.current(), request.name)
        return pb.DeleteWebhookResponse()


def _outcome(field: pb.DeliveryOutcome, last: LastDelivery | None) -> None:
    if last is not None:
        set_time(field.time, last.time)
        field.outcome = last.outcome
        field.detail = last.detail


def _device(device: DeviceRecord) -> pb.Device:
    message = pb.Device(
        id=device.id,
        platform=_PLATFORM_ENUMS[device.platform],
        name=device.name,
        app_version=device.app_version,
        locale=device.locale,
        push_service=_host(device.web_push.endpoint) if device.web_push is not None else "",
    )
    set_time(message.create_time, device.created)
    set_time(message.update_time, device.updated)
    _outcome(message.last_delivery, device.last_delivery)
    return message


def _webhook(webhook: WebhookRecord) -> pb.Webhook:
    message = pb.Webhook(
        name=webhook.name,
        kind=_KIND_ENUMS[webhook.kind],
        tenant=webhook.tenant,
        host=_host(webhook.webhook.url),
        signed=bool(webhook.webhook.secret),
        events=sorted(str(kind) for kind in webhook.events),
        locale=webhook.locale,
        created_by=webhook.created_by,
    )
    set_time(message.create_time, webhook.created)
    _outcome(message.last_delivery, webhook.last_delivery)
    return message


def _preferences(preferences: Preferences) -> pb.NotificationPreferences:
    message = pb.NotificationPreferences(
        events=sorted(str(kind) for kind in preferences.events),
        vm_names=sorted(preferences.vms.names),
        vm_labels=dict(preferences.vms.labels),
        locale=preferences.locale,
    )
    quiet = preferences.quiet_hours
    if quiet is not None:
        message.quiet_hours.CopyFrom(
            pb.QuietHours(
                start=quiet.start.strftime("%H:%M"), end=quiet.end.strftime("%H:%M"), time_zone=quiet.time_zone
            )
        )
    return message


def _host(url: str) -> str:
    return urllib.parse.urlsplit(url).hostname or ""
