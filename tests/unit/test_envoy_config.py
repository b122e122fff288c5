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
from novasphere_envoy import config


def _settings(**overrides: Any) -> config.SidecarSettings:
    settings = devstack.envoy_settings(grpc=50051, console=50052, tls=None, listen_port=8443)
    return dataclasses.replace(settings, **overrides)


def _validate(rendered: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "envoy.json"
    path.write_text(rendered)
    return subprocess.run(
        [devstack.envoy_binary(), "--mode", "validate", "-c", str(path), "--disable-hot-restart"],
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


@pytest.mark.parametrize(("status", "code"), [(400, 3), (404, 5), (413, 8), (503, 14), (504, 4)])
def test_local_replies_map_http_status_to_the_grpc_code(status: int, code: int) -> None:
    assert config.LOCAL_REPLY_CODES[status] == code


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
    assert manager["routeConfig"]["responseHeadersToAdd"][0]["header"] == {
        "key": "strict-transport-security",
        "value": "max-age=172800",
    }


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


def test_the_command_line_serves_plain_http_only_when_told(tmp_path: Path) -> None:
    refused = _command_line(tmp_path)
    assert refused.returncode == 2
    assert "--plaintext" in refused.stderr

    plain = _command_line(tmp_path, "--plaintext")
    assert plain.returncode == 0, plain.stderr
    assert "transportSocket" not in plain.stdout
