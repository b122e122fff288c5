"""Envoy's bootstrap for NovaSphere: one listener carrying native gRPC, gRPC-Web, REST/JSON (transcoded from the
`google.api.http` annotations, server streams as SSE) and the console WebSocket route, with TLS, CORS and limits.

Facts this follows are in shared/reference/envoy.md; the less obvious ones are noted where they matter.
"""

from __future__ import annotations

import datetime
import json
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
from envoy_data_plane.envoy.config.core.v3 import (
    Address,
    DataSource,
    HeaderValue,
    HeaderValueOption,
    HeaderValueOptionHeaderAppendAction,
    Http1ProtocolOptions,
    Http2ProtocolOptions,
    HttpProtocolOptions,
    HttpProtocolOptionsHeadersWithUnderscoresAction,
    RuntimeFractionalPercent,
    RuntimeUInt32,
    SocketAddress,
    SubstitutionFormatString,
    TransportSocket,
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
from envoy_data_plane.envoy.extensions.access_loggers.stream.v3 import StdoutAccessLog
from envoy_data_plane.envoy.extensions.common.ratelimit.v3 import LocalRateLimitDescriptor, RateLimitDescriptorEntry
from envoy_data_plane.envoy.extensions.filters.http.cors.v3 import Cors, CorsPolicy
from envoy_data_plane.envoy.extensions.filters.http.grpc_json_transcoder.v3 import (
    GrpcJsonTranscoder,
    GrpcJsonTranscoderPrintOptions,
    GrpcJsonTranscoderRequestValidationOptions,
)
from envoy_data_plane.envoy.extensions.filters.http.grpc_web.v3 import GrpcWeb
from envoy_data_plane.envoy.extensions.filters.http.header_mutation.v3 import HeaderMutation, Mutations
from envoy_data_plane.envoy.extensions.filters.http.local_ratelimit.v3 import LocalRateLimit
from envoy_data_plane.envoy.extensions.filters.http.router.v3 import Router
from envoy_data_plane.envoy.extensions.filters.network.http_connection_manager.v3 import (
    HttpConnectionManager,
    HttpConnectionManagerCodecType,
    HttpFilter,
    LocalReplyConfig,
    ResponseMapper,
)
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
from envoy_data_plane.envoy.type.matcher.v3 import RegexMatcher, StringMatcher
from envoy_data_plane.envoy.type.v3 import FractionalPercent, FractionalPercentDenominatorType, TokenBucket
from envoy_data_plane.google.protobuf import Any, ListValue, Struct, Value
from google.protobuf import descriptor_pb2

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
# Envoy's own replies as google.rpc.Status JSON: HTTP status -> gRPC code (google/rpc/code.proto's mapping).
LOCAL_REPLY_CODES = {
    400: 3,  # INVALID_ARGUMENT: malformed JSON, bad query parameter
    401: 16,  # UNAUTHENTICATED
    403: 7,  # PERMISSION_DENIED
    404: 5,  # NOT_FOUND: no RPC at this path and method
    408: 4,  # DEADLINE_EXCEEDED
    413: 8,  # RESOURCE_EXHAUSTED: body over the size limit
    429: 8,  # RESOURCE_EXHAUSTED
    431: 8,  # RESOURCE_EXHAUSTED: headers over the size limit
    500: 13,  # INTERNAL
    502: 14,  # UNAVAILABLE
    503: 14,  # UNAVAILABLE: the API server is down or overloaded
    504: 4,  # DEADLINE_EXCEEDED: upstream timeout
}
UNKNOWN_CODE = 2


@dataclass(frozen=True)
class Upstream:
    host: str
    port: int


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
    admin_port: int
    """Envoy's admin interface, always on 127.0.0.1 (it can stop Envoy)."""
    grpc_upstream: Upstream
    """The API server's gRPC port (HTTP/2 cleartext; same pod or host)."""
    console_upstream: Upstream
    """The API server's console WebSocket port."""
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
    max_upstream_requests: int = 100_000
    """Concurrent requests to the API server Envoy allows (circuit breaker). Envoy's default, 1,024, would cap open
    watch streams, each of which is one long request; the API server has its own per-user stream cap."""
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
        )
    )
    """Services the transcoder exposes as REST."""


LOCAL_RATE_LIMIT = "envoy.filters.http.local_ratelimit"
LOGIN_PATH = "/novasphere.v1.AuthService/Login"
REFRESH_PATH = "/novasphere.v1.AuthService/Refresh"


def bootstrap(settings: SidecarSettings) -> Bootstrap:
    return Bootstrap(
        admin=Admin(address=_address("127.0.0.1", settings.admin_port)),
        static_resources=BootstrapStaticResources(
            listeners=[_listener(settings)],
            clusters=[
                _cluster("grpc_api", settings.grpc_upstream, http2=True, max_requests=settings.max_upstream_requests),
                _cluster(
                    "console", settings.console_upstream, http2=False, max_requests=settings.max_upstream_requests
                ),
            ],
        ),
    )


