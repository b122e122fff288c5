"""`make bench-web-serial`: keystroke-to-echo latency in the web console's serial console (xterm.js in Debian's
chromium, through Envoy and the API's console proxy to the simulated guest), to set beside `make bench-console`'s
figure for the same path without a browser.

Each of `--samples` characters is typed as a real key press (playwright), `--pause` ms apart so every echo is back
before the next key; in the page, the key's `keydown` time, the moment its echo arrives on the socket (the page
decodes it) and the moment xterm.js renders it (a mutation of the terminal's rows) are taken with
`performance.now()`, so the driver's own round trips are not counted. Rendering waits for the next animation frame.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import tempfile
import time
from pathlib import Path

import grpc
import kubernetes.client

import devcluster
from bench import percentile
from bench.console import wait_running
from devcluster import accounts
from devcluster import stack as devstack
from novasphere.v1 import auth_service_pb2, wukong_pb2
from novasphere.v1 import wukong_service_pb2 as service_pb2
from novasphere.v1.auth_service_pb2_grpc import AuthServiceStub
from novasphere.v1.wukong_service_pb2_grpc import WukongServiceStub
from tests.web_browser import Browser, BrowserServer, Tab

NAMESPACE, TENANT, VM, USER = "bench-web-serial", "bench-web-serial", "echo", "bench-web-serial"
PASSWORD = secrets.token_urlsafe(18)
GUEST_USER, GUEST_PASSWORD = "bench", secrets.token_hex(8)
TYPED = "q"
TERMINAL = "[data-testid=serial-screen] .xterm-helper-textarea"
ROWS = "[data-testid=serial-screen] .xterm-rows"
OBSERVE = f"""(() => {{
  const rows = document.querySelector({ROWS!r});
  const textarea = document.querySelector({TERMINAL!r});
  window.benchKeys = []; window.benchEchoes = []; window.benchArrivals = [];
  // the page decodes each of the socket's messages once (console/serial.ts): the echo's arrival, before xterm renders
  const decode = TextDecoder.prototype.decode;
  TextDecoder.prototype.decode = function (...args) {{
    const text = decode.apply(this, args);
    const now = performance.now();
    for (const char of text) if (char === "{TYPED}") window.benchArrivals.push(now);
    return text;
  }};
  const count = () => (rows.textContent.match(/{TYPED}/g) || []).length;
  const base = count();
  textarea.addEventListener("keydown", () => window.benchKeys.push(performance.now()), true);
  new MutationObserver(() => {{
    const now = performance.now();
    while (window.benchEchoes.length < count() - base) window.benchEchoes.push(now);
  }}).observe(rows, {{ subtree: true, childList: true, characterData: true }});
}})()"""


def _until(tab: Tab, text: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while text not in tab.text(ROWS):
        if time.monotonic() > deadline:
            raise SystemExit(f"the terminal never showed {text!r}")
        time.sleep(0.1)


def _read_as_bench_user(channel: grpc.Channel) -> wukong_pb2.Wukong:
    """The VM, asked as the bench's user (a login each time: the API may not know the user yet)."""
    login = AuthServiceStub(channel).Login(auth_service_pb2.LoginRequest(username=USER, password=PASSWORD))
    return WukongServiceStub(channel).GetWukong(
        service_pb2.GetWukongRequest(namespace=NAMESPACE, name=VM),
        metadata=(("authorization", f"Bearer {login.access_token}"),),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=200, help="keystrokes timed")
    parser.add_argument("--pause", type=int, default=60, help="ms between keystrokes")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="novasphere-bench-web-serial-") as scratch,
        devcluster.running(Path(scratch) / "cluster") as cluster,
        devstack.running(cluster, Path(scratch) / "stack", api_env={"NOVASPHERE_DEV_IDENTITY": "false"}) as stack,
        devstack.admin_client(cluster) as admin,
        grpc.insecure_channel(stack.grpc_direct) as channel,
    ):
        metadata = kubernetes.client.V1ObjectMeta(name=NAMESPACE, labels={"novasphere.dev/tenant": TENANT})
        kubernetes.client.CoreV1Api(admin).create_namespace(kubernetes.client.V1Namespace(metadata=metadata))
        spec = {
            "cpu": 1,
            "memory": "1Gi",
            "disks": [{"name": "root", "size": "10Gi", "storageClassName": "local-path"}],
            "cloudInitUser": {"name": GUEST_USER, "password": GUEST_PASSWORD},
        }
        kubernetes.client.CustomObjectsApi(admin).create_namespaced_custom_object(
            "vm.novasphere.dev",
            "v1alpha1",
            NAMESPACE,
            "wukongs",
            {"apiVersion": "vm.novasphere.dev/v1alpha1", "kind": "Wukong", "metadata": {"name": VM}, "spec": spec},
        )
        accounts.create_user(admin, USER, PASSWORD, tenant=TENANT, role="operator")
        wait_running(lambda: _read_as_bench_user(channel), VM)
        server = BrowserServer(stack.tls.serving_cert)
        browser = Browser(server)
        try:
            tab = browser.open()
            tab.goto(f"{stack.edge.url}/vms/{NAMESPACE}/{VM}/console/serial")
            tab.wait("text=Sign in to NovaSphere", ms=60_000)
            tab.fill("#username", USER)
            tab.fill("#password", PASSWORD)
            tab.click("button[type=submit]")
            tab.wait("[data-testid=console-state] >> text=Connected", ms=60_000)
            tab.type(TERMINAL, "\r")
            _until(tab, "login:")
            tab.type(TERMINAL, f"{GUEST_USER}\r")
            _until(tab, "Password:")
            tab.type(TERMINAL, f"{GUEST_PASSWORD}\r")
            _until(tab, "$ ")
            tab.evaluate(OBSERVE)
            tab.type(TERMINAL, TYPED * args.samples, delay_ms=args.pause)
            deadline = time.monotonic() + 30
            while tab.evaluate("window.benchEchoes.length") < args.samples and time.monotonic() < deadline:
                time.sleep(0.1)
            keys, arrivals, echoes = tab.evaluate("[window.benchKeys, window.benchArrivals, window.benchEchoes]")
        finally:
            browser.close()
            server.close()
    latencies = [echo - key for key, echo in zip(keys, echoes, strict=False)]
    arrived = [arrival - key for key, arrival in zip(keys, arrivals, strict=False)]
    if min(len(latencies), len(arrived)) < args.samples:
        raise SystemExit(f"only {len(latencies)} of {args.samples} echoes arrived")
    print("\nweb serial console (xterm.js in chromium → Envoy → API console proxy → simulated guest)")
    print(f"  keystroke to echo rendered, {args.samples} keys {args.pause} ms apart")
    for what, values in (("echo received by the page", arrived), ("echo rendered by xterm.js", latencies)):
        p50, p99 = statistics.median(values), percentile(values, 0.99)
        print(f"  {what:26} p50 {p50:7.2f} ms   p99 {p99:7.2f} ms   max {max(values):7.2f} ms")


if __name__ == "__main__":
    main()
