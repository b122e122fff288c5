"""`python -m novasphere_envoy [render|serve]`: the Envoy bootstrap for an environment, written or run.

Write it (`render`, the default when no subcommand is given):

    python -m novasphere_envoy --listen 0.0.0.0:8443 --descriptor /etc/novasphere/novasphere.binpb \\
        --tls-cert /etc/novasphere/tls/tls.crt --tls-key /etc/novasphere/tls/tls.key \\
        --cors-origin https://console.example.com --out /etc/envoy/envoy.json

Run it, as a pod's sidecar container does (`serve`: the same flags, the bootstrap written into `--config-dir`, then
the process replaced by the real Envoy with the drain flags of `launch.command`):

    python -m novasphere_envoy serve --listen 0.0.0.0:8443 --plaintext \\
        --descriptor /opt/novasphere/gen/descriptor/novasphere.binpb \\
        --grpc-upstream unix:/run/novasphere/grpc.sock --console-upstream unix:/run/novasphere/console.sock \\
        --admin unix:/run/novasphere/envoy-admin.sock --config-dir /run/envoy

Upstreams and `--admin` are host:port or unix:/absolute/path; the admin interface must be on loopback or a unix
socket. The listener serves TLS; plain HTTP needs `--plaintext` (e.g. behind a proxy that terminates TLS). `make run`
and the tests build the same configuration through `devcluster.stack`.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from novasphere_envoy import config, launch, local_http

CONFIG_FILE = "envoy.json"
"""The bootstrap's name inside `serve --config-dir`."""


def _address(value: str) -> local_http.Address:
    try:
        return local_http.parse_address(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _host_port(value: str) -> local_http.HostPort:
    address = _address(value)
    if not isinstance(address, local_http.HostPort):
        raise argparse.ArgumentTypeError(f"expected host:port, got {value!r}")
    return address


def _tls(args: argparse.Namespace, parser: argparse.ArgumentParser) -> config.TlsFiles | None:
    if args.plaintext:
        if args.tls_cert or args.tls_key:
            parser.error("--plaintext and --tls-cert/--tls-key exclude each other")
        return None
    if not args.tls_cert or not args.tls_key:
        parser.error("give --tls-cert and --tls-key (the listener serves TLS), or --plaintext to serve plain HTTP")
    return config.TlsFiles(certificate_chain=args.tls_cert, private_key=args.tls_key)


def _parser(command: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m novasphere_envoy {command}", description=__doc__.splitlines()[0])
    parser.add_argument("--listen", type=_host_port, default=_host_port("0.0.0.0:8443"), help="shared: SO_REUSEPORT")
    parser.add_argument(
        "--admin", type=_address, default=_address("127.0.0.1:9901"), help="loopback host:port or unix:/path"
    )
    parser.add_argument(
        "--stats-listen", type=_host_port, help="host:port serving GET /stats/prometheus only (Envoy's metrics)"
    )
    parser.add_argument("--grpc-upstream", type=_address, default=_address("127.0.0.1:50051"))
    parser.add_argument("--console-upstream", type=_address, default=_address("127.0.0.1:50052"))
    parser.add_argument("--descriptor", type=Path, required=True, help="gen/descriptor/novasphere.binpb")
    parser.add_argument("--tls-cert", type=Path, help="PEM certificate chain of the listener")
    parser.add_argument("--tls-key", type=Path, help="PEM private key of the listener")
    parser.add_argument("--plaintext", action="store_true", help="serve plain HTTP (a proxy in front does TLS)")
    parser.add_argument(
        "--xff-trusted-hops",
        type=int,
        default=0,
        help="proxies in front (ingress, load balancer) whose X-Forwarded-For entries are trusted; default 0",
    )
    parser.add_argument(
        "--hsts-max-age",
        type=int,
        default=int(config.SidecarSettings.hsts_max_age.total_seconds()),
        help="Strict-Transport-Security max-age in seconds",
    )
    parser.add_argument("--cors-origin", action="append", default=[], help="an allowed browser origin (repeat)")
    parser.add_argument("--max-request-bytes", type=int, default=config.SidecarSettings.max_request_bytes)
    parser.add_argument(
        "--otlp-collector",
        type=_host_port,
        help="host:port of an OpenTelemetry collector's OTLP/gRPC receiver: trace requests there (default: off)",
    )
    parser.add_argument(
        "--trace-sample-percent",
        type=float,
        default=config.SidecarSettings.trace_sample_percent,
        help="with --otlp-collector: percent of requests without a client's sampling decision that are traced",
    )
    if command == "serve":
        parser.add_argument("--config-dir", type=Path, required=True, help=f"writable folder for {CONFIG_FILE}")
        parser.add_argument(
            "--drain-seconds",
            type=int,
            default=launch.DRAIN_SECONDS,
            help="Envoy's --drain-time-s: keep below the API server's NOVASPHERE_DRAIN_SECONDS",
        )
        parser.add_argument("--log-level", default=launch.LOG_LEVEL, help="Envoy's log level (trace ... off)")
    else:
        parser.add_argument("--out", type=Path, help="file to write (default: standard output)")
    return parser


def _settings(args: argparse.Namespace, parser: argparse.ArgumentParser) -> config.SidecarSettings:
    if args.xff_trusted_hops < 0:
        parser.error("--xff-trusted-hops must be 0 or more")
    try:
        return config.SidecarSettings(
            listen_host=args.listen.host,
            listen_port=args.listen.port,
            admin=args.admin,
            stats_listen=args.stats_listen,
            grpc_upstream=args.grpc_upstream,
            console_upstream=args.console_upstream,
            descriptor_path=args.descriptor,
            tls=_tls(args, parser),
            cors_allowed_origins=tuple(args.cors_origin),
            max_request_bytes=args.max_request_bytes,
            xff_num_trusted_hops=args.xff_trusted_hops,
            hsts_max_age=datetime.timedelta(seconds=args.hsts_max_age),
            otlp_collector=args.otlp_collector,
            trace_sample_percent=args.trace_sample_percent,
        )
    except ValueError as error:
        parser.error(str(error))


def main(argv: Sequence[str] | None = None) -> None:
    arguments = list(sys.argv[1:] if argv is None else argv)
    command = arguments.pop(0) if arguments[:1] in (["render"], ["serve"]) else "render"
    parser = _parser(command)
    args = parser.parse_args(arguments)
    rendered = config.render_json(_settings(args, parser))
    if command == "serve":
        config_path = args.config_dir / CONFIG_FILE
        config_path.write_text(rendered)
        envoy = launch.command(config_path, drain_seconds=args.drain_seconds, log_level=args.log_level)
        os.execv(envoy[0], envoy)  # noqa: S606 (Envoy replaces this process: it gets the container's signals)
    elif args.out is None:
        sys.stdout.write(rendered)
    else:
        args.out.write_text(rendered)


if __name__ == "__main__":
    main()
