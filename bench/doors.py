"""`make bench-doors`: what Envoy adds to a call through each door of the API, in milliseconds, against the same call
made to the API server directly, in the same run.

Calls: AuthService.Me (trivial: the floor of each door, what a call costs with nothing to do), GetWukong (the
request as clients send it) and ListWukongs (a page of `--page-size` of the namespace's Wukongs; `make bench-doors`
lists 50, the web console's page and `make bench`'s). Doors: native gRPC to the API server itself (the reference of
each call), native gRPC through Envoy, REST/JSON through Envoy (transcoded) and gRPC-Web through Envoy; for context,
the same read from kube-apiserver with the official Python client (Get and List). `make bench` runs the same
measurement (`measure_doors`) on its loaded server.

How it keeps from measuring itself:
- every client holds one connection for the whole run (a gRPC channel, or one keep-alive HTTPS connection per HTTP
  door, TLS verified once at the handshake), so no call pays a connect or a handshake;
- the HTTP doors use `http.client`: httpx costs ~0.6-0.9 ms more per call on these machines (measured: gRPC-Web
  health checks through the same Envoy, httpx 2.6 ms, http.client 1.9 ms), which is the client, not Envoy;
- the doors take turns call by call (round robin, the order rotating each round), so a slow spell of the shared
  machine or of the API server lands on all of them, not on whichever door was measured then (kube-apiserver's
  context rows are measured apart, after them); the client's garbage collector runs between rounds, not in a call;
- the seeded Wukongs are stopped, on a StorageClass the simulator provisions, and the run waits until their status
  settles: on a StorageClass that does not exist the simulator rewrites every status forever (~50 writes/s for 200
  Wukongs), and the run would measure that churn;
- Envoy's own timing of each call (its access log's `*_us` fields, found by the request id each call sends) splits
  a door's time into Envoy's request filters, the API server, and Envoy's response work, transcoding included.

"Envoy adds (p50)" is the door's p50 minus the direct gRPC p50 of the same call, against a budget of 1 ms on
loopback. `--variants` then prices REST's extra work: the REST page again through Envoys whose configuration lacks
one part each (the Lua filter, the access log, the printing of default values), against the Envoy as deployed;
what a part costs is the difference. They are measurements, not proposals: each part is there for a reason.
`noise` is how far apart the direct p50s of the odd and the even rounds are: a difference smaller than it is not a
difference.

`measure(stack, ...)` runs the measurement against an already running stack (`make bench` can call it) and returns a
dict; `report(...)` renders it. `python -m bench.doors` starts its own control plane and stack.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import http.client
import json
import statistics
import struct
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import kubernetes.client
from google.protobuf.message import Message

import devcluster
from bench import percentile
from devcluster import manifests, procs
from devcluster import stack as devstack
from novasphere.v1 import auth_service_pb2, auth_service_pb2_grpc
from novasphere.v1 import wukong_service_pb2 as service_pb2
from novasphere.v1.wukong_service_pb2_grpc import WukongServiceStub
from novasphere_envoy import config as envoy_config

NAMESPACE = "bench"
TENANT = "bench"
NAME = "vm-0000"
BUDGET_MS = 1.0
"""What Envoy may add to a call's p50 on loopback, through any door."""
STORAGE_CLASS = "local-path"
"""A StorageClass the simulator provisions (sim/crds/storageclasses.yaml)."""

REFERENCE = "kube-apiserver (context)"
DIRECT = "gRPC direct"
GRPC = "gRPC via Envoy"
REST = "REST via Envoy"
GRPC_WEB = "gRPC-Web via Envoy"
ENVOY_DOORS = (GRPC, REST, GRPC_WEB)
ENVOY_TIMING = ("edge_request_us", "upstream_wait_us", "edge_response_us", "duration_us")
"""Envoy's access log fields (novasphere_envoy.config.ACCESS_LOG_FIELDS) the breakdown reads."""

Call = Callable[[str], object]
"""One call through one door, sending the given request id."""


