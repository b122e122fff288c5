"""What Envoy tells the API server about a request: the client's address and the origin the client reached.

Envoy sets both headers on every request it forwards, replacing whatever a client sent (`envoy/`'s
`CLIENT_ADDRESS_HEADER` and `PUBLIC_ORIGIN_HEADER`). They are believed only from Envoy in the same pod: a loopback
peer, or a peer on a unix socket (only what mounts the pod's socket folder can connect to it); a call that reached
the API server some other way gets its own peer address and no public origin.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

CLIENT_ADDRESS_HEADER = "x-novasphere-client-address"
PUBLIC_ORIGIN_HEADER = "x-novasphere-public-origin"
MAX_ADDRESS = 64
UNIX_PEER = "unix:"
"""A peer on a unix socket, as gRPC names it (the connecting end of a unix socket has no path)."""


def peer_address(peer: str) -> str:
    """The address in a gRPC peer string (`ipv4:127.0.0.1:5000`, `ipv6:[::1]:5000`, `unix:/path`)."""
    kind, _, rest = peer.partition(":")
    if kind == "ipv4":
        return rest.rpartition(":")[0]
    if kind == "ipv6":
        return rest.rpartition(":")[0].strip("[]")
    return peer


def from_envoy(address: str) -> bool:
    """Whether a peer at `address` is the sidecar Envoy (on loopback or a unix socket), whose headers are believed."""
    if address.startswith(UNIX_PEER):
        return True
    try:
        return ipaddress.ip_address(address.partition("%")[0]).is_loopback
    except ValueError:
        return False


def client_address(metadata: Iterable[tuple[str, str | bytes]], peer: str) -> str:
    """The client's address: Envoy's word for it, else the peer's."""
    address = peer_address(peer)
    if from_envoy(address):
        reported = _header(metadata, CLIENT_ADDRESS_HEADER)
        if reported:
            return reported[:MAX_ADDRESS]
    return address[:MAX_ADDRESS]


def public_origin(metadata: Iterable[tuple[str, str | bytes]], peer: str) -> str:
    """`https://host:port` as the client reached Envoy, or "" for a call that did not come through Envoy."""
    return origin_from_envoy(_header(metadata, PUBLIC_ORIGIN_HEADER), peer_address(peer))


def origin_from_envoy(reported: str, address: str) -> str:
    """The public origin Envoy `reported` for a request from `address`, or "" when that is not Envoy or the value is
    not an origin."""
    if not from_envoy(address):
        return ""
    origin = reported.strip()
    scheme, separator, authority = origin.partition("://")
    if not separator or scheme not in ("http", "https") or not authority or "/" in authority:
        return ""
    return origin


def _header(metadata: Iterable[tuple[str, str | bytes]], name: str) -> str:
    return next((value for key, value in metadata if key == name and isinstance(value, str)), "").strip()