def render_json(settings: SidecarSettings) -> str:
    return json.dumps(bootstrap(settings).to_dict(), indent=2, sort_keys=True) + "\n"


def streaming_methods(descriptor_path: Path, services: tuple[str, ...]) -> list[str]:
    """gRPC paths (`/pkg.Service/Method`) of the server-streaming RPCs, read from the descriptor set."""
    descriptor_set = descriptor_pb2.FileDescriptorSet.FromString(descriptor_path.read_bytes())
    paths = []
    for file in descriptor_set.file:
        for service in file.service:
            full_name = f"{file.package}.{service.name}" if file.package else service.name
            if full_name in services:
                paths += [f"/{full_name}/{m.name}" for m in service.method if m.server_streaming]
    return sorted(paths)


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
        route_config=_routes(settings),
        http_filters=_http_filters(settings),
        local_reply_config=_local_reply_config(),
        access_log=[_access_log()],
    )
    chain = FilterChain(
        filters=[Filter(name="envoy.filters.network.http_connection_manager", typed_config=Any.pack(manager))]
    )
    if settings.tls is not None:
        chain.transport_socket = _tls_socket(settings.tls)
    return Listener(
        name="api",
        address=_address(settings.listen_host, settings.listen_port),
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


def _set_request_header(name: str, value: str) -> HeaderMutationRules:
    """Sets `name` (a substitution format), replacing whatever the client sent under that name."""
    return HeaderMutationRules(
        append=HeaderValueOption(
            header=HeaderValue(key=name, value=value),
            append_action=HeaderValueOptionHeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD,
        )
    )


def _routes(settings: SidecarSettings) -> RouteConfiguration:
    no_transcoding = {
        "envoy.filters.http.grpc_json_transcoder": Any.pack(FilterConfig(disabled=True)),
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
        response_headers_to_add=_hsts(settings) if settings.tls is not None else [],
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


def _hsts(settings: SidecarSettings) -> list[HeaderValueOption]:
    value = f"max-age={int(settings.hsts_max_age.total_seconds())}"
    return [
        HeaderValueOption(
            header=HeaderValue(key="strict-transport-security", value=value),
            append_action=HeaderValueOptionHeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD,
        )
    ]


def _limited_unary_route(settings: SidecarSettings, path: str, limit: LocalRateLimit) -> Route:
    """A unary method with a rate limit of its own (login, refresh), named as its limit's statistics are."""
    return Route(
        name=limit.stat_prefix,
        match=RouteMatch(path=path),
        route=RouteAction(cluster="grpc_api", timeout=settings.unary_timeout),
        typed_per_filter_config={LOCAL_RATE_LIMIT: Any.pack(limit)},
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
    `google.rpc.Status` JSON, like every error from the API. gRPC and gRPC-Web requests keep Envoy's gRPC-style
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
            body_format_override=_status_json(code),
        )
        for status, code in LOCAL_REPLY_CODES.items()
    ]
    return LocalReplyConfig(mappers=mappers)


def _status_json(code: int) -> SubstitutionFormatString:
    return SubstitutionFormatString(
        json_format=Struct(
            fields={
                "code": Value(number_value=code),
                "message": Value(string_value="%LOCAL_REPLY_BODY%"),
                "details": Value(list_value=ListValue(values=[])),
            }
        ),
        content_type="application/json",
    )


def _access_log() -> AccessLog:
    # The client's method and path as sent, without the query string: nothing secret belongs in a URL, and the log
    # keeps it that way. No request header but the user agent and request id is logged (never authorization or
    # x-api-key).
    line = (
        f'[%START_TIME%] "%REQ({ORIGINAL_METHOD_HEADER})% %PATH(NQ:ORIG_OR_PATH)% %PROTOCOL%" %RESPONSE_CODE% '
        '%RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION%ms "%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%"\n'
    )
    return AccessLog(
        name="envoy.access_loggers.stdout",
        typed_config=Any.pack(
            StdoutAccessLog(log_format=SubstitutionFormatString(text_format_source=DataSource(inline_string=line)))
        ),
    )


def _cluster(name: str, upstream: Upstream, *, http2: bool, max_requests: int) -> Cluster:
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
            endpoints=[
                LocalityLbEndpoints(
                    lb_endpoints=[LbEndpoint(endpoint=Endpoint(address=_address(upstream.host, upstream.port)))]
                )
            ],
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


def _address(host: str, port: int) -> Address:
    return Address(socket_address=SocketAddress(address=host, port_value=port))
