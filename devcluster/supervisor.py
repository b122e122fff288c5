"""The process that owns a control plane: `python -m devcluster serve --state-dir DIR`.

It starts etcd, kube-apiserver and kube-controller-manager, writes `DIR/cluster.json` once all are ready, watches
them, and stops them in order (wiping etcd's tmpfs data) on SIGTERM or SIGINT, or when one of them dies. Keeping the
control plane in its own process means a test runner or `make run` that is killed outright still has it shut down
cleanly: this process gets SIGTERM from the kernel (see `procs.spawn`) instead of vanishing.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType

from devcluster import binaries, controlplane, procs

CLUSTER_FILE = "cluster.json"
PID_FILE = "supervisor.pid"
POLL_INTERVAL = 0.5


class _StopRequested(Exception):
    """Raised from the signal handler so every context manager on the stack cleans up."""


def serve(state_dir: Path) -> int:
    """Runs until signalled; 0 after a requested stop, 1 if a control-plane process died."""

    def request_stop(signum: int, frame: FrameType | None) -> None:
        for handled in (signal.SIGTERM, signal.SIGINT):
            signal.signal(handled, signal.SIG_IGN)  # a second signal must not interrupt the clean-up
        raise _StopRequested(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / PID_FILE).write_text(str(os.getpid()))
    cluster_file = state_dir / CLUSTER_FILE
    try:
        programs = binaries.ensure()
        with controlplane.running(state_dir, programs) as (info, processes):
            info.write(cluster_file)
            print(f"devcluster: ready at {info.server} (kubeconfig {info.kubeconfig})", flush=True)
            while True:
                time.sleep(POLL_INTERVAL)
                for process in processes:
                    process.check_running()
    except _StopRequested as stop:
        print(f"devcluster: {stop}, stopping", flush=True)
        return 0
    except procs.ProcessError as error:
        print(f"devcluster: {error}", file=sys.stderr, flush=True)
        return 1
    finally:
        cluster_file.unlink(missing_ok=True)
