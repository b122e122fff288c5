"""Prometheus metrics, served at `/metrics` on the admin listener (NOVASPHERE_ADMIN_LISTEN, `transport/probes.py`)."""

from __future__ import annotations

from collections.abc import Callable

import prometheus_client

# Label values are bounded: a client type outside this set is counted as "other".
CLIENT_TYPES = frozenset(
    {"grpc", "grpc-web", "rest", "web", "electron", "flutter", "cli", "service", "vmctl", "mobile", "desktop", "other"}
)


class Metrics:
    """The server's own registry (not the process-global one), so tests can start several servers."""

    def __init__(self) -> None:
        self.registry = prometheus_client.CollectorRegistry()
        self.requests = prometheus_client.Counter(
            "novasphere_grpc_requests",
            "RPCs finished, by full method name, gRPC status code and client type.",
            ["method", "code", "client_type"],
            registry=self.registry,
        )
        self.latency = prometheus_client.Histogram(
            "novasphere_grpc_request_duration_seconds",
            "Time from the start of an RPC to its status, by method and client type.",
            ["method", "client_type"],
            registry=self.registry,
        )
        self.watch_streams = prometheus_client.Gauge(
            "novasphere_watch_streams", "WatchWukong streams open on this replica.", registry=self.registry
        )
        self.tombstones = prometheus_client.Gauge(
            "novasphere_watch_tombstones",
            "Deleted Wukongs this replica remembers, so that watches can resume across their deletion.",
            registry=self.registry,
        )
        self.open_tasks = prometheus_client.Gauge(
            "novasphere_tasks_open",
            "Tasks pending or running, as this replica's cache shows them.",
            registry=self.registry,
        )
        self.task_leader = prometheus_client.Gauge(
            "novasphere_task_leader",
            "1 while this replica holds the tasks' Lease (reconciles them).",
            registry=self.registry,
        )
        self.console_sessions = prometheus_client.Gauge(
            "novasphere_console_sessions",
            "Console WebSockets open on this replica, by protocol (vnc, serial).",
            ["protocol"],
            registry=self.registry,
        )
        self.console_bytes = prometheus_client.Counter(
            "novasphere_console_bytes",
            "Bytes proxied between console clients and KubeVirt, by protocol and direction (to_client, from_client).",
            ["protocol", "direction"],
            registry=self.registry,
        )
        self.console_duration = prometheus_client.Histogram(
            "novasphere_console_session_duration_seconds",
            "How long console WebSockets stayed open, by protocol.",
            ["protocol"],
            buckets=(1, 10, 60, 300, 900, 1800, 3600, 7200, 14400, 28800),
            registry=self.registry,
        )

    def observe(self, *, method: str, code: str, client_type: str, seconds: float) -> None:
        self.requests.labels(method, code, client_type).inc()
        self.latency.labels(method, client_type).observe(seconds)

    def track_watches(self, streams: Callable[[], int], tombstones: Callable[[], int]) -> None:
        self.watch_streams.set_function(streams)
        self.tombstones.set_function(tombstones)

    def track_tasks(self, open_tasks: Callable[[], int], leading: Callable[[], bool]) -> None:
        self.open_tasks.set_function(open_tasks)
        self.task_leader.set_function(lambda: 1.0 if leading() else 0.0)