def seed(admin: kubernetes.client.ApiClient, count: int, *, namespace: str = NAMESPACE) -> str:
    """The tenant's namespace and `count` stopped Wukongs (`vm-0000`, ...), then waits until the simulator has
    settled their status (a bench measured during its churn measures the churn); returns the cursor of the last
    change, which the API server's cache must reach before measuring."""
    documents: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": namespace, "labels": {"novasphere.dev/tenant": TENANT}},
        }
    ]
    documents += [
        {
            "apiVersion": "vm.novasphere.dev/v1alpha1",
            "kind": "Wukong",
            "metadata": {"name": f"vm-{i:04d}", "namespace": namespace, "labels": {"bench": "yes"}},
            "spec": {
                "cpu": 2,
                "memory": "4Gi",
                "disks": [{"name": "root", "size": "20Gi", "storageClassName": STORAGE_CLASS}],
                "startStrategy": {"autoStart": False},
            },
        }
        for i in range(count)
    ]
    manifests.apply(admin, documents)
    return _wait_until_settled(admin, namespace)


def _wait_until_settled(admin: kubernetes.client.ApiClient, namespace: str, *, quiet_seconds: float = 5) -> str:
    """Waits (up to two minutes) until no Wukong of `namespace` has changed for `quiet_seconds`; returns the highest
    resourceVersion, the cursor the API server's cache must reach."""
    deadline = time.monotonic() + 120
    last, quiet_since = "", time.monotonic()
    while True:
        newest = str(max(int(w["metadata"]["resourceVersion"]) for w in _listed(admin, namespace)))
        now = time.monotonic()
        if newest != last:
            last, quiet_since = newest, now
        elif now - quiet_since >= quiet_seconds or now > deadline:
            return last
        time.sleep(1)


def _listed(admin: kubernetes.client.ApiClient, namespace: str) -> list[dict[str, Any]]:
    listed = kubernetes.client.CustomObjectsApi(admin).list_namespaced_custom_object(
        "vm.novasphere.dev", "v1alpha1", namespace, "wukongs"
    )
    assert isinstance(listed, dict)
    items: list[dict[str, Any]] = listed["items"]
    return items


def _grpc_web_body(request: Message) -> bytes:
    payload = request.SerializeToString()
    return struct.pack(">BI", 0, len(payload)) + payload


class _Http:
    """One keep-alive HTTP/1.1 connection to Envoy's listener (TLS checked against the edge CA), reopened only if
    Envoy closes it."""

    def __init__(self, edge: devstack.Edge) -> None:
        if edge.ca_cert is None:
            self._connection: http.client.HTTPConnection = http.client.HTTPConnection(edge.host, edge.port, timeout=30)
        else:
            self._connection = http.client.HTTPSConnection(edge.host, edge.port, timeout=30, context=edge.ssl_context())

    def call(self, method: str, path: str, *, headers: dict[str, str], body: bytes | None = None) -> bytes:
        self._connection.request(method, path, body=body, headers=headers)
        response = self._connection.getresponse()
        payload = response.read()
        grpc_status = response.getheader("grpc-status", "0")  # gRPC-Web errors come as headers (trailers-only)
        if response.status != 200 or grpc_status != "0":
            raise RuntimeError(f"{method} {path}: HTTP {response.status}, grpc-status {grpc_status}: {payload[:300]!r}")
        return payload

    def close(self) -> None:
        self._connection.close()


def _grpc_call(method: Callable[..., object], request: Message) -> Call:
    return lambda request_id: method(request, metadata=(("x-request-id", request_id),), timeout=30)


def _rest_call(client: _Http, path: str) -> Call:
    return lambda request_id: client.call("GET", path, headers={"x-request-id": request_id})


def _grpc_web_call(client: _Http, rpc: str, request: Message) -> Call:
    body = _grpc_web_body(request)
    headers = {"content-type": "application/grpc-web+proto", "x-grpc-web": "1"}
    return lambda request_id: client.call("POST", rpc, body=body, headers={**headers, "x-request-id": request_id})


