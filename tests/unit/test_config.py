from __future__ import annotations

import os
from pathlib import Path

import pytest

from server.config import HostPort, Settings, SettingsError, UnixSocket
from server.tracing import OtlpProtocol


def test_defaults_are_safe_for_a_deployment() -> None:
    settings = Settings.from_env({})

    assert settings.grpc_listen == HostPort("127.0.0.1", 50051)
    assert settings.admin_listen == HostPort("127.0.0.1", 9464)
    assert settings.reflection is False
    assert settings.kubeconfig is None  # in-cluster service account
    assert settings.kube_threads == 32


def test_every_setting_is_read(tmp_path: Path) -> None:
    config = tmp_path / "kubeconfig"
    config.write_text("{}")
    settings = Settings.from_env(
        {
            "NOVASPHERE_GRPC_LISTEN": "[::1]:6000",
            "NOVASPHERE_ADMIN_LISTEN": "127.0.0.2:6001",
            "NOVASPHERE_KUBECONFIG": str(config),
            "NOVASPHERE_KUBE_THREADS": "8",
            "NOVASPHERE_DEV_USER": "ada",
            "NOVASPHERE_DEV_TENANT": "demo",
            "NOVASPHERE_DEV_PERMISSIONS": "vm:query, vm:start",
            "NOVASPHERE_WATCH_BUFFER": "64",
            "NOVASPHERE_WATCH_BOOKMARK_SECONDS": "2",
            "NOVASPHERE_TOMBSTONE_SECONDS": "120",
            "NOVASPHERE_CURSOR_WAIT_SECONDS": "1.5",
            "NOVASPHERE_REFLECTION": "yes",
            "NOVASPHERE_SHUTDOWN_GRACE_SECONDS": "2.5",
            "NOVASPHERE_MAX_MESSAGE_BYTES": "2048",
            "NOVASPHERE_LOG_LEVEL": "debug",
            "NOVASPHERE_LOG_FORMAT": "Text",
            "UNRELATED": "ignored",
        }
    )

    assert settings.grpc_listen == HostPort("::1", 6000)
    assert str(settings.grpc_listen) == "[::1]:6000"
    assert settings.kubeconfig == config
    assert (settings.kube_threads, settings.reflection) == (8, True)
    assert (settings.dev_user, settings.dev_tenant, settings.dev_permissions) == (
        "ada",
        "demo",
        frozenset({"vm:query", "vm:start"}),
    )
    assert (settings.watch_buffer, settings.watch_bookmark_seconds, settings.tombstone_seconds) == (64, 2.0, 120.0)
    assert settings.cursor_wait_seconds == 1.5
    assert (settings.shutdown_grace_seconds, settings.max_message_bytes, settings.log_level) == (2.5, 2048, "DEBUG")
    assert settings.log_format == "text"


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("NOVASPHERE_GRPC_LISTEN", "50051", "expected host:port"),
        ("NOVASPHERE_GRPC_LISTEN", "127.0.0.1:70000", "expected host:port"),
        ("NOVASPHERE_GRPC_LISTEN", "unix:run/grpc.sock", "expected unix: and an absolute path"),
        ("NOVASPHERE_CONSOLE_LISTEN", "unix:/no/such/folder/console.sock", "folder /no/such/folder does not exist"),
        ("NOVASPHERE_ADMIN_LISTEN", "unix:", "expected unix: and an absolute path"),
        ("NOVASPHERE_ADMIN_LISTEN", "/run/admin.sock", "or unix:/absolute/path"),
        ("NOVASPHERE_KUBE_THREADS", "many", "invalid literal"),
        ("NOVASPHERE_KUBE_THREADS", "1000", "between 1 and 256"),
        ("NOVASPHERE_REFLECTION", "maybe", "expected true or false"),
        ("NOVASPHERE_SHUTDOWN_GRACE_SECONDS", "-1", "between 0 and 300"),
        ("NOVASPHERE_LOG_LEVEL", "LOUD", "expected DEBUG"),
        ("NOVASPHERE_LOG_FORMAT", "xml", "expected json or text"),
        ("NOVASPHERE_DEV_TENANT", " ", "must not be empty"),
        ("NOVASPHERE_DEV_PERMISSIONS", "vm:query,rm -rf", "malformed permission"),
        ("NOVASPHERE_WATCH_BUFFER", "1", "between 8 and 100000"),
    ],
)
def test_a_bad_value_names_the_variable(variable: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({variable: value})

    assert str(raised.value).startswith(f"{variable} has value {value!r}: ")
    assert message in str(raised.value)


def test_an_unknown_variable_is_refused_so_typos_are_not_ignored() -> None:
    with pytest.raises(SettingsError, match="unknown setting\\(s\\) NOVASPHERE_GRPC_LISTN; known: "):
        Settings.from_env({"NOVASPHERE_GRPC_LISTN": "127.0.0.1:1"})


def test_a_prometheus_url_is_a_plain_base_url() -> None:
    assert Settings.from_env({}).prometheus_url == ""
    url = Settings.from_env({"NOVASPHERE_PROMETHEUS_URL": "http://prometheus.monitoring.svc:9090/"}).prometheus_url
    assert url == "http://prometheus.monitoring.svc:9090"
    for bad, reason in (
        ("prometheus:9090", r"expected an http\(s\) URL"),
        ("https://admin:secret@prometheus:9090", "must not carry credentials"),
        ("http://prometheus:9090/?x=1", "without query"),
    ):
        with pytest.raises(SettingsError, match=reason):
            Settings.from_env({"NOVASPHERE_PROMETHEUS_URL": bad})


def test_listeners_may_be_unix_sockets(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "NOVASPHERE_GRPC_LISTEN": f"unix:{tmp_path}/grpc.sock",
            "NOVASPHERE_ADMIN_LISTEN": f"unix:{tmp_path}/admin.sock",
            "NOVASPHERE_CONSOLE_LISTEN": f"unix:{tmp_path}/console.sock",
        }
    )

    assert settings.grpc_listen == UnixSocket(tmp_path / "grpc.sock")
    assert str(settings.grpc_listen) == f"unix:{tmp_path}/grpc.sock"  # as grpc's add_insecure_port takes it
    assert (settings.admin_listen, settings.console_listen) == (
        UnixSocket(tmp_path / "admin.sock"),
        UnixSocket(tmp_path / "console.sock"),
    )


