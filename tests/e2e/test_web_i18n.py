"""The web console in two languages, in Debian's chromium against the real stack: the browser's language picks the
first one, the switcher changes it (and is remembered), Ant Design's own words and the dates follow; every page in
Chinese (screenshots in test-artifacts/web/*-zh.png), at 768 px wide, and by keyboard. test_web_console.py covers the
same pages in English."""

from __future__ import annotations

import datetime
import re
import uuid

import kubernetes.client
import pytest

from devcluster import accounts
from tests import kube_helpers
from tests.conftest import TENANT
from tests.e2e.test_auth import PASSWORD
from tests.web_browser import Browser, Tab
from tests.web_console import Web, can_log_in, open_signed_in, shot

ROW = ".ant-table-tbody tr.ant-table-row"
CHINESE = pytest.mark.parametrize("browser", ["zh-CN"], indirect=True)
MESSAGE_KEY = re.compile(r"\b(common|shell|signin|vms|detail|form|operations|errors)\.[a-zA-Z_.]+")
"""A message key shown instead of its message (i18next shows the key of a message it lacks)."""


FOCUSED = """(e => e.getAttribute('aria-label') || e.closest('[data-testid=user-menu]') && 'web-admin'
  || e.textContent.trim())(document.activeElement)"""
"""What has the keyboard focus: its accessible label, or its text (the user menu's is the user's name)."""


def choose_language(tab: Tab, name: str) -> None:
    tab.click("[data-testid=language]")
    tab.click(f".ant-select-item-option >> text={name}")


def no_key_shown(tab: Tab) -> None:
    assert MESSAGE_KEY.findall(tab.text("body")) == []


def zh_date_time(kube_timestamp: str) -> str:
    """How zh-CN writes a creation time in the browser's time zone (the machine's): 2026年12月3日 19:05:07."""
    moment = datetime.datetime.fromisoformat(kube_timestamp.replace("Z", "+00:00")).astimezone()
    return f"{moment.year}年{moment.month}月{moment.day}日 {moment:%H:%M:%S}"


@CHINESE
def test_the_browsers_language_picks_chinese_and_the_switch_to_english_is_remembered(
    web: Web, browser: Browser, operator: str
) -> None:
    tab = browser.open()
    tab.goto(web.url + "/vms?q=nothing-like-this")  # an empty list: Ant Design's own "no data"
    tab.wait("text=登录 NovaSphere")
    assert tab.evaluate("[document.documentElement.lang, document.title]") == ["zh-CN", "登录 · NovaSphere"]
    tab.click("button[type=submit]")  # empty: Ant Design's form says what is missing, in our words
    tab.wait(".ant-form-item-explain-error >> text=请输入用户名")
    no_key_shown(tab)
    shot(tab, "signin-zh")

    choose_language(tab, "English")
    tab.wait("text=Sign in to NovaSphere")
    tab.reload()
    tab.wait("text=Sign in to NovaSphere")  # remembered in this browser, over the browser's language
    assert tab.evaluate("[document.documentElement.lang, document.title]") == ["en-US", "Sign in · NovaSphere"]

    kube_helpers.eventually(lambda: can_log_in(web, operator), timeout=20, what="the user to be known")
    tab.fill("#username", operator)
    tab.fill("#password", PASSWORD)
    tab.click("button[type=submit]")
    tab.wait(".ant-table-tbody .ant-empty-description >> text=No data")
    choose_language(tab, "简体中文")
    tab.wait(".ant-table-tbody .ant-empty-description >> text=暂无数据")
    tab.wait("h3 >> text=虚拟机")
    tab.reload()
    tab.wait(".ant-table-tbody .ant-empty-description >> text=暂无数据")
    assert tab.evaluate("[document.documentElement.lang, document.title]") == ["zh-CN", "虚拟机 · NovaSphere"]