def _cases(
    *,
    direct: grpc.Channel,
    via_envoy: grpc.Channel,
    rest: _Http,
    grpc_web: _Http,
    admin: kubernetes.client.ApiClient | None,
    namespace: str,
    name: str,
    page_size: int,
) -> dict[str, dict[str, Call]]:
    """Per call, each door (the direct gRPC one first: the reference of the Envoy doors)."""
    stubs = {door: WukongServiceStub(channel) for door, channel in ((DIRECT, direct), (GRPC, via_envoy))}
    auth = {
        door: auth_service_pb2_grpc.AuthServiceStub(channel) for door, channel in ((DIRECT, direct), (GRPC, via_envoy))
    }
    me = auth_service_pb2.MeRequest()
    get = service_pb2.GetWukongRequest(namespace=namespace, name=name)
    page = service_pb2.ListWukongsRequest(namespace=namespace, page_size=page_size)
    cases: dict[str, dict[str, Call]] = {
        "AuthService.Me (floor)": {
            **{door: _grpc_call(stub.Me, me) for door, stub in auth.items()},
            REST: _rest_call(rest, "/api/v1/auth/me"),
            GRPC_WEB: _grpc_web_call(grpc_web, "/novasphere.v1.AuthService/Me", me),
        },
        "GetWukong": {
            **{door: _grpc_call(stub.GetWukong, get) for door, stub in stubs.items()},
            REST: _rest_call(rest, f"/api/v1/wukongs/{name}?namespace={namespace}"),
            GRPC_WEB: _grpc_web_call(grpc_web, "/novasphere.v1.WukongService/GetWukong", get),
        },
        "ListWukongs": {
            **{door: _grpc_call(stub.ListWukongs, page) for door, stub in stubs.items()},
            REST: _rest_call(rest, f"/api/v1/wukongs?namespace={namespace}&pageSize={page_size}"),
            GRPC_WEB: _grpc_web_call(grpc_web, "/novasphere.v1.WukongService/ListWukongs", page),
        },
    }
    if admin is not None:
        custom = kubernetes.client.CustomObjectsApi(admin)
        group = ("vm.novasphere.dev", "v1alpha1", namespace, "wukongs")
        cases["GetWukong"][REFERENCE] = lambda _: custom.get_namespaced_custom_object(*group, name)
        cases["ListWukongs"][REFERENCE] = lambda _: custom.list_namespaced_custom_object(*group, limit=page_size)
    return cases


def rounds(
    doors: dict[str, Call], *, iterations: int, warmup: int, tag: str
) -> tuple[dict[str, list[float]], dict[str, str]]:
    """Milliseconds per door, the doors taking turns (the order rotating each round); also each door's request id
    prefix (`<tag>-<door number>-<round>`), by which Envoy's access log names its calls. The client's garbage
    collector runs between rounds only, never inside a timed call."""
    names = list(doors)
    prefixes = {door: f"{tag}-{i}" for i, door in enumerate(names)}
    samples: dict[str, list[float]] = {door: [] for door in names}
    gc.collect()
    gc.disable()
    try:
        for round_ in range(warmup + iterations):
            shift = round_ % len(names)
            for door in names[shift:] + names[:shift]:
                request_id = f"{prefixes[door]}-{round_}" if round_ >= warmup else f"warmup-{tag}"
                started = time.perf_counter()
                doors[door](request_id)
                elapsed = (time.perf_counter() - started) * 1000
                if round_ >= warmup:
                    samples[door].append(elapsed)
            if round_ % 10 == 9:
                gc.collect()
    finally:
        gc.enable()
    return samples, prefixes


def _envoy_lines(envoy_log: Path, tag: str, *, offset: int, expected: int) -> list[dict[str, Any]]:
    """Envoy's access lines of this run (request ids starting with `tag`) written past `offset`, once `expected` of
    them are there (Envoy flushes its access log every second); whatever is there after 15 s."""
    deadline = time.monotonic() + 15
    while True:
        lines = []
        with envoy_log.open("rb") as log:
            log.seek(offset)
            written = log.read().decode(errors="replace")
        for text in written.splitlines():
            if text.startswith("{") and tag in text:
                line = json.loads(text)
                if str(line.get("request_id", "")).startswith(f"{tag}-"):
                    lines.append(line)
        if len(lines) >= expected or time.monotonic() > deadline:
            return lines
        time.sleep(0.5)


