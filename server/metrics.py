"""Prometheus metrics, served at `/metrics` on the admin listener (NOVASPHERE_ADMIN_LISTEN, `transport/probes.py`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import prometheus_client

KUBE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
"""Kubernetes calls: most answer within milliseconds from kube-apiserver's cache; 30 s is the read timeout."""
TASK_BUCKETS = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600)
"""Tasks: a pause takes a second, a cold start of a VM a minute or more, a timed-out task its timeout (10 min)."""
FANOUT_BUCKETS = (0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 15)
"""Watch fan-out: a change reaches a keeping-up stream in well under a millisecond; a slow one waits in its queue."""

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
        self.console_failures = prometheus_client.Counter(
            "novasphere_console_failures",
            "Console WebSockets that failed, by reason: refused (a bad origin or ticket), backend (KubeVirt's console "
            "could not be opened), internal (the proxy failed while connected).",
            ["reason"],
            registry=self.registry,
        )
        self.informer_staleness = prometheus_client.Gauge(
            "novasphere_informer_staleness_seconds",
            "Seconds since an informer last heard from kube-apiserver about its kind (a list, a watch accepted or "
            "ended on time, an event, a bookmark); a quiet kind's watch is renewed every 4-5 minutes.",
            ["kind"],
            registry=self.registry,
        )
        self.watch_fanout_lag = prometheus_client.Histogram(
            "novasphere_watch_fanout_lag_seconds",
            "Time a Wukong change waited in a WatchWukong stream's queue before the stream sent it.",
            buckets=FANOUT_BUCKETS,
            registry=self.registry,
        )
        self.kube_requests = prometheus_client.Histogram(
            "novasphere_kube_request_duration_seconds",
            "Kubernetes API calls until their answer (a watch: until it started), by verb, resource and outcome "
            "(the HTTP status, or 'unreachable' when no answer came).",
            ["verb", "resource", "code"],
            buckets=KUBE_BUCKETS,
            registry=self.registry,
        )
        self.kube_errors = prometheus_client.Counter(
            "novasphere_kube_request_errors",
            "Kubernetes API calls that failed (no answer, or a status other than 2xx), by verb, resource and code.",
            ["verb", "resource", "code"],
            registry=self.registry,
        )
        self.task_duration = prometheus_client.Histogram(
            "novasphere_task_duration_seconds",
            "Tasks this replica ended, from creation to end, by operation and outcome (succeeded, failed, cancelled).",
            ["operation", "outcome"],
            buckets=TASK_BUCKETS,
            registry=self.registry,
        )
        self.login_failures = prometheus_client.Counter(
            "novasphere_login_failures",
            "Logins refused, by reason: wrong_password (or an unknown or disabled user), locked_out (too many "
            "failures for the name from the address).",
            ["reason"],
            registry=self.registry,
        )
        self.login_lockouts = prometheus_client.Counter(
            "novasphere_login_lockouts",
            "Failed logins that locked a username out at a client address.",
            registry=self.registry,
        )
        self.rate_limited = prometheus_client.Counter(
            "novasphere_rate_limited",
            "Requests the API server refused with RATE_LIMITED, by bucket (e.g. vm-create, streams); Envoy's own "
            "per-address limits show in Envoy's local_rate_limit stats.",
            ["bucket"],
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

    def track_informers(self, staleness: Mapping[str, Callable[[], float]]) -> None:
        """`staleness`: per kind, how long ago its informer last heard from kube-apiserver."""
        for kind, seconds in staleness.items():
            self.informer_staleness.labels(kind).set_function(seconds)

    def kube_call(self, *, verb: str, resource: str, code: str, seconds: float, failed: bool) -> None:
        self.kube_requests.labels(verb, resource, code).observe(seconds)
        if failed:
            self.kube_errors.labels(verb, resource, code).inc()

    def task_ended(self, *, operation: str, outcome: str, seconds: float) -> None:
        self.task_duration.labels(operation.lower(), outcome.lower()).observe(max(0.0, seconds))

    def login_failed(self, *, reason: str, locked_now: bool = False) -> None:
        self.login_failures.labels(reason).inc()
        if locked_now:
            self.login_lockouts.inc()
