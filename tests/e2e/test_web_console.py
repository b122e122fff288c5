"""The web console in Debian's chromium, against the real stack: an API server without the development identity and
its Envoy (TLS), serving the built bundle (web/dist) beside the API. Sign-in, the live VM list and its URL state,
sessions across reloads and tabs, sign-out, the served files' headers, and no Content-Security-Policy violation.
Screenshots of each page go to test-artifacts/web/ (not committed)."""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import kubernetes.client
import pytest

from devcluster import accounts, procs
from devcluster import stack as devstack
from novasphere.v1 import wukong_pb2
from novasphere.v1 import wukong_service_pb2 as service_pb2
from novasphere.v1.wukong_service_pb2_grpc import WukongServiceStub
from tests import kube_helpers
from tests.conftest import TENANT
from tests.e2e.conftest import BOOKMARK_SECONDS
from tests.e2e.test_auth import PASSWORD, SECURE_ENV
from tests.web_browser import Browser, Tab
from tests.web_console import Web, api_token, bearer, can_log_in, open_signed_in, restart_on_same_ports, shot, sign_in

ROW = ".ant-table-tbody tr.ant-table-row"


@pytest.fixture
def three_vms(kube: kubernetes.client.ApiClient, namespace: str) -> str:
    for name, cpu in (("alpha", 1), ("bravo", 4), ("charlie", 2)):
        kube_helpers.create_wukong(kube, namespace, name, {**kube_helpers.MINIMAL_SPEC, "cpu": cpu})
    return namespace


def names_shown(tab: Tab) -> list[str]:
    """The list's rows by name (the name is the row's link to its detail page)."""
    return [name.strip() for name in tab.texts(f"{ROW} a")]


def eventually_shown(tab: Tab, wanted: Callable[[list[str]], bool], *, timeout: float, what: str) -> list[str]:
    return kube_helpers.eventually(
        lambda: (lambda shown: shown if wanted(shown) else None)(names_shown(tab)), timeout=timeout, what=what
    )


def test_wrong_password_then_sign_in_shows_the_live_list(
    web: Web, browser: Browser, operator: str, three_vms: str, kube: kubernetes.client.ApiClient
) -> None:
    tab = browser.open()
    kube_helpers.eventually(  # the replica has seen the new user
        lambda: can_log_in(web, operator), timeout=20, what="the user to be known"
    )
    sign_in(tab, web, operator, "not the password", path=f"/vms?ns={three_vms}")
    tab.wait("[role=alert] >> text=Wrong username or password.")
    shot(tab, "signin-wrong-password")

    tab.fill("#password", PASSWORD)
    tab.click("button[type=submit]")
    tab.wait(f"{ROW} >> text=charlie")
    assert names_shown(tab) == ["alpha", "bravo", "charlie"]
    assert tab.text("[data-testid=total]") == "3 VMs"
    assert tab.text("[data-testid=who]") == f"{operator} · {TENANT}"
    tab.wait("[data-testid=live] >> text=Live")
    assert f"ns={three_vms}" in tab.url()
    shot(tab, "vm-list")

    # a change made behind the page's back appears without a reload, within 2 s
    kube_helpers.create_wukong(kube, three_vms, "delta", kube_helpers.MINIMAL_SPEC)
    tab.wait(f"{ROW} >> text=delta", ms=2_000)
    assert tab.text("[data-testid=total]") == "4 VMs"
    alpha = f"{ROW}:has-text('alpha')"
    tab.wait(f"{alpha} >> text=Running", ms=30_000)  # the simulator boots it; each step arrives live
    before = web.list_calls()
    token = api_token(web, operator)
    assert token is not None
    with grpc.insecure_channel(web.api_target) as channel:
        WukongServiceStub(channel).StopWukong(
            service_pb2.StopWukongRequest(namespace=three_vms, name="alpha"), metadata=bearer(token)
        )
    tab.wait(f"{alpha} >> text=Stopped", ms=30_000)
    # an idle page (and one whose rows change in place) reads nothing again: some bookmarks later, no new list call
    _bookmarks_pass(web, three_vms, token, count=4)
    assert web.list_calls() == before
    shot(tab, "vm-list-live")


