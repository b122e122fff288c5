"""Composition root: builds every part from the settings, serves until SIGTERM/SIGINT, then shuts down gracefully
(health NOT_SERVING first, so load balancers stop sending, then in-flight calls get the grace period)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from novasphere.v1 import wukong_service_pb2, wukong_service_pb2_grpc
from server import config
from server.kube import errors as kube_errors
from server.kube import wukongs as kube_wukongs
from server.kube.client import KubeClient
from server.metrics import Metrics
from server.transport.interceptors import ErrorInterceptor, ObserveInterceptor
from server.transport.wukong_servicer import WukongServicer
from server.wukongs.queries import WukongQueries

log = logging.getLogger("novasphere")

SERVICE_NAMES = (wukong_service_pb2.DESCRIPTOR.services_by_name["WukongService"].full_name,)
STARTUP_PROBE_SECONDS = 60.0


async def serve(settings: config.Settings) -> None:
    metrics = Metrics()
    kube = KubeClient.connect(kubeconfig=settings.kubeconfig, threads=settings.kube_threads)
    health_servicer = health.aio.HealthServicer()
    # grpcio's health servicer starts with the overall status SERVING; nothing is served before the probe passes.
    for name in ("", *SERVICE_NAMES):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    server = grpc.aio.server(
        interceptors=[ObserveInterceptor(metrics), ErrorInterceptor()],
        options=[
            ("grpc.max_receive_message_length", settings.max_message_bytes),
            ("grpc.max_send_message_length", settings.max_message_bytes),
            ("grpc.so_reuseport", 0),
        ],
    )
    wukong_service_pb2_grpc.add_WukongServiceServicer_to_server(
        WukongServicer(queries=WukongQueries(kube=kube, default_namespace=settings.default_namespace)), server
    )
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    if settings.reflection:
        reflection.enable_server_reflection((*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    port = server.add_insecure_port(str(settings.grpc_listen))
    admin_port = metrics.serve(settings.admin_listen)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    await server.start()
    log.info("gRPC on %s:%d, metrics on %s:%d", settings.grpc_listen.host, port, settings.admin_listen.host, admin_port)
    try:
        await _probe_kubernetes(kube, stop)
        for name in (*SERVICE_NAMES, ""):  # the overall status last: once it says SERVING, every service does
            await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info("serving")
        await stop.wait()
        log.info("stopping: %.0f s for in-flight calls", settings.shutdown_grace_seconds)
    finally:
        await health_servicer.enter_graceful_shutdown()
        await server.stop(settings.shutdown_grace_seconds)
        kube.close()
        metrics.close()
        log.info("stopped")


async def _probe_kubernetes(kube: KubeClient, stop: asyncio.Event) -> None:
    """Reports SERVING only once a real read works: kube-apiserver reachable, the Wukong CRD installed and our RBAC
    sufficient. A missing permission or CRD is a deployment error, so it stops the server with a clear message."""
    deadline = asyncio.get_running_loop().time() + STARTUP_PROBE_SECONDS
    while not stop.is_set():
        try:
            await kube_wukongs.list_page(kube, namespace=None, limit=1, continue_token="")
            return
        except kube_errors.Forbidden as error:
            raise SystemExit(f"the service account may not list Wukongs: {error.detail}; apply deploy/rbac") from error
        except kube_errors.NotFound as error:
            raise SystemExit("the Wukong CRD (wukongs.vm.novasphere.dev) is not installed") from error
        except kube_errors.KubeError as error:
            if asyncio.get_running_loop().time() > deadline:
                raise SystemExit(f"kube-apiserver not usable after {STARTUP_PROBE_SECONDS:.0f} s: {error}") from error
            log.warning("waiting for kube-apiserver: %s", error)
            await asyncio.sleep(1.0)


def main() -> None:
    try:
        settings = config.Settings.from_env(os.environ)
    except config.SettingsError as error:
        sys.exit(f"novasphere: {error}")
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    log.info("settings: %s", config.describe(settings))
    asyncio.run(serve(settings))
