"""Simulated Prometheus: the HTTP query API, answering for KubeVirt's `kubevirt_vmi_*` network and storage series.

Simulation only, and deliberately narrow: a real Prometheus evaluates PromQL over scraped samples; this one knows
the counters virt-handler exports per VMI (labels `namespace`, `name`, `node`, plus `interface` / `drive`) and
answers instant queries of the one shape the NovaSphere API sends, `sum(rate(<series>{label="value",...}[<range>]))`,
from the same simulated load as the metrics-server simulator (`guest_load.py`). A series exists while its VMI runs
(an instance that is not running exports none: an empty vector, as Prometheus answers for a missing series). Any
other query is a 400 `bad_data`, in Prometheus's own error format, saying what the simulator understands.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import time
from collections.abc import Callable

from aiohttp import web

from sim import faults, guest_load
from sim.kubeapi import Body
from sim.kubevirt import rules
from sim.runtime import Informer, deep_get, epoch_seconds

log = logging.getLogger("sim.prometheus")

_QUERY = re.compile(
    r"^\s*sum\s*\(\s*rate\s*\(\s*(?P<series>[a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{(?P<matchers>[^}]*)\}\s*"
    r"\[\s*(?P<range>\d+[smh])\s*\]\s*\)\s*\)\s*$"
)
_MATCHER = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')
SERIES: dict[str, Callable[[guest_load.GuestLoad], float]] = {
    "kubevirt_vmi_network_receive_bytes_total": lambda load: load.network_receive_bytes_per_second,
    "kubevirt_vmi_network_transmit_bytes_total": lambda load: load.network_transmit_bytes_per_second,
    "kubevirt_vmi_network_receive_packets_total": lambda load: load.network_receive_packets_per_second,
    "kubevirt_vmi_network_transmit_packets_total": lambda load: load.network_transmit_packets_per_second,
    "kubevirt_vmi_storage_read_traffic_bytes_total": lambda load: load.disk_read_bytes_per_second,
    "kubevirt_vmi_storage_write_traffic_bytes_total": lambda load: load.disk_write_bytes_per_second,
    "kubevirt_vmi_storage_iops_read_total": lambda load: load.disk_read_iops,
    "kubevirt_vmi_storage_iops_write_total": lambda load: load.disk_write_iops,
}
UNDERSTOOD = 'sum(rate(<kubevirt_vmi_* counter>{namespace="...",name="..."}[<range>]))'


class Prometheus:
    def __init__(self, *, vmis: Informer, speed: float, port: int, wukongs: Informer | None = None) -> None:
        self._vmis = vmis
        self._wukongs = wukongs
        self._speed = speed
        self.ready = asyncio.Event()
        self.url = ""
        self._port = port

    async def run(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/api/v1/query", self._query)
        app.router.add_get("/-/ready", self._ready)
        app.router.add_get("/-/healthy", self._ready)
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self._port))
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        try:
            await web.SockSite(runner, listener).start()
            self.url = f"http://127.0.0.1:{listener.getsockname()[1]}"
            log.info("Prometheus (simulated) on %s", self.url)
            self.ready.set()
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    async def _ready(self, request: web.Request) -> web.Response:
        return web.Response(text="Prometheus Server is Ready.\n")

    async def _query(self, request: web.Request) -> web.Response:
        if request.method not in ("GET", "POST"):
            raise web.HTTPMethodNotAllowed(request.method, ["GET", "POST"])
        form = await request.post() if request.method == "POST" else request.query
        query = str(form.get("query", ""))
        at = float(str(form.get("time", "")) or time.time())
        match = _QUERY.match(query)
        matchers = _matchers(match.group("matchers")) if match else None
        if match is None or matchers is None:
            return _error(f"the simulated Prometheus evaluates only {UNDERSTOOD}; got {query!r}")
        value = self._rate(match.group("series"), matchers, at)
        result = [] if value is None else [{"metric": {}, "value": [at, f"{value:.6g}"]}]
        answer = {"status": "success", "data": {"resultType": "vector", "result": result}}
        wukong = (
            faults.wukong_of_vm_name(matchers.get("name", ""), matchers.get("namespace", ""), self._wukongs)
            if self._wukongs is not None
            else None
        )
        mode = faults.malformed_mode(wukong, faults.MALFORMED_PROMETHEUS)
        if mode is not None:
            return faults.malformed_answer(mode, answer, {"status": "success", "data": [faults.BACKEND_TEXT]})
        return web.json_response(answer)

    def _rate(self, series: str, matchers: dict[str, str], at: float) -> float | None:
        """The per-second rate of `series` summed over the VMI the matchers select, or None if no series matches."""
        per_second = SERIES.get(series)
        namespace, name = matchers.get("namespace"), matchers.get("name")
        if per_second is None or namespace is None or name is None:
            return None
        vmi = self._vmis.get(namespace, name)
        if vmi is None or deep_get(vmi, "status", "phase") != "Running":
            return None
        if any(matchers.get(label, value) != value for label, value in _labels(vmi).items()):
            return None
        running_since = next(
            (
                epoch_seconds(str(t.get("phaseTransitionTimestamp", "")))
                for t in reversed(deep_get(vmi, "status", "phaseTransitionTimestamps", default=[]))
                if t.get("phase") == "Running"
            ),
            None,
        )
        uptime = (at - running_since) * self._speed if running_since is not None else 0.0
        paused = (rules.condition(vmi, "Paused") or {}).get("status") == "True"
        return per_second(guest_load.of(vmi, at=at * self._speed, uptime=uptime, paused=paused))


def _labels(vmi: Body) -> dict[str, str]:
    metadata = vmi["metadata"]
    return {
        "namespace": str(metadata["namespace"]),
        "name": str(metadata["name"]),
        "node": str(deep_get(vmi, "status", "nodeName", default="")),
    }


def _matchers(text: str) -> dict[str, str] | None:
    """`label="value"` pairs (equality only); None if the text is anything else."""
    found: dict[str, str] = {}
    position = 0
    text = text.strip()
    while position < len(text):
        match = _MATCHER.match(text, position)
        if match is None:
            return None
        found[match.group(1)] = match.group(2).replace('\\"', '"').replace("\\\\", "\\")
        position = match.end()
    return found


def _error(message: str) -> web.Response:
    return web.json_response({"status": "error", "errorType": "bad_data", "error": message}, status=400)
