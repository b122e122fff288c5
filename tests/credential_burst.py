"""`python -m tests.credential_burst HOST:PORT CA_FILE EACH`: the made-up credentials of
`tests/e2e/test_cheap_refusals.py`, sent from a process of their own (so that the test's valid caller measures the
server, not the burst's client) to an Envoy that trusts one proxy hop: EACH distinct, well-formed API keys, refresh
tokens and console claims, half of each with identifiers that look minted this very second, CONCURRENCY at a time,
as a client behind the proxy at an address of its own. Prints a JSON object: how each kind was answered
(UNAUTHENTICATED / 401 from the API server, RESOURCE_EXHAUSTED / 429 from Envoy's per-address limits) and every
answer that was neither."""

from __future__ import annotations

import asyncio
import base64
import collections
import json
import os
import secrets
import ssl
import sys
import time

import aiohttp
import grpc

from novasphere.v1 import auth_service_pb2, wukong_service_pb2
from novasphere.v1.auth_service_pb2_grpc import AuthServiceStub
from novasphere.v1.wukong_service_pb2_grpc import WukongServiceStub

CONCURRENCY = 10
ATTACKER = "203.0.113.66"
REFUSED = {"UNAUTHENTICATED", "RESOURCE_EXHAUSTED", "401", "429"}


def _hex_id(digits: int, *, now: bool) -> str:
    """A well-formed identifier: random, or carrying this second as minted ones do."""
    return (f"{int(time.time()):08x}" if now else "") + secrets.token_hex(digits)[: digits - (8 if now else 0)]


def _b64(count: int) -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(count)).decode().rstrip("=")


async def burst(target: str, ca_file: str, each: int) -> dict[str, dict[str, int]]:
    """Every made-up credential once, `CONCURRENCY` at a time; per kind, how many got each answer."""
    answers: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    for i in range(each):
        recent = i % 2 == 0
        queue.put_nowait(("key", f"nsk_{_hex_id(16, now=recent)}_{_b64(32)}"))
        queue.put_nowait(("refresh", f"nsr2.{_hex_id(32, now=recent)}.{i + 1}.{_b64(32)}"))
        queue.put_nowait(("claim", f"console-{_hex_id(20, now=recent)}"))
    tls = ssl.create_default_context(cafile=ca_file)
    behind_proxy = (("x-forwarded-for", ATTACKER),)
    credentials = grpc.ssl_channel_credentials(root_certificates=open(ca_file, "rb").read())  # noqa: ASYNC230, SIM115
    async with grpc.aio.secure_channel(target, credentials) as channel, aiohttp.ClientSession() as web:
        wukongs, auth = WukongServiceStub(channel), AuthServiceStub(channel)

        async def worker() -> None:
            while not queue.empty():
                kind, value = queue.get_nowait()
                if kind == "claim":
                    try:
                        socket_ = await web.ws_connect(
                            f"wss://{target}/ws/v1/consoles/{value}",
                            protocols=(f"ticket.novasphere.dev.{_b64(32)}",),
                            headers=dict(behind_proxy),
                            ssl=tls,
                        )
                    except aiohttp.WSServerHandshakeError as error:
                        answers[kind][str(error.status)] += 1
                        continue
                    await socket_.close()
                    answers[kind]["connected"] += 1
                    continue
                try:
                    if kind == "key":
                        request = wukong_service_pb2.ListWukongsRequest()
                        await wukongs.ListWukongs(request, metadata=(("x-api-key", value), *behind_proxy))
                    else:
                        await auth.Refresh(auth_service_pb2.RefreshRequest(refresh_token=value), metadata=behind_proxy)
                    answers[kind]["accepted"] += 1
                except grpc.aio.AioRpcError as error:
                    answers[kind][error.code().name] += 1

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return {kind: dict(counted) for kind, counted in answers.items()}


if __name__ == "__main__":
    # A client on another machine in real life. On this one it gets one core of its own at the lowest priority, so that
    # the test measures what the burst costs the server, not what the burst's own client costs the machine.
    os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})
    os.nice(19)
    print(json.dumps(asyncio.run(burst(sys.argv[1], sys.argv[2], int(sys.argv[3])))))
