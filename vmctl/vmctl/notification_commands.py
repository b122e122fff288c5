"""Notifications: your devices (push), your preferences (what, which VMs, quiet hours), the installation's push
settings, and your tenant's chat webhooks. Push tokens, webhook URLs and secrets are credentials: the API never
returns them, and vmctl never prints them."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Sequence
from typing import Any

import click

from vmctl import errors
from vmctl.cli import State, output_option, pass_state

PLATFORMS = ("android", "ios")
WEBHOOK_KINDS = ("dingtalk", "feishu", "wecom", "generic")


def register(cli: click.Group) -> None:
    cli.add_command(notifications)


def _stub(session: Any) -> Any:
    from novasphere.v1.notification_service_pb2_grpc import NotificationServiceStub

    return NotificationServiceStub(session.channel)


def _request_id() -> str:
    """A fresh request id for each mutating call, as the VM operations send one: the server runs it once."""
    return str(uuid.uuid4())


def _platform(device: Any) -> str:
    from novasphere.v1 import notification_service_pb2 as pb

    return str(pb.DevicePlatform.Name(device.platform)).lower()


def _kind(webhook: Any) -> str:
    from novasphere.v1 import notification_service_pb2 as pb

    return str(pb.WebhookKind.Name(webhook.kind)).lower()


def _last(message: Any) -> str:
    """The last delivery: `failed 3m ago`, or `never`."""
    from vmctl.output import age

    last = message.last_delivery
    if not last.outcome:
        return "never"
    return f"{last.outcome} {age(last.time)} ago" if last.time.seconds else last.outcome


def _kinds(text: str, option: str) -> list[str]:
    """`--events K1,K2` (any case) as event kinds; `none`: an empty list."""
    if text.strip().lower() == "none":
        return []
    kinds = [part.strip().upper().replace("-", "_") for part in text.split(",") if part.strip()]
    if not kinds:
        raise errors.VmctlError(f"{option}: give event kinds, e.g. VM_FAILED,TASK_FAILED, or none", errors.USAGE)
    return kinds


def _required(value: str | None, option: str, choices: Sequence[str]) -> str:
    """A required choice, refused in one line (click's own message lists the choices over several)."""
    if not value:
        raise errors.VmctlError(f"{option} is required: {' or '.join(choices)}", errors.USAGE)
    return value


def _not_a_list(output: str) -> str:
    """`-o name` names objects; preferences and push settings are not any."""
    from vmctl.output import check_format

    if check_format(output) == "name":
        raise errors.VmctlError("-o name is for lists: use table, json or yaml", errors.USAGE)
    return output


def _fields(lines: Sequence[tuple[str, str]]) -> None:
    width = max(len(key) for key, _ in lines) + 1
    for key, value in lines:
        click.echo(f"{key + ':':<{width}} {value}")


@click.group()
def notifications() -> None:
    """Notifications when nobody is looking: your devices, your preferences, and your tenant's chat webhooks.

    \b
    Devices, preferences, push settings and test sends need `notification:subscribe`; webhooks need
    `notification:webhook:manage` (tenant admins)."""


# -- devices


DEVICE_COLUMNS = (
    ("ID", lambda d: d.id),
    ("PLATFORM", _platform),
    ("NAME", lambda d: d.name),
    ("APP VERSION", lambda d: d.app_version),
    ("LOCALE", lambda d: d.locale),
    ("PUSH SERVICE", lambda d: d.push_service),
    ("LAST DELIVERY", _last),
    ("DETAIL", lambda d: d.last_delivery.detail),
)


def _device_wide() -> tuple[tuple[str, Any], ...]:
    from vmctl.output import age

    return (("UPDATED", lambda d: age(d.update_time)), ("AGE", lambda d: age(d.create_time)))


@notifications.group(invoke_without_command=True)
@output_option()
@click.pass_context
def devices(ctx: click.Context, output: str) -> None:
    """Your devices that receive push notifications, newest first (the push tokens are never shown).

    \b
    vmctl notifications devices [-o json]           list them
    vmctl notifications devices register --platform android --token T [--name N]
    vmctl notifications devices delete ID"""
    if ctx.invoked_subcommand is None:
        ctx.invoke(list_devices, output=output)


@devices.command("list")
@output_option()
@pass_state
def list_devices(state: State, output: str) -> None:
    """Your devices, newest first, with what became of the last notification sent to each."""
    from novasphere.v1 import notification_service_pb2 as pb
    from vmctl.output import check_format, emit

    output = check_format(output)
    session = state.session()
    found = session.call(_stub(session).ListDevices, pb.ListDevicesRequest())
    emit(list(found.devices), output, columns=DEVICE_COLUMNS, wide=_device_wide(), kind="device", name=lambda d: d.id)


@devices.command("register")
@click.option("--platform", type=click.Choice(PLATFORMS), help="Where its notifications go (required).")
@click.option("--token", required=True, help="The app's FCM registration token (android) or APNs device token (ios).")
@click.option("--name", default="", help='What you call it, e.g. "Ada\'s Pixel" (up to 64 characters).')
@click.option(
    "--locale", default="", help="The language of its notifications, e.g. zh-CN (default: your preferences')."
)
@click.option("--app-version", default="", help="The app's version (up to 32 characters).")
@pass_state
def register_device(state: State, platform: str | None, token: str, name: str, locale: str, app_version: str) -> None:
    """Register a phone's push token (for testing and operations: apps register themselves, vmctl has no token of its
    own). The same token again updates the same device. Browsers register from the web console."""
    from novasphere.v1 import notification_service_pb2 as pb

    platform = _required(platform, "--platform", PLATFORMS)
    session = state.session()
    request = pb.RegisterDeviceRequest(
        platform=pb.DevicePlatform.Value(platform.upper()),
        token=token,
        name=name,
        locale=locale,
        app_version=app_version,
        request_id=_request_id(),
    )
    device = session.call(_stub(session).RegisterDevice, request)
    click.echo(f"device/{device.id} registered ({_platform(device)}{f', {device.name}' if device.name else ''})")


@devices.command("delete")
@click.argument("device_id", metavar="ID")
@pass_state
def delete_device(state: State, device_id: str) -> None:
    """Forget one of your devices: nothing more is sent to it."""
    from novasphere.v1 import notification_service_pb2 as pb

    session = state.session()
    session.call(_stub(session).DeleteDevice, pb.DeleteDeviceRequest(id=device_id, request_id=_request_id()))
    click.echo(f"device/{device_id} deleted")


@notifications.command("test")
@click.option("--device", "device_id", default="", help="Only this device (an ID from `devices`; default: all yours).")
@output_option()
@pass_state
def send_test(state: State, device_id: str, output: str) -> None:
    """Send a test notification to your devices now and show what became of each send (exit code 1 if any was not
    delivered)."""
    from novasphere.v1 import notification_service_pb2 as pb
    from vmctl.output import check_format, emit

    output = check_format(output)
    session = state.session()
    sent = session.call(_stub(session).SendTestNotification, pb.SendTestNotificationRequest(device_id=device_id))
    deliveries = list(sent.deliveries)
    if not deliveries and output in ("table", "wide"):
        click.echo("you have no devices (vmctl notifications devices register …)")
        return
    columns = (("DEVICE", lambda d: d.device_id), ("OUTCOME", lambda d: d.outcome), ("DETAIL", lambda d: d.detail))
    emit(deliveries, output, columns=columns, kind="device", name=lambda d: d.device_id)
    undelivered = [d for d in deliveries if d.outcome != "delivered"]
    if undelivered:
        sys.stdout.flush()
        click.echo(f"error: {len(undelivered)} of {len(deliveries)} test notifications not delivered", err=True)
        sys.exit(errors.FAILED)


# -- preferences


def _quiet(preferences: Any) -> str:
    if not preferences.HasField("quiet_hours"):
        return "none"
    quiet = preferences.quiet_hours
    return f"{quiet.start}-{quiet.end} {quiet.time_zone}"


def _vm_scope(preferences: Any) -> str:
    if preferences.vm_names:
        return ", ".join(preferences.vm_names)
    if preferences.vm_labels:
        return "labelled " + ",".join(f"{k}={v}" for k, v in sorted(preferences.vm_labels.items()))
    return "every VM you may see"


def _show_preferences(preferences: Any, output: str) -> None:
    from vmctl.output import emit

    if output not in ("table", "wide"):
        emit([preferences], output, columns=(), kind="preferences", single=True)
        return
    _fields(
        [
            ("Events", ", ".join(preferences.events) or "none (muted)"),
            ("VMs", _vm_scope(preferences)),
            ("Quiet hours", _quiet(preferences)),
            ("Locale", preferences.locale or "en-US"),
        ]
    )


@notifications.group(invoke_without_command=True)
@output_option()
@click.pass_context
def preferences(ctx: click.Context, output: str) -> None:
    """What you want to hear about: event kinds, which VMs, quiet hours and language.

    \b
    vmctl notifications preferences [-o yaml]        show them
    vmctl notifications preferences set --events VM_FAILED,TASK_FAILED --quiet 22:00-07:00 --time-zone Asia/Shanghai"""
    if ctx.invoked_subcommand is None:
        ctx.invoke(show_preferences, output=output)


@preferences.command("show")
@output_option()
@pass_state
def show_preferences(state: State, output: str) -> None:
    """Your preferences (the defaults until you change them)."""
    from novasphere.v1 import notification_service_pb2 as pb

    output = _not_a_list(output)
    session = state.session()
    found = session.call(_stub(session).GetNotificationPreferences, pb.GetNotificationPreferencesRequest())
    _show_preferences(found, output)


@preferences.command("set")
@click.option(
    "--events",
    default=None,
    help="Event kinds, comma-separated: VM_STOPPED_UNEXPECTEDLY, VM_FAILED, TASK_ENDED, TASK_FAILED, "
    "CONSOLE_TAKEN_OVER, QUOTA_NEARLY_USED (tenant admins); `none` mutes everything.",
)
@click.option("--vms", default=None, help="Only these VMs, comma-separated: NAME (any namespace) or NAMESPACE/NAME.")
@click.option("--vm-label", "vm_labels", multiple=True, help="Only VMs with this label, KEY=VALUE; repeatable.")
@click.option("--all-vms", is_flag=True, help="Every VM you may see (clears --vms and --vm-label).")
@click.option("--quiet", default=None, help="Quiet hours START-END, 24-hour local times, e.g. 22:00-07:00.")
@click.option("--time-zone", default=None, help="The quiet hours' IANA time zone, e.g. Asia/Shanghai.")
@click.option("--no-quiet", is_flag=True, help="No quiet hours.")
@click.option("--locale", default=None, help="The language of devices that do not say theirs: zh-CN or en-US.")
@pass_state
def set_preferences(
    state: State,
    events: str | None,
    vms: str | None,
    vm_labels: tuple[str, ...],
    all_vms: bool,
    quiet: str | None,
    time_zone: str | None,
    no_quiet: bool,
    locale: str | None,
) -> None:
    """Change only what is given; the rest stays as it is. Events that arrive during quiet hours wait until they
    end, gathered into one notification."""
    from novasphere.v1 import notification_service_pb2 as pb

    if sum((vms is not None, bool(vm_labels), all_vms)) > 1:
        raise errors.VmctlError("give one of --vms, --vm-label or --all-vms", errors.USAGE)
    if no_quiet and (quiet is not None or time_zone is not None):
        raise errors.VmctlError("--no-quiet takes neither --quiet nor --time-zone", errors.USAGE)
    names = [name.strip() for name in (vms or "").split(",") if name.strip()]
    if vms is not None and not names:
        raise errors.VmctlError("--vms: name VMs (NAME or NAMESPACE/NAME), or give --all-vms", errors.USAGE)
    labels = dict(_label(text) for text in vm_labels)
    hours = _hours(quiet) if quiet is not None else None
    kinds = _kinds(events, "--events") if events is not None else None
    given = (kinds, vms, quiet, time_zone, locale)
    if all(value is None for value in given) and not (labels or all_vms or no_quiet):
        raise errors.VmctlError(
            "nothing to change: give --events, --vms, --vm-label, --all-vms, --quiet, --time-zone, --no-quiet or "
            "--locale",
            errors.USAGE,
        )
    session = state.session()
    stub = _stub(session)
    current = session.call(stub.GetNotificationPreferences, pb.GetNotificationPreferencesRequest())
    wanted = pb.NotificationPreferences()
    wanted.CopyFrom(current)
    changed: list[str] = []
    if kinds is not None:
        wanted.ClearField("events")
        wanted.events.extend(kinds)
        changed.append("events")
    if vms is not None or labels or all_vms:
        wanted.ClearField("vm_names")
        wanted.ClearField("vm_labels")
        wanted.vm_names.extend(names)
        wanted.vm_labels.update(labels)
        changed.append("VMs")
    if no_quiet:
        wanted.ClearField("quiet_hours")
        changed.append("quiet hours")
    elif hours is not None or time_zone is not None:
        if not current.HasField("quiet_hours") and (hours is None or time_zone is None):
            raise errors.VmctlError(
                "you have no quiet hours yet: give both --quiet START-END and --time-zone, e.g. Asia/Shanghai",
                errors.USAGE,
            )
        if hours is not None:
            wanted.quiet_hours.start, wanted.quiet_hours.end = hours
        if time_zone is not None:
            wanted.quiet_hours.time_zone = time_zone
        changed.append("quiet hours")
    if locale is not None:
        wanted.locale = locale
        changed.append("locale")
    request = pb.UpdateNotificationPreferencesRequest(preferences=wanted, request_id=_request_id())
    session.call(stub.UpdateNotificationPreferences, request)
    click.echo(f"notification preferences saved: {', '.join(changed)}")


def _hours(text: str) -> tuple[str, str]:
    start, dash, end = text.partition("-")
    if not dash:
        raise errors.VmctlError(f"--quiet '{text}' is not START-END, e.g. 22:00-07:00", errors.USAGE)
    return start.strip(), end.strip()


def _label(text: str) -> tuple[str, str]:
    key, equals, value = text.partition("=")
    if not equals or not key:
        raise errors.VmctlError(f"--vm-label '{text}' is not KEY=VALUE, e.g. tier=web", errors.USAGE)
    return key, value


# -- push settings


@notifications.command("push-settings")
@output_option()
@pass_state
def push_settings(state: State, output: str) -> None:
    """Which platforms this installation delivers to, and the VAPID public key browsers subscribe with."""
    from novasphere.v1 import notification_service_pb2 as pb
    from vmctl.output import emit

    output = _not_a_list(output)
    session = state.session()
    found = session.call(_stub(session).GetPushSettings, pb.GetPushSettingsRequest())
    if output not in ("table", "wide"):
        emit([found], output, columns=(), kind="pushsettings", single=True)
        return
    platforms = [str(pb.DevicePlatform.Name(p)).lower() for p in found.platforms]
    _fields(
        [
            ("Platforms", ", ".join(platforms) or "none (an operator configures FCM, APNs or Web Push)"),
            ("VAPID public key", found.vapid_public_key or "none (Web Push is not configured)"),
        ]
    )


# -- webhooks


def _webhook_columns() -> tuple[tuple[str, Any], ...]:
    return (
        ("NAME", lambda w: w.name),
        ("KIND", _kind),
        ("HOST", lambda w: w.host),
        ("SIGNED", lambda w: "yes" if w.signed else "no"),
        ("EVENTS", lambda w: ",".join(w.events)),
        ("LOCALE", lambda w: w.locale),
        ("CREATED BY", lambda w: w.created_by),
        ("LAST DELIVERY", _last),
        ("DETAIL", lambda w: w.last_delivery.detail),
    )


@notifications.group(invoke_without_command=True)
@output_option()
@click.pass_context
def webhooks(ctx: click.Context, output: str) -> None:
    """Your tenant's chat webhooks: DingTalk, Feishu/Lark, WeCom robots, or any receiver of a signed JSON POST
    (their URLs and secrets are never shown).

    \b
    vmctl notifications webhooks [-o json]          list them
    vmctl notifications webhooks create ops-oncall --kind dingtalk --url - --secret-stdin < robot.txt
    vmctl notifications webhooks delete ops-oncall"""
    if ctx.invoked_subcommand is None:
        ctx.invoke(list_webhooks, output=output)


@webhooks.command("list")
@output_option()
@pass_state
def list_webhooks(state: State, output: str) -> None:
    """Your tenant's webhooks, by name, with what became of the last notification sent to each."""
    from novasphere.v1 import notification_service_pb2 as pb
    from vmctl.output import age, check_format, emit

    output = check_format(output)
    session = state.session()
    found = session.call(_stub(session).ListWebhooks, pb.ListWebhooksRequest())
    wide = (("AGE", lambda w: age(w.create_time)),)
    emit(list(found.webhooks), output, columns=_webhook_columns(), wide=wide, kind="webhook")


@webhooks.command("create")
@click.argument("name")
@click.option("--kind", type=click.Choice(WEBHOOK_KINDS), help="The robot or receiver (required).")
@click.option(
    "--url",
    required=True,
    help="Its https URL, with its credential (access_token, key); - reads it from standard input (the first line).",
)
@click.option("--secret", default="", help="The signing secret (dingtalk, feishu: optional; generic: required).")
@click.option("--secret-stdin", is_flag=True, help="Read the signing secret from standard input (after the URL).")
@click.option(
    "--events",
    default="",
    help="Comma-separated: VM_STOPPED_UNEXPECTEDLY, VM_FAILED, QUOTA_NEARLY_USED (default: all three).",
)
@click.option("--locale", default="", help="The language of its messages: zh-CN or en-US (default).")
@pass_state
def create_webhook(
    state: State, name: str, kind: str | None, url: str, secret: str, secret_stdin: bool, events: str, locale: str
) -> None:
    """Add a webhook to your tenant. Its URL and secret are never shown again (`--url -` and `--secret-stdin` keep them
    out of your shell's history)."""
    from novasphere.v1 import notification_service_pb2 as pb

    kind = _required(kind, "--kind", WEBHOOK_KINDS)
    if secret and secret_stdin:
        raise errors.VmctlError("give --secret or --secret-stdin, not both", errors.USAGE)
    if url == "-":
        url = sys.stdin.readline().strip()
    if secret_stdin:
        secret = sys.stdin.readline().rstrip("\n")
    kinds = _kinds(events, "--events") if events else []
    if events and not kinds:
        raise errors.VmctlError(
            "--events: a webhook hears at least one kind (without --events: all three)", errors.USAGE
        )
    session = state.session()
    request = pb.CreateWebhookRequest(
        kind=pb.WebhookKind.Value(kind.upper()),
        name=name,
        url=url,
        secret=secret,
        events=kinds,
        locale=locale,
        request_id=_request_id(),
    )
    made = session.call(_stub(session).CreateWebhook, request)
    signed = "signed" if made.signed else "not signed"
    click.echo(f"webhook/{made.name} created ({_kind(made)} to {made.host}, {signed})")


@webhooks.command("delete")
@click.argument("name")
@pass_state
def delete_webhook(state: State, name: str) -> None:
    """Remove one of your tenant's webhooks."""
    from novasphere.v1 import notification_service_pb2 as pb

    session = state.session()
    session.call(_stub(session).DeleteWebhook, pb.DeleteWebhookRequest(name=name, request_id=_request_id()))
    click.echo(f"webhook/{name} deleted")
