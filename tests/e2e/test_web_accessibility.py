"""Accessibility of the web console in chromium, on the real stack: axe-core finds no serious or critical WCAG 2.1
A/AA violation on any page, in either language, with its dialogs open; a keyboard alone signs in, finds a VM, starts
it and opens its console."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import kubernetes.client
import pytest

from devcluster import accounts
from tests import kube_helpers
from tests.conftest import TENANT
from tests.e2e.test_auth import PASSWORD
from tests.web_browser import Browser, Tab
from tests.web_console import FINITE_ANIMATIONS_DONE, Web, can_log_in, open_signed_in, shot

MESSAGES = Path(__file__).resolve().parents[2] / "web" / "src" / "i18n"
BOTH_LANGUAGES = pytest.mark.parametrize("browser", ["en-US", "zh-CN"], indirect=True)
DIALOG = ".ant-modal-wrap:not([style*='display: none']) .ant-modal"


@cache
def words(language: str, key: str) -> str:
    """The page's text for a message key, from the same files the page reads."""
    part, *path = key.split(".")
    value = json.loads((MESSAGES / language / f"{part}.json").read_text())
    for name in path:
        value = value[name]
    return str(value)


@pytest.fixture
def administrator(kube: kubernetes.client.ApiClient) -> Iterator[str]:
    name = f"a11y-{uuid.uuid4().hex[:8]}"
    accounts.create_user(kube, name, PASSWORD, tenant=TENANT, role="admin")
    yield name
    accounts.unbind(kube, name)


class Audit:
    """axe on each page and dialog, every finding kept with where it was (so one run lists them all)."""

    def __init__(self, tab: Tab, language: str) -> None:
        self.tab, self.language = tab, language
        self.found: dict[str, list[dict[str, object]]] = {}

    def check(self, where: str) -> None:
        self.tab.wait(".ant-spin-spinning, .ant-btn-loading", state="detached")
        self.tab.evaluate(FINITE_ANIMATIONS_DONE)  # a dialog zooming in is half transparent
        violations = self.tab.axe()
        if violations:
            self.found[where] = violations
            shot(self.tab, f"axe-{self.language}-{where}")

    def page(self, url: str, ready: str, where: str) -> None:
        self.tab.goto(url)
        self.tab.wait(ready, ms=30_000)
        self.check(where)

    def dialog(self, opener: str, where: str) -> None:
        """Opens a dialog, checks the page with it open, closes it with Escape."""
        self.tab.click(opener)
        self.tab.wait(DIALOG)
        self.check(where)
        self.tab.key("Escape")
        self.tab.wait(DIALOG, state="detached")


@BOTH_LANGUAGES
def test_every_page_and_dialog_passes_axe_in_both_languages(
    web: Web, browser: Browser, administrator: str, namespace: str, kube: kubernetes.client.ApiClient
) -> None:
    language = browser.locale
    kube_helpers.create_wukong(kube, namespace, "axe", kube_helpers.MINIMAL_SPEC)
    tab = browser.open()
    audit = Audit(tab, language)
    kube_helpers.eventually(lambda: can_log_in(web, administrator), timeout=20, what="the user to be known")
    audit.page(web.url + "/signin", "#username", "signin")
    tab = open_signed_in(browser, web, administrator, path=f"/vms?ns={namespace}")
    tab.wait(".ant-table-row:has-text('axe')")  # signed in
    audit.tab = tab
    vm = f"/vms/{namespace}/axe"
    audit.page(
        f"{web.url}/vms?ns={namespace}",
        f".ant-table-row:has-text('axe') >> text={words(language, 'common.power.running')}",
        "list",
    )
    tab.click(".ant-table-row:has-text('axe') .ant-checkbox-input")
    audit.dialog("[data-testid=selection] button >> nth=1", "batch-dialog")
    audit.page(web.url + vm, "[data-testid=console-card] [data-testid=open-vnc]", "detail")
    audit.dialog("[data-testid=view-yaml]", "yaml-dialog")
    audit.dialog("[data-testid=actions] button.ant-btn-dangerous", "delete-dialog")
    audit.dialog(
        f"[data-testid=access-services] button:has-text('{words(language, 'access.expose')}')", "access-dialog"
    )
    audit.page(f"{web.url}{vm}/console/vnc", "[data-testid=vnc-screen] canvas", "console-vnc")
    audit.page(f"{web.url}{vm}/console/serial", ".xterm", "console-serial")
    audit.page(web.url + "/vms/new", "#name", "create")
    audit.dialog("[data-testid=copy-as-vmctl]", "create-command-dialog")
    audit.page(f"{web.url}{vm}/edit", "#spec_memory", "edit")
    audit.page(web.url + "/overview", "[data-testid=overview-totals]", "overview")
    audit.page(web.url + "/api-keys", "[data-testid=apikeys]", "api-keys")
    audit.dialog(f"button:has-text('{words(language, 'apikeys.create')}')", "api-key-dialog")
    for tab_name, create in (("tenants", "tenants"), ("users", "users"), ("roles", "roles"), ("bindings", "bindings")):
        audit.page(f"{web.url}/admin/{tab_name}", f"[data-testid={tab_name}]", f"admin-{tab_name}")
        audit.dialog(f"button:has-text('{words(language, f'admin.{create}.create')}')", f"admin-{tab_name}-dialog")
    assert audit.found == {}, json.dumps(audit.found, indent=1, ensure_ascii=False)


def test_a_keyboard_alone_signs_in_opens_a_vm_starts_it_and_opens_its_console(
    web: Web, browser: Browser, operator: str, namespace: str, kube: kubernetes.client.ApiClient
) -> None:
    kube_helpers.create_wukong(
        kube, namespace, "keys", {**kube_helpers.MINIMAL_SPEC, "startStrategy": {"autoStart": False}}
    )
    tab = browser.open()
    kube_helpers.eventually(lambda: can_log_in(web, operator), timeout=20, what="the user to be known")
    tab.goto(f"{web.url}/vms?ns={namespace}")
    tab.wait("#username")
    assert tab.focused().startswith("input#username")  # the form takes the focus
    tab.type("#username", operator)
    tab.key("Tab")
    tab.type("#password", PASSWORD)
    tab.key("Enter")

    def tab_to(wanted: str, limit: int = 60) -> None:
        for _ in range(limit):
            tab.key("Tab")
            if wanted in tab.focused():
                return
        raise AssertionError(f"{wanted!r} not reached with Tab; the focus is on {tab.focused()!r}")

    tab.wait(".ant-table-row:has-text('keys') >> text=Stopped", ms=30_000)
    tab_to("a keys")
    tab.key("Enter")
    tab.wait("[data-testid=vm-name] >> text=keys")
    tab_to("button Start")
    tab.key("Enter")
    tab.wait("[data-testid=power-state] >> text=Running", ms=60_000)
    tab_to("button Open VNC")
    tab.key("Enter")
    tab.wait("[data-testid=vnc-screen] canvas", ms=30_000)
    shot(tab, "keyboard-only-console")
