"""`python -m devcluster build|up|down|serve|run`: the local stack from the command line (see the Makefile)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import devcluster
from devcluster import binaries, run, supervisor

DEFAULT_STATE_DIR = Path(".run/cluster")
RUN_STATE_DIR = Path(".run/run")
ENV_FILE = Path(".run/env")
EDGE_PKI = Path(".run/edge-pki")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m devcluster", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "build",
        help="build or find kube-apiserver, kube-controller-manager, etcd, grpcurl, protoc-gen-openapiv2, chromium "
        "and a Chinese font",
    )
    run_command = commands.add_parser("run", help="the whole stack with demo data, until Ctrl-C (make run)")
    run_command.add_argument("--state-dir", type=Path, default=RUN_STATE_DIR)
    run_command.add_argument("--env-file", type=Path, default=ENV_FILE)
    run_command.add_argument("--edge-pki", type=Path, default=EDGE_PKI, help="where the edge CA is kept between runs")
    for name, text in (
        ("up", "start a control plane in the background and print its KUBECONFIG"),
        ("down", "stop the control plane `up` started"),
        ("serve", "run a control plane in the foreground until SIGTERM/SIGINT"),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR)
    args = parser.parse_args()

    if args.command == "build":
        programs = binaries.ensure()
        print(f"Kubernetes {programs.kubernetes_version}: {programs.kube_apiserver.parent}; etcd: {programs.etcd}")
        print(f"grpcurl: {binaries.ensure_grpcurl()}")
        print(f"protoc-gen-openapiv2: {binaries.ensure_openapiv2()}")
        print(f"chromium: {binaries.ensure_chromium()}; Chinese font: {binaries.ensure_cjk_font()}")
        return 0
    state_dir: Path = args.state_dir.resolve()
    if args.command == "run":
        return run.main(state_dir, args.env_file.resolve(), args.edge_pki.resolve())
    if args.command == "serve":
        return supervisor.serve(state_dir)
    if args.command == "up":
        info = devcluster.start_detached(state_dir)
        print(f"Control plane ready: {info.server} (Kubernetes {info.kubernetes_version})")
        print("Use it with:")
        print(f"  export KUBECONFIG={info.kubeconfig}")
        print("Stop it with: make cluster-down")
        return 0
    stopped = devcluster.stop_detached(state_dir)
    print("Control plane stopped." if stopped else "No control plane was running.", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
