from __future__ import annotations

import pytest

from server.transport.interceptors import client_type


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ((), "grpc"),
        ((("x-novasphere-door", "ct=application/grpc"),), "grpc"),
        ((("x-novasphere-door", "ct=application/grpc-web+proto"),), "grpc-web"),
        ((("x-novasphere-door", "ct=application/grpc-web-text"),), "grpc-web"),
        ((("x-novasphere-door", "ct="),), "rest"),
        ((("x-novasphere-door", "ct=application/json"),), "rest"),
        ((("x-client-type", "Mobile"), ("x-novasphere-door", "ct=")), "mobile"),
        ((("x-client-type", "vmctl"),), "vmctl"),
        ((("x-client-type", "anything-else"),), "other"),  # label values stay bounded
        ((("x-client-type", "Flutter"),), "flutter"),
        ((("user-agent", "Mozilla/5.0 (X11) AppleWebKit/537.36 NovaSphere/1.0 Electron/33.0.0"),), "electron"),
        ((("user-agent", "Dart/3.5 (dart:io)"), ("x-novasphere-door", "ct=application/json")), "flutter"),
        ((("user-agent", "vmctl/0.1"),), "cli"),
        ((("user-agent", "Mozilla/5.0 (X11; Linux x86_64) Chrome/130"), ("x-novasphere-door", "ct=")), "web"),
        ((("user-agent", "grpc-python/1.85.1 grpc-c/50.0.0 (linux; chttp2)"),), "grpc"),
    ],
)
def test_client_type(metadata: tuple[tuple[str, str], ...], expected: str) -> None:
    assert client_type(metadata) == expected
