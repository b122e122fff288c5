"""Composition root: `build` wires every part from the settings, `start` brings the replica up and `drain` takes it
down on SIGTERM/SIGINT without dropping what it accepted (not ready first, so load balancers stop sending; then a
drain delay; then streams told to reconnect and in-flight calls given the grace period). `lifecycle.py` has the
probe contract."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import faulthandler
import gc
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from novasphere.v1 import (
    access_service_pb2_grpc,
    admin_service_pb2_grpc,
    auth_service_pb2_grpc,
    catalog_service_pb2_grpc,
    console_service_pb2_grpc,
    metrics_service_pb2_grpc,
    notification_service_pb2_grpc,
    ssh_key_service_pb2_grpc,
    stats_service_pb2_grpc,
    task_service_pb2_grpc,
)
from server import allocator, config, errors, logs, tenancy, tracing
from server.access.cache import AccessCache
from server.access.commands import AccessCommands
from server.auth import Caller
from server.auth.accounts import Accounts, Lifetimes
from server.auth.administration import Administration
from server.auth.api_keys import ApiKeys
from server.auth.limits import RateLimits
from server.auth.store import AuthStore
from server.catalog import Catalog
from server.console.proxy import ConsoleProxy, ProxySettings
from server.console.sessions import ConsoleCache, ConsoleSessions, ConsoleSettings
from server.failpoints import Failpoints
from server.kube import auth_objects, leases, notification_objects, quotas
from server.kube import console_sessions as console_objects
from server.kube import counts as count_objects
from server.kube import errors as kube_errors
from server.kube import services as service_objects
from server.kube import tasks as task_objects
from server.kube.client import KubeClient
from server.kube.informer import Informer, Kind, backoff_seconds
from server.leader import LeaderElection, LeaseSettings
from server.lifecycle import Lifecycle, Phase
from server.lookups import Lookups
from server.metrics import Metrics
from server.notifications.notifier import Notifier, NotifierSettings
from server.notifications.providers import Providers
from server.notifications.store import NotificationStore
from server.notifications.subscriptions import Recorder, Subscriptions
from server.prometheus import Prometheus
from server.replays import Replays, ReplaySettings
from server.ssh_keys import SshKeys
from server.stats import QuotaCache, StatsQueries
from server.sweeper import Sweep, Sweeper, from_cache
from server.tally import Tally
from server.tasks.cache import TaskCache
from server.tasks.operations import Operations, TaskSettings
from server.tasks.queries import TaskQueries
from server.tasks.reconciler import Reconciler
from server.transport import (
    access_servicer,
    admin_servicer,
    api_docs,
    auth_servicer,
    catalog_servicer,
    console_servicer,
    listeners,
    metrics_servicer,
    notification_servicer,
    ssh_key_servicer,
    stats_servicer,
    task_servicer,
    web_pages,
    wukong_servicer,
)
from server.transport.interceptors import AuthorizeInterceptor, ErrorInterceptor, ObserveInterceptor
from server.transport.probes import CHECK_SECONDS, AdminServer, HealthReporter
from server.transport.replays import ReplayInterceptor
from server.transport.streams import OpenStreams
from server.transport.traces import TraceInterceptor
from server.wukongs import cache as wukong_cache
from server.wukongs.commands import WukongCommands
from server.wukongs.detail_sources import DetailSources
from server.wukongs.metrics import VmMetricsQueries
from server.wukongs.queries import WukongQueries
from server.wukongs.watch import WatchHub, WatchSettings

log = logging.getLogger("novasphere")

SERVICE_NAMES = (
    wukong_servicer.SERVICE.full_name,
    task_servicer.SERVICE.full_name,
    access_servicer.SERVICE.full_name,
    stats_servicer.SERVICE.full_name,
    metrics_servicer.SERVICE.full_name,
    auth_servicer.SERVICE.full_name,
    admin_servicer.SERVICE.full_name,
    console_servicer.SERVICE.full_name,
    catalog_servicer.SERVICE.full_name,
    ssh_key_servicer.SERVICE.full_name,
    notification_servicer.SERVICE.full_name,
)
TASK_LEASE = "novasphere-api-tasks"
SYNC_REPORT_SECONDS = 30.0
WATCH_WUKONG = "/novasphere.v1.WukongService/WatchWukong"
HEALTH_WATCH = "/grpc.health.v1.Health/Watch"
REPLAY_PENDING_SECONDS = 60.0
"""After this long a call's replay record still Pending was left by a replica that died (no replayed call takes half
as long: an update waits for its disk claims and its cursor)."""
SETTLE_QUIET_SECONDS = 1.0
"""How long no call may have come to a stopping replica before its grpc server stops."""
SETTLE_MAX_SECONDS = 3.0
"""How long a stopping replica waits for that at most: a client told to go comes back once, is refused and goes
elsewhere within a reconnect or two. One that keeps coming back has an edge that is not draining (an API server
restarted behind a running Envoy), and waiting longer would only delay the exit."""


@dataclass
class Replica:
    """Every part of one API server: wired by `build`, run by `start`, ended by `drain`."""

    settings: config.Settings
    kube: KubeClient
    metrics: Metrics
    lifecycle: Lifecycle
    server: grpc.aio.Server
    health: health.aio.HealthServicer
    reporter: HealthReporter
    admin: AdminServer
    streams: OpenStreams
    hub: WatchHub
    accounts: Accounts
    console_proxy: ConsoleProxy
    informers: list[Informer]
    synced: Callable[[], bool]
    """Whether every cache has its first list."""
    jobs: list[Callable[[asyncio.Event], Coroutine[Any, Any, None]]]
    """What runs in the background while the replica serves, each until the event is set."""
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    background: list[asyncio.Task[None]] = field(default_factory=list)


async def serve(settings: config.Settings) -> None:
    replica = build(settings, asyncio.get_running_loop())
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    try:
        await start(replica, stop)
        await stop.wait()
    finally:
        await drain(replica, stop)


def build(settings: config.Settings, loop: asyncio.AbstractEventLoop) -> Replica:
    """Wiring only: every part made from the settings and handed what it needs; nothing runs yet."""
    metrics = Metrics()
    tracing.configure(
        tracing.TraceSettings(
            endpoint=settings.otlp_endpoint,
            protocol=settings.otlp_protocol,
            sample_ratio=settings.trace_sample_ratio,
            replica=settings.replica_id,
        )
    )
    kube = KubeClient.connect(kubeconfig=settings.kubeconfig, threads=settings.kube_threads, metrics=metrics)
    lifecycle = Lifecycle(stale_after_seconds=settings.stale_seconds)
    streams = OpenStreams()
    health_servicer = health.aio.HealthServicer()
    reporter = HealthReporter(lifecycle, health_servicer, SERVICE_NAMES)
    development = Caller(
        user=settings.dev_user, tenant=settings.dev_tenant, permissions=settings.dev_permissions, development=True
    )
    auth_store = AuthStore()
    lookups = Lookups()
    tally = Tally(kube=kube, namespace=settings.namespace, replica=settings.replica_id)
    api_keys = ApiKeys(kube=kube, auth_store=auth_store, namespace=settings.namespace, lookups=lookups)
    accounts = Accounts(
        kube=kube,
        auth_store=auth_store,
        namespace=settings.namespace,
        lifetimes=Lifetimes(access_seconds=settings.access_token_seconds, session_seconds=settings.session_seconds),
        api_keys=api_keys,
        anonymous=development if settings.dev_identity else None,
        lookups=lookups,
        tally=tally,
        metrics=metrics,
    )
    limits = RateLimits(tally=tally, factors=settings.rate_limit_factors, metrics=metrics)
    replays = Replays(
        kube,
        ReplaySettings(
            namespace=settings.namespace,
            ttl_seconds=settings.request_record_ttl_seconds,
            pending_seconds=REPLAY_PENDING_SECONDS,
        ),
    )
    server = grpc.aio.server(
        interceptors=[
            *([TraceInterceptor()] if tracing.enabled() else []),
            ObserveInterceptor(metrics),
            ErrorInterceptor(),
            AuthorizeInterceptor(accounts, limits, lifecycle=lifecycle, streams=streams),
            ReplayInterceptor(replays),
        ],
        options=[
            ("grpc.max_receive_message_length", settings.max_message_bytes),
            ("grpc.max_send_message_length", settings.max_message_bytes),
            ("grpc.so_reuseport", 0),
        ],
    )
    tenants = tenancy.Tenancy(kube, lookups)
    cache = wukong_cache.WukongCache(
        tombstone_seconds=settings.tombstone_seconds, max_tombstones=settings.max_tombstones
    )
    hub = WatchHub(
        cache,
        WatchSettings(buffer=settings.watch_buffer, bookmark_seconds=settings.watch_bookmark_seconds),
        metrics=metrics,
    )
    metrics.track_watches(lambda: hub.streams, lambda: cache.tombstones)
    tenants.listeners.append(hub.rescope)
    detail_sources = DetailSources()
    wukong_queries = WukongQueries(
        cache=cache,
        detail_sources=detail_sources,
        hub=hub,
        tenancy=tenants,
        cursor_wait_seconds=settings.cursor_wait_seconds,
    )
    task_cache = TaskCache()
    access_cache = AccessCache()
    quota_cache = QuotaCache()
    failpoints = Failpoints(settings.failpoints)
    operations = Operations(
        kube=kube,
        wukongs=wukong_queries,
        wukong_cache=cache,
        tasks=task_cache,
        tenancy=tenants,
        settings=TaskSettings(
            namespace=settings.namespace,
            replica=settings.replica_id,
            handoff_seconds=settings.task_handoff_seconds,
            timeout_seconds=settings.task_timeout_seconds,
            ttl_seconds=settings.task_ttl_seconds,
        ),
        failpoints=failpoints,
        metrics=metrics,
    )
    task_queries = TaskQueries(
        kube=kube, tasks=task_cache, tenancy=tenants, namespace=settings.namespace, lookups=lookups
    )
    servicer = wukong_servicer.WukongServicer(
        queries=wukong_queries,
        commands=WukongCommands(
            kube=kube,
            cache=cache,
            tenancy=tenants,
            cursor_wait_seconds=settings.cursor_wait_seconds,
            image_sources=settings.image_sources,
        ),
        operations=operations,
        tasks=task_queries,
        access=access_cache,
    )
    server.add_generic_rpc_handlers((wukong_servicer.handler(servicer),))
    task_service_pb2_grpc.add_TaskServiceServicer_to_server(
        task_servicer.TaskServicer(queries=task_queries, operations=operations), server
    )
    access_service_pb2_grpc.add_AccessServiceServicer_to_server(
        access_servicer.AccessServicer(AccessCommands(kube=kube, cache=access_cache, wukongs=wukong_queries)), server
    )
    stats_service_pb2_grpc.add_StatsServiceServicer_to_server(
        stats_servicer.StatsServicer(StatsQueries(wukongs=cache, quotas=quota_cache, tenancy=tenants)), server
    )
    catalog_service_pb2_grpc.add_CatalogServiceServicer_to_server(
        catalog_servicer.CatalogServicer(Catalog(kube=kube, tenancy=tenants, quotas=quota_cache)), server
    )
    ssh_key_service_pb2_grpc.add_SshKeyServiceServicer_to_server(
        ssh_key_servicer.SshKeyServicer(SshKeys(kube=kube, tenancy=tenants, home=settings.namespace)), server
    )
    auth_service_pb2_grpc.add_AuthServiceServicer_to_server(auth_servicer.AuthServicer(accounts, api_keys), server)
    administration = Administration(
        kube=kube,
        auth_store=auth_store,
        tenancy=tenants,
        accounts=accounts,
        namespace=settings.namespace,
        lookups=lookups,
    )
    admin_service_pb2_grpc.add_AdminServiceServicer_to_server(admin_servicer.AdminServicer(administration), server)
    prometheus = Prometheus(settings.prometheus_url) if settings.prometheus_url else None
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(
        metrics_servicer.MetricsServicer(VmMetricsQueries(kube=kube, wukongs=wukong_queries, prometheus=prometheus)),
        server,
    )
    leader = LeaderElection(
        kube,
        LeaseSettings(
            namespace=settings.namespace,
            name=TASK_LEASE,
            identity=settings.replica_id,
            duration_seconds=settings.lease_seconds,
        ),
    )
    metrics.track_tasks(lambda: len(task_cache.open_tasks()), lambda: leader.leading)
    reconciler = Reconciler(
        kube=kube, operations=operations, tasks=task_cache, wukongs=cache, leader=leader, failpoints=failpoints
    )
    console_cache = ConsoleCache()
    consoles = ConsoleSessions(
        kube=kube,
        cache=console_cache,
        wukongs=wukong_queries,
        settings=ConsoleSettings(
            namespace=settings.namespace,
            public_url=settings.console_public_url,
            ticket_seconds=settings.console_ticket_seconds,
        ),
        direct_url=lambda: console_proxy.url,
        lookups=lookups,
    )
    console_service_pb2_grpc.add_ConsoleServiceServicer_to_server(console_servicer.ConsoleServicer(consoles), server)
    console_proxy = ConsoleProxy(
        kube=kube,
        cache=console_cache,
        sessions_=consoles,
        auth_store=auth_store,
        tenancy=tenants,
        metrics=metrics,
        settings=ProxySettings(
            namespace=settings.namespace,
            replica=settings.replica_id,
            origins=settings.console_origins,
            development_user=settings.dev_user if settings.dev_identity else "",
        ),
    )
    notification_store = NotificationStore()
    providers = Providers(settings.notifications)
    recorder = Recorder(kube=kube, namespace=settings.namespace, store=notification_store)
    notification_service_pb2_grpc.add_NotificationServiceServicer_to_server(
        notification_servicer.NotificationServicer(
            Subscriptions(
                kube=kube,
                namespace=settings.namespace,
                store=notification_store,
                providers=providers,
                settings=settings.notifications,
                recorder=recorder,
            ),
            providers,
        ),
        server,
    )
    notifier = Notifier(
        kube=kube,
        settings=NotifierSettings(
            namespace=settings.namespace,
            window=datetime.timedelta(seconds=settings.notify_window_seconds),
            longest=datetime.timedelta(seconds=settings.notify_longest_seconds),
        ),
        store=notification_store,
        auth_store=auth_store,
        tenant_of=tenants.owner,
        wukongs=cache,
        tasks=task_cache,
        consoles=console_cache,
        quotas=quota_cache,
        leader=leader,
        providers=providers,
        recorder=recorder,
        failpoints=failpoints,
    )
    sweeper = Sweeper(
        leader=leader,
        every_seconds=settings.sweep_seconds,
        sweeps=[
            Sweep(
                "expired login sessions and API keys",
                due=from_cache(auth_store.expired),
                delete=lambda name: auth_objects.delete_secret(kube, namespace=settings.namespace, name=name),
                ready=lambda: auth_store.synced,
            ),
            Sweep(
                "ended console sessions",
                due=from_cache(
                    lambda now: console_cache.ended_before(
                        now - datetime.timedelta(seconds=settings.console_ttl_seconds)
                    )
                ),
                delete=lambda name: console_objects.delete(kube, namespace=settings.namespace, name=name),
                ready=lambda: console_cache.synced,
            ),
            Sweep(
                "the counts of replicas that are gone",
                due=from_cache(lambda now: tally.stale_objects(now.timestamp())),
                delete=lambda name: count_objects.delete(kube, namespace=settings.namespace, name=name),
                ready=lambda: tally.synced,
            ),
            Sweep(
                "expired request records",
                due=replays.expired,
                delete=replays.delete,
                ready=lambda: True,
            ),
            Sweep(
                "notification devices of deleted users",
                due=from_cache(
                    lambda now: notification_store.orphans(
                        user_exists=lambda user: (
                            auth_store.user(user) is not None or (settings.dev_identity and user == settings.dev_user)
                        ),
                    )
                ),
                delete=lambda name: notification_objects.delete_secret(kube, namespace=settings.namespace, name=name),
                ready=lambda: notification_store.synced and auth_store.synced,
            ),
            Sweep(
                "console Leases of deleted VMs",
                due=lambda now: consoles.locks_of_gone_vms(lambda uid: cache.by_uid(uid) is not None),
                delete=lambda name: leases.delete(kube, namespace=settings.namespace, name=name),
                ready=lambda: cache.synced,
            ),
        ],
    )
    informers = [Informer(kube, kind, cache, loop) for kind in wukong_cache.KINDS]
    informers.append(Informer(kube, tenancy.NAMESPACES, tenants, loop))
    informers.append(Informer(kube, task_objects.kind(settings.namespace), task_cache, loop))
    informers.append(Informer(kube, quotas.RESOURCE_QUOTAS, quota_cache, loop))
    informers += [Informer(kube, kind, handler, loop) for kind, handler in detail_sources.informed()]
    informers.append(Informer(kube, console_objects.kind(settings.namespace), console_cache, loop))
    informers.append(Informer(kube, count_objects.kind(settings.namespace), tally, loop))
    informers += [
        Informer(kube, kind, auth_store, loop)
        for kind in (auth_objects.secrets_kind(settings.namespace), auth_objects.config_maps_kind(settings.namespace))
    ]
    informers += [
        Informer(kube, kind, access_cache, loop) for kind in (service_objects.SERVICES, service_objects.NODES)
    ]
    informers += [
        Informer(kube, kind, notification_store, loop)
        for kind in (
            notification_objects.secrets_kind(settings.namespace),
            notification_objects.config_maps_kind(settings.namespace),
        )
    ]
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    if settings.reflection:
        reflection.enable_server_reflection((*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    lifecycle.track(informers)
    metrics.track_informers({informer.kind.name: informer.staleness_seconds for informer in informers})
    replica = Replica(
        settings=settings,
        kube=kube,
        metrics=metrics,
        lifecycle=lifecycle,
        server=server,
        health=health_servicer,
        reporter=reporter,
        admin=AdminServer(registry=metrics.registry, reporter=reporter),
        streams=streams,
        hub=hub,
        accounts=accounts,
        console_proxy=console_proxy,
        informers=informers,
        synced=lambda: all(
            part.synced
            for part in (
                cache,
                tenants,
                task_cache,
                access_cache,
                quota_cache,
                detail_sources,
                auth_store,
                console_cache,
                notification_store,
            )
        ),
        jobs=[
            leader.run,
            reconciler.run,
            sweeper.run,
            reporter.run,
            tally.run,
            console_proxy.keep_checking_rights,
            cache.keep_pruning,
            notifier.run,
        ],
    )
    replica.jobs.append(lambda stop: _end_streams_while_stale(replica, stop))
    replica.closers.append(providers.close)
    if prometheus is not None:
        replica.closers.append(prometheus.close)
    return replica


async def start(replica: Replica, stop: asyncio.Event) -> None:
    """Listens at once (the ports file says where; not ready yet), waits for Kubernetes and the caches, creates what a
    fresh install lacks, starts the background jobs, then turns ready."""
    settings = replica.settings
    # grpcio's health servicer starts with the overall status SERVING; nothing is served before the probe passes.
    for name in ("", *SERVICE_NAMES):
        await replica.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    grpc_port = listeners.add_grpc_port(replica.server, settings.grpc_listen)
    await replica.server.start()
    listeners.opened(settings.grpc_listen)
    admin_port = await replica.admin.start(settings.admin_listen)
    pages = api_docs.routes(settings.web_root)
    pages += web_pages.routes(settings.web_root) if settings.web_root is not None else []
    console_port = await replica.console_proxy.start(settings.console_listen, pages)
    log.info(
        "gRPC on %s, admin on %s, consoles on %s",
        _bound(settings.grpc_listen, grpc_port),
        _bound(settings.admin_listen, admin_port),
        _bound(settings.console_listen, console_port),
    )
    if settings.ports_file is not None:
        _write_ports(settings.ports_file, grpc=grpc_port, admin=admin_port, console=console_port)

    await _probe_kubernetes(replica.kube, [informer.kind for informer in replica.informers], stop)
    for informer in replica.informers:
        informer.start()
    await _synced(replica.synced, stop)
    if stop.is_set():
        return
    await replica.accounts.ensure_signing_key()
    await replica.accounts.ensure_bootstrap_admin()
    replica.background += [asyncio.create_task(job(stop), name=_job_name(job)) for job in replica.jobs]
    # What start-up built (caches of every object, the modules) lives as long as the process: kept out of the
    # collector's scans, so a full collection no longer walks it and stalls every request for tens of milliseconds.
    gc.freeze()
    replica.lifecycle.move_to(Phase.SERVING)
    await replica.reporter.publish()


async def drain(replica: Replica, stop: asyncio.Event) -> None:
    """Not ready first (traffic moves away while calls keep being served for the drain delay), then streams told to
    reconnect, then in-flight calls finish within the grace period, then everything stops."""
    settings, lifecycle = replica.settings, replica.lifecycle
    was_serving = lifecycle.phase is Phase.SERVING
    lifecycle.move_to(Phase.DRAINING)
    await replica.reporter.publish()
    await replica.health.enter_graceful_shutdown()
    if was_serving and settings.drain_seconds:
        log.info("draining: serving %.0f s more while traffic moves away", settings.drain_seconds)
        await asyncio.sleep(settings.drain_seconds)
    shutting_down = errors.ShuttingDown()
    ended = replica.hub.end_all(shutting_down)
    ended += replica.streams.close(shutting_down, keep=lambda method: method == WATCH_WUKONG)
    log.info(
        "stopping: %d streams told to reconnect, %.0f s for in-flight calls", ended, settings.shutdown_grace_seconds
    )
    grace_ends = time.monotonic() + settings.shutdown_grace_seconds
    await replica.console_proxy.stop()
    # The grpc server answers what arrives once it stops with CANCELLED: until it stops, every new call is refused
    # with UNAVAILABLE (`streams.close`), and it stops once the clients told to go have gone.
    settle = min(SETTLE_MAX_SECONDS, max(0.0, grace_ends - time.monotonic()))
    await replica.streams.settled(quiet=SETTLE_QUIET_SECONDS, within=settle)
    await replica.server.stop(max(0.0, grace_ends - time.monotonic()))
    stop.set()
    await asyncio.gather(*replica.background, return_exceptions=True)
    for informer in replica.informers:
        informer.stop()
    replica.kube.close()
    for close in replica.closers:
        await close()
    await replica.admin.stop()
    tracing.shutdown()
    lifecycle.move_to(Phase.STOPPED)
    log.info("stopped")


async def _end_streams_while_stale(replica: Replica, stop: asyncio.Event) -> None:
    """Once this replica has lost kube-apiserver for longer than it may serve from its caches, its watch streams end
    (in-band where they can): their clients resume from their cursor elsewhere, or here once it has caught up. The
    health service's watchers stay, to hear that it is not serving."""
    ended = False
    while not stop.is_set():
        if replica.lifecycle.stale and not ended:
            stale = errors.Stale(seconds=replica.lifecycle.stale_seconds())
            count = replica.hub.end_all(stale)
            count += replica.streams.end(stale, keep=lambda method: method in (WATCH_WUKONG, HEALTH_WATCH))
            log.warning("cut off from kube-apiserver: %d streams ended", count)
        ended = replica.lifecycle.stale
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=CHECK_SECONDS)


