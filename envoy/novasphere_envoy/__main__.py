"""`python -m novasphere_envoy`: writes the Envoy bootstrap for an environment, e.g. a pod's sidecar:

    python -m novasphere_envoy --listen 0.0.0.0:8443 --descriptor /etc/novasphere/novasphere.binpb \\
        --tls-cert /etc/novasphere/tls/tls.crt --tls-key /etc/novasphere/tls/tls.key \\
        --cors-origin https://console.example.com --out /etc/envoy/envoy.json

The listener serves TLS; plain HTTP needs `--plaintext` (e.g. behind a proxy that terminates TLS). `make run` and the
tests build the same configuration through `devcluster.stack`.
"""

from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path

from novasphere_envoy import config


def _host_port(value: str) -> config.Upstream:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected host:port, got {value!r}")
    return config.Upstream(host.strip("[]"), int(port))


def _tls(args: argparse.Namespace, parser: argparse.ArgumentParser) -> config.TlsFiles | None:
    if args.plaintext:
        if args.tls_cert or args.tls_key:
            parser.error("--plaintext and --tls-cert/--tls-key exclude each other")
        return None
    if not args.tls_cert or not args.tls_key:
        parser.error("give --tls-cert and --tls-key (the listener serves TLS), or --plaintext to serve plain HTTP")
    return config.TlsFiles(certificate_chain=args.tls_cert, private_key=args.tls_key)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m novasphere_envoy", description=__doc__.splitlines()[0])
    parser.add_argument("--listen", type=_host_port, default=_host_port("0.0.0.0:8443"))
    parser.add_argument("--admin-port", type=int, default=9901, help="Envoy admin, on 127.0.0.1 only")
    parser.add_argument("--grpc-upstream", type=_host_port, default=_host_port("127.0.0.1:50051"))
    parser.add_argument("--console-upstream", type=_host_port, default=_host_port("127.0.0.1:50052"))
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
    parser.add_argument("--out", type=Path, help="file to write (default: standard output)")
    args = parser.parse_args()
    if args.xff_trusted_hops < 0:
        parser.error("--xff-trusted-hops must be 0 or more")

    rendered = config.render_json(
        config.SidecarSettings(
            listen_host=args.listen.host,
            listen_port=args.listen.port,
            admin_port=args.admin_port,
            grpc_upstream=args.grpc_upstream,
            console_upstream=args.console_upstream,
            descriptor_path=args.descriptor,
            tls=_tls(args, parser),
            cors_allowed_origins=tuple(args.cors_origin),
            max_request_bytes=args.max_request_bytes,
            xff_num_trusted_hops=args.xff_trusted_hops,
            hsts_max_age=datetime.timedelta(seconds=args.hsts_max_age),
        )
    )
    if args.out is None:
        sys.stdout.write(rendered)
    else:
        args.out.write_text(rendered)


if __name__ == "__main__":
    main()
