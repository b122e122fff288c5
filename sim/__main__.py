"""`python -m sim`: the simulator of KubeVirt and vmoperator, against the cluster of `--kubeconfig`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from pathlib import Path

from sim import app
from sim.kubevirt.vmi_controller import Delays

STOP_GRACE_SECONDS = 5.0


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m sim", description=__doc__)
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--speed", type=float, default=1.0, help="simulated seconds per real second (default 1)")
    parser.add_argument("--nodes", type=int, default=3, help="simulated nodes (default 3)")
    parser.add_argument("--no-events", action="store_true", help="record no Events (for benchmarks)")
    for step, text in (
        ("pending", "VMI created → launcher pod (Pending → Scheduling)"),
        ("scheduling", "Scheduling → pod bound to a node"),
        ("boot", "Scheduled → Running"),
        ("guest-shutdown", "a graceful stop, when the grace period is longer"),
    ):
        parser.add_argument(
            f"--{step}-seconds",
            type=float,
            default=getattr(Delays, step.replace("-", "_")),
            help=f"{text} (simulated s)",
        )
    parser.add_argument("--virt-api-port", type=int, default=0, help="port of the simulated virt-api (0: any free)")
    parser.add_argument(
        "--prometheus-port", type=int, help="serve a simulated Prometheus on this port (0: any free; default: none)"
    )
    parser.add_argument("--prometheus-url-file", type=Path, help="where to write the simulated Prometheus's URL")
    parser.add_argument("--ready-file", type=Path, help="written once every informer has synced")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args()
    if args.speed <= 0:
        sys.exit("--speed must be positive")
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request would drown the log
    settings = app.Settings(
        kubeconfig=args.kubeconfig,
        speed=args.speed,
        node_count=args.nodes,
        events=not args.no_events,
        delays=Delays(
            pending=args.pending_seconds,
            scheduling=args.scheduling_seconds,
            boot=args.boot_seconds,
            guest_shutdown=args.guest_shutdown_seconds,
        ),
        ready_file=args.ready_file,
        virt_api_port=args.virt_api_port,
        prometheus_port=args.prometheus_port,
        prometheus_url_file=args.prometheus_url_file,
    )

    async def serve() -> None:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()

        def stop() -> None:
            task.cancel()
            # Stopping must not depend on kube-apiserver, which is often stopping at the same moment.
            loop.call_later(STOP_GRACE_SECONDS, os._exit, 0)

        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop)
        with contextlib.suppress(asyncio.CancelledError):
            await app.run(settings)

    asyncio.run(serve())


if __name__ == "__main__":
    main()
