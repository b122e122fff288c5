"""VNC in tests: vncdotool's command line (a real VNC client) and reading the simulated screen's marker."""

from __future__ import annotations

import sys
from pathlib import Path

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