def _timing(lines: list[dict[str, Any]], prefix: str) -> dict[str, float] | None:
    """Medians (in ms) of Envoy's timing fields over the calls with this request id prefix."""
    mine = [line for line in lines if line["request_id"].startswith(prefix + "-") and "duration_us" in line]
    if not mine:
        return None
    timing = {}
    for field in ENVOY_TIMING:
        values = [line[field] for line in mine if isinstance(line.get(field), int | float)]
        if values:
            timing[field.removesuffix("_us") + "_ms"] = statistics.median(values) / 1000
    return timing


def measure_doors(
    *,
    grpc_direct: str,
    edge: devstack.Edge,
    admin: kubernetes.client.ApiClient | None = None,
    envoy_log: Path | None = None,
    namespace: str = NAMESPACE,
    name: str = NAME,
    page_size: int = 500,
    iterations: int = 300,
    warmup: int = 30,
) -> dict[str, Any]:
    """Each call through each door; see `report` for the dict. `grpc_direct`: the API server's own gRPC listener
    (host:port); `edge`: Envoy's listener; `admin`: kube-apiserver for the context rows (None: left out);
    `envoy_log`: Envoy's access log for the breakdown (None: left out). `namespace` holds the Wukong `name` and the
    page listed, and the stack's development identity sees it (NOVASPHERE_DEV_TENANT=bench, see `seed`)."""
    tag = f"doors{uuid.uuid4().hex[:8]}"
    log_offset = envoy_log.stat().st_size if envoy_log is not None else 0
    with (
        grpc.insecure_channel(grpc_direct) as direct,
        edge.channel() as via_envoy,
        contextlib.closing(_Http(edge)) as rest,
        contextlib.closing(_Http(edge)) as grpc_web,
    ):
        cases = _cases(
            direct=direct,
            via_envoy=via_envoy,
            rest=rest,
            grpc_web=grpc_web,
            admin=admin,
            namespace=namespace,
            name=name,
            page_size=page_size,
        )
        measured = {}
        for number, (call, doors) in enumerate(cases.items()):
            # kube-apiserver's rows are context, measured apart: its client's big reads would disturb the next calls.
            reference = doors.pop(REFERENCE, None)
            samples, prefixes = rounds(doors, iterations=iterations, warmup=warmup, tag=f"{tag}-{number}")
            if reference is not None:
                context, _ = rounds({REFERENCE: reference}, iterations=iterations, warmup=warmup, tag=f"{tag}-ctx")
                samples |= context
            measured[call] = (samples, prefixes)
    lines = (
        _envoy_lines(envoy_log, tag, offset=log_offset, expected=len(measured) * len(ENVOY_DOORS) * iterations)
        if envoy_log is not None
        else []
    )
    calls: dict[str, Any] = {}
    for call, (samples, prefixes) in measured.items():
        direct_p50 = statistics.median(samples[DIRECT])
        doors_out: dict[str, Any] = {}
        for door, values in samples.items():
            row: dict[str, Any] = {"p50_ms": statistics.median(values), "p99_ms": percentile(values, 0.99)}
            if door in ENVOY_DOORS:
                row["envoy_adds_p50_ms"] = row["p50_ms"] - direct_p50
                row["within_budget"] = row["envoy_adds_p50_ms"] <= BUDGET_MS
                row["envoy_timing"] = _timing(lines, prefixes[door]) if lines else None
            doors_out[door] = row
        calls[call] = {
            "noise_ms": abs(statistics.median(samples[DIRECT][0::2]) - statistics.median(samples[DIRECT][1::2])),
            "doors": doors_out,
        }
    return {"budget_ms": BUDGET_MS, "iterations": iterations, "warmup": warmup, "calls": calls}


