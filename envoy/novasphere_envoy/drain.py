"""`python -m novasphere_envoy.drain`: the sidecar's preStop hook, Envoy's half of a zero-drop shutdown.

    python -m novasphere_envoy.drain --admin unix:/run/novasphere/envoy-admin.sock --timeout 60

`--admin` is Envoy's admin address, host:port or unix:/path.

It asks Envoy to drain its listener (`/drain_listeners?graceful`): clients are told to go (HTTP/2 GOAWAY, HTTP/1.1
`Connection: close`) and the listener closes after Envoy's `--drain-time-s`. It then waits until no request is in
flight any more: the API server, draining on its own SIGTERM, ends its streams with an in-band event that tells
clients to reconnect elsewhere, and finishes its unary calls. Only then does it return, so the SIGTERM the kubelet
sends Envoy next cuts nothing. The API server's NOVASPHERE_DRAIN_SECONDS must exceed Envoy's drain time, so the API
server still serves everything Envoy accepts until its listener has closed.
"""

from __future__ import annotations

import argparse
import http.client
import sys
import time

from novasphere_envoy import local_http

LISTENER_STOPPED = "listener_manager.listener_stopped"
REQUESTS_IN_FLIGHT = "http.ingress.downstream_rq_active"
POLL_SECONDS = 0.2
REQUEST_TIMEOUT_SECONDS = 10.0


def drain(admin: local_http.Address, *, timeout: float) -> bool:
    """Drains the Envoy whose admin interface is at `admin`; True once its listener has closed and no request is left,
    False if `timeout` seconds passed first."""
    _admin(admin, "/drain_listeners?graceful", method="POST")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stats = _stats(admin)
        if stats.get(LISTENER_STOPPED, 0) >= 1 and stats.get(REQUESTS_IN_FLIGHT, 0) == 0:
            return True
        time.sleep(POLL_SECONDS)
    return False


def _stats(admin: local_http.Address) -> dict[str, int]:
    text = _admin(admin, f"/stats?filter=^({LISTENER_STOPPED}|{REQUESTS_IN_FLIGHT})$")
    found = {}
    for line in text.splitlines():
        name, _, value = line.partition(": ")
        if value.strip().isdigit():
            found[name.strip()] = int(value)
    return found


def _admin(admin: local_http.Address, path: str, *, method: str = "GET") -> str:
    status, body = local_http.request(admin, path, method=method, timeout=REQUEST_TIMEOUT_SECONDS)
    if status != 200:
        raise http.client.HTTPException(f"{method} {path} answered {status}: {body.strip()[:200]}")
    return body


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m novasphere_envoy.drain", description=__doc__.splitlines()[0])
    parser.add_argument("--admin", default="127.0.0.1:9901", help="Envoy's admin address, host:port or unix:/path")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait at most")
    args = parser.parse_args()
    try:
        admin = local_http.parse_address(args.admin)
    except ValueError as error:
        parser.error(f"--admin: {error}")
    try:
        drained = drain(admin, timeout=args.timeout)
    except (http.client.HTTPException, OSError) as error:
        sys.exit(f"novasphere_envoy.drain: Envoy's admin at {args.admin} did not answer: {error}")
    if not drained:
        sys.exit(f"novasphere_envoy.drain: requests still in flight after {args.timeout:g} s")


if __name__ == "__main__":
    main()
