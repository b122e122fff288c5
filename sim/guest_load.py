"""Simulated guest load: what a running VM's CPU, memory, network and disk do over time.

Simulation only. Each VMI gets its own smooth curves (a base level, a slow wave and a little jitter per sample), all a
pure function of the VMI's UID and the simulated time, so the simulated metrics-server and the simulated Prometheus
agree with each other and a restarted simulator reports the same values. Memory is the launcher's working set: the
guest touches more of its memory over the first minutes after boot, plus QEMU's own overhead. A paused VM burns almost
no CPU and moves no bytes.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

from sim.kubeapi import Body
from sim.quantity import to_bytes
from sim.runtime import deep_get

QEMU_OVERHEAD_BYTES = 180 << 20
PAUSED_CPU_PER_VCPU = 0.002
AVERAGE_PACKET_BYTES = 900
AVERAGE_IO_BYTES = 16 << 10


@dataclass(frozen=True)
class GuestLoad:
    cpu_cores: float
    memory_bytes: int
    network_receive_bytes_per_second: float
    network_transmit_bytes_per_second: float
    disk_read_bytes_per_second: float
    disk_write_bytes_per_second: float

    @property
    def network_receive_packets_per_second(self) -> float:
        return self.network_receive_bytes_per_second / AVERAGE_PACKET_BYTES

    @property
    def network_transmit_packets_per_second(self) -> float:
        return self.network_transmit_bytes_per_second / AVERAGE_PACKET_BYTES

    @property
    def disk_read_iops(self) -> float:
        return self.disk_read_bytes_per_second / AVERAGE_IO_BYTES

    @property
    def disk_write_iops(self) -> float:
        return self.disk_write_bytes_per_second / AVERAGE_IO_BYTES


def of(vmi: Body, *, at: float, uptime: float, paused: bool) -> GuestLoad:
    """The load of `vmi` at simulated time `at` (epoch seconds), `uptime` simulated seconds after it started."""
    uid = str(vmi["metadata"].get("uid", ""))
    vcpus = int(deep_get(vmi, "spec", "domain", "cpu", "cores", default=1) or 1)
    guest = to_bytes(str(deep_get(vmi, "spec", "domain", "memory", "guest", default="") or "0"))
    touched = 0.3 + 0.3 * (1 - math.exp(-max(uptime, 0.0) / 300)) + 0.04 * _wave(uid, "memory", at, period=240)
    memory = int(guest * touched) + QEMU_OVERHEAD_BYTES
    if paused:
        return GuestLoad(vcpus * PAUSED_CPU_PER_VCPU, memory, 0.0, 0.0, 0.0, 0.0)
    busy = 0.1 + 0.3 * _unit(uid, "cpu-base") + 0.15 * _wave(uid, "cpu", at, period=90) + 0.05 * _jitter(uid, at)
    receive = (20 + 180 * _unit(uid, "net-base")) * 1024 * (1 + 0.5 * _wave(uid, "net", at, period=120))
    read = (50 + 450 * _unit(uid, "disk-base")) * 1024 * (1 + 0.6 * _wave(uid, "disk", at, period=150))
    return GuestLoad(
        cpu_cores=vcpus * min(max(busy, 0.01), 0.98),
        memory_bytes=memory,
        network_receive_bytes_per_second=receive,
        network_transmit_bytes_per_second=receive * (0.4 + 0.4 * _unit(uid, "net-ratio")),
        disk_read_bytes_per_second=read,
        disk_write_bytes_per_second=read * (0.2 + 0.6 * _unit(uid, "disk-ratio")),
    )


def _unit(uid: str, what: str) -> float:
    """A stable number in [0, 1) for this VM and quantity."""
    digest = hashlib.sha256(f"{uid}/{what}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _wave(uid: str, what: str, at: float, *, period: float) -> float:
    """A slow wave in [-1, 1], its phase and (±30%) period the VM's own."""
    own_period = period * (0.7 + 0.6 * _unit(uid, what + "-period"))
    return math.sin(2 * math.pi * (at / own_period + _unit(uid, what + "-phase")))


def _jitter(uid: str, at: float) -> float:
    """Noise in [-1, 1] that changes every simulated second."""
    return 2 * _unit(uid, f"jitter-{int(at)}") - 1
