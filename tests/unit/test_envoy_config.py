"""The Envoy bootstrap built in Python is accepted by the real Envoy binary (`envoy --mode validate`)."""

from __future__ import annotations

import dataclasses
import datetime
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from devcluster import pki
from devcluster import stack as devstack
from novasphere_envoy import config, launch, local_http
from server import errors


def _settings(**overrides: Any) -> config.SidecarSettings:
    settings = devstack.envoy_settings(grpc=50051, console=50052, tls=None, listen_port=8443)
    return dataclasses.replace(settings, **overrides)


def _validate(rendered: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "envoy.json"
    path.write_text(rendered)
    return subprocess.run(
        [launch.envoy_binary(), "--mode", "validate", "-c", str(path), "--disable-hot-restart"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_envoy_accepts_the_config(tmp_path: Path) -> None:
    result = _validate(config.render_json(_settings(cors_allowed_origins=("https://console.example",))), tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout


def test_envoy_rejects_a_service_missing_from_the_descriptor(tmp_path: Path) -> None:
    """The validation is real: it catches what the transcoder would fail on at run time."""
    result = _validate(config.render_json(_settings(services=("novasphere.v1.NoSuchService",))), tmp_path)

    assert result.returncode != 0
    assert "NoSuchService" in result.stdout + result.stderr


def test_cors_allows_no_origin_unless_configured() -> None:
    rendered = json.loads(config.render_json(_settings()))

    assert "allowOriginStringMatch" not in json.dumps(rendered)


@pytest.mark.parametrize(
    ("status", "code", "reason"),
    [
        (400, 3, "MALFORMED_REQUEST"),
        (404, 5, "ROUTE_NOT_FOUND"),
        (405, 12, "METHOD_NOT_ALLOWED"),
        (413, 8, "REQUEST_TOO_LARGE"),
        (503, 14, "API_SERVER_UNAVAILABLE"),
        (504, 4, "API_SERVER_TIMEOUT"),
    ],
)
def test_local_replies_map_http_status_to_the_grpc_code_and_a_reason(status: int, code: int, reason: str) -> None:
    assert config.LOCAL_REPLIES[status] == (code, reason)


def test_every_reason_envoy_sends_is_in_the_api_reason_list() -> None:
    sent = {reason for _, reason in config.LOCAL_REPLIES.values()} | {config.INVALID_ARGUMENT_REASON}
    assert sent <= {reason.value for reason in errors.Reason}
    assert config.ERROR_DOMAIN == errors.DOMAIN


def test_allowed_methods_per_path_come_from_the_descriptor() -> None:
    found = dict(config.methods_by_path(config.http_rules(devstack.DESCRIPTOR, config.SidecarSettings.services)))

    # GetWukong, DeleteWukong and UpdateWukong (`{wukong.name}`, the same paths) share one entry.
    assert found["/api/v1/wukongs/{name}"] == ["DELETE", "GET", "PATCH"]
    assert "/api/v1/wukongs/{wukong.name}" not in found
    assert found["/api/v1/wukongs"] == ["GET", "POST"]
    assert found["/api/v1/wukongs:batch"] == ["POST"]
    assert found["/api/v1/tasks/{id}"] == ["GET"]
    assert config.template_regex("/api/v1/tasks/{id}") == "/api/v1/tasks/[^/]+"


def test_a_literal_path_also_allows_the_methods_of_the_templates_that_match_it() -> None:
    rules = [config.HttpRule("GET", "/a/{x}", ""), config.HttpRule("POST", "/a/b", "*")]

    assert config.methods_by_path(rules) == [("/a/b", ["GET", "POST"]), ("/a/{x}", ["GET"])]


def test_rest_lua_knows_which_bindings_take_a_field_as_body() -> None:
    source = config.rest_lua(_settings())

    assert '{"PUT", "^/api/v1/notifications/preferences$", "preferences"}' in source
    assert '{"POST", "^/api/v1/wukongs$", "wukong"}, {"PATCH", "^/api/v1/wukongs/[^/]+$", ' in source
    assert '{"^/api/v1/wukongs/[^/]+$", "DELETE, GET, PATCH"}' in source
    assert '{"^/api/v1/wukongs:batch$", "POST"}' in source
    assert 'local REASON_MALFORMED = "MALFORMED_REQUEST"' in source


@pytest.mark.parametrize("origin", ["null", "*", "file://", "https://console.example/"])
def test_an_origin_any_page_or_file_could_claim_is_refused(origin: str) -> None:
    with pytest.raises(ValueError, match="never null"):
        _settings(cors_allowed_origins=(origin,))


def test_streaming_methods_come_from_the_descriptor(tmp_path: Path) -> None:
    # The health service's Watch and WukongService's WatchWukong: streams get routes without a timeout.
    from google.protobuf import descriptor_pb2
    from grpc_health.v1 import health_pb2

    file = descriptor_pb2.FileDescriptorProto()
    health_pb2.DESCRIPTOR.CopyToProto(file)
    descriptor_set = tmp_path / "health.binpb"
    descriptor_set.write_bytes(descriptor_pb2.FileDescriptorSet(file=[file]).SerializeToString())

    assert config.streaming_methods(descriptor_set, ("grpc.health.v1.Health",)) == ["/grpc.health.v1.Health/Watch"]
    assert config.streaming_methods(devstack.DESCRIPTOR, ("novasphere.v1.WukongService",)) == [
        "/novasphere.v1.WukongService/WatchWukong"
    ]


def test_envoy_accepts_the_tls_listener_with_alpn_hsts_and_trusted_hops(tmp_path: Path) -> None:
    tls = pki.edge(tmp_path / "edge")
    settings = _settings(
        tls=config.TlsFiles(tls.serving_cert, tls.serving_key),
        xff_num_trusted_hops=1,
        hsts_max_age=datetime.timedelta(days=2),
    )
    rendered = config.render_json(settings)

    result = _validate(rendered, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    listener = json.loads(rendered)["staticResources"]["listeners"][0]
    context = listener["filterChains"][0]["transportSocket"]["typedConfig"]["commonTlsContext"]
    assert context["alpnProtocols"] == ["h2", "http/1.1"]
    manager = listener["filterChains"][0]["filters"][0]["typedConfig"]
    assert manager["xffNumTrustedHops"] == 1
    added = {h["header"]["key"]: h["header"]["value"] for h in manager["routeConfig"]["responseHeadersToAdd"]}
    assert added == {"x-content-type-options": "nosniff", "strict-transport-security": "max-age=172800"}


def test_plain_http_sends_no_hsts() -> None:
    manager = json.loads(config.render_json(_settings()))["staticResources"]["listeners"][0]["filterChains"][0]
    assert "transportSocket" not in manager
    assert "strict-transport-security" not in json.dumps(manager)


def _command_line(tmp_path: Path, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "novasphere_envoy", "--descriptor", str(devstack.DESCRIPTOR), *options],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_command_line_writes_a_config_envoy_accepts(tmp_path: Path) -> None:
    """`python -m novasphere_envoy` renders the same configuration for a pod's sidecar, serving TLS."""
    tls = pki.edge(tmp_path / "edge")
    out = tmp_path / "pod.json"
    done = _command_line(
        tmp_path,
        "--listen",
        "127.0.0.2:8443",
        "--tls-cert",
        str(tls.serving_cert),
        "--tls-key",
        str(tls.serving_key),
        "--xff-trusted-hops",
        "1",
        "--cors-origin",
        "https://console.example",
        "--out",
        str(out),
    )
    assert done.returncode == 0, done.stderr

    result = _validate(out.read_text(), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    listener = json.loads(out.read_text())["staticResources"]["listeners"][0]
    assert listener["address"]["socketAddress"] == {"address": "127.0.0.2", "portValue": 8443}
    assert listener["filterChains"][0]["transportSocket"]["name"] == "envoy.transport_sockets.tls"


def test_the_command_line_refuses_the_null_origin(tmp_path: Path) -> None:
    refused = _command_line(tmp_path, "--plaintext", "--cors-origin", "null")

    assert refused.returncode == 2
    assert "never null" in refused.stderr


def test_the_command_line_serves_plain_http_only_when_told(tmp_path: Path) -> None:
    refused = _command_line(tmp_path)
    assert refused.returncode == 2
    assert "--plaintext" in refused.stderr

    plain = _command_line(tmp_path, "--plaintext")
    assert plain.returncode == 0, plain.stderr
    assert "transportSocket" not in plain.stdout


def test_envoy_accepts_unix_socket_upstreams_and_admin_and_shares_its_port(tmp_path: Path) -> None:
    """A pod on a hostNetwork node: the API server's listeners and Envoy's admin on unix sockets (Address.pipe), the
    public listener bound with SO_REUSEPORT so the node's Envoys share it."""
    settings = _settings(
        grpc_upstream=local_http.UnixSocket("/run/novasphere/grpc.sock"),
        console_upstream=local_http.UnixSocket("/run/novasphere/console.sock"),
        admin=local_http.UnixSocket("/run/novasphere/envoy-admin.sock"),
    )
    rendered = config.render_json(settings)

    result = _validate(rendered, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    bootstrap = json.loads(rendered)
    assert bootstrap["admin"]["address"] == {"pipe": {"path": "/run/novasphere/envoy-admin.sock", "mode": 0o600}}
    endpoints = {
        cluster["name"]: cluster["loadAssignment"]["endpoints"][0]["lbEndpoints"][0]["endpoint"]["address"]
        for cluster in bootstrap["staticResources"]["clusters"]
    }
    assert endpoints == {
        "grpc_api": {"pipe": {"path": "/run/novasphere/grpc.sock"}},
        "console": {"pipe": {"path": "/run/novasphere/console.sock"}},
    }
    assert bootstrap["staticResources"]["listeners"][0]["enableReusePort"] is True


@pytest.mark.parametrize("host", ["0.0.0.0", "10.0.0.5", "envoy.local"])  # noqa: S104 (refused)
def test_the_admin_interface_is_kept_off_the_network(host: str) -> None:
    with pytest.raises(ValueError, match="give a loopback address"):
        _settings(admin=local_http.HostPort(host, 9901))


def test_the_command_line_takes_unix_sockets_and_an_explicit_render(tmp_path: Path) -> None:
    out = tmp_path / "pod.json"
    done = subprocess.run(
        [
            *(sys.executable, "-m", "novasphere_envoy", "render", "--descriptor", str(devstack.DESCRIPTOR)),
            *("--plaintext", "--grpc-upstream", "unix:/run/novasphere/grpc.sock"),
            *("--console-upstream", "unix:/run/novasphere/console.sock"),
            *("--admin", "unix:/run/novasphere/envoy-admin.sock", "--out", str(out)),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    bootstrap = json.loads(out.read_text())
    assert bootstrap["admin"]["address"]["pipe"]["path"] == "/run/novasphere/envoy-admin.sock"
    assert "unix:/run/novasphere/grpc.sock" not in out.read_text()  # a pipe address, not a host named "unix"

    for flag, value, message in (
        ("--grpc-upstream", "unix:run/grpc.sock", "absolute path"),
        ("--admin", "0.0.0.0:9901", "give a loopback address"),
        ("--listen", "unix:/run/envoy.sock", "expected host:port"),
    ):
        refused = _command_line(tmp_path, "--plaintext", flag, value)
        assert refused.returncode == 2, (flag, value)
        assert message in refused.stderr, refused.stderr


def test_envoy_accepts_tracing_to_a_collector_by_name_or_address(tmp_path: Path) -> None:
    for collector, discovery in (("otel-collector.monitoring.svc", "STRICT_DNS"), ("127.0.0.1", "STATIC")):
        settings = _settings(otlp_collector=local_http.HostPort(collector, 4317), trace_sample_percent=12.5)
        rendered = json.loads(config.render_json(settings))
        manager = rendered["staticResources"]["listeners"][0]["filterChains"][0]["filters"][0]["typedConfig"]
        tracer = manager["tracing"]["provider"]
        cluster = next(c for c in rendered["staticResources"]["clusters"] if c["name"] == config.OTLP_CLUSTER)

        assert tracer["name"] == "envoy.tracers.opentelemetry"
        assert manager["tracing"]["randomSampling"] == {"value": 12.5}
        assert tracer["typedConfig"]["grpcService"]["envoyGrpc"]["clusterName"] == config.OTLP_CLUSTER
        assert cluster.get("type", "STATIC") == discovery
        result = _validate(json.dumps(rendered), tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr


def test_envoy_traces_nothing_unless_a_collector_is_given() -> None:
    rendered = json.loads(config.render_json(_settings()))
    manager = rendered["staticResources"]["listeners"][0]["filterChains"][0]["filters"][0]["typedConfig"]

    assert "tracing" not in manager
    assert config.OTLP_CLUSTER not in {c["name"] for c in rendered["staticResources"]["clusters"]}


def test_the_stats_listener_passes_prometheus_stats_and_nothing_else_of_the_admin_interface(tmp_path: Path) -> None:
    """As in a pod: the admin interface on a unix socket, Prometheus scraping Envoy's stats on a port of their own."""
    settings = _settings(
        listen_port=0,
        admin=local_http.UnixSocket(str(tmp_path / "envoy-admin.sock")),
        stats_listen=local_http.HostPort("127.0.0.1", 0),
    )
    envoy = devstack.start_envoy(settings, state_dir=tmp_path, name="stats-envoy")
    try:
        stats = local_http.HostPort("127.0.0.1", devstack.listener_port(envoy.admin, "stats"))
        status, body = local_http.request(stats, config.STATS_PATH, timeout=10)
        assert status == 200
        assert "# TYPE envoy_server_live gauge" in body
        assert 'envoy_http_local_rate_limit_rate_limited{envoy_local_http_ratelimit_prefix="login"}' in body
        for method, path in [("POST", "/quitquitquit"), ("POST", "/drain_listeners"), ("GET", "/config_dump")]:
            assert local_http.request(stats, path, method=method, timeout=10)[0] == 404, path
        assert local_http.request(stats, config.STATS_PATH, method="POST", timeout=10)[0] == 404
        assert devstack.envoy_ready(envoy.admin)
    finally:
        envoy.process.stop()


def test_the_command_line_adds_the_stats_listener_only_when_asked(tmp_path: Path) -> None:
    def listeners(*options: str) -> dict[str, Any]:
        rendered = _command_line(tmp_path, "--plaintext", *options)
        assert rendered.returncode == 0, rendered.stderr
        return {listener["name"]: listener for listener in json.loads(rendered.stdout)["staticResources"]["listeners"]}

    assert list(listeners()) == ["api"]
    with_stats = listeners("--stats-listen", "127.0.0.2:9902")
    assert with_stats["stats"]["address"] == {"socketAddress": {"address": "127.0.0.2", "portValue": 9902}}
    refused = _command_line(tmp_path, "--plaintext", "--stats-listen", "unix:/run/stats.sock")
    assert refused.returncode != 0
    assert "expected host:port" in refused.stderr
