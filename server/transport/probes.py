"""The replica's probes: the admin listener's `/livez`, `/readyz` and `/metrics`, and the gRPC health service kept on
the same readiness (`lifecycle.py` says what each means).

The admin listener runs on the event loop, so `/livez` answering proves the loop is not stuck. `/readyz` and the
gRPC health service report one value, the last one `HealthReporter` published, so they never disagree.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import prometheus_client
from aiohttp import web
from grpc_health.v1 import health, health_pb2

from server.config import ListenAddress
from server.lifecycle import Lifecycle, Readiness
from server.transport import listeners

log = logging.getLogger(__name__)

CHECK_SECONDS = 0.25
"""How often readiness is recomputed (staleness grows with time alone, without any event)."""


class HealthReporter:
    """Publishes the lifecycle's readiness to the gRPC health service, for the server as a whole ("") and for each
    service; the overall status changes last on the way up and first on the way down."""

    def __init__(self, lifecycle: Lifecycle, servicer: health.aio.HealthServicer, services: tuple[str, ...]) -> None:
        self._lifecycle = lifecycle
        self._servicer = servicer
        self._services = services
        self.current = Readiness(False, "starting")

    async def publish(self) -> Readiness:
        readiness = self._lifecycle.readiness()
        if readiness != self.current:
            status = (
                health_pb2.HealthCheckResponse.SERVING
                if readiness.ready
                else health_pb2.HealthCheckResponse.NOT_SERVING
            )
            names = (*self._services, "") if readiness.ready else ("", *self._services)
            for name in names:
                await self._servicer.set(name, status)
            if readiness.ready:
                log.info("ready")
            elif self.current.ready:
                log.info("not ready: %s", readiness.reason)
            self.current = readiness
        return readiness

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.publish()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=CHECK_SECONDS)


class AdminServer:
    """`/metrics` (Prometheus), `/livez`, `/readyz`; anything else is 404."""

    def __init__(self, *, registry: prometheus_client.CollectorRegistry, reporter: HealthReporter) -> None:
        self._registry = registry
        self._reporter = reporter
        self._runner: web.AppRunner | None = None

    async def start(self, listen: ListenAddress) -> int | None:
        """Listens on `listen` (port 0: any); returns the TCP port, None for a unix socket."""
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/livez", self._livez)
        app.router.add_get("/readyz", self._readyz)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        return await listeners.start_site(self._runner, listen)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _metrics(self, request: web.Request) -> web.Response:
        body = prometheus_client.generate_latest(self._registry)
        return web.Response(body=body, headers={"Content-Type": prometheus_client.CONTENT_TYPE_LATEST})

    async def _livez(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def _readyz(self, request: web.Request) -> web.Response:
        readiness = self._reporter.current
        if readiness.ready:
            return web.Response(text="ok\n")
        return web.Response(status=503, text=f"not ready: {readiness.reason}\n")