def test_the_replica_id_is_unique_per_process_after_the_name_given() -> None:
    """A container restarted in the same pod must not find itself holding its predecessor's Lease."""
    first = Settings.from_env({"NOVASPHERE_REPLICA_ID": "novasphere-api-5c7d9-x2x9q"}).replica_id
    second = Settings.from_env({"NOVASPHERE_REPLICA_ID": "novasphere-api-5c7d9-x2x9q"}).replica_id

    assert first.startswith(f"novasphere-api-5c7d9-x2x9q-{os.getpid()}-")
    assert first != second


def test_tracing_is_off_unless_a_collector_is_named() -> None:
    assert Settings.from_env({}).otlp_endpoint == ""
    settings = Settings.from_env(
        {
            "NOVASPHERE_OTLP_ENDPOINT": "http://otel-collector.monitoring:4318/",
            "NOVASPHERE_OTLP_PROTOCOL": "http/protobuf",
            "NOVASPHERE_TRACE_SAMPLE_RATIO": "0.1",
        }
    )
    assert (settings.otlp_endpoint, settings.otlp_protocol, settings.trace_sample_ratio) == (
        "http://otel-collector.monitoring:4318",
        OtlpProtocol.HTTP,
        0.1,
    )
    for variable, bad in (
        ("NOVASPHERE_OTLP_ENDPOINT", "otel-collector:4317"),
        ("NOVASPHERE_OTLP_PROTOCOL", "zipkin"),
        ("NOVASPHERE_TRACE_SAMPLE_RATIO", "2"),
    ):
        with pytest.raises(SettingsError, match=variable):
            Settings.from_env({variable: bad})
