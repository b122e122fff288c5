"""The simulated VNC server records the key events it receives (simulator only, read back by the browser tests through
virt-api's `simulator-keys` route), without changing what the screen does with them."""

from __future__ import annotations

import struct

from sim.kubevirt.rfb import KEY_EVENTS_KEPT, RfbServer, Screen

CONTROL_L, ALT_L, DELETE, SHIFT_L = 0xFFE3, 0xFFE9, 0xFFFF, 0xFFE1


def connected(screen: Screen) -> RfbServer:
    server = RfbServer(screen)
    server.start()
    server.feed(b"RFB 003.008\n")
    server.feed(bytes([1]))  # security None
    server.feed(bytes([1]))  # ClientInit, shared
    return server


def key(down: bool, keysym: int) -> bytes:
    return struct.pack(">BBxxI", 4, down, keysym)


def test_key_events_are_recorded_in_order_with_their_down_flag() -> None:
    screen = Screen("keys-vm", state=lambda: "Running")
    server = connected(screen)
    ctrl_alt_del = [
        (True, CONTROL_L),
        (True, ALT_L),
        (True, DELETE),
        (False, DELETE),
        (False, ALT_L),
        (False, CONTROL_L),
    ]
    # all in one chunk, and a message split across two feeds
    server.feed(b"".join(key(down, keysym) for down, keysym in ctrl_alt_del))
    shifted_a = key(True, SHIFT_L) + key(True, ord("A")) + key(False, ord("A")) + key(False, SHIFT_L)
    server.feed(shifted_a[:6])
    server.feed(shifted_a[6:])

    assert list(screen.key_events) == [
        *ctrl_alt_del,
        (True, SHIFT_L),
        (True, ord("A")),
        (False, ord("A")),
        (False, SHIFT_L),
    ]
    assert screen.typed == "A"  # what the screen draws is unchanged: only printable key-downs are typed


def test_every_connection_to_the_vmi_adds_to_one_record_and_it_stays_bounded() -> None:
    screen = Screen("keys-vm", state=lambda: "Running")
    connected(screen).feed(key(True, ord("x")))
    connected(screen).feed(key(True, ord("y")))
    assert list(screen.key_events) == [(True, ord("x")), (True, ord("y"))]

    server = connected(screen)
    server.feed(b"".join(key(True, ord("z")) for _ in range(KEY_EVENTS_KEPT)))
    assert len(screen.key_events) == KEY_EVENTS_KEPT
    assert screen.key_events[0] == (True, ord("z"))
