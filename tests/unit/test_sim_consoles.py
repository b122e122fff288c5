"""The simulated guest's screen (RFB 3.8, kubevirt.md §2.3) and serial port, without a cluster: vncdotool (a real
VNC client) against the RFB server over loopback TCP, and a serial login. The websocket path through kube-apiserver
is tests/integration/test_virt_api.py."""

from __future__ import annotations

import asyncio
import contextlib
import struct
import warnings
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from PIL import Image

from sim.kubevirt import rfb, serial
from sim.kubevirt.rfb import PixelFormat, RfbServer, Screen
from tests.vnc import VNCDO, read_marker


@contextlib.asynccontextmanager
async def rfb_over_tcp(screen: Screen) -> AsyncIterator[int]:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        server = RfbServer(screen)
        writer.write(server.start())
        while data := await reader.read(65536):
            writer.write(server.feed(data))
            await writer.drain()
        writer.close()

    listener = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield listener.sockets[0].getsockname()[1]
    finally:
        listener.close()
        await listener.wait_closed()


async def test_vncdotool_types_and_captures_the_screen(tmp_path: Path) -> None:
    screen = Screen("web-vm", state=lambda: "Running")
    async with rfb_over_tcp(screen) as port:
        capture = tmp_path / "screen.png"
        process = await asyncio.create_subprocess_exec(
            VNCDO,
            "-s",
            f"127.0.0.1::{port}",
            "type",
            "hello",
            "move",
            "100",
            "120",
            "click",
            "1",
            "capture",
            str(capture),
        )
        assert await asyncio.wait_for(process.wait(), 60) == 0

    image = Image.open(capture)
    assert image.size == (rfb.WIDTH, rfb.HEIGHT)
    assert read_marker(image) == "web-vm"
    assert screen.typed == "hello"
    assert (screen.pointer, screen.clicks) == ((100, 120), 1)


def test_rfb_handshake_bytes() -> None:
    server = RfbServer(Screen("db", state=lambda: "Running"))
    assert server.start() == b"RFB 003.008\n"  # §2.3 l.321: the greeting
    assert server.feed(b"RFB 003.008\n") == bytes([1, rfb.SECURITY_NONE])
    assert server.feed(b"\x01") == struct.pack(">I", 0)
    init = server.feed(b"\x01")
    assert struct.unpack(">HH", init[:4]) == (rfb.WIDTH, rfb.HEIGHT)
    assert init[-2:] == b"db"
    full = server.feed(struct.pack(">BBHHHH", 3, 0, 0, 0, rfb.WIDTH, rfb.HEIGHT))
    assert len(full) == 4 + 12 + rfb.WIDTH * rfb.HEIGHT * 4  # one Raw rectangle, 32 bpp
    # an incremental request waits until the screen changes; a key press changes it
    assert server.feed(struct.pack(">BBHHHH", 3, 1, 0, 0, rfb.WIDTH, rfb.HEIGHT)) == b""
    update = server.feed(struct.pack(">BBxxI", 4, 1, ord("x")))
    assert update[:4] == struct.pack(">BxH", 0, 1)
    assert len(update) == 4 + 12 + rfb.WIDTH * rfb.HEIGHT * 4


@pytest.mark.parametrize(
    "pixel_format",
    [
        PixelFormat(),  # 32 bpp little-endian, red shift 16 (BGRX)
        PixelFormat(red_shift=0, blue_shift=16),  # vncdotool's RGBX
        PixelFormat(big_endian=True),
        PixelFormat(16, 16, False, True, 31, 63, 31, 11, 5, 0),  # RGB565
    ],
    ids=["bgrx", "rgbx", "big-endian", "rgb565"],
)
def test_pixel_formats_encode_the_marker_colour(pixel_format: PixelFormat) -> None:
    image = Image.new("RGB", (1, 1), (200, 55, 0x5A))
    encoded = pixel_format.encode(image)
    value = int.from_bytes(encoded, "big" if pixel_format.big_endian else "little")
    channels = [
        (value >> shift & top) * 255 // top
        for shift, top in (
            (pixel_format.red_shift, pixel_format.red_max),
            (pixel_format.green_shift, pixel_format.green_max),
            (pixel_format.blue_shift, pixel_format.blue_max),
        )
    ]
    tolerance = 0 if pixel_format.bits_per_pixel == 32 else 8
    assert all(abs(a - b) <= tolerance for a, b in zip(channels, (200, 55, 0x5A), strict=True))


def guest() -> serial.SerialGuest:
    user_data = "#cloud-config\nusers:\n  - name: ops\n    passwd: s3cret\n    lock_passwd: false\n"
    return serial.SerialGuest("web", serial.users_from_cloud_init(user_data), describe=lambda: {"ip": "127.16.0.9"})


def test_serial_login_and_a_command() -> None:
    console = guest()
    assert b"web login: " in console.feed(b"\r")
    assert console.feed(b"ops\r").endswith(b"Password: ")
    assert b"Login incorrect" in console.feed(b"wrong\r")
    console.feed(b"ops\r")
    assert console.feed(b"s3cret\r").endswith(b"ops@web:~$ ")  # the password is never echoed
    out = console.feed(b"echo hello from the guest\r")
    assert b"hello from the guest\r\nops@web:~$ " in out
    assert b"127.16.0.9" in console.feed(b"ip addr\r")
    assert b"web login: " in console.feed(b"exit\r")


def test_serial_password_from_a_crypt_hash() -> None:
    hashed = "$6$saltsalt$" + "x"  # not a valid hash of anything: refused
    assert not serial.password_matches("s3cret", hashed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt  # deprecated; only to make a hash as `mkpasswd -m sha-512` would

    stored = crypt.crypt("s3cret", "$6$saltsalt$")
    assert serial.password_matches("s3cret", stored)
    assert not serial.password_matches("other", stored)
