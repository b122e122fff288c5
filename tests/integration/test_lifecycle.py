"""Processes start and stop as a developer and CI expect: `make run` and the control plane leave nothing running
however they end (Ctrl-C, SIGTERM, or SIGKILL of the runner), and `make cluster-up`/`cluster-down` work."""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

import devcluster
from devcluster import controlplane, procs
from tests import kube_helpers

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 240.0
STOP_TIMEOUT = 60.0


def _etcd_data_root(etcd_pid: int) -> Path:
    arguments = Path(f"/proc/{etcd_pid}/cmdline").read_bytes().split(b"\0")
    data_dir = next(a.decode().split("=", 1)[1] for a in arguments if a.startswith(b"--data-dir="))
    return Path(data_dir).parent  # the per-run tmpfs folder that holds data/ and owner.pid


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=lambda s: s.name)
def test_make_run_leaves_nothing_running(tmp_path: Path, stop_signal: signal.Signals) -> None:
    env_file = tmp_path / "env"
    log_path = tmp_path / "run.log"
    with log_path.open("wb") as log:
        runner = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "devcluster",
                "run",
                "--state-dir",
                str(tmp_path / "state"),
                "--env-file",
                str(env_file),
                "--edge-pki",
                str(tmp_path / "edge-pki"),
            ],
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        kube_helpers.eventually(
            lambda: env_file.exists() or runner.poll() is not None, timeout=START_TIMEOUT, what="make run to be ready"
        )
        assert runner.poll() is None, log_path.read_text()
        settings = dict(line.split("=", 1) for line in env_file.read_text().splitlines())
        assert {"KUBECONFIG", "NOVASPHERE_GRPC", "NOVASPHERE_HTTP", "NOVASPHERE_CA"} <= settings.keys()
        assert settings["NOVASPHERE_HTTP"].startswith("https://127.0.0.1:")  # TLS by default
        tls = ssl.create_default_context(cafile=settings["NOVASPHERE_CA"])
        demo = httpx.get(f"{settings['NOVASPHERE_HTTP']}/api/v1/wukongs", timeout=30, verify=tls)
        assert {w["name"] for w in demo.json()["wukongs"]} >= {"web-1", "db-1", "ci-runner"}
        assert demo.headers["strict-transport-security"].startswith("max-age=")
        credentials = {"username": settings["NOVASPHERE_DEMO_USER"], "password": settings["NOVASPHERE_DEMO_PASSWORD"]}

        def demo_login() -> dict[str, Any] | None:
            response = httpx.post(
                f"{settings['NOVASPHERE_HTTP']}/api/v1/auth/login", json=credentials, timeout=30, verify=tls
            )
            return dict(response.json()) if response.status_code == 200 else None

        identity = kube_helpers.eventually(demo_login, timeout=10, what="the demo user's login")["identity"]
        assert identity["tenantId"] == settings["NOVASPHERE_DEMO_TENANT"]
        assert "vm:start" in identity["permissions"]

        def console_link() -> dict[str, Any] | None:
            response = httpx.post(
                f"{settings['NOVASPHERE_HTTP']}/api/v1/wukongs/web-1/console",
                params={"namespace": "demo"},
                json={"protocol": "SERIAL"},
                timeout=30,
                verify=tls,
            )
            return dict(response.json()) if response.status_code == 200 else None  # web-1 may still be booting

        console = kube_helpers.eventually(console_link, timeout=60, what="a console link to web-1")
        assert console["consoleUrl"].startswith(settings["NOVASPHERE_HTTP"].replace("https://", "wss://") + "/ws/")

        cluster = controlplane.ClusterInfo.read(tmp_path / "state" / "cluster" / "cluster.json")
        pids = {**cluster.pids, **json.loads((tmp_path / "state" / "pids.json").read_text())}
        expected = {
            "etcd",
            "kube-apiserver",
            "kube-controller-manager",
            "simulator",
            "api-server",
            "envoy",
            "supervisor",
        }
        assert set(pids) >= expected
        tmpfs_dir = _etcd_data_root(pids["etcd"])

        runner.send_signal(stop_signal)
        runner.wait(STOP_TIMEOUT)

        try:
            kube_helpers.eventually(
                lambda: not any(procs.pid_alive(pid) for pid in pids.values()), timeout=STOP_TIMEOUT, what="exit"
            )
        except AssertionError:
            alive = {name: pid for name, pid in pids.items() if procs.pid_alive(pid)}
            raise AssertionError(f"still running {STOP_TIMEOUT:.0f} s after {stop_signal.name}: {alive}") from None
        assert not tmpfs_dir.exists()
        if stop_signal is not signal.SIGKILL:  # a killed runner cannot tidy its env file
            assert runner.returncode == 0, log_path.read_text()
            assert not env_file.exists()
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()


def test_cluster_up_and_down(tmp_path: Path) -> None:
    """`make cluster-up` leaves a control plane running after the command returns; `make cluster-down` stops it."""
    info = devcluster.start_detached(tmp_path)
    try:
        assert devcluster.start_detached(tmp_path) == info  # a second `up` finds the running one
        result = subprocess.run(
            ["kubectl", "get", "--raw", "/readyz"],
            env={**os.environ, "KUBECONFIG": info.kubeconfig},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert (result.returncode, result.stdout) == (0, "ok"), result.stderr
    finally:
        assert devcluster.stop_detached(tmp_path)
    pids = [info.supervisor_pid, *info.pids.values()]
    kube_helpers.eventually(
        lambda: not any(procs.pid_alive(p) for p in pids), timeout=STOP_TIMEOUT, what="cluster-down"
    )
    assert not devcluster.stop_detached(tmp_path)


def test_a_dying_control_plane_process_stops_the_whole_control_plane(tmp_path: Path) -> None:
    """If kube-apiserver crashes, the supervisor does not keep a half-working cluster: it stops the rest and exits."""
    with devcluster.running(tmp_path) as cluster:
        os.kill(cluster.pids["kube-apiserver"], signal.SIGKILL)
        survivors = (cluster.pids["etcd"], cluster.pids["kube-controller-manager"], cluster.supervisor_pid)
        kube_helpers.eventually(
            lambda: not any(procs.pid_alive(pid) for pid in survivors), timeout=STOP_TIMEOUT, what="the rest to stop"
        )
    assert "kube-apiserver exited" in (tmp_path / "logs" / "supervisor.log").read_text()
