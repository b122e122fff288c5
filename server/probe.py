"""`python -m server.probe live|ready --admin ADDRESS`: the API server's probes for an exec probe, without a shell.

    python -m server.probe ready --admin unix:/run/novasphere/admin.sock

Exits 0 iff the admin listener (NOVASPHERE_ADMIN_LISTEN: host:port or unix:/path) answers `/livez` or `/readyz`
with 200 within `--timeout` seconds, else 1 with a one-line reason on stderr. A kubelet on a hostNetwork node cannot
reach a pod's loopback or unix socket with an HTTP probe, so it runs this in the container. Imports the standard
library and the stdlib-only `novasphere_envoy.local_http` alone: it starts in tens of milliseconds, every few seconds.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from novasphere_envoy import local_http

PATHS = {"live": "/livez", "ready": "/readyz"}


def check(probe: str, admin: local_http.Address, *, timeout: float) -> str | None:
    """None when the probe passes, else why not (one line)."""
    return local_http.probe_failure(admin, PATHS[probe], timeout=timeout, what=PATHS[probe])


def main(argv: Sequence[str] | None = None) -> None:
    def probe_argument(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("probe", choices=sorted(PATHS), help="live: /livez, ready: /readyz")

    def verdict(args: argparse.Namespace, admin: local_http.Address) -> str | None:
        return check(args.probe, admin, timeout=args.timeout)

    local_http.run_probe("python -m server.probe", __doc__.splitlines()[0], argv, verdict, probe_argument)


if __name__ == "__main__":
    main()
