"""`python3 -m server.transport.selftest`: the Helm chart's `helm test` pod, an installation's smoke test from a
client's seat (a gRPC client, hence in transport/).

    python3 -m server.transport.selftest --target novasphere-api.novasphere-system.svc:443 \\
        --ca /etc/novasphere/tls/tls.crt --credentials /etc/novasphere/credentials

Through Envoy's TLS listener (the Service, or the loopback port of the local node) it checks the gRPC health service,
logs in with the `username` and `password` files of `--credentials` (a mounted Secret) and lists the tenant's Wukongs.
Exit status 0 iff all three succeed; each step prints one line. The image has no shell or grpcurl, hence Python.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2

from novasphere.v1 import auth_service_pb2, auth_service_pb2_grpc, wukong_service_pb2, wukong_service_pb2_grpc

TIMEOUT_SECONDS = 15.0


def run(target: str, *, ca: Path | None, server_name: str, credentials: Path) -> None:
    """Raises grpc.RpcError (or RuntimeError) on the first step that fails."""
    root = ca.read_bytes() if ca else None
    options = [("grpc.ssl_target_name_override", server_name)] if server_name else []
    with grpc.secure_channel(target, grpc.ssl_channel_credentials(root_certificates=root), options=options) as channel:
        # Called by path: the typeshed stub of HealthStub declares no methods.
        check = channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString,
        )
        health = check(health_pb2.HealthCheckRequest(), timeout=TIMEOUT_SECONDS)
        if health.status != health_pb2.HealthCheckResponse.SERVING:
            raise RuntimeError(f"health: {health_pb2.HealthCheckResponse.ServingStatus.Name(health.status)}")
        print("health: SERVING", flush=True)
        login = auth_service_pb2_grpc.AuthServiceStub(channel).Login(
            auth_service_pb2.LoginRequest(
                username=(credentials / "username").read_text().strip(),
                password=(credentials / "password").read_text().strip(),
            ),
            timeout=TIMEOUT_SECONDS,
        )
        print(f"login: {login.identity.username or 'ok'}", flush=True)
        wukongs = wukong_service_pb2_grpc.WukongServiceStub(channel).ListWukongs(
            wukong_service_pb2.ListWukongsRequest(page_size=10),
            metadata=(("authorization", f"Bearer {login.access_token}"),),
            timeout=TIMEOUT_SECONDS,
        )
        print(f"ListWukongs: {len(wukongs.wukongs)} on the first page", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", required=True, help="host:port of Envoy's TLS listener")
    parser.add_argument("--ca", type=Path, help="PEM roots to trust (default: the system's)")
    parser.add_argument("--server-name", default="", help="TLS name to expect, when not the target's host")
    parser.add_argument("--credentials", type=Path, required=True, help="folder with `username` and `password`")
    args = parser.parse_args()
    try:
        run(args.target, ca=args.ca, server_name=args.server_name, credentials=args.credentials)
    except grpc.RpcError as error:
        print(f"failed: {error.code().name}: {error.details()}", file=sys.stderr)
        return 1
    except (RuntimeError, OSError) as error:
        print(f"failed: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