def test_the_list_view_lives_in_the_url(web: Web, browser: Browser, operator: str, three_vms: str) -> None:
    tab = open_signed_in(browser, web, operator, path=f"/vms?ns={three_vms}&sort=cpu&order=desc&cols=name,cpu,status")
    tab.wait(f"{ROW} >> text=charlie")
    assert names_shown(tab) == ["bravo", "charlie", "alpha"]  # 4, 2, 1 vCPUs
    assert tab.texts(".ant-table-thead th.ant-table-cell") == ["", "Name", "vCPU", "Status", "Actions"]

    tab.click(".ant-table-thead th:has-text('Name')")  # sort by name, ascending: the URL follows
    kube_helpers.eventually(lambda: "sort=" not in tab.url() or None, timeout=5, what="the URL to drop the sort")
    eventually_shown(tab, lambda shown: shown == ["alpha", "bravo", "charlie"], timeout=5, what="name order")
    tab.fill("[aria-label='Name contains']", "ar")
    tab.press("[aria-label='Name contains']", "Enter")
    eventually_shown(tab, lambda shown: shown == ["charlie"], timeout=5, what="the name filter")
    assert "q=ar" in tab.url()

    tab.reload()  # the same view again, from the URL alone
    tab.wait(f"{ROW} >> text=charlie")
    assert names_shown(tab) == ["charlie"]
    assert tab.texts(".ant-table-thead th.ant-table-cell") == ["", "Name", "vCPU", "Status", "Actions"]
    shot(tab, "vm-list-filtered")


def test_a_reload_keeps_the_session_two_tabs_share_it_and_signing_out_ends_it(
    web: Web, browser: Browser, operator: str, three_vms: str
) -> None:
    first = browser.open()
    kube_helpers.eventually(lambda: can_log_in(web, operator), timeout=20, what="the user to be known")
    sign_in(first, web, operator, path=f"/vms?ns={three_vms}")
    first.wait(f"{ROW} >> text=alpha")
    assert first.evaluate("document.cookie") == ""  # the refresh token is out of script's reach

    first.reload()
    first.wait(f"{ROW} >> text=alpha")
    second = browser.open()
    second.goto(f"{web.url}/vms?ns={three_vms}&sort=cpu")
    second.wait(f"{ROW} >> text=alpha")  # signed in from the shared cookie, its own view
    assert names_shown(second) == ["alpha", "charlie", "bravo"]
    first.reload()  # both tabs refreshed the session, in turn: neither looks like a stolen token
    first.wait(f"{ROW} >> text=alpha")
    second.wait("[data-testid=live] >> text=Live")
    shot(second, "second-tab")

    first.click("[data-testid=user-menu]")  # who, the tenant, and signing out
    first.click(".ant-dropdown-menu-item >> text=Sign out")
    first.wait("text=Sign in to NovaSphere")
    second.reload()
    second.wait("text=Sign in to NovaSphere")  # the session ended on the server, not just in one tab
    assert "next=" in second.url()


def test_a_lockout_says_so_and_counts_down(web: Web, browser: Browser, operator: str) -> None:
    tab = browser.open()
    kube_helpers.eventually(lambda: can_log_in(web, operator), timeout=20, what="the user to be known")
    sign_in(tab, web, operator, "wrong")
    tab.wait("[role=alert] >> text=Wrong username or password.")
    for _ in range(5):
        tab.click("button[type=submit]")
        if tab.count("[role=alert] >> text=locked out") == 1:
            break
        tab.wait("button[type=submit]:not(.ant-btn-loading)")
    tab.wait("[role=alert] >> text=Too many failed sign-ins: locked out for now.")
    assert re.fullmatch(r"Try again in \d+ s\.", tab.text("[role=alert] .ant-alert-description"))
    shot(tab, "signin-locked-out")


