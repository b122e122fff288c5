"""Measuring a running API server from outside: its memory (sampled from /proc), when it turns SERVING, what its
Prometheus metrics say about its Kubernetes calls, and the plain-client references (full LISTs, interpreter start)
the figures are compared with."""

from __future__ import annotations

import contextlib
import http.client
import json
import math
import os
import re
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2

from sim.kubeapi import Credentials

SAMPLE_SECONDS = 0.02
LIST_PAGE = 500
"""The API server's informers list in pages of this many (server/kube/informer.py LIST_PAGE)."""
FOUR_LISTS = {
    "wukongs": "/apis/vm.novasphere.dev/v1alpha1/wukongs",
    "virtualmachines": "/apis/kubevirt.io/v1/virtualmachines",
    "virtualmachineinstances": "/apis/kubevirt.io/v1/virtualmachineinstances",
    "pods": "/api/v1/pods?labelSelector=" + urllib.parse.quote("kubevirt.io=virt-launcher"),
}
"""What the API server's Wukong cache lists at start-up, all namespaces (server/wukongs/cache.py KINDS)."""
KUBE_CALLS = "novasphere_kube_request_duration_seconds_count"
_SAMPLE = re.compile(r"^(\w+)\{([^}]*)\} ([0-9.e+-]+)$")


def status_kib(pid: int, field_name: str) -> int:
    """A `/proc/PID/status` field in KiB (VmRSS, VmHWM); 0 once the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def mib(kib: float) -> float:
    return kib / 1024


class RssSampler:
    """Samples a process's VmRSS every `SAMPLE_SECONDS` from a thread; `peak_kib` is the highest seen. The process is
    given by pid, or found as the first new child of this process whose command line holds `command` (for a process
    another function spawns)."""

    def __init__(self, pid: int | None = None, *, command: tuple[str, ...] = ()) -> None:
        self.pid = pid
        self._command = "\0".join(command)
        self._known = set(_children()) if pid is None else set()
        self.peak_kib = 0
        self._stop = threading.Event()
        self._found = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def wait_for_pid(self, timeout: float) -> int:
        if not self._found.wait(timeout) or self.pid is None:
            raise TimeoutError(f"no child process running {self._command!r} after {timeout:.0f} s")
        return self.pid

    def _run(self) -> None:
        while not self._stop.is_set():
            if self.pid is None:
                self.pid = next((pid for pid in _children() if pid not in self._known and self._matches(pid)), None)
            if self.pid is not None:
                self._found.set()
                self.peak_kib = max(self.peak_kib, status_kib(self.pid, "VmRSS"))
            self._stop.wait(SAMPLE_SECONDS)

    def _matches(self, pid: int) -> bool:
        try:
            return self._command in Path(f"/proc/{pid}/cmdline").read_text()
        except OSError:
            return False


def _children() -> list[int]:
    pids: list[int] = []
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        with contextlib.suppress(OSError):
            pids += (int(pid) for pid in (task / "children").read_text().split())
    return pids


class ServingWatch:
    """From a thread: the moment an API server's gRPC health first says SERVING, polled every `SAMPLE_SECONDS` on
    one channel once its ports file (which it writes as it starts listening) exists."""

    def __init__(self, ports_file: Path) -> None:
        self._ports_file = ports_file
        self.serving_at: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="serving-watch", daemon=True)

    def __enter__(self) -> ServingWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set() and not self._ports_file.exists():
            self._stop.wait(SAMPLE_SECONDS)
        if self._stop.is_set():
            return
        for _ in range(100):  # written in one go, but read it whole
            with contextlib.suppress(json.JSONDecodeError, KeyError):
                port = json.loads(self._ports_file.read_text())["grpc"]
                break
            self._stop.wait(SAMPLE_SECONDS)
        else:
            return
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            check = channel.unary_unary(
                "/grpc.health.v1.Health/Check",
                request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
                response_deserializer=health_pb2.HealthCheckResponse.FromString,
            )
            while not self._stop.is_set():
                with contextlib.suppress(grpc.RpcError):
                    if (
                        check(health_pb2.HealthCheckRequest(), timeout=1).status
                        == health_pb2.HealthCheckResponse.SERVING
                    ):
                        self.serving_at = time.monotonic()
                        return
                self._stop.wait(SAMPLE_SECONDS)


# -- the API server's own metrics


@dataclass(frozen=True)
class KubeCalls:
    """Counts of the API server's Kubernetes calls, from its metrics: by (verb, resource)."""

    by_call: Mapping[tuple[str, str], float] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return round(sum(self.by_call.values()))

    def count(self, verb: str, resource: str) -> int:
        return round(self.by_call.get((verb, resource), 0.0))

    def lists(self) -> dict[str, int]:
        return {resource: self.count("list", resource) for resource in FOUR_LISTS}


def parse_kube_calls(text: str) -> KubeCalls:
    """`novasphere_kube_request_duration_seconds_count{verb,resource,code}` summed over codes."""
    counts: dict[tuple[str, str], float] = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match is None or match.group(1) != KUBE_CALLS:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2)))
        key = (labels.get("verb", ""), labels.get("resource", ""))
        counts[key] = counts.get(key, 0.0) + float(match.group(3))
    return KubeCalls(counts)


def kube_calls(metrics_url: str) -> KubeCalls:
    with urllib.request.urlopen(metrics_url, timeout=10) as response:  # noqa: S310 - loopback
        return parse_kube_calls(response.read().decode())


def list_pages(items: int) -> int:
    """Pages an informer needs to list `items` objects."""
    return max(1, math.ceil(items / LIST_PAGE))


# -- references


@dataclass(frozen=True)
class FourLists:
    seconds: float
    bytes: int
    items: Mapping[str, int]


def four_lists(kubeconfig: Path) -> FourLists:
    """The four full LISTs a plain client makes, sequentially on one connection (raw HTTP, the admin's client
    certificate), each body decoded with json.loads: what kube-apiserver and the client's JSON decoding take."""
    credentials = Credentials.from_kubeconfig(kubeconfig)
    server = urllib.parse.urlsplit(credentials.server)
    started = time.perf_counter()
    connection = http.client.HTTPSConnection(server.hostname or "127.0.0.1", server.port, context=credentials.tls)
    size, items = 0, {}
    try:
        for name, path in FOUR_LISTS.items():
            connection.request("GET", path, headers={"Accept": "application/json", **credentials.headers})
            response = connection.getresponse()
            body = response.read()
            if response.status != 200:
                raise RuntimeError(f"GET {path}: {response.status} {body[:300]!r}")
            size += len(body)
            items[name] = len(json.loads(body)["items"])
    finally:
        connection.close()
    return FourLists(time.perf_counter() - started, size, items)


def interpreter_start(runs: int = 5) -> float:
    """Seconds for `python -c pass` with this interpreter (median)."""
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


@contextlib.contextmanager
def timed() -> Iterator[list[float]]:
    """`with timed() as took:` … `took[0]` is the seconds the block ran."""
    took: list[float] = []
    started = time.monotonic()
    try:
        yield took
    finally:
        took.append(time.monotonic() - started)
