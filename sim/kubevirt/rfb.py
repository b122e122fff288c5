"""A simulated VM screen served as RFB 3.8 (RFC 6143), the protocol QEMU's VNC socket speaks and KubeVirt's `vnc`
subresource pipes through unchanged (shared/reference/kubevirt.md §2.3): greeting `RFB 003.008\\n`, security type
None, Raw encoding in any true-colour pixel format the client asks for.

The screen is drawn, not emulated: the VM's name and state, the text typed on the keyboard, a cross-hair at the
pointer, and a marker row of coloured cells that spells the VM name (one cell per byte) so tests can read the name
back from pixels. The protocol is sans-IO (`RfbServer.feed` → bytes to send) so it runs over a websocket or TCP.
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from PIL import Image, ImageDraw, ImageFont

WIDTH, HEIGHT = 720, 400  # the text-mode screen a booting guest shows
GREETING = b"RFB 003.008\n"
SECURITY_NONE = 1
MARKER_CELL = 8  # pixels per marker cell, top-left corner
MARKER_Y = 0
BACKGROUND = (16, 24, 48)
FOREGROUND = (230, 230, 230)
KEYSYM_BACKSPACE, KEYSYM_RETURN = 0xFF08, 0xFF0D
KEY_EVENTS_KEPT = 10_000


def marker_colour(byte: int) -> tuple[int, int, int]:
    """The colour of the marker cell for one byte of the VM name: readable back from any true-colour format."""
    return byte, 255 - byte, 0x5A


@dataclass
class Screen:
    """What the guest shows; shared by every VNC connection to one VMI (the last one wins upstream anyway)."""

    name: str
    state: Callable[[], str]
    typed: str = ""
    pointer: tuple[int, int] = (WIDTH // 2, HEIGHT // 2)
    buttons: int = 0
    clicks: int = 0
    key_events: deque[tuple[bool, int]] = field(default_factory=lambda: deque(maxlen=KEY_EVENTS_KEPT))
    """Simulator only: every KeyEvent received (down flag, keysym), oldest first, for tests to read back."""

    def signature(self) -> tuple[object, ...]:
        return self.name, self.state(), self.typed, self.pointer, self.clicks

    def render(self) -> Image.Image:
        image = Image.new("RGB", (WIDTH, HEIGHT), BACKGROUND)
        draw = ImageDraw.Draw(image)
        for index, byte in enumerate(self.name.encode()[: WIDTH // MARKER_CELL]):
            x = index * MARKER_CELL
            draw.rectangle((x, MARKER_Y, x + MARKER_CELL - 1, MARKER_Y + MARKER_CELL - 1), fill=marker_colour(byte))
        font = ImageFont.load_default(size=22)
        small = ImageFont.load_default(size=16)
        draw.text((24, 40), f"VM {self.name}", fill=FOREGROUND, font=font)
        draw.text((24, 76), f"state: {self.state()}", fill=FOREGROUND, font=font)
        draw.text(
            (24, 120), "NovaSphere simulator - simulated screen, no guest runs here", fill=(150, 160, 190), font=small
        )
        draw.text((24, 170), f"keyboard> {self.typed[-48:]}", fill=FOREGROUND, font=font)
        draw.text(
            (24, 210), f"pointer {self.pointer[0]},{self.pointer[1]}  clicks {self.clicks}", fill=FOREGROUND, font=small
        )
        x, y = self.pointer
        draw.line((x - 8, y, x + 8, y), fill=(255, 200, 0))
        draw.line((x, y - 8, x, y + 8), fill=(255, 200, 0))
        return image

    def key(self, keysym: int) -> None:
        if keysym == KEYSYM_BACKSPACE:
            self.typed = self.typed[:-1]
        elif keysym == KEYSYM_RETURN:
            self.typed = ""
        elif 0x20 <= keysym <= 0x7E:
            self.typed += chr(keysym)

    def point(self, buttons: int, x: int, y: int) -> None:
        if buttons & 1 and not self.buttons & 1:
            self.clicks += 1
        self.buttons = buttons
        self.pointer = (min(x, WIDTH - 1), min(y, HEIGHT - 1))


@dataclass(frozen=True)
class PixelFormat:
    bits_per_pixel: int = 32
    depth: int = 24
    big_endian: bool = False
    true_colour: bool = True
    red_max: int = 255
    green_max: int = 255
    blue_max: int = 255
    red_shift: int = 16
    green_shift: int = 8
    blue_shift: int = 0

    def pack(self) -> bytes:
        return struct.pack(
            ">BBBBHHHBBBxxx",
            self.bits_per_pixel,
            self.depth,
            self.big_endian,
            self.true_colour,
            self.red_max,
            self.green_max,
            self.blue_max,
            self.red_shift,
            self.green_shift,
            self.blue_shift,
        )

    @classmethod
    def unpack(cls, data: bytes) -> PixelFormat:
        values = struct.unpack(">BBBBHHHBBBxxx", data)
        return cls(values[0], values[1], bool(values[2]), bool(values[3]), *values[4:])

    def encode(self, image: Image.Image) -> bytes:
        """Raw pixels of `image` in this format. 32-bit formats with byte-aligned 8-bit channels go through Pillow;
        anything else (16 or 8 bits per pixel) is packed pixel by pixel."""
        rgb = image.convert("RGB")
        if self.bits_per_pixel == 32 and (self.red_max, self.green_max, self.blue_max) == (255, 255, 255):
            order = {self.red_shift: "R", self.green_shift: "G", self.blue_shift: "B"}
            if set(order) <= {0, 8, 16, 24} and len(order) == 3:
                lanes = "".join(order.get(shift, "X") for shift in (0, 8, 16, 24))
                mode = lanes[::-1] if self.big_endian else lanes
                return rgb.tobytes("raw", mode)
        size = self.bits_per_pixel // 8
        endian: Literal["big", "little"] = "big" if self.big_endian else "little"
        out = bytearray()
        raw = rgb.tobytes()
        for index in range(0, len(raw), 3):
            r, g, b = raw[index : index + 3]
            value = (
                (r * self.red_max // 255) << self.red_shift
                | (g * self.green_max // 255) << self.green_shift
                | (b * self.blue_max // 255) << self.blue_shift
            )
            out += value.to_bytes(size, endian)
        return bytes(out)


CLIENT_MESSAGE_SIZES = {0: 20, 2: 4, 3: 10, 4: 8, 5: 6, 6: 8}


class ProtocolError(Exception):
    pass


@dataclass
class RfbServer:
    """One RFB connection: feed it the client's bytes, send what it returns. `pending_update()` answers an
    incremental update request once the screen changed."""

    screen: Screen
    pixel_format: PixelFormat = field(default_factory=PixelFormat)
    _buffer: bytearray = field(default_factory=bytearray)
    _stage: str = "version"
    _wants_update: bool = False
    _sent_signature: tuple[object, ...] | None = None

    def start(self) -> bytes:
        return GREETING

    def feed(self, data: bytes) -> bytes:
        self._buffer += data
        out = bytearray()
        while True:
            step = self._step()
            if step is None:
                return bytes(out)
            out += step

    def pending_update(self) -> bytes:
        if self._wants_update and self.screen.signature() != self._sent_signature:
            return self._update()
        return b""

    def _take(self, count: int) -> bytes | None:
        if len(self._buffer) < count:
            return None
        chunk = bytes(self._buffer[:count])
        del self._buffer[:count]
        return chunk

    def _step(self) -> bytes | None:
        if self._stage == "version":
            version = self._take(12)
            if version is None:
                return None
            if not version.startswith(b"RFB 003."):
                raise ProtocolError(f"not an RFB client: {version!r}")
            self._stage = "security"
            return bytes([1, SECURITY_NONE])
        if self._stage == "security":
            choice = self._take(1)
            if choice is None:
                return None
            if choice[0] != SECURITY_NONE:
                reason = b"only security type None is offered"
                self._stage = "closed"
                return struct.pack(">I", 1) + struct.pack(">I", len(reason)) + reason
            self._stage = "init"
            return struct.pack(">I", 0)
        if self._stage == "init":
            if self._take(1) is None:  # shared flag: every connection sees the same screen
                return None
            self._stage = "normal"
            name = self.screen.name.encode()
            return struct.pack(">HH", WIDTH, HEIGHT) + self.pixel_format.pack() + struct.pack(">I", len(name)) + name
        if self._stage != "normal" or not self._buffer:
            return None
        kind = self._buffer[0]
        size = CLIENT_MESSAGE_SIZES.get(kind)
        if size is None:
            raise ProtocolError(f"unknown client message type {kind}")
        if len(self._buffer) < size:
            return None
        if kind == 2:  # SetEncodings: the list follows the header
            (count,) = struct.unpack(">H", self._buffer[2:4])
            size += 4 * count
        elif kind == 6:  # ClientCutText
            (length,) = struct.unpack(">I", self._buffer[4:8])
            size += length
        message = self._take(size)
        if message is None:
            return None
        return self._handle(kind, message)

    def _handle(self, kind: int, message: bytes) -> bytes:
        if kind == 0:
            pixel_format = PixelFormat.unpack(message[4:20])
            if not pixel_format.true_colour:
                raise ProtocolError("colour-map pixel formats are not supported")
            self.pixel_format = pixel_format
        elif kind == 3:
            incremental = message[1]
            if not incremental:
                return self._update()
            self._wants_update = True
            return self.pending_update()
        elif kind == 4:
            down, keysym = message[1], struct.unpack(">I", message[4:8])[0]
            self.screen.key_events.append((bool(down), keysym))
            if down:
                self.screen.key(keysym)
        elif kind == 5:
            buttons, x, y = struct.unpack(">BHH", message[1:6])
            self.screen.point(buttons, x, y)
        return self.pending_update()

    def _update(self) -> bytes:
        self._wants_update = False
        self._sent_signature = self.screen.signature()
        pixels = self.pixel_format.encode(self.screen.render())
        header = struct.pack(">BxH", 0, 1) + struct.pack(">HHHHi", 0, 0, WIDTH, HEIGHT, 0)
        return header + pixels
