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
    ],
)
def test_client_type(metadata: tuple[tuple[str, str], ...], expected: str) -> None:
    assert client_type(metadata) == expected
