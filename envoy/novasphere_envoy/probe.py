"""`python -m novasphere_envoy.probe --admin ADDRESS`: the sidecar's readiness for an exec probe, without a shell.

    python -m novasphere_envoy.probe --admin unix:/run/novasphere/envoy-admin.sock

Exits 0 iff Envoy's admin `/ready` answers 200 `LIVE` within `--timeout` seconds (not while it initialises, nor
after `/healthcheck/fail`), else 1 with a one-line reason on stderr. A drain (`novasphere_envoy.drain`) leaves it LIVE:
the drained listener is closed, so new connections go to the node's other Envoys sharing the port. Standard library
only, so it starts in tens of milliseconds.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from novasphere_envoy import local_http


def check(admin: local_http.Address, *, timeout: float) -> str | None:
    """None when Envoy is ready, else why not (one line)."""
    return local_http.probe_failure(admin, "/ready", timeout=timeout, what="Envoy's /ready", body="LIVE")


def main(argv: Sequence[str] | None = None) -> None:
    def verdict(args: argparse.Namespace, admin: local_http.Address) -> str | None:
        return check(admin, timeout=args.timeout)

    local_http.run_probe("python -m novasphere_envoy.probe", __doc__.splitlines()[0], argv, verdict)


if __name__ == "__main__":
    main()