def _job_name(job: Callable[[asyncio.Event], Coroutine[Any, Any, None]]) -> str:
    owner = getattr(job, "__self__", None)
    return f"{type(owner).__name__}.{getattr(job, '__name__', 'job')}" if owner is not None else "job"


async def _probe_kubernetes(kube: KubeClient, kinds: list[Kind], stop: asyncio.Event) -> None:
    """Serves only once a real read of every kind works: kube-apiserver reachable, the CRDs installed and our RBAC
    sufficient. A missing permission or CRD is a deployment error, so it stops the server with a clear message; an
    unreachable kube-apiserver is waited for as long as it takes (the replica stays alive, just not ready)."""
    pending = list(kinds)
    failures = 0
    while pending and not stop.is_set():
        kind = pending[0]
        try:
            await kube.request("GET", kind.path, query={"limit": 1})
            pending.pop(0)
        except kube_errors.Forbidden as error:
            raise SystemExit(
                f"the service account may not list {kind.name}: {error.detail}; apply deploy/rbac"
            ) from error
        except kube_errors.NotFound as error:
            raise SystemExit(f"the API for {kind.name} ({kind.path}) is not installed (a missing CRD?)") from error
        except kube_errors.KubeError as error:
            failures += 1
            log.warning("waiting for kube-apiserver: %s", error)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=backoff_seconds(failures))


