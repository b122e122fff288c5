"""The web console's test harness: the stack it runs on (`Web`, fixtures in tests/e2e/conftest.py), signing in, and
screenshots of what a person sees (test-artifacts/web/, not committed)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import grpc

from devcluster import stack as devstack
from novasphere.v1 import auth_service_pb2 as auth_pb2
from novasphere.v1.auth_service_pb2_grpc import AuthServiceStub
from tests import kube_helpers
from tests.e2e.test_auth import PASSWORD
from tests.web_browser import Browser, Tab

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "web"
FINITE_ANIMATIONS_DONE = """Promise.race([
  Promise.all(document.getAnimations()
    .filter((a) => a.effect?.getTiming().iterations !== Infinity)
    .map((a) => a.finished.catch(() => null))),
  new Promise((resolve) => setTimeout(resolve, 3000)),
])"""
"""Resolves when the page's animations that end have ended (a badge's pulse never does), within 3 s."""


@dataclass(frozen=True)
class Web:
    url: str
    api_log: Path
    api_target: str

    def list_calls(self) -> int:
        """ListWukongs calls the API server has answered (its request log)."""
        return self.api_log.read_text().count("/novasphere.v1.WukongService/ListWukongs ")


def shot(tab: Tab, name: str) -> None:
    """A screenshot once nothing is loading (no table or button spinner) and no animation runs (a dialog zooming in)."""
    tab.wait(".ant-spin-blur, .ant-btn-loading", state="detached")
    tab.evaluate(FINITE_ANIMATIONS_DONE)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(ARTIFACTS / f"{name}.png")


def sign_in(tab: Tab, web: Web, username: str, password: str = PASSWORD, *, path: str = "/vms") -> None:
    tab.goto(web.url + path)
    tab.wait("#username")  # the sign-in form, in either language
    tab.fill("#username", username)
    tab.fill("#password", password)
    tab.click("button[type=submit]")


def open_signed_in(browser: Browser, web: Web, username: str, *, path: str) -> Tab:
    """A new tab, signed in as `username` (once the replica knows the user) and showing `path`."""
    tab = browser.open()
    kube_helpers.eventually(lambda: can_log_in(web, username), timeout=20, what=f"{username} to be known")
    sign_in(tab, web, username, path=path)
    return tab


def api_token(web: Web, username: str) -> str | None:
    """An access token for `username` from the replica itself, or None while it does not know the user yet."""
    with grpc.insecure_channel(web.api_target) as channel:
        try:
            return str(
                AuthServiceStub(channel).Login(auth_pb2.LoginRequest(username=username, password=PASSWORD)).access_token
            )
        except grpc.RpcError:
            return None


def can_log_in(web: Web, username: str) -> bool:
    return api_token(web, username) is not None


def bearer(token: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {token}"),)


def restart_on_same_ports(
    stack: devstack.Stack, first: devstack.ApiServer, log_path: Path, env: dict[str, str]
) -> devstack.ApiServer:
    """A new API server in place of a stopped one, on its ports: Envoy's clusters (and the page) reach it unchanged."""
    return devstack.start_api_server(
        api_kubeconfig=stack.api_kubeconfig,
        log_path=log_path,
        extra_env={
            **env,
            "NOVASPHERE_GRPC_LISTEN": f"127.0.0.1:{first.grpc}",
            "NOVASPHERE_CONSOLE_LISTEN": f"127.0.0.1:{first.console}",
        },
    )
