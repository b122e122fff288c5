"""VNC in tests: vncdotool's command line (a real VNC client), noVNC in Debian's chromium (`tests/browser/novnc.mjs`),
and reading the simulated screen's marker."""

from __future__ import annotations

import json
import subprocess
import sys
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
    url: str,
    screenshot: Path,
    *,
    protocols: list[str] | None = None,
    page_origin: str = "",
    accept_spki: str = "",
) -> dict[str, Any]:
    """noVNC connected to `url` offering `protocols` (default plain.kubevirt.io) from a page at `page_origin`, with
    chromium accepting the server key `accept_spki` (for a wss:// URL): `{"connected", "desktopName", "marker"}`, the
    marker read from the canvas noVNC drew."""
    command = ["node", str(BROWSER_DIR / "novnc.mjs"), "--url", url, "--screenshot", str(screenshot)]
    if protocols:
        command += ["--protocols", ",".join(protocols)]
    if page_origin:
        command += ["--page-origin", page_origin]
    if accept_spki:
        command += ["--accept-spki", accept_spki]
    result = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    assert result.returncode == 0, result.stderr
    seen: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
    return seen
