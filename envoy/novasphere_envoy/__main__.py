"""`python -m novasphere_envoy`: writes the Envoy bootstrap for an environment, e.g. a pod's sidecar:

    python -m novasphere_envoy --listen 0.0.0.0:8080 --descriptor /etc/novasphere/novasphere.binpb \\
        --cors-origin https://console.example.com --out /etc/envoy/envoy.json

`make run` and the tests build the same configuration through `devcluster.stack`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from novasphere_envoy import config


def _host_port(value: str) -> config.Upstream:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected host:port, got {value!r}")
    return config.Upstream(host.strip("[]"), int(port))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m novasphere_envoy", description=__doc__.splitlines()[0])
    parser.add_argument("--listen", type=_host_port, default=_host_port("0.0.0.0:8080"))
    parser.add_argument("--admin-port", type=int, default=9901, help="Envoy admin, on 127.0.0.1 only")
    parser.add_argument("--grpc-upstream", type=_host_port, default=_host_port("127.0.0.1:50051"))
    parser.add_argument("--console-upstream", type=_host_port, default=_host_port("127.0.0.1:50052"))
    parser.add_argument("--descriptor", type=Path, required=True, help="gen/descriptor/novasphere.binpb")
    parser.add_argument("--cors-origin", action="append", default=[], help="an allowed browser origin (repeat)")
    parser.add_argument("--max-request-bytes", type=int, default=config.SidecarSettings.max_request_bytes)
    parser.add_argument("--out", type=Path, help="file to write (default: standard output)")
    args = parser.parse_args()

    rendered = config.render_json(
        config.SidecarSettings(
            listen_host=args.listen.host,
            listen_port=args.listen.port,
            admin_port=args.admin_port,
            grpc_upstream=args.grpc_upstream,
            console_upstream=args.console_upstream,
            descriptor_path=args.descriptor,
            cors_allowed_origins=tuple(args.cors_origin),
            max_request_bytes=args.max_request_bytes,
        )
    )
    if args.out is None:
        sys.stdout.write(rendered)
    else:
        args.out.write_text(rendered)


if __name__ == "__main__":
    main()
