"""Fixtures of the browser tests: one API server without the development identity and its Envoy (TLS) serving the built
web console (web/dist) per module, one chromium per session, a fresh browser profile per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import kubernetes.client
import pytest

from devcluster import accounts, procs
from devcluster import stack as devstack
from tests.conftest import TENANT
from tests.e2e.test_auth import PASSWORD, SECURE_ENV
from tests.web_browser import Browser, BrowserServer
from tests.web_console import ARTIFACTS, Web

BOOKMARK_SECONDS = "0.5"


@pytest.fixture(scope="module")
def web(stack: devstack.Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Web]:
    state = tmp_path_factory.mktemp("web")
    api = devstack.start_api_server(
        api_kubeconfig=stack.api_kubeconfig,
        log_path=state / "api.log",
        extra_env={
            **SECURE_ENV,
            "NOVASPHERE_WATCH_BOOKMARK_SECONDS": BOOKMARK_SECONDS,
            # network and disk rates come from the stack's simulated Prometheus (else UNAVAILABLE)
            "NOVASPHERE_PROMETHEUS_URL": stack.prometheus_url,
        },
    )
    envoy = devstack.start_front(api, tls=stack.tls, state_dir=state)
    with procs.stopping([api.process, envoy.process]):
        yield Web(url=envoy.edge.url, api_log=state / "api.log", api_target=api.target)


@pytest.fixture(scope="session")
def browser_server(stack: devstack.Stack) -> Iterator[BrowserServer]:
    server = BrowserServer(stack.tls.serving_cert)
    yield server
    server.close()


@pytest.fixture
def browser(browser_server: BrowserServer, request: pytest.FixtureRequest) -> Iterator[Browser]:
    """A fresh profile; at the end, each of its tabs as the test left it (test-artifacts/web/<test>-end-<n>.png).
    Its language is en-US, or the one a test gives: `@pytest.mark.parametrize("browser", ["zh-CN"], indirect=True)`."""
    opened = Browser(browser_server, getattr(request, "param", "en-US"))
    try:
        yield opened
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        for number, tab in enumerate(opened.tabs):
            tab.screenshot(ARTIFACTS / f"{request.node.name}-end-{number}.png")
        problems = opened.problems()
    finally:
        opened.close()
    assert problems == [], problems  # no CSP violation, no script error


@pytest.fixture
def operator(kube: kubernetes.client.ApiClient) -> Iterator[str]:
    name = f"web-{uuid.uuid4().hex[:8]}"
    accounts.create_user(kube, name, PASSWORD, tenant=TENANT, role="operator")
    yield name
    accounts.unbind(kube, name)