def test_the_bundle_is_served_with_its_headers(web: Web, stack: devstack.Stack) -> None:
    with devstack.Edge(port=int(web.url.rsplit(":", 1)[1]), ca_cert=stack.tls.ca_cert).http_client() as http:
        first, second = http.get("/vms/anything?page=2"), http.get("/")
        assert first.status_code == 200
        assert first.headers["content-type"].startswith("text/html")
        assert first.headers["cache-control"] == "no-cache"
        policy = first.headers["content-security-policy"]
        nonce = re.search(r"'nonce-([^']+)'", policy)
        assert nonce
        assert f'content="{nonce.group(1)}"' in first.text
        assert "script-src 'self';" in policy
        assert "unsafe-inline" not in policy
        assert second.headers["content-security-policy"] != policy  # a fresh nonce each time
        asset = re.search(r'src="(/assets/[^"]+\.js)"', first.text)
        assert asset
        script = http.get(asset.group(1))
        assert script.status_code == 200
        assert script.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert http.get("/assets/nope.js").status_code == 404
        traversal = http.get("/assets/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd")
        assert "root:" not in traversal.text
        api = http.get("/api/v1/nope")  # the REST API's paths never fall back to the page
        assert api.status_code == 404
        assert "text/html" not in api.headers.get("content-type", "")


# -- helpers


def _bookmarks_pass(web: Web, namespace: str, token: str, *, count: int) -> None:
    """Waits until a watch of our own on the same replica has seen `count` bookmarks: time in which the page's watch
    saw them too."""
    seen = 0
    with grpc.insecure_channel(web.api_target) as channel:
        request = service_pb2.WatchWukongRequest(namespace=namespace)
        for event in WukongServiceStub(channel).WatchWukong(request, timeout=30, metadata=bearer(token)):
            if event.type == wukong_pb2.WukongEvent.BOOKMARK:
                seen += 1
                if seen >= count:
                    return


def test_operations_show_their_progress_to_the_end_and_delete_asks_for_the_name(
    web: Web, browser: Browser, operator: str, namespace: str, kube: kubernetes.client.ApiClient
) -> None:
    kube_helpers.create_wukong(kube, namespace, "echo", kube_helpers.MINIMAL_SPEC)
    tab = open_signed_in(browser, web, operator, path=f"/vms/{namespace}/echo")
    tab.wait("[data-testid=vm-name] >> text=echo")
    tab.wait("[data-testid=power-state] >> text=Running", ms=30_000)
    tab.wait("[data-testid=live] >> text=Live")
    shot(tab, "vm-detail")

    tab.click("button[aria-label='Stop options']")  # stop, forced
    tab.click("text=Force stop (no graceful shutdown)")
    tab.wait("[data-testid=operations] [data-state=succeeded] >> text=Stop", ms=30_000)
    tab.wait("[data-testid=power-state] >> text=Stopped", ms=10_000)
    assert tab.count("[data-testid=actions] button:has-text('Stop')") == 0  # what the state offers, no more

    tab.click("[data-testid=actions] button:has-text('Start')")
    tab.wait("[data-testid=operations] [data-state=running] >> text=Start", ms=10_000)
    shot(tab, "operation-in-progress")
    tab.wait("[data-testid=operations] [data-state=succeeded] >> text=Start", ms=30_000)
    tab.wait("[data-testid=power-state] >> text=Running", ms=10_000)
    tab.wait("text=Recent operations")
    kube_helpers.eventually(  # the history reads them again after the change
        lambda: (
            len([t for t in tab.texts(".ant-card:has-text('Recent operations') tbody tr") if operator in t]) >= 2
            or None
        ),
        timeout=10,
        what="both operations in the history",
    )

    tab.click("[data-testid=actions] button:has-text('Delete')")
    tab.wait(".ant-modal >> text=Delete echo?")
    assert tab.evaluate("document.querySelector('.ant-modal .ant-btn-dangerous').disabled") is True
    tab.fill("[aria-label='Name to confirm']", "echo")
    tab.click(".ant-modal .ant-btn-dangerous")
    tab.wait("text=This VM has been deleted.", ms=30_000)
    tab.wait("[data-testid=operations] [data-state=succeeded] >> text=Delete", ms=30_000)
    shot(tab, "vm-deleted")


