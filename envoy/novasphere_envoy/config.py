"""Envoy's bootstrap for NovaSphere: one listener carrying native gRPC, gRPC-Web, REST/JSON (transcoded from the
`google.api.http` annotations, server streams as SSE) and the console WebSocket route, with TLS, CORS and limits.

Facts this follows are in shared/reference/envoy.md; the less obvious ones are noted where they matter.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from envoy_data_plane.envoy.config.accesslog.v3 import (
    AccessLog,
    AccessLogFilter,
    AndFilter,
    ComparisonFilter,
    ComparisonFilterOp,
    HeaderFilter,
    StatusCodeFilter,
)
from envoy_data_plane.envoy.config.bootstrap.v3 import Admin, Bootstrap, BootstrapStaticResources
from envoy_data_plane.envoy.config.cluster.v3 import (
    CircuitBreakers,
    CircuitBreakersThresholds,
    Cluster,
    ClusterDiscoveryType,
)
from envoy_data_plane.envoy.config.common.mutation_rules.v3 import HeaderMutation as HeaderMutationRules
from envoy_data_plane.envoy.config.core.v3 import Address as EnvoyAddress
from envoy_data_plane.envoy.config.core.v3 import (
    DataSource,
    GrpcService,
    GrpcServiceEnvoyGrpc,
    HeaderValue,
    HeaderValueOption,
    HeaderValueOptionHeaderAppendAction,
    Http1ProtocolOptions,
    Http2ProtocolOptions,
    HttpProtocolOptions,
    HttpProtocolOptionsHeadersWithUnderscoresAction,
    Pipe,
    RuntimeFractionalPercent,
    RuntimeUInt32,
    SocketAddress,
    SubstitutionFormatString,
    TransportSocket,
    TypedExtensionConfig,
    WatchedDirectory,
)
from envoy_data_plane.envoy.config.endpoint.v3 import ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints
from envoy_data_plane.envoy.config.listener.v3 import Filter, FilterChain, Listener
from envoy_data_plane.envoy.config.route.v3 import (
    FilterConfig,
    HeaderMatcher,
    RateLimit,
    RateLimitAction,
    RateLimitActionRemoteAddress,
    Route,
    RouteAction,
    RouteActionUpgradeConfig,
    RouteConfiguration,
    RouteMatch,
    VirtualHost,
)
from envoy_data_plane.envoy.config.trace.v3 import OpenTelemetryConfig, TracingHttp
from envoy_data_plane.envoy.extensions.access_loggers.stream.v3 import StdoutAccessLog
from envoy_data_plane.envoy.extensions.common.matching.v3 import ExtensionWithMatcher
from envoy_data_plane.envoy.extensions.common.ratelimit.v3 import LocalRateLimitDescriptor, RateLimitDescriptorEntry
from envoy_data_plane.envoy.extensions.filters.common.matcher.action.v3 import SkipFilter
from envoy_data_plane.envoy.extensions.filters.http.cors.v3 import Cors, CorsPolicy
from envoy_data_plane.envoy.extensions.filters.http.grpc_json_transcoder.v3 import (
    GrpcJsonTranscoder,
    GrpcJsonTranscoderPrintOptions,
    GrpcJsonTranscoderRequestValidationOptions,
)
from envoy_data_plane.envoy.extensions.filters.http.grpc_web.v3 import GrpcWeb
from envoy_data_plane.envoy.extensions.filters.http.header_mutation.v3 import HeaderMutation, Mutations
from envoy_data_plane.envoy.extensions.filters.http.header_to_metadata.v3 import (
    Config as HeaderToMetadata,
)
from envoy_data_plane.envoy.extensions.filters.http.header_to_metadata.v3 import (
    ConfigKeyValuePair,
    ConfigRule,
    ConfigValueType,
)
from envoy_data_plane.envoy.extensions.filters.http.local_ratelimit.v3 import LocalRateLimit
from envoy_data_plane.envoy.extensions.filters.http.lua.v3 import Lua, LuaPerRoute
from envoy_data_plane.envoy.extensions.filters.http.router.v3 import Router
from envoy_data_plane.envoy.extensions.filters.network.http_connection_manager.v3 import (
    HttpConnectionManager,
    HttpConnectionManagerCodecType,
    HttpConnectionManagerServerHeaderTransformation,
    HttpConnectionManagerTracing,
    HttpFilter,
    LocalReplyConfig,
    RequestIdExtension,
    ResponseMapper,
)
from envoy_data_plane.envoy.extensions.request_id.uuid.v3 import UuidRequestIdConfig
from envoy_data_plane.envoy.extensions.transport_sockets.tls.v3 import (
    CommonTlsContext,
    DownstreamTlsContext,
    TlsCertificate,
    TlsParameters,
    TlsParametersTlsProtocol,
)
from envoy_data_plane.envoy.extensions.upstreams.http.v3 import (
    HttpProtocolOptions as UpstreamHttpProtocolOptions,
)
from envoy_data_plane.envoy.extensions.upstreams.http.v3 import (
    HttpProtocolOptionsExplicitHttpConfig,
)
from envoy_data_plane.envoy.type.matcher.v3 import (
    HttpRequestHeaderMatchInput,
    RegexMatchAndSubstitute,
    RegexMatcher,
    StringMatcher,
)
from envoy_data_plane.envoy.type.v3 import FractionalPercent, FractionalPercentDenominatorType, Percent, TokenBucket
from envoy_data_plane.google.protobuf import Any, ListValue, Struct, Value
from envoy_data_plane.xds.core.v3 import TypedExtensionConfig as XdsTypedExtensionConfig
from envoy_data_plane.xds.type.matcher.v3 import Matcher as XdsMatcher
from envoy_data_plane.xds.type.matcher.v3 import (
    MatcherMatcherList,
    MatcherMatcherListFieldMatcher,
    MatcherMatcherListPredicate,
    MatcherMatcherListPredicatePredicateList,
    MatcherMatcherListPredicateSinglePredicate,
    MatcherOnMatch,
    RegexMatcherGoogleRe2,
)
from envoy_data_plane.xds.type.matcher.v3 import RegexMatcher as XdsRegexMatcher
from envoy_data_plane.xds.type.matcher.v3 import StringMatcher as XdsStringMatcher
from google.api import annotations_pb2
from google.protobuf import descriptor_pb2

from novasphere_envoy.local_http import Address, HostPort, UnixSocket

# The content-type the client sent, before gRPC-Web and the transcoder rewrite it to application/grpc: tells the API
# server which door a call came through (for metrics). Always set by Envoy (overwriting any client value), as
# `ct=<content-type>` so that it is present even when the request had no content-type (a REST GET).
DOOR_HEADER = "x-novasphere-door"
DOOR_VALUE = "ct=%REQ(content-type)%"
# The method the client used, for the access log: the transcoder turns every REST call into a gRPC POST.
ORIGINAL_METHOD_HEADER = "x-novasphere-original-method"
# The client's address as Envoy trusts it: the connection's peer, or with trusted proxy hops in front the address
# they report in X-Forwarded-For (see `SidecarSettings.xff_num_trusted_hops`). Always set by Envoy, overwriting a
# client's own; the API server uses it for login lockout and console records.
CLIENT_ADDRESS_HEADER = "x-novasphere-client-address"
CLIENT_ADDRESS_VALUE = "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%"
# The origin the client reached (`https://host:port`): the API server builds console URLs from it.
PUBLIC_ORIGIN_HEADER = "x-novasphere-public-origin"
PUBLIC_ORIGIN_VALUE = "%REQ(x-forwarded-proto)%://%REQ(:AUTHORITY)%"
# Headers the browser clients send (CORS allow list) and the gRPC status headers they must be able to read.
CORS_ALLOW_HEADERS = (
    "authorization",
    "content-type",
    "grpc-timeout",
    "x-api-key",
    "x-client-type",
    "x-grpc-web",
    "x-user-agent",
)
CORS_EXPOSE_HEADERS = ("grpc-status", "grpc-message", "grpc-status-details-bin")
# Served by the API server's console listener (server/transport/api_docs.py), not the transcoder.
API_DOCUMENT_PATHS = ("/api/v1/openapi.json", "/api/v1/openapi.yaml")
API_DOCS_PATH = "/api/docs"
# What an allowed origin must look like (a browser's `Origin`: scheme://host[:port]).
_ORIGIN = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s]+")
# Envoy's own replies as google.rpc.Status JSON, in the API's shape: HTTP status -> gRPC code (google/rpc/code.proto's
# mapping) and the ErrorInfo reason (each one in server.errors.Reason, where they are documented).
LOCAL_REPLIES = {
    400: (3, "MALFORMED_REQUEST"),  # INVALID_ARGUMENT; rest.lua names the field when the transcoder did
    401: (16, "UNAUTHENTICATED"),
    403: (7, "PERMISSION_DENIED"),
    404: (5, "ROUTE_NOT_FOUND"),  # NOT_FOUND: no RPC at this path
    405: (12, "METHOD_NOT_ALLOWED"),  # UNIMPLEMENTED: the path has RPCs, none for this method (`Allow` lists them)
    408: (4, "REQUEST_TIMEOUT"),  # DEADLINE_EXCEEDED: the client's request did not arrive in time
    413: (8, "REQUEST_TOO_LARGE"),  # RESOURCE_EXHAUSTED: body over the size limit
    429: (8, "RATE_LIMITED"),  # RESOURCE_EXHAUSTED
    431: (8, "HEADERS_TOO_LARGE"),  # RESOURCE_EXHAUSTED
    500: (13, "INTERNAL"),
    502: (14, "API_SERVER_UNAVAILABLE"),  # UNAVAILABLE
    503: (14, "API_SERVER_UNAVAILABLE"),  # UNAVAILABLE: the API server is down or overloaded
    504: (4, "API_SERVER_TIMEOUT"),  # DEADLINE_EXCEEDED: upstream timeout
}
# What rest.lua puts in the transcoder's 400s when it can name the field (the API's own reason for a bad field).
INVALID_ARGUMENT_REASON = "INVALID_ARGUMENT"
ERROR_DOMAIN = "novasphere.dev"
# Query parameters the transcoder drops instead of refusing: cache-busters HTTP clients add by themselves (jQuery's and
# others' `_=<time>`). Any other unknown parameter is still a 400, so a misspelt one (`pagesize`) fails loudly instead
# of being ignored, which `ignore_unknown_query_parameters` would do.
IGNORED_QUERY_PARAMETERS = ("_",)
# gRPC's response headers, which mean nothing to a REST client: rest.lua removes them from REST responses only (a
# gRPC-Web client reads its status from them). The HTTP/2 trailers of a server stream keep grpc-status: a client
# that reads trailers learns there how its stream ended.
GRPC_RESPONSE_HEADERS = ("grpc-status", "grpc-message", "grpc-status-details-bin", "grpc-accept-encoding")
# On every response (OWASP API8): no guessing a JSON error as HTML.
SECURITY_HEADERS = (("x-content-type-options", "nosniff"),)
# On every AuthService response (tokens, API key secrets): kept by no cache, shared or the browser's.
NO_STORE_HEADERS = (("cache-control", "no-store"), ("pragma", "no-cache"))
AUTH_SERVICE_PREFIX = "/novasphere.v1.AuthService/"
ADMIN_SOCKET_MODE = 0o600


@dataclass(frozen=True)
class TlsFiles:
    """PEM files of the listener's certificate chain and private key. Envoy watches their folder and reloads them when
    they change (a Secret volume swaps its files in one rename), so a renewed certificate needs no restart."""

    certificate_chain: Path
    private_key: Path


@dataclass(frozen=True)
class SidecarSettings:
    """Everything that differs between environments (make run, tests, a Kubernetes pod)."""

    listen_host: str
    """Address of the public listener; 127.0.0.1 locally, 0.0.0.0 in a pod."""
    listen_port: int
    """Its port. Bound with SO_REUSEPORT: several Envoys (the pods of one hostNetwork node, an upgrade's surge pod)
    share it, the kernel spreading new connections among them."""
    admin: Address
    """Envoy's admin interface (it can stop Envoy): a loopback host:port (port 0: any), or a unix socket in the pod's
    socket folder."""
    grpc_upstream: Address
    """The API server's gRPC listener (HTTP/2 cleartext): host:port in the same pod, or its unix socket."""
    console_upstream: Address
    """The API server's console WebSocket listener: host:port or unix socket."""
    descriptor_path: Path
    """gen/descriptor/novasphere.binpb: the transcoder's view of the API."""
    tls: TlsFiles | None
    """The listener's certificate: clients speak TLS, with ALPN offering h2 (browsers multiplex gRPC-Web streams on one
    connection) and http/1.1. None serves plain HTTP, which must be chosen explicitly (a TLS-terminating proxy in
    front, or a test of exactly that)."""
    cors_allowed_origins: tuple[str, ...] = ()
    """Exact origins browsers may call from; empty allows none (the safe default)."""
    max_request_bytes: int = 1 << 20
    """Largest request body buffered (REST bodies are buffered whole); more gets 413."""
    unary_timeout: datetime.timedelta = datetime.timedelta(seconds=60)
    """Upper bound of a unary call through any door (504 after it); a gRPC client's own shorter deadline applies too."""
    stream_idle_timeout: datetime.timedelta = datetime.timedelta(minutes=5)
    """A stream silent this long is reset; watches send bookmarks well within it."""
    logins_per_minute_per_ip: int = 20
    """Login attempts one client IP may make a minute, before any password hashing (then 429 / RESOURCE_EXHAUSTED);
    per Envoy, so N replicas allow N times it."""
    logins_per_minute: int = 600
    """Login attempts all clients together may make a minute (argon2id costs CPU)."""
    requests_per_second_per_ip: int = 100
    """Requests one client address may make a second through any door, in bursts of twice that (then 429 /
    RESOURCE_EXHAUSTED from Envoy, at no cost to the API server): a client flooding the API, with made-up credentials
    say, cannot take the CPU the others need. Streams count once, when they open."""
    refreshes_per_minute_per_ip: int = 60
    """Token refreshes one client address may make a minute (a client refreshes once an access-token lifetime)."""
    console_connects_per_minute_per_ip: int = 120
    """Console WebSockets one client address may open a minute (links are 5 a minute per user anyway): a flood of
    made-up tickets is answered 429 here, without a connection to the API server each."""
    xff_num_trusted_hops: int = 0
    """Proxies in front of Envoy (an ingress, a load balancer) whose X-Forwarded-For entries are trusted. With 0
    (Envoy is the edge) the client's address is the connection's peer and X-Forwarded-For is ignored, so a client
    cannot claim another address to get around the login limit; with N, the address the Nth proxy saw."""
    hsts_max_age: datetime.timedelta = datetime.timedelta(days=365)
    """How long browsers must keep to HTTPS for this host (Strict-Transport-Security, sent on TLS responses only)."""
    otlp_collector: HostPort | None = None
    """An OpenTelemetry collector's OTLP/gRPC host:port (a name is resolved by DNS): Envoy then traces every request
    with its OpenTelemetry tracer (service name `novasphere-envoy`), continuing a client's W3C `traceparent` or
    starting a trace, and passes its span's `traceparent` to the API server, whose spans become its children. None
    (the default): no tracing."""
    trace_sample_percent: float = 100.0
    """With `otlp_collector`: the share of requests, 0-100, that start a trace when the client sent no sampling
    decision of its own (a `traceparent`'s decides)."""
    max_upstream_requests: int = 100_000
    """Concurrent requests to the API server Envoy allows (circuit breaker). Envoy's default, 1,024, would cap open
    watch streams, each of which is one long request; the API server has its own per-user stream cap."""
    stats_listen: HostPort | None = None
    """Where Prometheus scrapes Envoy's own metrics (plain HTTP, e.g. 0.0.0.0:9902 in a pod): a listener that passes
    GET /stats/prometheus, and nothing else, on to the admin interface, which must not be reachable itself (it can
    stop Envoy). None: no such listener."""
    services: tuple[str, ...] = field(
        default=(
            "novasphere.v1.WukongService",
            "novasphere.v1.TaskService",
            "novasphere.v1.AccessService",
            "novasphere.v1.StatsService",
            "novasphere.v1.MetricsService",
            "novasphere.v1.AuthService",
            "novasphere.v1.AdminService",
            "novasphere.v1.ConsoleService",
            "novasphere.v1.CatalogService",
            "novasphere.v1.SshKeyService",
            "novasphere.v1.NotificationService",
        )
    )
    """Services the transcoder exposes as REST."""

    def __post_init__(self) -> None:
        if isinstance(self.admin, HostPort) and not _loopback(self.admin.host):
            raise ValueError(f"Envoy's admin interface can stop Envoy: give a loopback address, not {self.admin}")
        if not 0 <= self.trace_sample_percent <= 100:
            raise ValueError(f"trace_sample_percent is a percentage (0-100), not {self.trace_sample_percent}")
        for origin in self.cors_allowed_origins:
            if not _ORIGIN.fullmatch(origin):
                raise ValueError(
                    f"CORS origin {origin!r}: give scheme://host[:port] as a browser sends it (app://novasphere, "
                    "https://console.example.com); never null or *, which any file or page could claim"
                )


LOCAL_RATE_LIMIT = "envoy.filters.http.local_ratelimit"
LUA = "envoy.filters.http.lua"
HEADER_TO_METADATA = "envoy.filters.http.header_to_metadata"
DOOR_METADATA = "novasphere.door"
"""Dynamic metadata namespace of a request's door (`door`: grpc, grpc-web or rest), which the access log prints."""
WELL_FORMED_REQUEST_ID = "^[A-Za-z0-9._-]{1,64}$"
"""An x-request-id kept as it came (rest.lua's check_request_id replaces any other)."""
OTLP_CLUSTER = "otlp_collector"
LOGIN_PATH = "/novasphere.v1.AuthService/Login"
REFRESH_PATH = "/novasphere.v1.AuthService/Refresh"


def bootstrap(settings: SidecarSettings) -> Bootstrap:
    resources = BootstrapStaticResources(
        listeners=[_listener(settings)],
        clusters=[
            _cluster("grpc_api", settings.grpc_upstream, http2=True, max_requests=settings.max_upstream_requests),
            _cluster("console", settings.console_upstream, http2=False, max_requests=settings.max_upstream_requests),
        ],
    )
    if settings.otlp_collector is not None:
        resources.clusters.append(_collector_cluster(settings.otlp_collector))
    if settings.stats_listen is not None:
        resources.listeners.append(_stats_listener(settings.stats_listen))
        resources.clusters.append(_cluster(STATS_CLUSTER, settings.admin, http2=False, max_requests=16))
    return Bootstrap(admin=Admin(address=_admin_address(settings.admin)), static_resources=resources)


STATS_PATH = "/stats/prometheus"
STATS_CLUSTER = "envoy_admin"


def _stats_listener(address: HostPort) -> Listener:
    """Envoy's metrics for Prometheus: GET /stats/prometheus is passed to the admin interface; every other request
    (the admin interface's /quitquitquit, /drain_listeners, ...) gets 404 from this listener."""
    scrape = Route(
        match=RouteMatch(
            path=STATS_PATH, headers=[HeaderMatcher(name=":method", string_match=StringMatcher(exact="GET"))]
        ),
        route=RouteAction(cluster=STATS_CLUSTER, timeout=datetime.timedelta(seconds=10)),
    )
    manager = HttpConnectionManager(
        codec_type=HttpConnectionManagerCodecType.AUTO,
        stat_prefix="stats",
        request_headers_timeout=datetime.timedelta(seconds=10),
        route_config=RouteConfiguration(
            name="stats", virtual_hosts=[VirtualHost(name="stats", domains=["*"], routes=[scrape])]
        ),
        http_filters=[HttpFilter(name="envoy.filters.http.router", typed_config=Any.pack(Router()))],
    )
    return Listener(
        name="stats",
        address=_address(address),
        filter_chains=[
            FilterChain(
                filters=[Filter(name="envoy.filters.network.http_connection_manager", typed_config=Any.pack(manager))]
            )
        ],
    )


def render_json(settings: SidecarSettings) -> str:
    return json.dumps(bootstrap(settings).to_dict(), indent=2, sort_keys=True) + "\n"


@dataclass(frozen=True)
class HttpRule:
    """One REST binding of an RPC (a `google.api.http` rule or one of its additional bindings)."""

    method: str
    """GET, POST, PUT, PATCH or DELETE."""
    template: str
    """The path template, `/api/v1/wukongs/{name}`."""
    body: str
    """The request field the JSON body fills: `*` (the whole request), a field name, or empty (no body)."""


def _services(
    descriptor_path: Path, services: tuple[str, ...]
) -> list[tuple[str, descriptor_pb2.ServiceDescriptorProto]]:
    """`(full name, descriptor)` of each of `services` in the descriptor set."""
    descriptor_set = descriptor_pb2.FileDescriptorSet.FromString(descriptor_path.read_bytes())
    found = []
    for file in descriptor_set.file:
        for service in file.service:
            full_name = f"{file.package}.{service.name}" if file.package else service.name
            if full_name in services:
                found.append((full_name, service))
    return found


def streaming_methods(descriptor_path: Path, services: tuple[str, ...]) -> list[str]:
    """gRPC paths (`/pkg.Service/Method`) of the server-streaming RPCs, read from the descriptor set."""
    return sorted(
        f"/{full_name}/{m.name}"
        for full_name, service in _services(descriptor_path, services)
        for m in service.method
        if m.server_streaming
    )


def http_rules(descriptor_path: Path, services: tuple[str, ...]) -> list[HttpRule]:
    """Every REST binding of `services`' RPCs, read from the descriptor set."""
    rules = []
    for _, service in _services(descriptor_path, services):
        for method in service.method:
            rule = method.options.Extensions[annotations_pb2.http]
            for binding in (rule, *rule.additional_bindings):
                verb = binding.WhichOneof("pattern")
                if verb in ("get", "put", "post", "delete", "patch"):
                    rules.append(HttpRule(verb.upper(), getattr(binding, verb), binding.body))
    return rules


_VARIABLE = re.compile(r"\{[^}]*\}")
# Stands for a variable's value when a template is compared with another: no literal segment equals it.
_ANY_VALUE = "\x00"


def template_regex(template: str) -> str:
    """An RE2 regex of the paths `template` matches: a variable is one path segment, or more for `**`."""
    return _path_pattern(template, re.escape)


def _path_pattern(template: str, escape: Callable[[str], str]) -> str:
    """`template`'s literal parts escaped, its variables as `[^/]+` (one segment) or `.+` (`**`): valid in RE2 and as
    a Lua pattern alike."""
    variables = [".+" if "**" in v else "[^/]+" for v in _VARIABLE.findall(template)]
    return "".join(escape(part) + v for part, v in zip(_VARIABLE.split(template), [*variables, ""], strict=True))


def methods_by_path(rules: list[HttpRule]) -> list[tuple[str, list[str]]]:
    """`(template, methods)` for each REST path template (one of those that match the same paths): the methods a path
    it matches has, counting those of every template that matches it too (`/a/{x}` for `/a/b`). The most literal
    templates come first, so the first one a path matches gives its methods."""
    templates: dict[str, set[str]] = {}
    for rule in rules:
        templates.setdefault(rule.template, set()).add(rule.method)
    regexes = {t: template_regex(t) for t in templates}
    found: dict[str, tuple[str, list[str]]] = {}
    for template in sorted(templates, key=lambda t: (len(_VARIABLE.findall(t)), t)):
        sample = _VARIABLE.sub(_ANY_VALUE, template)
        methods = set().union(*(m for t, m in templates.items() if re.fullmatch(regexes[t], sample)))
        found.setdefault(regexes[template], (template, sorted(methods)))
    return list(found.values())


def _listener(settings: SidecarSettings) -> Listener:
    manager = HttpConnectionManager(
        codec_type=HttpConnectionManagerCodecType.AUTO,
        stat_prefix="ingress",
        use_remote_address=True,  # Envoy is the edge; X-Forwarded-For is trusted only as far as xff_num_trusted_hops
        xff_num_trusted_hops=settings.xff_num_trusted_hops,
        max_request_headers_kb=32,
        request_headers_timeout=datetime.timedelta(seconds=10),
        stream_idle_timeout=settings.stream_idle_timeout,
        common_http_protocol_options=HttpProtocolOptions(
            idle_timeout=datetime.timedelta(hours=1),
            max_headers_count=100,
            headers_with_underscores_action=HttpProtocolOptionsHeadersWithUnderscoresAction.REJECT_REQUEST,
        ),
        http_protocol_options=Http1ProtocolOptions(),
        # allow_connect: WebSockets over HTTP/2 (RFC 8441), so a browser's console shares the page's connection.
        http2_protocol_options=Http2ProtocolOptions(max_concurrent_streams=100, allow_connect=True),
        server_header_transformation=HttpConnectionManagerServerHeaderTransformation.PASS_THROUGH,  # no banner
        route_config=_routes(settings),
        http_filters=_http_filters(settings),
        local_reply_config=_local_reply_config(),
        access_log=[_access_log()],
        # x-request-id: a client's (or a proxy's in front) is kept, so one id follows a call from the client through
        # both access logs, and rest.lua replaces one that is not well-formed; absent, Envoy makes one. The client
        # gets it back on every response, to quote when it reports a problem.
        preserve_external_request_id=True,
        always_set_request_id_in_response=True,
        # Envoy's default would write its sampling decision into a UUID id (changing a client's id) and skip tracing
        # a request whose well-formed id is no UUID: the id stays as the client sent it, sampling is random_sampling.
        request_id_extension=RequestIdExtension(
            typed_config=Any.pack(UuidRequestIdConfig(pack_trace_reason=False, use_request_id_for_trace_sampling=False))
        ),
    )
    if settings.otlp_collector is not None:
        manager.tracing = _tracing(settings.trace_sample_percent)
    chain = FilterChain(
        filters=[Filter(name="envoy.filters.network.http_connection_manager", typed_config=Any.pack(manager))]
    )
    if settings.tls is not None:
        chain.transport_socket = _tls_socket(settings.tls)
    return Listener(
        name="api",
        address=_address(HostPort(settings.listen_host, settings.listen_port)),
        enable_reuse_port=True,  # explicit, whatever Envoy's default: sharing the port is the design
        per_connection_buffer_limit_bytes=settings.max_request_bytes,
        filter_chains=[chain],
    )


def _tls_socket(files: TlsFiles) -> TransportSocket:
    certificate = TlsCertificate(
        certificate_chain=DataSource(filename=str(files.certificate_chain)),
        private_key=DataSource(filename=str(files.private_key)),
        watched_directory=WatchedDirectory(path=str(files.certificate_chain.parent)),
    )
    context = DownstreamTlsContext(
        common_tls_context=CommonTlsContext(
            tls_params=TlsParameters(tls_minimum_protocol_version=TlsParametersTlsProtocol.TLSv1_2),
            tls_certificates=[certificate],
            alpn_protocols=["h2", "http/1.1"],
        ),
    )
    return TransportSocket(name="envoy.transport_sockets.tls", typed_config=Any.pack(context))


def _http_filters(settings: SidecarSettings) -> list[HttpFilter]:
    """Order matters: the door header is set from the request as the client sent it, before gRPC-Web and the
    transcoder rewrite its content-type; CORS answers preflights before anything else acts."""
    return [
        HttpFilter(name="envoy.filters.http.cors", typed_config=Any.pack(Cors())),
        _grpc_door_filter(),
        # Before gRPC-Web and the transcoder: it sees the request as the client sent it, and their replies.
        HttpFilter(name=LUA, typed_config=Any.pack(_lua_unless_plain_grpc(rest_lua(settings)))),
        HttpFilter(
            name="envoy.filters.http.header_mutation",
            typed_config=Any.pack(
                HeaderMutation(
                    mutations=Mutations(
                        request_mutations=[
                            _set_request_header(DOOR_HEADER, DOOR_VALUE),
                            _set_request_header(ORIGINAL_METHOD_HEADER, "%REQ(:METHOD)%"),
                            _set_request_header(CLIENT_ADDRESS_HEADER, CLIENT_ADDRESS_VALUE),
                            _set_request_header(PUBLIC_ORIGIN_HEADER, PUBLIC_ORIGIN_VALUE),
                        ]
                    )
                )
            ),
        ),
        HttpFilter(name="envoy.filters.http.grpc_web", typed_config=Any.pack(GrpcWeb())),
        HttpFilter(
            name="envoy.filters.http.grpc_json_transcoder",
            typed_config=Any.pack(
                GrpcJsonTranscoder(
                    proto_descriptor=str(settings.descriptor_path),
                    services=list(settings.services),
                    convert_grpc_status=True,  # error bodies as google.rpc.Status JSON, not empty application/grpc
                    ignored_query_parameters=list(IGNORED_QUERY_PARAMETERS),
                    request_validation_options=GrpcJsonTranscoderRequestValidationOptions(
                        reject_unknown_method=True,  # unknown REST paths: 404 here, not a 503 from the backend
                        # A misspelt query parameter is a 400 here; else the request passes through untranscoded and
                        # the client gets an empty 200 with the gRPC server's complaint in headers.
                        reject_unknown_query_parameters=True,
                    ),
                    print_options=GrpcJsonTranscoderPrintOptions(
                        always_print_primitive_fields=True,
                        stream_sse_style_delimited=True,  # server streams as Server-Sent Events
                    ),
                )
            ),
        ),
        # After the transcoder: a REST login is matched to the login route by its gRPC path (see _routes).
        HttpFilter(name=LOCAL_RATE_LIMIT, typed_config=Any.pack(LocalRateLimit(stat_prefix="http_local_rate_limiter"))),
        HttpFilter(name="envoy.filters.http.router", typed_config=Any.pack(Router())),
    ]


def _grpc_door_filter() -> HttpFilter:
    """The door of a gRPC or gRPC-Web call, from its content-type (`application/grpc...` -> grpc, or grpc-web), for the
    access log: what rest.lua would set, for the calls it skips (`_lua_unless_plain_grpc`). Any other content-type is
    left to rest.lua, which runs for those requests and sets their door itself."""
    door = ConfigKeyValuePair(
        metadata_namespace=DOOR_METADATA,
        key="door",
        regex_value_rewrite=RegexMatchAndSubstitute(
            pattern=RegexMatcher(regex="^application/(grpc-web|grpc).*$"), substitution="\\1"
        ),
        type=ConfigValueType.STRING,
    )
    return HttpFilter(
        name=HEADER_TO_METADATA,
        typed_config=Any.pack(
            HeaderToMetadata(request_rules=[ConfigRule(header="content-type", on_header_present=door)])
        ),
    )


def _lua_unless_plain_grpc(source: str) -> ExtensionWithMatcher:
    """rest.lua, skipped for a gRPC or gRPC-Web call whose x-request-id is well-formed: there it would only set the
    door (done by `_grpc_door_filter`) and keep the id, and the Lua filter is the costliest of the chain for the
    calls that need none of it (0.05-0.1 ms a call on loopback here, a third of Envoy's own time: see
    bench/doors.py). REST requests, and gRPC calls
    with an id to replace, still run it."""
    is_grpc = MatcherMatcherListPredicate(
        single_predicate=MatcherMatcherListPredicateSinglePredicate(
            input=_request_header("content-type"), value_match=XdsStringMatcher(prefix="application/grpc")
        )
    )
    id_kept = MatcherMatcherListPredicate(
        single_predicate=MatcherMatcherListPredicateSinglePredicate(
            input=_request_header("x-request-id"),
            value_match=XdsStringMatcher(
                safe_regex=XdsRegexMatcher(google_re2=RegexMatcherGoogleRe2(), regex=WELL_FORMED_REQUEST_ID)
            ),
        )
    )
    skip = MatcherMatcherListFieldMatcher(
        predicate=MatcherMatcherListPredicate(
            and_matcher=MatcherMatcherListPredicatePredicateList(predicate=[is_grpc, id_kept])
        ),
        on_match=MatcherOnMatch(action=XdsTypedExtensionConfig(name="skip", typed_config=Any.pack(SkipFilter()))),
    )
    lua = Lua(default_source_code=DataSource(inline_string=source))
    return ExtensionWithMatcher(
        extension_config=TypedExtensionConfig(name=LUA, typed_config=Any.pack(lua)),
        xds_matcher=XdsMatcher(matcher_list=MatcherMatcherList(matchers=[skip])),
    )


def _request_header(name: str) -> XdsTypedExtensionConfig:
    return XdsTypedExtensionConfig(name=name, typed_config=Any.pack(HttpRequestHeaderMatchInput(header_name=name)))


def rest_lua(settings: SidecarSettings) -> str:
    """rest.lua, after the tables it needs: the methods of each REST path (the others get 405 with `Allow`, not the
    transcoder's 404), which REST bindings take a field of the request as their body (whose name the transcoder
    puts before the paths of its errors), the headers to remove, the reasons to give."""
    rules = http_rules(settings.descriptor_path, settings.services)
    body_fields = [
        f"{{{_lua(rule.method)}, {_lua(_lua_pattern(rule.template))}, {_lua(rule.body)}}}"
        for rule in rules
        if rule.body not in ("", "*")
    ]
    methods = [
        f"{{{_lua(_lua_pattern(template))}, {_lua(', '.join(allowed))}}}"
        for template, allowed in methods_by_path(rules)
    ]
    constants = (
        f"local BODY_FIELDS = {{{', '.join(body_fields)}}}\n"
        f"local METHODS = {{{', '.join(methods)}}}\n"
        f"local GRPC_HEADERS = {{{', '.join(map(_lua, GRPC_RESPONSE_HEADERS))}}}\n"
        f"local DOMAIN = {_lua(ERROR_DOMAIN)}\n"
        f"local REASON_INVALID_ARGUMENT = {_lua(INVALID_ARGUMENT_REASON)}\n"
        f"local REASON_MALFORMED = {_lua(LOCAL_REPLIES[400][1])}\n"
    )
    return constants + Path(__file__).with_name("rest.lua").read_text()


def _lua(text: str) -> str:
    """A Lua string literal (the JSON escapes of printable ASCII are Lua's too)."""
    if not (text.isascii() and text.isprintable()):
        raise ValueError(f"not printable ASCII: {text!r}")
    return json.dumps(text)


def _lua_pattern(template: str) -> str:
    """A Lua pattern of the paths `template` matches (see `template_regex`)."""
    return "^" + _path_pattern(template, lambda part: re.sub(r"([\^$()%.\[\]*+\-?])", r"%\1", part)) + "$"


def _set_request_header(name: str, value: str) -> HeaderMutationRules:
    """Sets `name` (a substitution format), replacing whatever the client sent under that name."""
    return HeaderMutationRules(
        append=HeaderValueOption(
            header=HeaderValue(key=name, value=value),
            append_action=HeaderValueOptionHeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD,
        )
    )


def _routes(settings: SidecarSettings) -> RouteConfiguration:
    # Neither the transcoder nor rest.lua on what is not the API: the console WebSocket and the web console's pages.
    no_transcoding = {
        "envoy.filters.http.grpc_json_transcoder": Any.pack(FilterConfig(disabled=True)),
        LUA: Any.pack(LuaPerRoute(disabled=True)),
        HEADER_TO_METADATA: Any.pack(FilterConfig(disabled=True)),
    }
    # Server streams must not be cut by a route timeout (Envoy's default is 15 s). After transcoding, the route is
    # matched again on the gRPC path, so matching the gRPC path covers the REST/SSE form too.
    per_client = {
        LOCAL_RATE_LIMIT: Any.pack(
            _per_client_limit(
                "requests",
                per_ip=settings.requests_per_second_per_ip,
                burst=2 * settings.requests_per_second_per_ip,
                interval=datetime.timedelta(seconds=1),
            )
        )
    }
    stream_routes = [
        Route(
            match=RouteMatch(path=path),
            route=RouteAction(cluster="grpc_api", timeout=datetime.timedelta(0)),
            typed_per_filter_config=per_client,
        )
        for path in streaming_methods(settings.descriptor_path, settings.services)
    ]
    return RouteConfiguration(
        name="api",
        response_headers_to_add=[
            *_headers(SECURITY_HEADERS),
            *(_hsts(settings) if settings.tls is not None else []),
        ],
        # With the HCM's PASS_THROUGH, Envoy adds no `server` header; this removes the console server's own.
        response_headers_to_remove=["server"],
        virtual_hosts=[
            VirtualHost(
                name="api",
                domains=["*"],
                typed_per_filter_config={"envoy.filters.http.cors": Any.pack(_cors_policy(settings))},
                routes=[
                    Route(
                        name="console-websocket",
                        match=RouteMatch(prefix="/ws/"),
                        route=RouteAction(
                            cluster="console",
                            timeout=datetime.timedelta(0),
                            upgrade_configs=[RouteActionUpgradeConfig(upgrade_type="websocket", enabled=True)],
                        ),
                        typed_per_filter_config={
                            **no_transcoding,
                            LOCAL_RATE_LIMIT: Any.pack(
                                _per_client_limit("console", per_ip=settings.console_connects_per_minute_per_ip)
                            ),
                        },
                    ),
                    *stream_routes,
                    _limited_unary_route(
                        settings,
                        LOGIN_PATH,
                        _per_client_limit(
                            "login", per_ip=settings.logins_per_minute_per_ip, overall=settings.logins_per_minute
                        ),
                    ),
                    _limited_unary_route(
                        settings,
                        REFRESH_PATH,
                        _per_client_limit("refresh", per_ip=settings.refreshes_per_minute_per_ip),
                    ),
                    *_api_docs_routes(per_client | no_transcoding, settings.unary_timeout),
                    Route(
                        # The web console's pages and assets, served beside the console WebSocket: what a browser
                        # GETs outside the REST API (/api/). gRPC and gRPC-Web are POSTs and never land here.
                        name="web",
                        match=RouteMatch(
                            prefix="/",
                            headers=[
                                HeaderMatcher(
                                    name=":method",
                                    string_match=StringMatcher(safe_regex=RegexMatcher(regex="GET|HEAD")),
                                ),
                                HeaderMatcher(
                                    name=":path", string_match=StringMatcher(prefix="/api/"), invert_match=True
                                ),
                            ],
                        ),
                        route=RouteAction(cluster="console", timeout=settings.unary_timeout),
                        typed_per_filter_config={**no_transcoding, **per_client},
                    ),
                    Route(
                        name="auth",
                        match=RouteMatch(prefix=AUTH_SERVICE_PREFIX),
                        route=RouteAction(cluster="grpc_api", timeout=settings.unary_timeout),
                        typed_per_filter_config=per_client,
                        response_headers_to_add=_headers(NO_STORE_HEADERS),
                    ),
                    Route(
                        name="api",
                        match=RouteMatch(prefix="/"),
                        # One bound for every door. Not `grpc_timeout_header_max`: with it Envoy drops the route
                        # timeout for gRPC requests without a grpc-timeout header, which is every transcoded REST
                        # call, and a hung API server would hold them forever. A gRPC client's own deadline still
                        # reaches the server (grpc-timeout is forwarded) and cancels the call when it is shorter.
                        route=RouteAction(cluster="grpc_api", timeout=settings.unary_timeout),
                        typed_per_filter_config=per_client,
                    ),
                ],
            )
        ],
    )


def _api_docs_routes(filter_config: dict[str, Any], timeout: datetime.timedelta) -> list[Route]:
    """The REST API's OpenAPI document and its reference page, which the API server serves with the web console:
    GETs of these paths only, so every other /api/ path stays the transcoder's."""
    get = [HeaderMatcher(name=":method", string_match=StringMatcher(safe_regex=RegexMatcher(regex="GET|HEAD")))]
    matches = [
        *(RouteMatch(path=path, headers=get) for path in (*API_DOCUMENT_PATHS, API_DOCS_PATH)),
        RouteMatch(prefix=API_DOCS_PATH + "/", headers=get),
    ]
    return [
        Route(
            name="api-docs",
            match=match,
            route=RouteAction(cluster="console", timeout=timeout),
            typed_per_filter_config=filter_config,
        )
        for match in matches
    ]


def _hsts(settings: SidecarSettings) -> list[HeaderValueOption]:
    return _headers((("strict-transport-security", f"max-age={int(settings.hsts_max_age.total_seconds())}"),))


def _headers(headers: tuple[tuple[str, str], ...]) -> list[HeaderValueOption]:
    """Response headers set to these values, replacing any the upstream sent."""
    return [
        HeaderValueOption(
            header=HeaderValue(key=name, value=value),
            append_action=HeaderValueOptionHeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD,
        )
        for name, value in headers
    ]


def _limited_unary_route(settings: SidecarSettings, path: str, limit: LocalRateLimit) -> Route:
    """A unary method with a rate limit of its own (login, refresh), named as its limit's statistics are."""
    return Route(
        name=limit.stat_prefix,
        match=RouteMatch(path=path),
        route=RouteAction(cluster="grpc_api", timeout=settings.unary_timeout),
        typed_per_filter_config={LOCAL_RATE_LIMIT: Any.pack(limit)},
        response_headers_to_add=_headers(NO_STORE_HEADERS),  # both are AuthService methods
    )


def _per_client_limit(
    name: str,
    *,
    per_ip: int,
    overall: int = 0,
    burst: int = 0,
    interval: datetime.timedelta = datetime.timedelta(minutes=1),
) -> LocalRateLimit:
    """`per_ip` requests an `interval` (in bursts of `burst`, default `per_ip`) per client address: a dynamic
    descriptor, one token bucket per address seen, the least recently used forgotten past 10,000; inside one bucket
    for everyone (`overall`, or 1,000 times `per_ip`). The address is the one Envoy trusts (see
    `xff_num_trusted_hops`), so a client cannot spread itself over made-up addresses."""
    always = RuntimeFractionalPercent(
        default_value=FractionalPercent(numerator=100, denominator=FractionalPercentDenominatorType.HUNDRED)
    )
    return LocalRateLimit(
        stat_prefix=name,
        token_bucket=_bucket(overall or per_ip * 1000, interval),
        filter_enabled=always,
        filter_enforced=always,
        descriptors=[
            LocalRateLimitDescriptor(
                entries=[RateLimitDescriptorEntry(key="remote_address")],
                token_bucket=_bucket(per_ip, interval, burst=burst),
            )
        ],
        rate_limits=[RateLimit(actions=[RateLimitAction(remote_address=RateLimitActionRemoteAddress())])],
        max_dynamic_descriptors=10_000,
        rate_limited_as_resource_exhausted=True,  # gRPC clients see RESOURCE_EXHAUSTED, as for the server's lockout
    )


def _bucket(count: int, interval: datetime.timedelta, *, burst: int = 0) -> TokenBucket:
    return TokenBucket(max_tokens=burst or count, tokens_per_fill=count, fill_interval=interval)


def _cors_policy(settings: SidecarSettings) -> CorsPolicy:
    return CorsPolicy(
        allow_origin_string_match=[StringMatcher(exact=origin) for origin in settings.cors_allowed_origins],
        allow_methods="GET, POST, PUT, PATCH, DELETE, OPTIONS",
        allow_headers=", ".join(CORS_ALLOW_HEADERS),
        expose_headers=", ".join(CORS_EXPOSE_HEADERS),
        max_age="86400",
        forward_not_matching_preflights=False,  # Envoy answers bad-origin preflights; they never reach the API
    )


def _local_reply_config() -> LocalReplyConfig:
    """Envoy's own REST replies (unknown path, malformed JSON, body too large, API server down) as
    `google.rpc.Status` JSON with an ErrorInfo reason (`LOCAL_REPLIES`) and a RequestInfo naming the request id, like
    every error from the API; rest.lua
    adds the field to the transcoder's 400s it can name one in. gRPC and gRPC-Web requests keep Envoy's gRPC-style
    replies (status in `grpc-status`), so the mappers skip them."""
    # By the time the router replies (API server down), the transcoder has rewritten a REST request's content-type
    # to application/grpc, so the client's own content-type is read from the door header.
    not_grpc = AccessLogFilter(
        header_filter=HeaderFilter(
            header=HeaderMatcher(
                name=DOOR_HEADER,
                string_match=StringMatcher(prefix="ct=application/grpc"),
                invert_match=True,
                treat_missing_header_as_empty=True,  # replies before the door header is set are not gRPC
            )
        )
    )
    mappers = [
        ResponseMapper(
            filter=AccessLogFilter(
                and_filter=AndFilter(
                    filters=[
                        not_grpc,
                        AccessLogFilter(
                            status_code_filter=StatusCodeFilter(
                                comparison=ComparisonFilter(
                                    op=ComparisonFilterOp.EQ,
                                    value=RuntimeUInt32(default_value=status, runtime_key=f"local_reply.{status}"),
                                )
                            )
                        ),
                    ]
                )
            ),
            body_format_override=_status_json(code, reason),
        )
        for status, (code, reason) in LOCAL_REPLIES.items()
    ]
    return LocalReplyConfig(mappers=mappers)


def _status_json(code: int, reason: str) -> SubstitutionFormatString:
    error_info = Struct(
        fields={
            "@type": Value(string_value="type.googleapis.com/google.rpc.ErrorInfo"),
            "reason": Value(string_value=reason),
            "domain": Value(string_value=ERROR_DOMAIN),
            "metadata": Value(struct_value=Struct(fields={})),
        }
    )
    # The request id, as in the API's own errors: what a client quotes to find the call in both access logs.
    request_info = Struct(
        fields={
            "@type": Value(string_value="type.googleapis.com/google.rpc.RequestInfo"),
            "requestId": Value(string_value="%REQ(X-REQUEST-ID)%"),
            "servingData": Value(string_value=""),
        }
    )
    details = [Value(struct_value=error_info), Value(struct_value=request_info)]
    return SubstitutionFormatString(
        json_format=Struct(
            fields={
                "code": Value(number_value=code),
                "message": Value(string_value="%LOCAL_REPLY_BODY%"),
                "details": Value(list_value=ListValue(values=details)),
            }
        ),
        content_type="application/json",
    )


def _duration(start: str, end: str) -> str:
    """Microseconds between two of a stream's timing points (Envoy's COMMON_DURATION: DS_RX_BEG is the first byte
    of the request from the client, US_TX_BEG the first byte sent to the API server, US_RX_BEG its first byte back,
    DS_TX_END the last byte sent to the client)."""
    return f"%COMMON_DURATION({start}:{end}:us)%"


ACCESS_LOG_FIELDS = {
    "time": "%START_TIME(%Y-%m-%dT%H:%M:%E3SZ)%",
    "level": "INFO",
    "logger": "envoy.access",
    "event": "access",
    "request_id": "%REQ(X-REQUEST-ID)%",
    "method": f"%REQ({ORIGINAL_METHOD_HEADER})%",
    "path": "%PATH(NQ:ORIG_OR_PATH)%",
    "protocol": "%PROTOCOL%",
    "door": f"%DYNAMIC_METADATA({DOOR_METADATA}:door)%",  # grpc, grpc-web or rest; "-" off the API
    "code": "%RESPONSE_CODE%",
    "grpc_status": "%GRPC_STATUS%",
    "flags": "%RESPONSE_FLAGS%",
    "bytes_in": "%BYTES_RECEIVED%",
    "bytes_out": "%BYTES_SENT%",
    "duration_ms": "%DURATION%",
    "upstream_ms": "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%",
    # Where a request's time went, in microseconds (null where the request never reached the API server): Envoy's
    # filters before the API server got it, the API server until its first response byte, and Envoy from that byte
    # to the client's last (transcoding included). What Envoy itself adds is edge_request_us + edge_response_us
    # (bench/doors.py reports them per door).
    "edge_request_us": _duration("DS_RX_BEG", "US_TX_BEG"),
    "upstream_wait_us": _duration("US_TX_BEG", "US_RX_BEG"),
    "edge_response_us": _duration("US_RX_BEG", "DS_TX_END"),
    "duration_us": _duration("DS_RX_BEG", "DS_TX_END"),
    "peer": CLIENT_ADDRESS_VALUE,
    "client_type": "%REQ(X-CLIENT-TYPE)%",
    "user_agent": "%REQ(USER-AGENT)%",
}
"""Envoy's access log: one JSON object per request, shaped like the API server's access events and joined to them
by `request_id`. The client's method and path as sent, without the query string: nothing secret belongs in a URL,
and the log keeps it that way. No request header but these is logged (never authorization, x-api-key or cookies)."""


def _access_log() -> AccessLog:
    fields = Struct(fields={key: Value(string_value=value) for key, value in ACCESS_LOG_FIELDS.items()})
    return AccessLog(
        name="envoy.access_loggers.stdout",
        typed_config=Any.pack(StdoutAccessLog(log_format=SubstitutionFormatString(json_format=fields))),
    )


def _cluster(name: str, upstream: Address, *, http2: bool, max_requests: int) -> Cluster:
    """The API server in the same pod: one endpoint, so active health checks would add nothing (Envoy's readiness is
    drained by the pod's preStop, the API server's by its own readiness)."""
    limits = CircuitBreakersThresholds(
        max_connections=max_requests, max_pending_requests=max_requests, max_requests=max_requests
    )
    cluster = Cluster(
        name=name,
        type=ClusterDiscoveryType.STATIC,
        connect_timeout=datetime.timedelta(seconds=2),
        circuit_breakers=CircuitBreakers(thresholds=[limits]),
        load_assignment=ClusterLoadAssignment(
            cluster_name=name,
            endpoints=[LocalityLbEndpoints(lb_endpoints=[LbEndpoint(endpoint=Endpoint(address=_address(upstream)))])],
        ),
    )
    if http2:
        cluster.typed_extension_protocol_options = {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": Any.pack(
                UpstreamHttpProtocolOptions(
                    explicit_http_config=HttpProtocolOptionsExplicitHttpConfig(
                        http2_protocol_options=Http2ProtocolOptions()
                    )
                )
            )
        }
    return cluster