@CHINESE
def test_every_page_in_chinese_with_its_dates_and_ant_designs_words(
    web: Web, browser: Browser, operator: str, namespace: str, kube: kubernetes.client.ApiClient
) -> None:
    created = {
        name: kube_helpers.create_wukong(kube, namespace, name, {**kube_helpers.MINIMAL_SPEC, "cpu": cpu})
        for name, cpu in (("alpha", 1), ("bravo", 2), ("charlie", 2))
    }
    tab = open_signed_in(browser, web, operator, path=f"/vms?ns={namespace}")
    for name in created:
        tab.wait(f"{ROW}:has-text('{name}') >> text=运行中", ms=30_000)
    assert tab.text("[data-testid=total]") == "共 3 台虚拟机"
    tab.wait(".ant-pagination >> text=20 条/页")  # Ant Design's own words
    alpha_created = zh_date_time(created["alpha"]["metadata"]["creationTimestamp"])
    assert alpha_created in tab.text(f"{ROW}:has-text('alpha')")
    tab.wait("[data-testid=live] >> text=实时")
    no_key_shown(tab)
    shot(tab, "vm-list-zh")

    tab.click(".ant-table-thead .ant-checkbox-input")
    tab.wait("[data-testid=selection] >> text=已选择 3 台")
    tab.click("[data-testid=selection] button:has-text('批量关机…')")
    tab.wait(".ant-modal-title >> text=关机 3 台虚拟机")
    assert [row.split("\t")[1].strip() for row in tab.texts("[data-testid=batch-preview] tbody tr")] == ["关机"] * 3
    no_key_shown(tab)
    shot(tab, "batch-preview-zh")
    tab.click(".ant-modal-footer button:has-text('取 消')")  # Ant Design spaces a button's two Chinese characters
    tab.wait(".ant-modal", state="detached")

    tab.click(f"{ROW} >> text=alpha")
    tab.wait("[data-testid=vm-name] >> text=alpha")
    tab.wait("text=最近的事件")
    assert tab.text(".ant-descriptions-item:has-text('创建时间') .ant-descriptions-item-content") == alpha_created
    assert tab.evaluate("document.title") == "虚拟机 · NovaSphere"
    no_key_shown(tab)
    shot(tab, "vm-detail-zh")
    tab.click("[data-testid=actions] button:has-text('删 除')")
    tab.wait(".ant-modal >> text=删除 alpha？")
    assert tab.text(".ant-modal .ant-typography") == "虚拟机将关机，其 Wukong 资源将被删除。请输入 alpha 以确认。"
    shot(tab, "delete-dialog-zh")
    tab.click(".ant-modal-footer button:has-text('取 消')")
    tab.wait(".ant-modal", state="detached")

    tab.click("button:has-text('编 辑')")
    tab.wait("text=编辑 alpha")
    tab.wait("#spec_memory")
    no_key_shown(tab)
    shot(tab, "edit-form-zh")

    tab.goto(f"{web.url}/vms/new?ns={namespace}")
    tab.wait("text=创建后立即开机")
    tab.wait("[data-testid=disk-0] .ant-select-content >> text=local-path")
    tab.click("button:has-text('添加网络')")  # the network section's fields too
    tab.click("button:has-text('容忍污点')")
    no_key_shown(tab)
    shot(tab, "create-form-zh")


@CHINESE
def test_at_768_px_the_header_fits_and_the_operations_panel_leaves_the_page_uncovered(
    web: Web, browser: Browser, operator: str, namespace: str, kube: kubernetes.client.ApiClient
) -> None:
    kube_helpers.create_wukong(kube, namespace, "echo", kube_helpers.MINIMAL_SPEC)
    tab = open_signed_in(browser, web, operator, path=f"/vms/{namespace}/echo")
    tab.viewport(768, 1024)
    tab.wait("[data-testid=power-state] >> text=运行中", ms=30_000)
    tab.click("[data-testid=actions] button:has-text('重 启')")
    tab.wait("[data-testid=operations] [data-state=succeeded] >> text=重启", ms=30_000)
    header = tab.evaluate("(h => [h.scrollWidth, h.clientWidth])(document.querySelector('.shell-header'))")
    assert header[0] <= header[1], header  # nothing sticks out of the header
    panel_bottom, content_top = tab.evaluate(
        "[document.querySelector('[data-testid=operations]').getBoundingClientRect().bottom,"
        " document.querySelector('#content').getBoundingClientRect().top]"
    )
    assert panel_bottom <= content_top  # the panel sits above the page, covering none of it
    tab.click("[data-testid=nav-menu]")  # the sections, folded into one menu
    tab.wait(".ant-dropdown-menu >> text=API 密钥")
    assert tab.count(".ant-dropdown-menu >> text=系统管理") == 0  # an operator administers nothing
    no_key_shown(tab)
    shot(tab, "vm-detail-768-zh")


def test_a_keyboard_user_skips_to_the_content_and_administrators_see_administration(
    web: Web, browser: Browser, kube: kubernetes.client.ApiClient
) -> None:
    administrator = f"web-admin-{uuid.uuid4().hex[:8]}"
    accounts.create_user(kube, administrator, PASSWORD, tenant=TENANT, role="tenant-admin")
    try:
        tab = open_signed_in(browser, web, administrator, path="/vms")
        tab.wait("[data-testid=live] >> text=Live")
        assert tab.texts(".shell-nav .ant-menu-item") == [
            "Virtual machines",
            "Overview",
            "API keys",
            "Notifications",
            "Administration",
        ]
        tab.reload()  # nothing focused: the first Tab starts at the top of the page
        tab.wait("[data-testid=live] >> text=Live")
        tab.press("body", "Tab")
        assert tab.evaluate("document.activeElement.textContent") == "Skip to content"
        tab.wait(".skip-link:focus")  # shown when focused
        shot(tab, "skip-link")
        reached = []
        for _ in range(8):  # on through the header: every section, the language and the user menu
            tab.press(":focus", "Tab")
            reached.append(tab.evaluate(FOCUSED))
            if reached[-1] == "Language":  # borderless, so it is outlined while focused
                outline = "getComputedStyle(document.querySelector('.language-switch')).outlineStyle"
                assert tab.evaluate(outline) == "solid"
        assert reached == [
            "NovaSphere",
            "Virtual machines",
            "Overview",
            "API keys",
            "Notifications",
            "Administration",
            "Language",
            "web-admin",
        ], reached
        tab.reload()
        tab.wait("[data-testid=live] >> text=Live")
        tab.press("body", "Tab")
        tab.press(".skip-link", "Enter")
        assert tab.evaluate("document.activeElement.id") == "content"
        tab.press("#content", "Tab")  # on into the page: the list's first control
        assert tab.evaluate("document.activeElement.closest('#content') !== null") is True
    finally:
        accounts.unbind(kube, administrator)
