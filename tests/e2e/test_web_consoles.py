"""The web console's VNC (noVNC) and serial (xterm.js) consoles in Debian's chromium, against the real stack: the
screen read back from the canvas, keystrokes checked against what the simulated VNC server received (its
simulator-only `simulator-keys` route), a serial login, take-over between two users, reconnecting after the API
server restarts, and a VM that stops and runs again. Screenshots go to test-artifacts/web/."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes.client
import pytest

from devcluster import accounts, procs
from devcluster import stack as devstack
from novasphere.v1 import wukong_service_pb2 as service_pb2
from novasphere.v1.wukong_service_pb2_grpc import WukongServiceStub
from tests import kube_helpers
from tests.conftest import TENANT
from tests.e2e.conftest import BOOKMARK_SECONDS
from tests.e2e.test_auth import PASSWORD, SECURE_ENV
from tests.e2e.test_tasks import Power, wait_power
from tests.web_browser import Browser, BrowserServer, Tab
from tests.web_console import Web, open_signed_in, restart_on_same_ports, shot

GUEST_USER, GUEST_PASSWORD = "ops", "s3cret"
STATE = "[data-testid=console-state]"
MESSAGE = "[data-testid=console-message]"
TERMINAL = "[data-testid=serial-screen] .xterm-helper-textarea"
ROWS = "[data-testid=serial-screen] .xterm-rows"
SHIFT_L, CONTROL_L, ALT_L, DELETE, ALTGR, SPACE = 0xFFE1, 0xFFE3, 0xFFE9, 0xFFFF, 0xFE03, 0x20
MARKER_CELL = 8
READ_MARKER = f"""(() => {{
  const canvas = document.querySelector("[data-testid=vnc-screen] canvas");
  if (!canvas || canvas.width < 720) return "";
  const context = canvas.getContext("2d");
  const bytes = [];
  for (let index = 0; index < canvas.width / {MARKER_CELL}; index++) {{
    const [r, g, b] = context.getImageData(index * {MARKER_CELL} + 4, 4, 1, 1).data;
    if (r + g !== 255 || b !== 0x5a) break;
    bytes.push(r);
  }}
  return String.fromCharCode(...bytes);
}})()"""
"""The simulated screen's marker row (sim/kubevirt/rfb.py), one coloured cell per byte of the VMI's name."""


def press(keysym: int) -> list[tuple[bool, int]]:
    return [(True, keysym), (False, keysym)]


def running_vm(kube: kubernetes.client.ApiClient, grpc_direct: WukongServiceStub, name: str) -> Iterator[str]:
    """A running Wukong whose guest has ops/s3cret on its serial console, in a namespace of its own; its namespace."""
    namespace = f"t-{uuid.uuid4().hex[:10]}"
    kube_helpers.create_namespace(kube, namespace, {"novasphere.dev/tenant": TENANT})
    try:
        spec = {**kube_helpers.MINIMAL_SPEC, "cloudInitUser": {"name": GUEST_USER, "password": GUEST_PASSWORD}}
        kube_helpers.create_wukong(kube, namespace, name, spec)
        wait_power(grpc_direct, namespace, name, Power.RUNNING)
        yield namespace
    finally:
        kube_helpers.delete_namespace(kube, namespace)


@pytest.fixture(scope="module")
def vm(kube: kubernetes.client.ApiClient, grpc_direct: WukongServiceStub) -> Iterator[tuple[str, str]]:
    yield from ((namespace, "screen") for namespace in running_vm(kube, grpc_direct, "screen"))


def console_path(vm: tuple[str, str], protocol: str) -> str:
    return f"/vms/{vm[0]}/{vm[1]}/console/{protocol}"


def keys_received(kube: kubernetes.client.ApiClient, vm: tuple[str, str]) -> list[tuple[bool, int]]:
    """What the simulated VNC server of the VM's VMI received, through kube-apiserver's aggregation."""
    path = f"/apis/subresources.kubevirt.io/v1/namespaces/{vm[0]}/virtualmachineinstances/{vm[1]}-vm/simulator-keys"
    method, url, headers, body, _ = kube.param_serialize("GET", path, auth_settings=["BearerToken"])
    response = kube.call_api(method, url, headers, body)
    answer: Any = json.loads(response.read() or b"{}")
    return [(bool(k["down"]), int(k["keysym"])) for k in answer["keys"]]


def received_after(kube: kubernetes.client.ApiClient, vm: tuple[str, str], start: int, count: int) -> list[Any]:
    return kube_helpers.eventually(
        lambda: (lambda keys: keys[start:] if len(keys) >= start + count else None)(keys_received(kube, vm)),
        timeout=10,
        what=f"{count} key events at the simulated VNC server",
    )


def terminal_shows(tab: Tab, text: str, *, timeout: float = 15) -> str:
    return kube_helpers.eventually(
        lambda: (lambda rows: rows if text in rows else None)(tab.text(ROWS)), timeout=timeout, what=repr(text)
    )


def log_in_on_serial(tab: Tab) -> None:
    tab.wait(f"{STATE} >> text=Connected")
    tab.type(TERMINAL, "\r")
    terminal_shows(tab, "login:")
    tab.type(TERMINAL, f"{GUEST_USER}\r")
    terminal_shows(tab, "Password:")
    tab.type(TERMINAL, f"{GUEST_PASSWORD}\r")
    terminal_shows(tab, "$ ")


def test_the_vnc_console_shows_the_screen_and_types_combinations_and_pastes_through_the_guests_layout(
    web: Web, browser: Browser, operator: str, vm: tuple[str, str], kube: kubernetes.client.ApiClient
) -> None:
    tab = open_signed_in(browser, web, operator, path=console_path(vm, "vnc"))
    tab.wait(f"{STATE} >> text=Connected")
    marker = kube_helpers.eventually(lambda: tab.evaluate(READ_MARKER) or None, timeout=15, what="the first frame")
    assert marker == f"{vm[1]}-vm"  # the VMI's screen, read back from the canvas noVNC drew
    tab.wait(f"[data-testid=status-user] >> text={operator}")
    shot(tab, "console-vnc")

    before = len(keys_received(kube, vm))
    tab.click("[data-testid=keys-menu]")
    tab.click(".ant-dropdown-menu-item >> text=Ctrl+Alt+Del")
    assert received_after(kube, vm, before, 6) == [
        (True, CONTROL_L),
        (True, ALT_L),
        (True, DELETE),
        (False, DELETE),
        (False, ALT_L),
        (False, CONTROL_L),
    ]

    # "Zy@ 中文" on a German guest: Z and y swap places with the US keyboard, @ is AltGr+Q, Chinese cannot be typed
    before = len(keys_received(kube, vm))
    tab.click("[data-testid=paste]")
    tab.fill("[data-testid=paste-text]", "Zy@ 中文")
    tab.click("#paste-layout")
    tab.click(".ant-select-item-option >> text=German")
    tab.wait("[data-testid=paste-warning]")
    assert tab.text("[data-testid=paste-untypable]") == "中 文"
    shot(tab, "console-paste-warning")
    tab.click("[data-testid=paste-send]")
    assert received_after(kube, vm, before, 12) == [
        (True, SHIFT_L),
        *press(ord("Y")),
        (False, SHIFT_L),
        *press(ord("z")),
        (True, ALTGR),
        *press(ord("q")),
        (False, ALTGR),
        *press(SPACE),
    ]


def test_the_serial_console_logs_in_and_runs_echo_in_the_guest(
    web: Web, browser: Browser, operator: str, vm: tuple[str, str]
) -> None:
    tab = open_signed_in(browser, web, operator, path=console_path(vm, "serial"))
    log_in_on_serial(tab)
    tab.type(TERMINAL, "echo hello-from-the-browser\r")
    rows = terminal_shows(tab, "\nhello-from-the-browser")
    assert "$ echo hello-from-the-browser" in rows
    shot(tab, "console-serial")
    tab.type(TERMINAL, "exit\r")  # the guest's tty outlives the page: leave it logged out
    terminal_shows(tab, "login:")


def test_taking_over_needs_the_holder_or_vm_console_manage_and_tells_the_holder_who(
    web: Web,
    browser: Browser,
    browser_server: BrowserServer,
    operator: str,
    vm: tuple[str, str],
    kube: kubernetes.client.ApiClient,
) -> None:
    bystander, manager = f"web-{uuid.uuid4().hex[:8]}", f"adm-{uuid.uuid4().hex[:8]}"
    accounts.create_user(kube, bystander, PASSWORD, tenant=TENANT, role="operator")
    accounts.create_user(kube, manager, PASSWORD, tenant=TENANT, role="tenant-admin")
    second = Browser(browser_server)
    try:
        holder = open_signed_in(browser, web, operator, path=console_path(vm, "serial"))
        holder.wait(f"{STATE} >> text=Connected")

        refused = open_signed_in(second, web, bystander, path=console_path(vm, "serial"))
        refused.wait(f"[data-testid=in-use-holder] >> text={operator}")
        assert refused.count("[data-testid=take-over]:visible") == 0  # not offered without vm:console:manage
        assert "vm:console:manage" in refused.text("[data-testid=in-use-hint]")
        shot(refused, "console-in-use-refused")
        refused.click("[data-testid=leave-console]")
        refused.wait(f"[data-testid=vm-name] >> text={vm[1]}")
        # the detail page's console card: the ways in, and who holds the console from where
        refused.wait(f"[data-testid=console-card] .ant-table-row:has-text('{operator}') >> text=Connected")
        assert refused.count("[data-testid=open-vnc]") == refused.count("[data-testid=open-serial]") == 1
        shot(refused, "console-card")
        second.close()

        second = Browser(browser_server)
        taker = open_signed_in(second, web, manager, path=console_path(vm, "serial"))
        taker.wait(f"[data-testid=in-use-holder] >> text={operator}")
        shot(taker, "console-in-use")
        taker.click("[data-testid=take-over]")
        taker.wait(f"{STATE} >> text=Connected")

        holder.wait(f"{MESSAGE} >> text={manager} took over this console.")
        holder.wait(f"{STATE} >> text=Closed")
        holder.wait("[data-testid=connect]")  # no reconnect after a take-over: connecting again is the user's call
        shot(holder, "console-taken-over")
        assert second.problems() == []
    finally:
        second.close()
        accounts.unbind(kube, bystander)
        accounts.unbind(kube, manager)


def test_the_console_says_the_vm_stopped_and_comes_back_when_it_runs_again(
    web: Web,
    browser: Browser,
    operator: str,
    kube: kubernetes.client.ApiClient,
    grpc_direct: WukongServiceStub,
) -> None:
    for namespace in running_vm(kube, grpc_direct, "stopper"):
        tab = open_signed_in(browser, web, operator, path=f"/vms/{namespace}/stopper/console/serial")
        tab.wait(f"{STATE} >> text=Connected")
        grpc_direct.StopWukong(service_pb2.StopWukongRequest(namespace=namespace, name="stopper"))
        tab.wait(f"{MESSAGE} >> text=The VM stopped.", ms=60_000)
        tab.wait(f"{STATE} >> text=VM stopped")
        shot(tab, "console-vm-stopped")
        grpc_direct.StartWukong(service_pb2.StartWukongRequest(namespace=namespace, name="stopper"))
        tab.wait(f"{STATE} >> text=Connected", ms=60_000)
        tab.type(TERMINAL, "\r")
        terminal_shows(tab, "login:")


def test_the_console_reconnects_by_itself_after_the_api_server_restarts(
    stack: devstack.Stack, browser: Browser, operator: str, vm: tuple[str, str], tmp_path: Path
) -> None:
    env = {**SECURE_ENV, "NOVASPHERE_WATCH_BOOKMARK_SECONDS": BOOKMARK_SECONDS}
    first = devstack.start_api_server(
        api_kubeconfig=stack.api_kubeconfig, log_path=tmp_path / "first.log", extra_env=env
    )
    envoy = devstack.start_front(first, tls=stack.tls, state_dir=tmp_path)
    with procs.stopping([first.process, envoy.process]) as running:
        web = Web(url=envoy.edge.url, api_log=tmp_path / "first.log", api_target=first.target)
        tab = open_signed_in(browser, web, operator, path=console_path(vm, "serial"))
        tab.wait(f"{STATE} >> text=Connected")
        browser.tolerated = ("console: Failed to load resource", "console: WebSocket connection to")

        first.process.stop()  # the replica shuts down: its consoles close with 4005
        tab.wait(f"{STATE} >> text=/Reconnecting/")
        shot(tab, "console-reconnecting")
        second = restart_on_same_ports(stack, first, tmp_path / "second.log", env)
        running.append(second.process)
        tab.wait(f"{STATE} >> text=Connected", ms=60_000)
        tab.type(TERMINAL, "\r")
        terminal_shows(tab, "login:")
