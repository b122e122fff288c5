"""What a notification says, in Simplified Chinese or English: a locale is matched by its language (`zh`, `zh-Hans`,
`zh_CN` read as zh-CN; `en-GB` and anything else as en-US). Titles fit a lock screen (at most `MAX_TITLE`
characters); a batch names its first `LISTED` VMs and counts the rest.

`data` carries what an app needs to open the right screen, machine-readable: the event kinds, how many, the
namespace and VM names, the task id. Nothing secret is in an event, so nothing secret is here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

from server.notifications.coalesce import Batch
from server.notifications.delivery import Notification
from server.notifications.events import Event, EventKind
from server.tasks.model import Operation, State

Language = Literal["zh-CN", "en-US"]
MAX_TITLE = 50
LISTED = 5
MAX_DATA_NAMES = 20
"""Push payloads are small (4 KB for FCM and APNs): an app lists the rest itself."""


def language(locale: str) -> Language:
    return "zh-CN" if locale.replace("_", "-").split("-")[0].lower() == "zh" else "en-US"


def notification(batch: Batch, locale: str) -> Notification:
    phrases = _PHRASES[language(locale)]
    events = batch.events
    if len(events) == 1:
        title, body = phrases.single(events[0])
        title = _fit(title, events[0].wukong or events[0].namespace)
    else:
        title, body = _several(phrases, events)
    return Notification(batch.event_id, title, body, _data(events), batch.collapse_key)


def event_notification(event: Event, locale: str) -> Notification:
    """One event told alone: the same words and ids as a batch of just that event."""
    return notification(Batch(event.owner, (event,)), locale)


def _several(phrases: _Phrases, events: Sequence[Event]) -> tuple[str, str]:
    kinds = {event.kind for event in events}
    if len(kinds) > 1:
        counts = {kind: sum(event.kind is kind for event in events) for kind in EventKind if kind in kinds}
        return phrases.updates(len(events)), phrases.sentence([phrases.count(k, n) for k, n in counts.items()])
    (kind,) = kinds
    subjects = list(dict.fromkeys(_subject(event) for event in events))
    listing = phrases.listing(subjects[:LISTED], len(subjects) - LISTED)
    outcomes = {(event.task_operation, event.details.get("state")) for event in events}
    if kind is EventKind.TASK_ENDED and len(outcomes) == 1 and len(events) == len(subjects):
        ((operation, state),) = outcomes
        if operation is not None and state == State.SUCCEEDED:
            return phrases.all_done(operation, len(events)), listing  # one verb for all: "50 VMs stopped"
    return phrases.count(kind, len(events)), listing


def _subject(event: Event) -> str:
    return event.wukong or f"{event.namespace}/{event.details.get('resource', '')}"


def _data(events: Sequence[Event]) -> dict[str, str]:
    data = {"kinds": ",".join(sorted({str(event.kind) for event in events})), "count": str(len(events))}
    namespaces = {event.namespace for event in events}
    if len(namespaces) == 1:
        data["namespace"] = namespaces.pop()
    vms = list(dict.fromkeys(event.wukong for event in events if event.wukong))
    if vms:
        data["names"] = ",".join(vms[:MAX_DATA_NAMES])
    tasks = {event.task_id for event in events if event.task_id}
    if len(tasks) == 1:
        data["task_id"] = tasks.pop()
    return data


def _fit(title: str, name: str) -> str:
    """At most MAX_TITLE characters, shortening the name in it rather than cutting off what happened to it."""
    excess = len(title) - MAX_TITLE
    if excess <= 0:
        return title
    return title.replace(name, name[: max(1, len(name) - excess - 1)] + "…", 1)


class _Phrases(Protocol):
    def single(self, event: Event) -> tuple[str, str]: ...
    def count(self, kind: EventKind, n: int) -> str: ...
    def all_done(self, operation: Operation, n: int) -> str: ...
    def updates(self, n: int) -> str: ...
    def listing(self, names: Sequence[str], more: int) -> str: ...
    def sentence(self, phrases: Sequence[str]) -> str: ...


_EN_VERB = {
    Operation.START: "start",
    Operation.STOP: "stop",
    Operation.RESTART: "restart",
    Operation.PAUSE: "pause",
    Operation.RESUME: "resume",
    Operation.DELETE: "delete",
}
_EN_DONE = {
    Operation.START: "started",
    Operation.STOP: "stopped",
    Operation.RESTART: "restarted",
    Operation.PAUSE: "paused",
    Operation.RESUME: "resumed",
    Operation.DELETE: "deleted",
}


class _English:
    def single(self, event: Event) -> tuple[str, str]:
        vm, ns, details = event.wukong, event.namespace, event.details
        operation = event.task_operation
        verb = _EN_VERB.get(operation, "change") if operation else ""
        request = f"Your request to {verb} {vm} in namespace {ns}"
        match event.kind:
            case EventKind.VM_STOPPED_UNEXPECTEDLY:
                return f"{vm} stopped unexpectedly", f"VM {vm} in namespace {ns} stopped without anyone stopping it."
            case EventKind.VM_FAILED:
                status = details.get("status", "Error")
                return f"{vm} failed", f"VM {vm} in namespace {ns} is in an error state ({status})."
            case EventKind.TASK_ENDED if details.get("state") == State.CANCELLED:
                return f"Request to {verb} {vm} cancelled", f"{request} was cancelled."
            case EventKind.TASK_ENDED:
                done = _EN_DONE.get(operation, "changed") if operation else ""
                return f"{vm} {done}", f"{request} succeeded."
            case EventKind.TASK_FAILED:
                message = details.get("message")
                reason = f": {message.rstrip('.')}." if message else "."
                return f"Couldn't {verb} {vm}", f"{request} failed{reason}"
            case EventKind.CONSOLE_TAKEN_OVER:
                protocol = "serial" if details.get("protocol") == "serial" else "VNC"
                taker = details.get("taken_by", "")
                return (
                    f"Console of {vm} taken over",
                    f"{taker} took over your {protocol} console of {vm} in namespace {ns}.",
                )
            case EventKind.QUOTA_NEARLY_USED:
                resource, percent = details.get("resource", ""), details.get("percent", "")
                used, hard = details.get("used", ""), details.get("hard", "")
                return f"Quota nearly used up in {ns}", f"{resource}: {percent}% used ({used} of {hard})."

    def count(self, kind: EventKind, n: int) -> str:
        vms, tasks = _plural(n, "VM"), _plural(n, "task")
        return {
            EventKind.VM_STOPPED_UNEXPECTEDLY: f"{vms} stopped unexpectedly",
            EventKind.VM_FAILED: f"{vms} failed",
            EventKind.TASK_ENDED: f"{tasks} ended",
            EventKind.TASK_FAILED: f"{tasks} failed",
            EventKind.CONSOLE_TAKEN_OVER: f"{_plural(n, 'console')} taken over",
            EventKind.QUOTA_NEARLY_USED: f"{_plural(n, 'quota')} nearly used up",
        }[kind]

    def all_done(self, operation: Operation, n: int) -> str:
        return f"{_plural(n, 'VM')} {_EN_DONE[operation]}"

    def updates(self, n: int) -> str:
        return f"{n} updates in NovaSphere"

    def listing(self, names: Sequence[str], more: int) -> str:
        return f"{', '.join(names)} and {more} more." if more > 0 else f"{', '.join(names)}."

    def sentence(self, phrases: Sequence[str]) -> str:
        return "; ".join(phrases) + "."


_ZH_VERB = {
    Operation.START: "启动",
    Operation.STOP: "停止",
    Operation.RESTART: "重启",
    Operation.PAUSE: "暂停",
    Operation.RESUME: "恢复",
    Operation.DELETE: "删除",
}


class _Chinese:
    def single(self, event: Event) -> tuple[str, str]:
        vm, ns, details = event.wukong, event.namespace, event.details
        operation = event.task_operation
        verb = _ZH_VERB.get(operation, "变更") if operation else ""
        request = f"你对命名空间 {ns} 中 {vm} 的{verb}操作"
        match event.kind:
            case EventKind.VM_STOPPED_UNEXPECTEDLY:
                return f"{vm} 意外停止", f"命名空间 {ns} 中的虚拟机 {vm} 在无人操作的情况下停止了。"
            case EventKind.VM_FAILED:
                status = details.get("status", "Error")
                return f"{vm} 出现故障", f"命名空间 {ns} 中的虚拟机 {vm} 处于错误状态（{status}）。"
            case EventKind.TASK_ENDED if details.get("state") == State.CANCELLED:
                return f"{vm} 的{verb}操作已取消", f"{request}已取消。"
            case EventKind.TASK_ENDED:
                return f"{vm} 已{verb}", f"{request}已完成。"
            case EventKind.TASK_FAILED:
                message = details.get("message")
                reason = f"：{message.rstrip('.')}。" if message else "。"
                return f"{vm} {verb}失败", f"{request}失败{reason}"
            case EventKind.CONSOLE_TAKEN_OVER:
                protocol = "串口" if details.get("protocol") == "serial" else " VNC "
                taker = details.get("taken_by", "")
                return f"{vm} 的控制台已被接管", f"{taker} 接管了你在命名空间 {ns} 中 {vm} 的{protocol}控制台。"
            case EventKind.QUOTA_NEARLY_USED:
                resource, percent = details.get("resource", ""), details.get("percent", "")
                used, hard = details.get("used", ""), details.get("hard", "")
                return f"{ns} 的配额即将用尽", f"{resource} 已使用 {percent}%（{used} / {hard}）。"

    def count(self, kind: EventKind, n: int) -> str:
        return {
            EventKind.VM_STOPPED_UNEXPECTEDLY: f"{n} 台虚拟机意外停止",
            EventKind.VM_FAILED: f"{n} 台虚拟机出现故障",
            EventKind.TASK_ENDED: f"{n} 个任务已结束",
            EventKind.TASK_FAILED: f"{n} 个任务失败",
            EventKind.CONSOLE_TAKEN_OVER: f"{n} 个控制台被接管",
            EventKind.QUOTA_NEARLY_USED: f"{n} 项配额即将用尽",
        }[kind]

    def all_done(self, operation: Operation, n: int) -> str:
        return f"{n} 台虚拟机已{_ZH_VERB[operation]}"

    def updates(self, n: int) -> str:
        return f"NovaSphere 有 {n} 条新通知"

    def listing(self, names: Sequence[str], more: int) -> str:
        return f"{'、'.join(names)} 及另外 {more} 个。" if more > 0 else f"{'、'.join(names)}。"

    def sentence(self, phrases: Sequence[str]) -> str:
        return "；".join(phrases) + "。"


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


_PHRASES: dict[Language, _Phrases] = {"en-US": _English(), "zh-CN": _Chinese()}


_TEST_TEXT: dict[Language, tuple[str, str]] = {
    "en-US": ("NovaSphere test notification", "If you can read this, notifications reach this device."),
    "zh-CN": ("NovaSphere 测试通知", "看到这条消息，说明通知可以送达此设备。"),
}


def test_notification(event_id: str, locale: str) -> Notification:
    """What SendTestNotification sends: its own id each time, so no provider collapses two tests."""
    title, body = _TEST_TEXT[language(locale)]
    return Notification(event_id, title, body, {"kind": "TEST"}, event_id)