def test_a_viewer_is_offered_no_operation(
    web: Web, browser: Browser, three_vms: str, kube: kubernetes.client.ApiClient
) -> None:
    viewer = f"view-{uuid.uuid4().hex[:8]}"
    accounts.create_user(kube, viewer, PASSWORD, tenant=TENANT, role="viewer")
    try:
        tab = open_signed_in(browser, web, viewer, path=f"/vms?ns={three_vms}")
        tab.wait(f"{ROW} >> text=charlie")
        assert tab.count("[data-testid=actions] button") == 0
        assert tab.count(".ant-table-selection-column") == 0  # nothing to run on several either
        tab.click(f"{ROW} >> text=bravo")
        tab.wait("[data-testid=vm-name] >> text=bravo")
        tab.wait("text=Recent events")
        assert tab.count("[data-testid=actions] button") == 0
        shot(tab, "viewer-detail")
    finally:
        accounts.unbind(kube, viewer)


def test_the_list_resumes_after_a_dropped_stream_and_reconnects_after_the_api_server_restarts(
    stack: devstack.Stack,
    browser: Browser,
    operator: str,
    three_vms: str,
    kube: kubernetes.client.ApiClient,
    tmp_path: Path,
) -> None:
    env = {**SECURE_ENV, "NOVASPHERE_WATCH_BOOKMARK_SECONDS": BOOKMARK_SECONDS}
    first = devstack.start_api_server(
        api_kubeconfig=stack.api_kubeconfig, log_path=tmp_path / "first.log", extra_env=env
    )
    envoy = devstack.start_front(first, tls=stack.tls, state_dir=tmp_path)
    with procs.stopping([first.process, envoy.process]) as running:
        web = Web(url=envoy.edge.url, api_log=tmp_path / "first.log", api_target=first.target)
        tab = open_signed_in(browser, web, operator, path=f"/vms?ns={three_vms}")
        tab.wait(f"{ROW} >> text=charlie")
        tab.wait("[data-testid=live] >> text=Live")
        browser.tolerated = ("console: Failed to load resource",)  # the page's calls while nothing answers

        # Envoy restarts (on the same port): the stream drops and resumes from its cursor on the same replica, and
        # the page reads nothing again
        before = web.list_calls()
        envoy.process.stop()
        tab.wait("[data-testid=live] >> text=Reconnecting…")
        envoy = devstack.start_front(first, tls=stack.tls, state_dir=tmp_path, listen_port=envoy.edge.port)
        running.append(envoy.process)
        tab.wait("[data-testid=live] >> text=Live", ms=30_000)
        _bookmarks_pass(web, three_vms, api_token(web, operator) or "", count=2)
        assert web.list_calls() == before

        # the API server restarts (on the same ports): a fresh replica vouches only for cursors from its own start,
        # so the page either resumes or (told RESYNC_REQUIRED) reads its rows once and watches on from there
        first.process.stop()
        tab.wait("[data-testid=live] >> text=Reconnecting…")
        shot(tab, "vm-list-reconnecting")
        second = restart_on_same_ports(stack, first, tmp_path / "second.log", env)
        running.append(second.process)
        restarted = Web(url=web.url, api_log=tmp_path / "second.log", api_target=second.target)
        tab.wait("[data-testid=live] >> text=Live", ms=30_000)
        kube_helpers.create_wukong(kube, three_vms, "foxtrot", kube_helpers.MINIMAL_SPEC)
        tab.wait(f"{ROW} >> text=foxtrot", ms=5_000)
        # one read for the new VM, and one more if the replica could not vouch for the page's cursor
        assert restarted.list_calls() in (1, 2)


