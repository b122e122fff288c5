"""Every setting of the API server, read once from `NOVASPHERE_*` environment variables and validated at start-up.

A bad value, or an unknown `NOVASPHERE_*` variable (a typo would otherwise be ignored silently), stops the server
with a message naming the variable. Defaults are safe for a real deployment: loopback listeners, reflection off.
"""

from __future__ import annotations

import os
import re
import socket
import urllib.parse
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

from novasphere_envoy.local_http import HostPort as HostPort  # one host:port for both packages, re-exported
from server import logs, tracing
from server.auth import KNOWN_PERMISSIONS
from server.failpoints import Failpoints
from server.notifications.apns import APNS_PRODUCTION
from server.notifications.fcm import FCM_URL
from server.notifications.providers import DEFAULT_PUSH_HOSTS, DEFAULT_WEBHOOK_HOSTS, ProviderSettings
from server.wukongs import validation
from server.wukongs.validation import DEFAULT_IMAGE_SOURCES

PREFIX = "NOVASPHERE_"
DEV_PERMISSIONS = tuple(sorted(p for p in KNOWN_PERMISSIONS if p.startswith(("vm:", "task:", "notification:"))))
"""Every VM, task and notification permission: what the development identity holds by default."""
T = TypeVar("T")


class SettingsError(ValueError):
    """A setting has a value the server cannot use; the message names the variable."""


@dataclass(frozen=True)
class UnixSocket:
    """A listener on a unix socket: how the API server and its Envoy talk in a pod on a hostNetwork node, where
    several pods share the node's ports (the socket lives in an emptyDir both containers mount)."""

    path: Path

    def __str__(self) -> str:
        return f"unix:{self.path}"


ListenAddress = HostPort | UnixSocket


