"""Debian's chromium driven by playwright-core (tests/browser/driver.mjs) for tests of the web console: one browser
per test session (`BrowserServer`), a fresh context with its own cookies per test (`Browser`), tabs in it (`Tab`)."""

from __future__ import annotations

import base64
import hashlib
import json
import select
import subprocess
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

DRIVER = Path(__file__).resolve().parent / "browser" / "driver.mjs"
COMMAND_TIMEOUT = 60.0
"""Playwright's own waits end after 15 s; this only guards against a driver that stopped answering."""


def spki_sha256(certificate: Path) -> str:
    """base64(SHA-256(SubjectPublicKeyInfo)) of a PEM certificate: how chromium pins a key it should accept."""
    cert = x509.load_pem_x509_certificate(certificate.read_bytes())
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


class BrowserServer:
    """chromium, running until `close`; it accepts the server key of `certificate` (the local CA is not in its
    trust store)."""

    def __init__(self, certificate: Path) -> None:
        self._process = subprocess.Popen(
            ["node", str(DRIVER), "serve", "--accept-spki", spki_sha256(certificate)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.endpoint = str(json.loads(_read_line(self._process, 60))["wsEndpoint"])

    def close(self) -> None:
        _end(self._process)


class Browser:
    """A browser context (a profile of its own) on a running `BrowserServer`, whose language is `locale`."""

    def __init__(self, server: BrowserServer, locale: str = "en-US") -> None:
        self._process = subprocess.Popen(
            ["node", str(DRIVER), "drive", "--endpoint", server.endpoint, "--locale", locale],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.locale = locale
        self.tabs: list[Tab] = []
        self.tolerated: tuple[str, ...] = ()
        """Beginnings of console messages a test expects (e.g. failed requests while it stops a server)."""

    def call(self, op: str, **arguments: Any) -> Any:
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps({"op": op, **arguments}) + "\n")
        self._process.stdin.flush()
        answer = json.loads(_read_line(self._process, COMMAND_TIMEOUT))
        if not answer["ok"]:
            raise AssertionError(f"browser {op} {arguments}: {answer['error']}")
        return answer["value"]

    def open(self) -> Tab:
        tab = Tab(self, int(self.call("open")))
        self.tabs.append(tab)
        return tab

    def problems(self) -> list[str]:
        """Console errors and page errors since the last call (a CSP violation is a console error), but those the
        test said it expects."""
        return [p for p in self.call("problems") if not p.startswith(self.tolerated)]

    def close(self) -> None:
        _end(self._process)


class Tab:
    def __init__(self, browser: Browser, index: int) -> None:
        self._browser = browser
        self._index = index

    def _call(self, op: str, **arguments: Any) -> Any:
        return self._browser.call(op, tab=self._index, **arguments)

    def goto(self, url: str) -> None:
        self._call("goto", url=url)

    def reload(self) -> None:
        self._call("reload")

    def fill(self, selector: str, value: str) -> None:
        self._call("fill", selector=selector, value=value)

    def click(self, selector: str) -> None:
        self._call("click", selector=selector)

    def press(self, selector: str, key: str) -> None:
        self._call("press", selector=selector, key=key)

    def wait(self, selector: str, *, state: str = "visible", ms: int = 15_000) -> None:
        self._call("wait", selector=selector, state=state, ms=ms)

    def text(self, selector: str) -> str:
        return str(self._call("text", selector=selector))

    def texts(self, selector: str) -> list[str]:
        return [str(t) for t in self._call("texts", selector=selector)]

    def count(self, selector: str) -> int:
        return int(self._call("count", selector=selector))

    def url(self) -> str:
        return str(self._call("url"))

    def screenshot(self, path: Path) -> None:
        self._call("screenshot", path=str(path))

    def evaluate(self, expression: str) -> Any:
        return self._call("evaluate", expression=expression)

    def axe(self) -> list[dict[str, Any]]:
        """axe-core's serious and critical WCAG 2.1 A/AA violations on the page as it is now."""
        return list(self._call("axe"))

    def key(self, key: str) -> None:
        """A key pressed wherever the focus is (playwright's names: Tab, Shift+Tab, Enter, ArrowDown, …)."""
        self._call("key", key=key)

    def focused(self) -> str:
        """What has the focus: tag, id and accessible name; "" for none."""
        return str(self._call("focused"))

    def viewport(self, width: int, height: int) -> None:
        """The window's inner size (a new tab has 1440 x 900)."""
        self._call("viewport", width=width, height=height)

    def hover(self, selector: str, *, x: int | None = None, y: int | None = None) -> None:
        """Moves the mouse over the element (at `x`, `y` inside it if given), e.g. to show a chart's tooltip."""
        self._call("hover", selector=selector, x=x, y=y)

    def permit(self, *permissions: str) -> None:
        """Grants the browser context permissions, e.g. clipboard-read to check what a copy button copied."""
        self._call("permit", permissions=list(permissions))

    def type(self, selector: str, text: str, *, delay_ms: int = 0) -> None:
        """Types `text` key by key into `selector` (e.g. a terminal, which has no value to fill)."""
        self._call("type", selector=selector, text=text, delay=delay_ms)


def _end(process: subprocess.Popen[str]) -> None:
    """Closing standard input tells the driver to close what it opened and exit."""
    assert process.stdin is not None
    process.stdin.close()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)
    if process.stdout is not None:
        process.stdout.close()


def _read_line(process: subprocess.Popen[str], timeout: float) -> str:
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    line = process.stdout.readline() if ready else ""
    if not line:
        raise AssertionError(f"the browser driver did not answer within {timeout:.0f} s (exit code {process.poll()})")
    return line
