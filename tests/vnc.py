"""VNC in tests: vncdotool's command line (a real VNC client), noVNC in Debian's chromium (`tests/browser/novnc.mjs`),
and reading the simulated screen's marker."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

from sim.kubevirt import rfb

VNCDO = str(Path(sys.executable).with_name("vncdo"))


def read_marker(image: Image.Image) -> str:
    """The VM name spelled by the marker cells (rfb.marker_colour), read back from pixels."""
    rgb = image.convert("RGB")
    name = bytearray()
    for index in range(rfb.WIDTH // rfb.MARKER_CELL):
        centre = (index * rfb.MARKER_CELL + rfb.MARKER_CELL // 2, rfb.MARKER_Y + rfb.MARKER_CELL // 2)
        r, g, b = rgb.getpixel(centre)  # type: ignore[misc]
        if (r, g, b) == rfb.BACKGROUND or r + g != 255 or b != 0x5A:
            break
        name.append(r)
    return name.decode()


BROWSER_DIR = Path(__file__).resolve().parent / "browser"


def run_novnc(
    url: str | Callable[[], tuple[str, list[str]]],
    screenshot: Path,
    *,
    protocols: list[str] | None = None,
    page_origin: str = "",
    accept_spki: str = "",
) -> dict[str, Any]:
    """noVNC connected to `url` offering `protocols` (default plain.kubevirt.io) from a page at `page_origin`, with
    chromium accepting the server key `accept_spki` (for a wss:// URL): `{"connected", "desktopName", "marker"}`, the
    marker read from the canvas noVNC drew. `url` may be a function giving (url, protocols), called once chromium
    runs: a console link whose ticket lives a few seconds is issued only then."""
    command = ["node", str(BROWSER_DIR / "novnc.mjs"), "--screenshot", str(screenshot)]
    command += ["--url", url if isinstance(url, str) else "-"]
    if protocols:
        command += ["--protocols", ",".join(protocols)]
    if page_origin:
        command += ["--page-origin", page_origin]
    if accept_spki:
        command += ["--accept-spki", accept_spki]
    with subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        assert process.stdin is not None
        assert process.stdout is not None
        if not isinstance(url, str):
            ready = process.stdout.readline()
            assert ready.strip() == '{"ready":true}', f"novnc.mjs did not start: {ready!r}"
            link, offered = url()
            process.stdin.write(json.dumps({"url": link, "protocols": ",".join(offered)}) + "\n")
            process.stdin.flush()
        try:
            out, err = process.communicate(timeout=180)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    assert process.returncode == 0, err
    seen: dict[str, Any] = json.loads(out.splitlines()[-1])
    return seen
