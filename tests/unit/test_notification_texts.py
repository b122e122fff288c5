"""What notifications say, in Simplified Chinese and English, and the machine-readable fields an app opens them by
(server/notifications/texts.py)."""

from __future__ import annotations

import pytest

from server.names import WUKONG_NAME_MAX
from server.notifications import texts
from server.notifications.coalesce import Batch
from server.notifications.events import Event
from server.tasks.model import Operation
from tests.unit.test_notification_audience import console_event, quota_event
from tests.unit.test_notification_coalesce import batch_stop
from tests.unit.test_notification_events import task_event, vm_event


@pytest.mark.parametrize(
    ("locale", "language"),
    [
        ("zh-CN", "zh-CN"),
        ("zh", "zh-CN"),
        ("zh-Hans", "zh-CN"),
        ("zh_CN", "zh-CN"),
        ("ZH-hans-CN", "zh-CN"),
        ("en-US", "en-US"),
        ("en", "en-US"),
        ("en-GB", "en-US"),
        ("fr-FR", "en-US"),
        ("", "en-US"),
    ],
)
def test_a_locale_is_matched_by_its_language_and_english_is_the_fallback(locale: str, language: str) -> None:
    assert texts.language(locale) == language


@pytest.mark.parametrize(
    ("locale", "title", "body"),
    [
        ("en-US", "web-1 stopped unexpectedly", "VM web-1 in namespace prod stopped without anyone stopping it."),
        ("zh-CN", "web-1 意外停止", "命名空间 prod 中的虚拟机 web-1 在无人操作的情况下停止了。"),
    ],
)
def test_an_unexpected_stop(locale: str, title: str, body: str) -> None:
    event = vm_event()
    told = texts.event_notification(event, locale)
    assert (told.title, told.body) == (title, body)
    assert told.data == {"kinds": "VM_STOPPED_UNEXPECTEDLY", "count": "1", "namespace": "prod", "names": "web-1"}
    assert told.event_id == told.collapse_key == Batch("ada", (event,)).event_id


@pytest.mark.parametrize(
    ("locale", "title", "body"),
    [
        (
            "en-GB",
            "Couldn't restart web-1",
            "Your request to restart web-1 in namespace prod failed: the VM did not come back within 300 s.",
        ),
        (
            "zh-Hans",
            "web-1 重启失败",
            "你对命名空间 prod 中 web-1 的重启操作失败：the VM did not come back within 300 s。",
        ),
    ],
)
def test_a_failed_task(locale: str, title: str, body: str) -> None:
    event = task_event(state="Failed", operation=Operation.RESTART, message="the VM did not come back within 300 s")
    told = texts.event_notification(event, locale)
    assert (told.title, told.body) == (title, body)
    assert told.data["task_id"] == "task-web-1"


@pytest.mark.parametrize(
    ("locale", "title", "body"),
    [
        ("en-US", "50 VMs stopped", "web-00, web-01, web-02, web-03, web-04 and 45 more."),
        ("zh-CN", "50 台虚拟机已停止", "web-00、web-01、web-02、web-03、web-04 及另外 45 个。"),
    ],
)
def test_a_batch_stop_of_fifty_vms_is_one_short_notification(locale: str, title: str, body: str) -> None:
    batch = Batch("ada", tuple(batch_stop(50)))
    told = texts.notification(batch, locale)
    assert (told.title, told.body) == (title, body)
    assert (told.event_id, told.collapse_key) == (batch.event_id, batch.collapse_key)
    assert told.data["kinds"] == "TASK_ENDED"
    assert told.data["count"] == "50"
    assert told.data["names"].split(",") == [f"web-{i:02d}" for i in range(texts.MAX_DATA_NAMES)]
    assert "task_id" not in told.data


@pytest.mark.parametrize(
    ("locale", "title", "body"),
    [
        ("en-US", "3 updates in NovaSphere", "1 VM stopped unexpectedly; 1 VM failed; 1 quota nearly used up."),
        ("zh-CN", "NovaSphere 有 3 条新通知", "1 台虚拟机意外停止；1 台虚拟机出现故障；1 项配额即将用尽。"),
    ],
)
def test_a_mixed_batch_counts_each_kind(locale: str, title: str, body: str) -> None:
    batch = Batch(
        "tina", (vm_event("prod", "web-1"), vm_event("prod", "db-1", printable="CrashLoopBackOff"), quota_event())
    )
    told = texts.notification(batch, locale)
    assert (told.title, told.body) == (title, body)
    assert told.data["kinds"] == "QUOTA_NEARLY_USED,VM_FAILED,VM_STOPPED_UNEXPECTEDLY"


def every_kind(name: str) -> list[Event]:
    return [
        vm_event(name=name),
        vm_event(name=name, printable="ErrorUnschedulable"),
        task_event(name, state="Succeeded", operation=Operation.RESTART),
        task_event(name, state="Cancelled", operation=Operation.RESTART),
        task_event(name, state="Failed", operation=Operation.RESTART, message="x" * 200),
        console_event("ada"),
        quota_event(),
    ]


@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
def test_titles_fit_a_lock_screen_and_keep_what_happened(locale: str) -> None:
    longest = "w" * WUKONG_NAME_MAX
    for event in every_kind(longest):
        title = texts.event_notification(event, locale).title
        assert len(title) <= texts.MAX_TITLE, title
    cancelled = texts.event_notification(task_event(longest, state="Cancelled"), "en-US").title
    assert cancelled.startswith("Request to stop www")
    assert cancelled.endswith("… cancelled")


@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
def test_every_kind_has_words_in_both_languages(locale: str) -> None:
    for event in every_kind("web-1"):
        told = texts.event_notification(event, locale)
        assert told.title
        assert told.body.endswith("。" if locale == "zh-CN" else ".")
    assert texts.event_notification(console_event("ada"), "en").body == (
        "root took over your VNC console of web-1 in namespace prod."
    )
    assert texts.event_notification(quota_event(), "zh").body == "count/wukongs 已使用 95%（19 / 20）。"
