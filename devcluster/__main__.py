"""`python -m devcluster build|image|up|down|serve|run|node|chart`: the local stack from the command line (the
Makefile calls it)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import devcluster
from devcluster import binaries, chart, image, node, run, supervisor

DEFAULT_STATE_DIR = Path(".run/cluster")
NODE_STATE_DIR = Path(".run/node")
CHART_STATE_DIR = Path(".run/chart")
RUN_STATE_DIR = Path(".run/run")
ENV_FILE = Path(".run/env")
EDGE_PKI = Path(".run/edge-pki")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m devcluster", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "build",
        help="build or find kube-apiserver, kube-controller-manager, etcd, grpcurl, helm, chromium, a Chinese font, and"
        " the real node's kubelet, kube-scheduler, containerd, runc, CNI plugins, umoci and busybox-static",
    )
    commands.add_parser("image", help="build or find the API image and the pause image (OCI archives for ctr import)")
    run_command = commands.add_parser("run", help="the whole stack with demo data, until Ctrl-C (make run)")
    run_command.add_argument("--state-dir", type=Path, default=RUN_STATE_DIR)
    run_command.add_argument("--env-file", type=Path, default=ENV_FILE)
    run_command.add_argument("--edge-pki", type=Path, default=EDGE_PKI, help="where the edge CA is kept between runs")
    run_command.add_argument(
        "--cors-origin", action="append", default=[], help="another origin browsers may call the API from (repeat)"
    )
    node_command = commands.add_parser(
        "node", help="a control plane with a real node (kubelet, containerd, kube-scheduler), until Ctrl-C"
    )
    node_command.add_argument("--state-dir", type=Path, default=NODE_STATE_DIR)
    node_command.add_argument(
        "--image",
        action="append",
        default=[],
        metavar="REFERENCE=ARCHIVE",
        help="import an OCI archive into the node as REFERENCE, e.g. docker.io/novasphere/api:dev=image.tar (repeat)",
    )
    chart_command = commands.add_parser(
        "chart", help="the Helm chart installed on a real node (make run DEPLOY=helm), until Ctrl-C"
    )
    chart_command.add_argument("--state-dir", type=Path, default=CHART_STATE_DIR)
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
        print(f"helm: {binaries.ensure_helm()}; promtool: {binaries.ensure_promtool()}")
        print(f"chromium: {binaries.ensure_chromium()}; Chinese font: {binaries.ensure_cjk_font()}")
        real_node = binaries.ensure_node()
        print(f"real node: {real_node.kubelet.parent} (kubelet, kube-scheduler); containerd: {real_node.containerd}")
        print(f"images: umoci {binaries.ensure_umoci()}, busybox {binaries.ensure_busybox_static()}")
        return 0
    if args.command == "image":
        for archive in (image.ensure_api_image(), image.ensure_pause_image()):
            how = "cached" if archive.from_cache else "built"
            print(
                f"{archive.reference}: {archive.path} ({archive.size_bytes / 1e6:.0f} MB, "
                f"{archive.unpacked_bytes / 1e6:.0f} MB unpacked; {how}, the build took {archive.build_seconds:.0f} s)"
            )
        return 0
    state_dir: Path = args.state_dir.resolve()
    if args.command == "run":
        return run.main(state_dir, args.env_file.resolve(), args.edge_pki.resolve(), tuple(args.cors_origin))
    if args.command == "node":
        images = {
            reference: Path(archive).resolve() for reference, _, archive in (i.partition("=") for i in args.image)
        }
        return node.serve(state_dir, images)
    if args.command == "chart":
        return chart.serve(state_dir)
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