def test_a_batch_previews_what_happens_to_which_vm_then_shows_each_result(
    web: Web, browser: Browser, operator: str, three_vms: str, kube: kubernetes.client.ApiClient
) -> None:
    kube_helpers.create_wukong(kube, three_vms, "delta", kube_helpers.MINIMAL_SPEC)
    tab = open_signed_in(browser, web, operator, path=f"/vms?ns={three_vms}")
    for name in ("alpha", "bravo", "charlie", "delta"):
        tab.wait(f"{ROW}:has-text('{name}') >> text=Running", ms=30_000)
    tab.click(f"{ROW}:has-text('delta') [data-testid=actions] button")  # the row's menu
    tab.click('.ant-dropdown-menu-item >> text="Stop"')
    tab.wait(f"{ROW}:has-text('delta') >> text=Stopped", ms=30_000)

    tab.click(".ant-table-thead .ant-checkbox-input")  # the whole page
    tab.wait("[data-testid=selection] >> text=4 selected")
    tab.click("[data-testid=selection] button:has-text('Stop…')")
    tab.wait("[data-testid=batch-preview]")
    preview = dict(row.split("\t", 1) for row in tab.texts("[data-testid=batch-preview] tbody tr"))
    assert {name.split("/")[1]: what.strip() for name, what in preview.items()} == {
        "alpha": "stop",
        "bravo": "stop",
        "charlie": "stop",
        "delta": "skipped: not possible while Stopped",
    }
    shot(tab, "batch-preview")
    tab.click(".ant-modal-footer button:has-text('Stop 3')")
    kube_helpers.eventually(
        lambda: tab.texts("[data-testid=batch-results] tbody tr >> text=succeeded").__len__() == 3 or None,
        timeout=30,
        what="three stops to succeed",
    )
    shot(tab, "batch-results")
    tab.click(".ant-modal-footer button:has-text('Close')")
    tab.wait("[data-testid=selection]", state="detached")  # the selection is cleared
    for name in ("alpha", "bravo", "charlie"):
        tab.wait(f"{ROW}:has-text('{name}') >> text=Stopped", ms=10_000)