async def _synced(synced: Callable[[], bool], stop: asyncio.Event) -> None:
    reported = asyncio.get_running_loop().time()
    while not synced() and not stop.is_set():
        if asyncio.get_running_loop().time() - reported > SYNC_REPORT_SECONDS:
            log.warning("still waiting for the caches to sync")
            reported = asyncio.get_running_loop().time()
        await asyncio.sleep(0.05)


def _bound(listen: config.ListenAddress, port: int | None) -> str:
    return str(config.HostPort(listen.host, port) if isinstance(listen, config.HostPort) and port else listen)


def _write_ports(path: Path, **ports: int | None) -> None:
    """The TCP ports (a unix socket has none), written whole and renamed into place, so a reader never sees half of
    it."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps({name: port for name, port in ports.items() if port is not None}))
    partial.rename(path)


def main() -> None:
    # A crash inside grpc's C extension (a segfault seen intermittently, see issue 6's note) then leaves the Python
    # stack of every thread in the log instead of nothing.
    faulthandler.enable()
    allocator.limit_arenas()
    try:
        settings = config.Settings.from_env(os.environ)
    except config.SettingsError as error:
        sys.exit(f"novasphere: {error}")
    logs.configure(log_format=settings.log_format, level=settings.log_level)
    # At DEBUG the Kubernetes client logs whole response bodies, Secrets included (password hashes, signing keys,
    # the initial admin password): its loggers never go below INFO.
    for noisy in ("kubernetes", "urllib3"):
        logging.getLogger(noisy).setLevel(max(logging.INFO, logging.getLevelName(settings.log_level)))
    log.info("settings: %s", config.describe(settings))
    asyncio.run(serve(settings))