def measure(
    stack: devstack.Stack,
    *,
    admin: kubernetes.client.ApiClient | None = None,
    namespace: str = NAMESPACE,
    name: str = NAME,
    page_size: int = 500,
    iterations: int = 300,
    warmup: int = 30,
) -> dict[str, Any]:
    """`measure_doors` against a running stack (its API server, its Envoy and Envoy's log), whose development tenant
    sees `namespace` (seeded with `seed`)."""
    envoy = next((p for p in stack.processes if p.name == "envoy"), None)
    return measure_doors(
        grpc_direct=stack.grpc_direct,
        edge=stack.edge,
        admin=admin,
        envoy_log=None if envoy is None else envoy.log_path,
        namespace=namespace,
        name=name,
        page_size=page_size,
        iterations=iterations,
        warmup=warmup,
    )


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    """Every mapping in a rendered Envoy bootstrap."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _without_lua(bootstrap: dict[str, Any]) -> None:
    for node in _walk(bootstrap):
        if "httpFilters" in node:
            node["httpFilters"] = [f for f in node["httpFilters"] if f["name"] != envoy_config.LUA]


def _without_access_log(bootstrap: dict[str, Any]) -> None:
    for node in _walk(bootstrap):
        node.pop("accessLog", None)


def _without_default_values(bootstrap: dict[str, Any]) -> None:
    for node in _walk(bootstrap):
        if "alwaysPrintPrimitiveFields" in node:
            node["alwaysPrintPrimitiveFields"] = False


VARIANTS: dict[str, Callable[[dict[str, Any]], None] | None] = {
    "as deployed": None,
    "without the Lua filter": _without_lua,
    "without the access log": _without_access_log,
    "without default values printed (a contract change)": _without_default_values,
}
"""Envoys `--variants` compares: the deployed configuration, and each with one part taken out."""


def measure_variants(
    stack: devstack.Stack,
    state_dir: Path,
    *,
    namespace: str = NAMESPACE,
    page_size: int = 500,
    iterations: int = 300,
) -> dict[str, dict[str, float]]:
    """Per variant of Envoy's configuration (`VARIANTS`), in front of the stack's API server: the REST page's p50 and
    what Envoy adds to it (the direct gRPC call interleaved with it is the reference), and the JSON bytes."""
    (state_dir / "logs").mkdir(parents=True, exist_ok=True)
    path = f"/api/v1/wukongs?namespace={namespace}&pageSize={page_size}"
    page = service_pb2.ListWukongsRequest(namespace=namespace, page_size=page_size)
    out: dict[str, dict[str, float]] = {}
    with grpc.insecure_channel(stack.grpc_direct) as direct:
        stub = WukongServiceStub(direct)
        for number, (variant, alter) in enumerate(VARIANTS.items()):
            envoy = devstack.start_front(
                stack.api, tls=stack.tls, state_dir=state_dir, name=f"envoy-variant-{number}", alter=alter
            )
            with procs.stopping([envoy.process]), contextlib.closing(_Http(envoy.edge)) as rest:
                body = rest.call("GET", path, headers={})
                samples, _ = rounds(
                    {
                        DIRECT: _grpc_call(stub.ListWukongs, page),
                        REST: _rest_call(rest, path),
                    },
                    iterations=iterations,
                    warmup=max(10, iterations // 10),
                    tag=f"variant{number}",
                )
            rest_p50 = statistics.median(samples[REST])
            out[variant] = {
                "rest_p50_ms": rest_p50,
                "envoy_adds_p50_ms": rest_p50 - statistics.median(samples[DIRECT]),
                "json_bytes": len(body),
            }
    return out


def report_variants(variants: dict[str, dict[str, float]], *, page_size: int) -> str:
    deployed = variants["as deployed"]["envoy_adds_p50_ms"]
    out = [
        f"\nREST ListWukongs (page of {page_size}) through Envoys lacking one part each; a part costs what its"
        " absence saves:",
        f"  {'Envoy':52} {'JSON bytes':>10} {'p50 ms':>8} {'Envoy adds':>11} {'saves':>7}",
    ]
    for variant, row in variants.items():
        saves = "" if variant == "as deployed" else f"{deployed - row['envoy_adds_p50_ms']:+.2f}"
        out.append(
            f"  {variant:52} {row['json_bytes']:10d} {row['rest_p50_ms']:8.2f} {row['envoy_adds_p50_ms']:+11.2f}"
            f" {saves:>7}"
        )
    return "\n".join(out)


def report(results: dict[str, Any]) -> str:
    """The tables: per call, each door's p50/p99 and what Envoy adds with the verdict; then where the time of each
    Envoy door went, by Envoy's own clock."""
    budget = results["budget_ms"]
    out = [
        f"{results['iterations']} calls per door and call, after {results['warmup']} warm-up rounds; doors take turns."
        f" Budget: Envoy adds <= {budget:g} ms (p50) per call."
    ]
    for call, measured in results["calls"].items():
        doors = measured["doors"]
        out.append(f"\n{call}  (noise: direct p50 of odd vs even rounds differ by {measured['noise_ms']:.2f} ms)")
        direct_p50 = doors[DIRECT]["p50_ms"]
        out.append(f"  {'door':26} {'p50 ms':>8} {'p99 ms':>8} {'x direct':>9} {'Envoy adds (p50, ms)':>21}  verdict")
        for door, row in doors.items():
            adds, verdict = "", ""
            if "envoy_adds_p50_ms" in row:
                adds = f"{row['envoy_adds_p50_ms']:+.2f}"
                verdict = "within budget" if row["within_budget"] else f"OVER the {budget:g} ms budget"
            elif door == DIRECT:
                verdict = "reference"
            ratio = row["p50_ms"] / direct_p50
            out.append(f"  {door:26} {row['p50_ms']:8.2f} {row['p99_ms']:8.2f} {ratio:8.2f}x {adds:>21}  {verdict}")
    timed = [
        (call, door, row)
        for call, measured in results["calls"].items()
        for door, row in measured["doors"].items()
        if row.get("envoy_timing")
    ]
    if timed:
        out.append(
            "\nWhere the time went (p50s; Envoy's own clock from its access log, except the client's columns):\n"
            "  client: the call as the client timed it; Envoy total: first request byte in to last response byte out;\n"
            "  Envoy in: its filters until the API server got the request; API server: until its first response byte;\n"
            "  Envoy out: from that byte to the client's last (transcoding included); outside Envoy: client + loopback."
        )
        out.append(
            f"  {'call':24} {'door':20} {'client':>8} {'Envoy total':>12} {'Envoy in':>9} {'API server':>11}"
            f" {'Envoy out':>10} {'in+out':>7} {'outside':>8}"
        )
        for call, door, row in timed:
            timing = row["envoy_timing"]
            total, inbound = timing.get("duration_ms", 0.0), timing.get("edge_request_ms", 0.0)
            server, outbound = timing.get("upstream_wait_ms", 0.0), timing.get("edge_response_ms", 0.0)
            out.append(
                f"  {call:24} {door:20} {row['p50_ms']:8.2f} {total:12.2f} {inbound:9.2f} {server:11.2f}"
                f" {outbound:10.2f} {inbound + outbound:7.2f} {row['p50_ms'] - total:8.2f}"
            )
        for call, measured in results["calls"].items():
            rest, web = (measured["doors"][door].get("envoy_timing") or {} for door in (REST, GRPC_WEB))
            if "edge_response_ms" in rest and "edge_response_ms" in web:
                transcoding = rest["edge_response_ms"] - web["edge_response_ms"]
                out.append(f"  {call}: JSON transcoding ~{transcoding:.2f} ms (REST's Envoy out minus gRPC-Web's)")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wukongs", type=int, default=200, help="Wukongs in the listed namespace")
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--page-size", type=int, default=500, help="ListWukongs' page (500: all of the default 200)")
    parser.add_argument(
        "--variants", action="store_true", help="also the REST page through Envoys lacking one part each"
    )
    args = parser.parse_args()

    with (
        tempfile.TemporaryDirectory(prefix="novasphere-bench-") as scratch,
        devcluster.running(Path(scratch) / "cluster") as cluster,
        devstack.running(cluster, Path(scratch) / "stack", api_env={"NOVASPHERE_DEV_TENANT": TENANT}) as stack,
        devstack.admin_client(cluster) as admin,
        grpc.insecure_channel(stack.grpc_direct) as direct,
    ):
        cursor = seed(admin, args.wukongs)
        WukongServiceStub(direct).ListWukongs(service_pb2.ListWukongsRequest(namespace=NAMESPACE, cursor=cursor))
        results = measure(stack, admin=admin, iterations=args.iterations, warmup=args.warmup, page_size=args.page_size)
        results["wukongs"] = args.wukongs
        if args.variants:
            results["variants"] = measure_variants(
                stack, Path(scratch) / "variants", page_size=args.page_size, iterations=args.iterations
            )
    print(report(results))
    if "variants" in results:
        print(report_variants(results["variants"], page_size=args.page_size))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