def test_create_shows_the_servers_field_errors_on_their_fields_and_creates_once_with_an_uploaded_ssh_key(
    web: Web, browser: Browser, operator: str, namespace: str, kube: kubernetes.client.ApiClient
) -> None:
    tab = open_signed_in(browser, web, operator, path=f"/vms?ns={namespace}")
    tab.wait(".ant-table-tbody .ant-empty")  # no VM yet
    tab.click("button:has-text('New VM')")
    tab.wait("text=Start it once created")
    assert tab.evaluate("document.querySelector('#namespace').value") == namespace
    tab.wait("[data-testid=disk-0] .ant-select-content >> text=local-path")  # the namespace's default class
    tab.fill("#name", "golf")
    tab.fill("#spec_memory", "lots")  # the server checks as the user types (validateOnly) and names the field
    tab.wait(".ant-form-item-has-error:has(#spec_memory) .ant-form-item-explain-error")
    assert "'lots' is not a quantity" in tab.text(
        ".ant-form-item-has-error:has(#spec_memory) .ant-form-item-explain-error"
    )
    tab.fill("#spec_disks_0_size", "huge")
    tab.wait(".ant-form-item-has-error:has(#spec_disks_0_size)")
    shot(tab, "create-field-errors")
    assert kube_helpers.wukong_names(kube, namespace) == []  # checking wrote nothing

    tab.fill("#spec_memory", "1Gi")
    tab.fill("#spec_disks_0_size", "20Gi")
    tab.wait(".ant-form-item-has-error", state="detached")
    tab.click("[data-testid=disk-0] .ant-select")  # the choices come from the API, expandability shown
    tab.click(".ant-select-item-option:has-text('sim-expandable')")
    tab.wait("[data-testid=disk-0] .ant-select-content >> text=can grow")

    tab.click("button:has-text('Upload a key')")
    tab.fill("#ssh-key-upload_name", "ada-laptop")
    tab.fill("#ssh-key-upload_publicKey", "ssh-ed25519 not-a-key ada@laptop")
    tab.click(".ant-modal-footer button:has-text('Upload')")
    tab.wait(".ant-modal .ant-form-item-has-error:has(#ssh-key-upload_publicKey) >> text=not valid base64")
    shot(tab, "ssh-key-refused")
    public_key = kube_helpers.ssh_public_key("ada@laptop")
    tab.fill("#ssh-key-upload_publicKey", public_key)
    tab.click(".ant-modal-footer button:has-text('Upload')")
    tab.wait(".ant-modal", state="detached")
    tab.wait("[data-testid=ssh-key] >> text=ada-laptop (1 key)")  # uploaded, and chosen
    shot(tab, "create-form")

    tab.evaluate(
        "document.querySelector('button[type=submit]').click(); document.querySelector('button[type=submit]').click()"
    )
    tab.wait("[data-testid=vm-name] >> text=golf")  # the new VM's page
    tab.wait("[data-testid=power-state] >> text=Running", ms=30_000)
    assert kube_helpers.wukong_names(kube, namespace) == ["golf"]  # one VM for a double click
    spec = kube_helpers.wukong_spec(kube, namespace, "golf")
    assert (spec["sshKeySecret"], spec["disks"][0]["storageClassName"]) == ("ada-laptop", "sim-expandable")
    secret: Any = kubernetes.client.CoreV1Api(kube).read_namespaced_secret("ada-laptop", namespace)
    assert base64.b64decode(secret.data["ssh-publickey"]).decode() == f"{public_key}\n"
    shot(tab, "created")


def test_an_edit_over_someone_elses_change_shows_the_conflict_and_reapplies_only_its_own_fields(
    web: Web, browser: Browser, operator: str, namespace: str, kube: kubernetes.client.ApiClient
) -> None:
    kube_helpers.create_wukong(kube, namespace, "hotel", kube_helpers.MINIMAL_SPEC)
    tab = open_signed_in(browser, web, operator, path=f"/vms/{namespace}/hotel")
    tab.wait("[data-testid=vm-name] >> text=hotel")
    tab.click("button:has-text('Edit')")
    tab.wait("text=Edit hotel")
    tab.wait("#spec_memory")
    shot(tab, "edit-form")
    _patch_cpu(kube, namespace, "hotel", 3)  # someone else, after the form was opened
    tab.fill("#spec_memory", "2Gi")
    tab.click("button[type=submit]")
    tab.wait(".ant-modal >> text=Someone else changed this VM")
    assert tab.text(".ant-modal li") == "vCPU: 1 → 3"
    shot(tab, "edit-conflict")
    tab.click(".ant-modal button:has-text('Reapply my changes')")
    tab.wait("[data-testid=vm-name] >> text=hotel")  # saved, back on its page
    spec = kube_helpers.wukong_spec(kube, namespace, "hotel")
    assert (spec["cpu"], spec["memory"]) == (3, "2Gi")  # their change kept, mine applied on top


def _patch_cpu(kube: kubernetes.client.ApiClient, namespace: str, name: str, cpu: int) -> None:
    from server.kube import wukongs as kube_wukongs

    kubernetes.client.CustomObjectsApi(kube).patch_namespaced_custom_object(
        kube_wukongs.GROUP, kube_wukongs.VERSION, namespace, kube_wukongs.PLURAL, name, {"spec": {"cpu": cpu}}
    )
