"""A TCP ↔ WebSocket bridge for a VMI's VNC, like `virtctl vnc --proxy-only` (kubevirt.md §2.3): listens on
127.0.0.1, prints `{"port": N}`, and for each viewer that connects opens KubeVirt's `vnc` websocket through
kube-apiserver with the kubeconfig's credentials (subprotocol `plain.kubevirt.io`) and pipes raw RFB bytes both ways.
Ordinary VNC clients (vncdotool, TigerVNC, remote-viewer) then connect to the local port.

    python -m sim.vnc_proxy --kubeconfig K --namespace NS --name VMI [--port 0] [--preserve-session]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
from pathlib import Path

import aiohttp

from sim.kubeapi import Credentials

log = logging.getLogger("sim.vnc-proxy")
PROTOCOL = "plain.kubevirt.io"
CHUNK = 65536


def vnc_url(server: str, namespace: str, name: str, *, preserve_session: bool) -> str:
    base = server.replace("https://", "wss://", 1).rstrip("/")
    path = f"/apis/subresources.kubevirt.io/v1/namespaces/{namespace}/virtualmachineinstances/{name}/vnc"
    return f"{base}{path}?preserveSession={'true' if preserve_session else 'false'}"


class Bridge:
    def __init__(self, credentials: Credentials, url: str) -> None:
        self._credentials = credentials
        self._url = url

    async def serve(self, port: int) -> asyncio.Server:
        return await asyncio.start_server(self._viewer, "127.0.0.1", port)

    async def _viewer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with (
                aiohttp.ClientSession(headers=dict(self._credentials.headers)) as session,
                session.ws_connect(
                    self._url, protocols=(PROTOCOL,), ssl=self._credentials.tls, max_msg_size=0, autoping=True
                ) as socket_,
            ):
                await _pipe(reader, writer, socket_)
        except aiohttp.WSServerHandshakeError as error:
            log.warning("vnc refused: %s %s", error.status, error.message)
        except (aiohttp.ClientError, OSError) as error:
            log.warning("vnc connection failed: %s", error)
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def _pipe(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, socket_: aiohttp.ClientWebSocketResponse
) -> None:
    async def upstream() -> None:
        while data := await reader.read(CHUNK):
            await socket_.send_bytes(data)  # binary frames only: KubeVirt drops text frames (§2.3)
        await socket_.close()

    async def downstream() -> None:
        async for message in socket_:
            if message.type == aiohttp.WSMsgType.BINARY:
                writer.write(message.data)
                await writer.drain()  # back-pressure: read the websocket no faster than the viewer takes it

    tasks = [asyncio.create_task(upstream()), asyncio.create_task(downstream())]
    _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await task


async def _main(args: argparse.Namespace) -> None:
    credentials = Credentials.from_kubeconfig(args.kubeconfig)
    url = vnc_url(credentials.server, args.namespace, args.name, preserve_session=args.preserve_session)
    server = await Bridge(credentials, url).serve(args.port)
    print(json.dumps({"port": server.sockets[0].getsockname()[1]}), flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--name", required=True, help="the VMI (the VM's name)")
    parser.add_argument("--port", type=int, default=0, help="local port (0: any free one)")
    parser.add_argument("--preserve-session", action="store_true", help="refuse instead of taking over a session")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(args))


if __name__ == "__main__":
    main()
