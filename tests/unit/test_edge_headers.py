"""What the API server believes of Envoy's headers: the client's address and the origin it reached, only from a
loopback or unix-socket peer (Envoy in the pod); the console URL built from them."""

from __future__ import annotations

import pytest

from devcluster import procs
from novasphere_envoy import config as envoy_config
from server.console.sessions import console_base
from server.transport import edge

FROM_ENVOY = (("x-novasphere-client-address", "203.0.113.7"), ("x-novasphere-public-origin", "https://vms.example:443"))


def test_the_header_names_are_the_ones_envoy_sets() -> None:
    assert edge.CLIENT_ADDRESS_HEADER == envoy_config.CLIENT_ADDRESS_HEADER
    assert edge.PUBLIC_ORIGIN_HEADER == envoy_config.PUBLIC_ORIGIN_HEADER


@pytest.mark.parametrize(
    ("peer", "address", "origin"),
    [
        ("ipv4:127.0.0.1:41000", "203.0.113.7", "https://vms.example:443"),
        ("ipv6:[::1]:41000", "203.0.113.7", "https://vms.example:443"),
        ("unix:", "203.0.113.7", "https://vms.example:443"),  # the pod's socket folder: Envoy of a hostNetwork pod
        ("ipv4:10.1.2.3:41000", "10.1.2.3", ""),  # not Envoy: its own claims are not believed
        ("ipv6:[2001:db8::5]:41000", "2001:db8::5", ""),
    ],
)
def test_envoys_headers_are_believed_from_loopback_and_unix_sockets_only(peer: str, address: str, origin: str) -> None:
    assert edge.client_address(FROM_ENVOY, peer) == address
    assert edge.public_origin(FROM_ENVOY, peer) == origin


def test_without_envoys_headers_the_peer_is_the_client() -> None:
    assert edge.client_address((), "ipv4:127.0.0.1:5000") == "127.0.0.1"
    assert edge.public_origin((), "ipv4:127.0.0.1:5000") == ""
    assert edge.public_origin((("x-novasphere-public-origin", "javascript:alert(1)"),), "ipv4:127.0.0.1:1") == ""


def test_the_console_url_follows_the_door_the_request_came_through() -> None:
    assert console_base("wss://vms.example", "https://other:8443", "ws://127.0.0.1:5") == "wss://vms.example"
    assert console_base("", "https://vms.example:8443", "ws://127.0.0.1:5") == "wss://vms.example:8443"
    assert console_base("", "http://127.0.0.1:8080", "ws://127.0.0.1:5") == "ws://127.0.0.1:8080"
    assert console_base("", "", "ws://127.0.0.1:5") == "ws://127.0.0.1:5"


def test_a_port_taken_between_choosing_and_binding_is_chosen_again() -> None:
    tried: list[list[int]] = []

    def start(ports: list[int]) -> int:
        tried.append(ports)
        if len(tried) < 3:
            raise procs.ProcessError("envoy exited: cannot bind '127.0.0.1:1': Address already in use")
        return ports[0]

    assert procs.on_free_ports(1, start) == tried[-1][0]
    assert len(tried) == 3


def test_other_start_failures_are_not_retried() -> None:
    def start(ports: list[int]) -> int:
        raise procs.ProcessError("api-server exited with code 1: the service account may not list wukongs")

    with pytest.raises(procs.ProcessError, match="may not list"):
        procs.on_free_ports(1, start)
