"""The local Kubernetes control plane that `make run`, the tests and the benchmarks run against.

A real etcd + kube-apiserver + kube-controller-manager on free loopback ports (nothing here is a mock):

    with devcluster.running(tmp_dir) as cluster:
        client = kubernetes.config.new_client_from_config(cluster.kubeconfig)

The control plane lives in a supervisor process (`devcluster.supervisor`) that dies with the caller, so no process
outlives a run however it ends. `make cluster-up` / `make cluster-down` keep one running by hand instead.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from devcluster import binaries, procs, supervisor
from devcluster.controlplane import ClusterInfo

__all__ = ["ClusterInfo", "running", "start_detached", "stop_detached"]

# Covers a cold start on a busy 2-core machine; building Kubernetes happens before this clock starts.
READY_TIMEOUT = 180.0


@contextlib.contextmanager
def running(state_dir: Path) -> Iterator[ClusterInfo]:
    """A control plane for the length of the `with` block, its files (certs, kubeconfig, logs) in `state_dir`."""
    binaries.ensure()  # in this process, so a first-time build is visible and not counted against READY_TIMEOUT
    state_dir.mkdir(parents=True, exist_ok=True)
    cluster_file = state_dir / supervisor.CLUSTER_FILE
    cluster_file.unlink(missing_ok=True)
    owner = procs.spawn(
        "devcluster supervisor",
        [sys.executable, "-m", "devcluster", "serve", "--state-dir", str(state_dir)],
        log_path=state_dir / "logs" / "supervisor.log",
    )
    try:
        procs.wait_until(
            cluster_file.exists, timeout=READY_TIMEOUT, what="the control plane to be ready", processes=[owner]
        )
        yield ClusterInfo.read(cluster_file)
    finally:
        owner.stop(timeout=60)


def start_detached(state_dir: Path) -> ClusterInfo:
    """Starts a control plane that outlives this process (for `make cluster-up`); returns once it is ready."""
    cluster_file = state_dir / supervisor.CLUSTER_FILE
    if cluster_file.exists():
        info = ClusterInfo.read(cluster_file)
        if procs.pid_alive(info.supervisor_pid):
            return info
        cluster_file.unlink()
    binaries.ensure()
    (state_dir / supervisor.PID_FILE).unlink(missing_ok=True)
    log_path = state_dir / "logs" / "supervisor.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        # `setsid --fork` detaches the supervisor from this process entirely (new session, reparented to init), so it
        # outlives `make cluster-up` and is never left as this process's unreaped child.
        subprocess.run(
            ["setsid", "--fork", sys.executable, "-m", "devcluster", "serve", "--state-dir", str(state_dir)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            check=True,
        )
    pid_file = state_dir / supervisor.PID_FILE
    deadline = time.monotonic() + READY_TIMEOUT
    while not cluster_file.exists():
        if time.monotonic() > deadline:
            raise procs.ProcessError(f"the control plane was not ready in {READY_TIMEOUT:.0f} s; see {log_path}")
        if pid_file.exists() and not procs.pid_alive(int(pid_file.read_text())):
            raise procs.ProcessError(f"the control plane failed to start; see {log_path}")
        time.sleep(0.2)
    return ClusterInfo.read(cluster_file)


def stop_detached(state_dir: Path, timeout: float = 60.0) -> bool:
    """Stops the control plane `start_detached` started; False if none was running."""
    cluster_file = state_dir / supervisor.CLUSTER_FILE
    if not cluster_file.exists():
        return False
    pid = ClusterInfo.read(cluster_file).supervisor_pid
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while procs.pid_alive(pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            break
        time.sleep(0.2)
    cluster_file.unlink(missing_ok=True)
    return True