@dataclass(frozen=True)
class Settings:
    grpc_listen: ListenAddress
    """NOVASPHERE_GRPC_LISTEN: host:port of the gRPC server (Envoy's upstream), or unix:/absolute/path for a unix
    socket (its folder must exist; a socket file left by a killed process is replaced, one a live process listens on
    is refused; the file is made readable and writable by its owner and group, i.e. the Envoy container running as
    the same user or pod fsGroup). Default 127.0.0.1:50051; port 0 lets the system pick (see
    NOVASPHERE_PORTS_FILE)."""
    admin_listen: ListenAddress
    """NOVASPHERE_ADMIN_LISTEN: host:port or unix:/absolute/path of the admin HTTP server: Prometheus `/metrics`, and
    the probes `/livez` (the process and its event loop answer) and `/readyz` (as the gRPC health service), which
    `python -m server.probe live|ready --admin ADDRESS` asks from an exec probe. Default 127.0.0.1:9464."""
    ports_file: Path | None
    """NOVASPHERE_PORTS_FILE: where to write the TCP ports the server listens on, as JSON (`grpc`, `admin`,
    `console`; a listener on a unix socket has no entry), once it has bound them: how a launcher that binds port 0
    learns them. Empty (the default): not written."""
    kubeconfig: Path | None
    """NOVASPHERE_KUBECONFIG: kubeconfig of the API's service account; empty means in-cluster credentials."""
    kube_threads: int
    """NOVASPHERE_KUBE_THREADS: threads (and pooled connections) for Kubernetes calls, 1-256. Default 32."""
    dev_identity: bool
    """NOVASPHERE_DEV_IDENTITY: requests without credentials run as the development identity below instead of being
    refused (UNAUTHENTICATED). Default false; only for development and tests."""
    dev_user: str
    """NOVASPHERE_DEV_USER: the development identity's user name. Default `developer`."""
    dev_tenant: str
    """NOVASPHERE_DEV_TENANT: its tenant (it sees namespaces labelled novasphere.dev/tenant=<tenant>). Default
    `default`."""
    dev_permissions: frozenset[str]
    """NOVASPHERE_DEV_PERMISSIONS: its permissions, comma-separated. Default: every vm:*, task:* and notification:*
    permission."""
    watch_buffer: int
    """NOVASPHERE_WATCH_BUFFER: events queued for one watch stream before it is dropped as too slow, 8-100000.
    Default 1024."""
    watch_bookmark_seconds: float
    """NOVASPHERE_WATCH_BOOKMARK_SECONDS: how often an idle watch gets a BOOKMARK, 0.1-300. Default 15."""
    tombstone_seconds: float
    """NOVASPHERE_TOMBSTONE_SECONDS: how long deletions are remembered for resuming watches, 60-86400. Default 600."""
    max_tombstones: int
    """NOVASPHERE_MAX_TOMBSTONES: how many deletions are remembered at most (the oldest go first; resuming from before
    them is a resync), 100-1000000. Default 5000."""
    cursor_wait_seconds: float
    """NOVASPHERE_CURSOR_WAIT_SECONDS: how long a read waits for this replica to reach a given cursor, 0-60.
    Default 5."""
    reflection: bool
    """NOVASPHERE_REFLECTION: serve gRPC reflection (grpcurl). Default false; `make run` turns it on."""
    drain_seconds: float
    """NOVASPHERE_DRAIN_SECONDS: after SIGTERM, how long the replica keeps serving while not ready, so that load
    balancers (and a draining Envoy sidecar) move traffic away before anything is refused, 0-300. Default 5; keep it
    above Envoy's --drain-time-s."""
    shutdown_grace_seconds: float
    """NOVASPHERE_SHUTDOWN_GRACE_SECONDS: after the drain delay, how long in-flight calls may finish, 0-300. Default
    10."""
    stale_seconds: float
    """NOVASPHERE_STALE_SECONDS: how long the replica may serve from its caches while an informer cannot reach
    kube-apiserver; past it, it is not ready, calls answer UNAVAILABLE (REPLICA_STALE) and watch streams end
    in-band, 1-3600. Default 10."""
    max_message_bytes: int
    """NOVASPHERE_MAX_MESSAGE_BYTES: largest gRPC message received or sent, 1 KiB-64 MiB. Default 4 MiB."""
    log_level: str
    """NOVASPHERE_LOG_LEVEL: DEBUG, INFO, WARNING or ERROR. Default INFO."""
    log_format: str
    """NOVASPHERE_LOG_FORMAT: json (one object per line, for log pipelines) or text (one classic line). Default
    json."""
    namespace: str
    """NOVASPHERE_NAMESPACE: the API's own namespace, where its Tasks and Lease live. Default novasphere-system."""
    replica_id: str
    """NOVASPHERE_REPLICA_ID: the start of this replica's name in Leases and Tasks (the chart gives the pod's name);
    the process ID and a random suffix follow, so that a restarted container is a new candidate, never the holder of
    its predecessor's Lease. Default: the host name."""
    lease_seconds: float
    """NOVASPHERE_LEASE_SECONDS: how long the task leader's Lease lasts without renewal, 1-300. Default 15."""
    task_handoff_seconds: float
    """NOVASPHERE_TASK_HANDOFF_SECONDS: how long a task's action may stay unsent before the leader sends it, 1-600.
    Default 45 (longer than one send can take: its request times out after 30 s)."""
    task_timeout_seconds: float
    """NOVASPHERE_TASK_TIMEOUT_SECONDS: fail any operation not done this long after its action was sent, 0-86400;
    0 (the default) uses each operation's own (start and restart 600 s, stop and delete 360 s, pause/resume 60 s)."""
    task_ttl_seconds: float
    """NOVASPHERE_TASK_TTL_SECONDS: how long ended tasks are kept, 1-31536000. Default 604800 (7 days)."""
    request_record_ttl_seconds: float
    """NOVASPHERE_REQUEST_RECORD_TTL_SECONDS: how long a replay of a call sent with a `request_id` gets the first
    answer, 60-31536000. Default 604800 (7 days: a phone that was offline for days replays its queue)."""
    sweep_seconds: float
    """NOVASPHERE_SWEEP_SECONDS: how often the leader deletes login sessions and API keys past their expiry, 1-3600.
    Default 60."""
    prometheus_url: str
    """NOVASPHERE_PROMETHEUS_URL: base URL (http or https) of a Prometheus that scrapes KubeVirt's `kubevirt_vmi_*`
    series, for VM network and disk metrics. Empty (the default): those are reported unavailable."""
    access_token_seconds: float
    """NOVASPHERE_ACCESS_TOKEN_SECONDS: lifetime of an access token, 60-3600. Default 900 (15 minutes)."""
    session_seconds: float
    """NOVASPHERE_SESSION_SECONDS: how long a login session (its refresh tokens) lasts at most, 300-2592000.
    Default 86400 (a day)."""
    console_listen: ListenAddress
    """NOVASPHERE_CONSOLE_LISTEN: host:port or unix:/absolute/path of the console WebSocket server (Envoy routes
    `/ws/` and the web console's pages to it). Default 127.0.0.1:50052."""
    console_public_url: str
    """NOVASPHERE_CONSOLE_PUBLIC_URL: the ws:// or wss:// base URL clients reach Envoy at, for the `console_url` of
    a session (e.g. wss://vms.example.com). Empty (the default): the address the request came to, as Envoy reports
    it (wss:// when its listener serves TLS); a call that bypassed Envoy gets this server's console listener
    (`ws+unix://` and the percent-encoded socket path when it is a unix socket)."""
    console_origins: frozenset[str]
    """NOVASPHERE_CONSOLE_ORIGINS: comma-separated exact origins (scheme://host[:port]) whose pages may open a
    console; a browser's WebSocket from any other origin is refused (403). Clients that send no Origin (terminals,
    CLIs) are not browsers and are let through. Default empty: no browser page may."""
    console_ticket_seconds: float
    """NOVASPHERE_CONSOLE_TICKET_SECONDS: how long a console ticket may wait for its WebSocket, 1-300. Default 30."""
    console_ttl_seconds: float
    """NOVASPHERE_CONSOLE_TTL_SECONDS: how long ended console sessions are kept, 1-2592000. Default 3600."""
    web_root: Path | None
    """NOVASPHERE_WEB_ROOT: the web console's built bundle (web/dist: index.html and assets/), served on the console
    listener at every path but `/ws/`. Empty (the default): no web console."""
    image_sources: frozenset[str]
    """NOVASPHERE_IMAGE_SOURCES: comma-separated prefixes a disk's `image` must start with (the cluster, not the API,
    fetches it: CDI imports it, so a free choice would let a caller make the cluster fetch internal addresses such as
    http://169.254.169.254/). Each is a scheme (docker://, registry://, http://, https://) and a host, ending in
    `/`, e.g. `docker://quay.io/,https://images.example.com/`. Default: the public registries quay.io, docker.io,
    ghcr.io and registry.k8s.io, and the Ubuntu, Debian and Fedora cloud image sites (over https)."""
    rate_limit_factors: Mapping[str, float]
    """NOVASPHERE_RATE_LIMIT_FACTORS: comma-separated `tenant=factor` pairs (factor 1-1000) multiplying that tenant's
    per-user rate limits and stream caps, e.g. `fuzz=100` for a tenant that load-tests or fuzzes the API. Default
    empty: every tenant has the standard limits. A setting rather than a namespace label on purpose: whoever may
    label a tenant's namespaces must not thereby lift the limits that protect the cluster from that tenant."""
    otlp_endpoint: str
    """NOVASPHERE_OTLP_ENDPOINT: base URL (http:// or https://) of an OpenTelemetry collector to send traces to: a
    span per RPC, per Kubernetes call made for it, per console connection and per task. Empty (the default):
    tracing is off and costs nothing."""
    otlp_protocol: tracing.OtlpProtocol
    """NOVASPHERE_OTLP_PROTOCOL: `grpc` (the default; e.g. http://collector:4317) or `http/protobuf` (e.g.
    http://collector:4318, spans posted to its /v1/traces)."""
    trace_sample_ratio: float
    """NOVASPHERE_TRACE_SAMPLE_RATIO: share of traces begun here that are recorded, 0-1. Default 1. A trace begun
    upstream (Envoy, a client sending `traceparent`) keeps its own decision."""
    notifications: ProviderSettings
    """Where notifications go. NOVASPHERE_NOTIFY_FCM_CREDENTIALS: a Google service-account key file (JSON) of the
    Firebase project (Android push; empty: off), NOVASPHERE_NOTIFY_FCM_URL its API (default Google's).
    NOVASPHERE_NOTIFY_APNS_KEY_FILE: the .p8 signing key (iOS push; empty: off), with NOVASPHERE_NOTIFY_APNS_KEY_ID,
    _TEAM_ID, _TOPIC (the app's bundle id) and _URL (default production; https://api.sandbox.push.apple.com for
    development builds). NOVASPHERE_NOTIFY_VAPID_KEY_FILE: a PEM P-256 key (Web Push; empty: off) and
    NOVASPHERE_NOTIFY_VAPID_SUBJECT (mailto: or https:). NOVASPHERE_NOTIFY_CA_FILE: extra CAs to trust for them.
    NOVASPHERE_NOTIFY_PUSH_HOSTS and NOVASPHERE_NOTIFY_WEBHOOK_HOSTS: comma-separated hosts (or `*.suffix`) a
    browser's push endpoint or a tenant's webhook URL may name; the defaults are the browsers' push services and the
    DingTalk, Feishu, Lark and WeCom robot APIs (a generic receiver's host must be added)."""
    notify_window_seconds: float
    """NOVASPHERE_NOTIFY_WINDOW_SECONDS: a person's events are gathered into one notification until none came for
    this long, 0.1-300. Default 10."""
    notify_longest_seconds: float
    """NOVASPHERE_NOTIFY_LONGEST_SECONDS: and at most this long after the first, 0.1-3600. Default 60."""
    failpoints: str
    """NOVASPHERE_FAILPOINTS: for crash tests only, e.g. `task-written:3` kills the process (SIGKILL) the 3rd time
    a task is written. Empty (the default) in production."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        reader = _Reader(environ)
        settings = cls(
            grpc_listen=reader.get("GRPC_LISTEN", "127.0.0.1:50051", _listen_address),
            admin_listen=reader.get("ADMIN_LISTEN", "127.0.0.1:9464", _listen_address),
            ports_file=reader.get("PORTS_FILE", "", _writable_path),
            kubeconfig=reader.get("KUBECONFIG", "", _existing_file),
            kube_threads=reader.get("KUBE_THREADS", "32", _int_between(1, 256)),
            dev_identity=reader.get("DEV_IDENTITY", "false", _bool),
            dev_user=reader.get("DEV_USER", "developer", _nonempty),
            dev_tenant=reader.get("DEV_TENANT", "default", _nonempty),
            dev_permissions=reader.get("DEV_PERMISSIONS", ",".join(DEV_PERMISSIONS), _permissions),
            watch_buffer=reader.get("WATCH_BUFFER", "1024", _int_between(8, 100_000)),
            watch_bookmark_seconds=reader.get("WATCH_BOOKMARK_SECONDS", "15", _float_between(0.1, 300)),
            tombstone_seconds=reader.get("TOMBSTONE_SECONDS", "600", _float_between(60, 86_400)),
            max_tombstones=reader.get("MAX_TOMBSTONES", "5000", _int_between(100, 1_000_000)),
            cursor_wait_seconds=reader.get("CURSOR_WAIT_SECONDS", "5", _float_between(0, 60)),
            reflection=reader.get("REFLECTION", "false", _bool),
            drain_seconds=reader.get("DRAIN_SECONDS", "5", _float_between(0, 300)),
            shutdown_grace_seconds=reader.get("SHUTDOWN_GRACE_SECONDS", "10", _float_between(0, 300)),
            stale_seconds=reader.get("STALE_SECONDS", "10", _float_between(1, 3600)),
            max_message_bytes=reader.get("MAX_MESSAGE_BYTES", str(4 << 20), _int_between(1 << 10, 64 << 20)),
            log_level=reader.get("LOG_LEVEL", "INFO", _log_level),
            log_format=reader.get("LOG_FORMAT", "json", _log_format),
            namespace=reader.get("NAMESPACE", "novasphere-system", _nonempty),
            replica_id=_replica_id(reader.get("REPLICA_ID", socket.gethostname(), _nonempty)),
            lease_seconds=reader.get("LEASE_SECONDS", "15", _float_between(1, 300)),
            task_handoff_seconds=reader.get("TASK_HANDOFF_SECONDS", "45", _float_between(1, 600)),
            task_timeout_seconds=reader.get("TASK_TIMEOUT_SECONDS", "0", _float_between(0, 86_400)),
            task_ttl_seconds=reader.get("TASK_TTL_SECONDS", str(7 * 86_400), _float_between(1, 31_536_000)),
            request_record_ttl_seconds=reader.get(
                "REQUEST_RECORD_TTL_SECONDS", str(7 * 86_400), _float_between(60, 31_536_000)
            ),
            sweep_seconds=reader.get("SWEEP_SECONDS", "60", _float_between(1, 3600)),
            prometheus_url=reader.get("PROMETHEUS_URL", "", _base_url),
            access_token_seconds=reader.get("ACCESS_TOKEN_SECONDS", "900", _float_between(60, 3600)),
            session_seconds=reader.get("SESSION_SECONDS", "86400", _float_between(300, 2_592_000)),
            console_listen=reader.get("CONSOLE_LISTEN", "127.0.0.1:50052", _listen_address),
            console_public_url=reader.get("CONSOLE_PUBLIC_URL", "", _websocket_base_url),
            console_origins=reader.get("CONSOLE_ORIGINS", "", _origins),
            console_ticket_seconds=reader.get("CONSOLE_TICKET_SECONDS", "30", _float_between(1, 300)),
            console_ttl_seconds=reader.get("CONSOLE_TTL_SECONDS", "3600", _float_between(1, 2_592_000)),
            web_root=reader.get("WEB_ROOT", "", _web_bundle),
            image_sources=reader.get("IMAGE_SOURCES", ",".join(DEFAULT_IMAGE_SOURCES), _image_sources),
            rate_limit_factors=reader.get("RATE_LIMIT_FACTORS", "", _rate_limit_factors),
            otlp_endpoint=reader.get("OTLP_ENDPOINT", "", _base_url),
            otlp_protocol=reader.get("OTLP_PROTOCOL", "grpc", tracing.OtlpProtocol),
            trace_sample_ratio=reader.get("TRACE_SAMPLE_RATIO", "1", _float_between(0, 1)),
            notifications=ProviderSettings(
                fcm_credentials=reader.get("NOTIFY_FCM_CREDENTIALS", "", _existing_file),
                fcm_url=reader.get("NOTIFY_FCM_URL", FCM_URL, _base_url),
                apns_key_file=reader.get("NOTIFY_APNS_KEY_FILE", "", _existing_file),
                apns_key_id=reader.get("NOTIFY_APNS_KEY_ID", "", str.strip),
                apns_team_id=reader.get("NOTIFY_APNS_TEAM_ID", "", str.strip),
                apns_topic=reader.get("NOTIFY_APNS_TOPIC", "", str.strip),
                apns_url=reader.get("NOTIFY_APNS_URL", APNS_PRODUCTION, _base_url),
                vapid_key_file=reader.get("NOTIFY_VAPID_KEY_FILE", "", _existing_file),
                vapid_subject=reader.get("NOTIFY_VAPID_SUBJECT", "mailto:admin@localhost", _vapid_subject),
                ca_file=reader.get("NOTIFY_CA_FILE", "", _existing_file),
                push_hosts=reader.get("NOTIFY_PUSH_HOSTS", ",".join(DEFAULT_PUSH_HOSTS), _hosts),
                webhook_hosts=reader.get("NOTIFY_WEBHOOK_HOSTS", ",".join(DEFAULT_WEBHOOK_HOSTS), _hosts),
            ),
            notify_window_seconds=reader.get("NOTIFY_WINDOW_SECONDS", "10", _float_between(0.1, 300)),
            notify_longest_seconds=reader.get("NOTIFY_LONGEST_SECONDS", "60", _float_between(0.1, 3600)),
            failpoints=reader.get("FAILPOINTS", "", _failpoints),
        )
        if settings.notifications.apns_key_file is not None and not all(
            (settings.notifications.apns_key_id, settings.notifications.apns_team_id, settings.notifications.apns_topic)
        ):
            raise SettingsError(
                "NOVASPHERE_NOTIFY_APNS_KEY_FILE needs NOVASPHERE_NOTIFY_APNS_KEY_ID, _TEAM_ID and _TOPIC as well"
            )
        reader.reject_unknown()
        return settings


class _Reader:
    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ
        self._read: set[str] = set()

    def get(self, name: str, default: str, parse: Callable[[str], T]) -> T:
        variable = PREFIX + name
        self._read.add(variable)
        value = self._environ.get(variable, default)
        try:
            return parse(value)
        except ValueError as error:
            raise SettingsError(f"{variable} has value {value!r}: {error}") from None

    def reject_unknown(self) -> None:
        unknown = sorted(k for k in self._environ if k.startswith(PREFIX) and k not in self._read)
        if unknown:
            raise SettingsError(f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(self._read))}")


def _listen_address(value: str) -> ListenAddress:
    if value.startswith("unix:"):
        path = Path(value.removeprefix("unix:"))
        if not path.is_absolute():
            raise ValueError("expected unix: and an absolute path, e.g. unix:/run/novasphere/grpc.sock")
        if not path.parent.is_dir():
            raise ValueError(f"the socket's folder {path.parent} does not exist")
        return UnixSocket(path)
    host, separator, port = value.rpartition(":")
    host = host.strip("[]")
    if not separator or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError("expected host:port, e.g. 127.0.0.1:50051, or unix:/absolute/path")
    return HostPort(host, int(port))


def _existing_file(value: str) -> Path | None:
    if not value:
        return None
    path = Path(value)
    if not path.is_file():
        raise ValueError("no such file")
    return path


def _web_bundle(value: str) -> Path | None:
    if not value:
        return None
    path = Path(value)
    if not (path / "index.html").is_file():
        raise ValueError("no index.html there: build the web console first (make web)")
    return path


def _writable_path(value: str) -> Path | None:
    if not value:
        return None
    path = Path(value)
    if not path.parent.is_dir():
        raise ValueError("its folder does not exist")
    return path


def _websocket_base_url(value: str) -> str:
    if not value.strip():
        return ""
    url = urllib.parse.urlsplit(value.strip())
    if url.scheme not in ("ws", "wss") or not url.hostname or url.query or url.fragment or url.username:
        raise ValueError("expected a ws:// or wss:// base URL, e.g. wss://vms.example.com")
    return value.strip().rstrip("/")


def _origins(value: str) -> frozenset[str]:
    origins = frozenset(part.strip().rstrip("/") for part in value.split(",") if part.strip())
    for origin in origins:
        url = urllib.parse.urlsplit(origin)
        if url.scheme not in ("http", "https") or not url.hostname or url.path or url.query:
            raise ValueError(
                f"{origin!r} is not an origin: expected scheme://host[:port], e.g. https://vms.example.com"
            )
    return origins


def _base_url(value: str) -> str:
    if not value.strip():
        return ""
    url = urllib.parse.urlsplit(value.strip())
    if url.scheme not in ("http", "https") or not url.hostname:
        raise ValueError("expected an http(s) URL, e.g. http://prometheus.monitoring.svc:9090")
    if url.username or url.password:
        raise ValueError("must not carry credentials (settings are logged)")
    if url.query or url.fragment:
        raise ValueError("expected a base URL without query or fragment")
    return value.strip().rstrip("/")


def _image_sources(value: str) -> frozenset[str]:
    sources = frozenset(part.strip() for part in value.split(",") if part.strip())
    for source in sources:
        problem = validation.check_image_source_prefix(source)
        if problem:
            raise ValueError(problem)
    return sources


def _rate_limit_factors(value: str) -> Mapping[str, float]:
    factors: dict[str, float] = {}
    for pair in (part.strip() for part in value.split(",") if part.strip()):
        tenant, _, factor = pair.partition("=")
        number = float(factor)  # ValueError names the bad text
        if not tenant.strip() or not 1 <= number <= 1000:
            raise ValueError(f"{pair!r} is not tenant=factor with a factor of 1-1000, e.g. fuzz=100")
        factors[tenant.strip()] = number
    return factors


def _replica_id(prefix: str) -> str:
    return f"{prefix}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def _hosts(value: str) -> tuple[str, ...]:
    hosts = tuple(sorted({part.strip().lower() for part in value.split(",") if part.strip()}))
    for host in hosts:
        if not re.fullmatch(r"(\*\.)?[a-z0-9]([-a-z0-9.]*[a-z0-9])?", host):
            raise ValueError(f"{host!r} is not a host name or *.suffix, e.g. hooks.example.com or *.example.com")
    return hosts


def _vapid_subject(value: str) -> str:
    if not value.startswith(("mailto:", "https:")):
        raise ValueError("expected a mailto: or https: URI, e.g. mailto:ops@example.com")
    return value


def _failpoints(value: str) -> str:
    Failpoints(value)  # raises ValueError naming a bad one
    return value


def _int_between(low: int, high: int) -> Callable[[str], int]:
    def parse(value: str) -> int:
        number = int(value)  # ValueError names the bad text
        if not low <= number <= high:
            raise ValueError(f"must be between {low} and {high}")
        return number

    return parse


def _float_between(low: float, high: float) -> Callable[[str], float]:
    def parse(value: str) -> float:
        number = float(value)
        if not low <= number <= high:
            raise ValueError(f"must be between {low:g} and {high:g}")
        return number

    return parse


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError("expected true or false")


def _nonempty(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value.strip()


def _permissions(value: str) -> frozenset[str]:
    permissions = frozenset(p.strip() for p in value.split(",") if p.strip())
    malformed = sorted(p for p in permissions if not p.replace(":", "").replace("-", "").isalnum())
    if malformed:
        raise ValueError(f"malformed permission(s) {', '.join(malformed)}; expected e.g. vm:query,vm:start")
    return permissions


def _log_level(value: str) -> str:
    level = value.strip().upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ValueError("expected DEBUG, INFO, WARNING or ERROR")
    return level


def _log_format(value: str) -> str:
    log_format = value.strip().lower()
    if log_format not in logs.FORMATS:
        raise ValueError(f"expected {' or '.join(logs.FORMATS)}")
    return log_format


def describe(settings: Settings) -> dict[str, Any]:
    """The settings as loggable key/values (none of them is secret)."""
    return {
        f.name: ",".join(sorted(value)) if isinstance(value := getattr(settings, f.name), frozenset) else str(value)
        for f in fields(settings)
    }
