"""`make bench-web`: how fast the web console shows the VM list, in Debian's chromium against a local stack.

Measured: from navigation to the list's first rows (the page loads, restores the session from its cookie, reads one
page of Wukongs), over `--loads` reloads after one sign-in. Reference, in the same loads: the navigation's own `load`
event (the document and the bundle fetched and run, before any API call), so the ratio is what the API calls add.
With `--wukongs 10000` the page still reads one page: the numbers stay those of one page.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import tempfile
from pathlib import Path

import devcluster
from devcluster import accounts, manifests
from devcluster import stack as devstack
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
        manifests.apply(
            admin,
            [
                {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {"name": NAMESPACE, "labels": {"novasphere.dev/tenant": TENANT}},
                },
                *(
                    {
                        "apiVersion": "vm.novasphere.dev/v1alpha1",
                        "kind": "Wukong",
                        "metadata": {"name": f"vm-{i:05d}", "namespace": NAMESPACE},
                        "spec": {"cpu": 1, "memory": "1Gi"},
                    }
                    for i in range(count)
                ),
            ],
        )
        accounts.create_user(admin, USER, PASSWORD, tenant=TENANT, role="operator")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--wukongs", type=int, default=200)
    parser.add_argument("--loads", type=int, default=20)
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
    rows_p50, load_p50 = statistics.median(rows), statistics.median(loads)
    print(f"\nweb console, {args.wukongs} Wukongs in the namespace, {args.loads} loads after one sign-in")
    print(f"  navigation to load event (reference)  p50 {load_p50:7.1f} ms  max {max(loads):7.1f} ms")
    print(f"  navigation to the list's first rows   p50 {rows_p50:7.1f} ms  max {max(rows):7.1f} ms")
    print(f"  ratio (first rows / load)             {rows_p50 / load_p50:7.2f}x")


if __name__ == "__main__":
    main()
