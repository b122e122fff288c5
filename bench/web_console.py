"""`make bench-web`: how fast the web console shows the VM list, in Debian's chromium against a local stack.

Measured: from navigation to the list's first rows (the page loads, restores the session from its cookie, reads one
page of Wukongs), over `--loads` reloads after one sign-in. Reference, in the same loads: the navigation's own `load`
event (the document and the bundle fetched and run, before any API call), so the ratio is what the API calls add.
With `--wukongs 10000` the page still reads one page: the numbers stay those of one page.

Also measured: what live updates cost the page. `--changes` Wukongs picked across the whole namespace are
relabelled while two WatchWukong streams are open: the list page's own (its filter and its rows as `names`), and, as
the reference, the same filter without `names` (every change). The page's stream gets the changes of its rows only.
"""

from __future__ import annotations

import argparse
import random
import secrets
import statistics
import tempfile
import threading
from pathlib import Path

import grpc
import kubernetes.client

import devcluster
from bench import seeding
from devcluster import accounts
from devcluster import stack as devstack
from novasphere.v1 import auth_service_pb2, wukong_pb2, wukong_service_pb2
from novasphere.v1.auth_service_pb2_grpc import AuthServiceStub
from novasphere.v1.wukong_service_pb2_grpc import WukongServiceStub
from server.kube import wukongs as kube_wukongs
from tests.web_browser import Browser, BrowserServer

NAMESPACE = "bench-web"
TENANT = "bench-web"
USER = "bench-web"
PASSWORD = secrets.token_urlsafe(18)
FIRST_ROWS = """new Promise((resolve) => {
  const check = () => document.querySelector(".ant-table-tbody tr.ant-table-row")
    ? resolve([performance.now(), performance.getEntriesByType("navigation")[0].loadEventEnd])
    : requestAnimationFrame(check);
  check();
})"""


def _seed(stack: devstack.Stack, cluster: devcluster.ClusterInfo, count: int) -> None:
    with devstack.admin_client(cluster) as admin:
        seeding.namespace_of_wukongs(admin, namespace=NAMESPACE, tenant=TENANT, count=count)
        accounts.create_user(admin, USER, PASSWORD, tenant=TENANT, role="operator")


PAGE = 20  # the list's default page size; sorted by name, the first page is vm-00000 .. vm-00019


def _modified_events(
    stack: devstack.Stack, cluster: devcluster.ClusterInfo, count: int, changes: int
) -> tuple[int, int]:
    """MODIFIED events (all streams, page stream) while `changes` Wukongs across the namespace are relabelled; the last
    change is one of the page's rows, so both streams have seen everything once they have seen it."""
    with grpc.insecure_channel(stack.grpc_direct) as channel:
        token = AuthServiceStub(channel).Login(auth_service_pb2.LoginRequest(username=USER, password=PASSWORD))
        metadata = (("authorization", f"Bearer {token.access_token}"),)
        stub = WukongServiceStub(channel)
        page = [f"vm-{i:05d}" for i in range(PAGE)]
        requests = {
            "all": wukong_service_pb2.WatchWukongRequest(namespace=NAMESPACE),
            "page": wukong_service_pb2.WatchWukongRequest(namespace=NAMESPACE, names=page),
        }
        counted = dict.fromkeys(requests, 0)
        live = {name: threading.Event() for name in requests}
        done = {name: threading.Event() for name in requests}
        calls = {name: stub.WatchWukong(request, metadata=metadata, timeout=600) for name, request in requests.items()}

        def read(name: str) -> None:
            for event in calls[name]:
                if event.type == wukong_pb2.WukongEvent.Type.BOOKMARK:
                    live[name].set()
                elif event.type == wukong_pb2.WukongEvent.Type.MODIFIED:
                    counted[name] += 1
                    if event.wukong.labels.get("bench") == "last":
                        done[name].set()
                        return

        readers = [threading.Thread(target=read, args=(name,), daemon=True) for name in requests]
        for reader in readers:
            reader.start()
        for event in live.values():
            event.wait(120)
        picked = [*random.Random(7).sample(range(PAGE, count), min(changes, count - PAGE)), 0]  # noqa: S311
        with devstack.admin_client(cluster) as admin:
            objects = kubernetes.client.CustomObjectsApi(admin)
            for index, i in enumerate(picked):
                label = "last" if index == len(picked) - 1 else str(index)
                objects.patch_namespaced_custom_object(
                    kube_wukongs.GROUP,
                    kube_wukongs.VERSION,
                    NAMESPACE,
                    kube_wukongs.PLURAL,
                    f"vm-{i:05d}",
                    {"metadata": {"labels": {"bench": label}}},
                )
        for event in done.values():
            event.wait(300)
        for call in calls.values():
            call.cancel()
    return counted["all"], counted["page"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--wukongs", type=int, default=200)
    parser.add_argument("--loads", type=int, default=20)
    parser.add_argument("--changes", type=int, default=200)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="novasphere-bench-web-") as scratch,
        devcluster.running(Path(scratch) / "cluster") as cluster,
        devstack.running(cluster, Path(scratch) / "stack", api_env={"NOVASPHERE_DEV_IDENTITY": "false"}) as stack,
    ):
        _seed(stack, cluster, args.wukongs)
        server = BrowserServer(stack.tls.serving_cert)
        browser = Browser(server)
        try:
            tab = browser.open()
            url = f"{stack.edge.url}/vms?ns={NAMESPACE}"
            tab.goto(url)
            tab.wait("text=Sign in to NovaSphere")
            tab.fill("#username", USER)
            tab.fill("#password", PASSWORD)
            tab.click("button[type=submit]")
            tab.wait(".ant-table-tbody tr.ant-table-row", ms=120_000)
            rows, loads = [], []
            for _ in range(args.loads):
                tab.goto(url)
                first_rows, loaded = tab.evaluate(FIRST_ROWS)
                rows.append(first_rows)
                loads.append(loaded)
        finally:
            browser.close()
            server.close()
        all_events, page_events = _modified_events(stack, cluster, args.wukongs, args.changes)
    rows_p50, load_p50 = statistics.median(rows), statistics.median(loads)
    print(f"\nweb console, {args.wukongs} Wukongs in the namespace, {args.loads} loads after one sign-in")
    print(f"  navigation to load event (reference)  p50 {load_p50:7.1f} ms  max {max(loads):7.1f} ms")
    print(f"  navigation to the list's first rows   p50 {rows_p50:7.1f} ms  max {max(rows):7.1f} ms")
    print(f"  ratio (first rows / load)             {rows_p50 / load_p50:7.2f}x")
    print(f"live updates while {args.changes + 1} Wukongs across the namespace change (one of them on the page)")
    print(f"  MODIFIED events, every change (reference)  {all_events:6d}")
    print(f"  MODIFIED events, the page's stream         {page_events:6d}")
    print(f"  ratio (page / every change)                {page_events / max(all_events, 1):9.4f}")


if __name__ == "__main__":
    main()