def _tracing(sample_percent: float) -> HttpConnectionManagerTracing:
    """Envoy's OpenTelemetry tracer, exporting to the `otlp_collector` cluster; `sample_percent` of the requests
    without a sampling decision of their own are traced."""
    tracer = OpenTelemetryConfig(
        grpc_service=GrpcService(envoy_grpc=GrpcServiceEnvoyGrpc(cluster_name=OTLP_CLUSTER)),
        service_name="novasphere-envoy",
    )
    return HttpConnectionManagerTracing(
        provider=TracingHttp(name="envoy.tracers.opentelemetry", typed_config=Any.pack(tracer)),
        random_sampling=Percent(value=sample_percent),
    )


def _collector_cluster(collector: HostPort) -> Cluster:
    """The collector: OTLP over HTTP/2 cleartext, found by DNS unless given as an IP address."""
    cluster = _cluster(OTLP_CLUSTER, collector, http2=True, max_requests=1024)
    if not _ip_address(collector.host):
        cluster.type = ClusterDiscoveryType.STRICT_DNS
    return cluster


def _ip_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _address(address: Address) -> EnvoyAddress:
    if isinstance(address, UnixSocket):
        return EnvoyAddress(pipe=Pipe(path=address.path))
    return EnvoyAddress(socket_address=SocketAddress(address=address.host, port_value=address.port))


def _admin_address(address: Address) -> EnvoyAddress:
    """Envoy's admin interface; on a unix socket, only Envoy's own user may connect (the probe and the preStop drain
    run in its container), since it can stop Envoy. Envoy replaces a socket file a killed Envoy left behind."""
    if isinstance(address, UnixSocket):
        return EnvoyAddress(pipe=Pipe(path=address.path, mode=ADMIN_SOCKET_MODE))
    return _address(address)


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
