"""`make run`: the whole local stack in the foreground (control plane, CRDs and RBAC, API server, Envoy, demo
data), its addresses printed and written to `.run/env`, until Ctrl-C or SIGTERM stops all of it."""

from __future__ import annotations

import json
import secrets
import signal
import sys
from pathlib import Path

import devcluster
from devcluster import accounts, binaries, manifests, procs, stack

REPO_ROOT = manifests.REPO_ROOT
DEMO = Path(__file__).with_name("demo.yaml")
DEMO_NAMESPACE = "demo"
DEMO_TENANT = "demo"
DEMO_USER = "ada"
"""An operator in the demo tenant; her password is new on every `make run` and written to .run/env."""
# The simulator runs twice as fast as a real cluster: a VM boots in seconds, vmoperator polls every 5 s.
SIM_SPEED = 2.0
ENVOY_PORT = 8443
"""The public port, if free (else any): the one address a person needs; the others are printed and in .run/env."""


def main(state_dir: Path, env_file: Path, edge_pki: Path, cors_origins: tuple[str, ...] = ()) -> int:
    """`edge_pki`: where the edge CA is kept between runs, so a browser or OS told to trust it keeps trusting it.
    Browsers may call the API from the served web console's origins, Vite's dev server's and `cors_origins`."""

    procs.interrupt_on_stop_signals()
    grpcurl = binaries.ensure_grpcurl()
    try:
        with (
            devcluster.running(state_dir / "cluster") as cluster,
            stack.running(
                cluster,
                state_dir / "stack",
                envoy_port=ENVOY_PORT,
                edge_pki=edge_pki,
                cors_allowed_origins=(*stack.VITE_ORIGINS, *cors_origins),
                cors_allow_served_origin=True,
                api_env={"NOVASPHERE_DEV_TENANT": DEMO_TENANT},
                sim_speed=SIM_SPEED,
            ) as running,
        ):
            demo_password = secrets.token_urlsafe(12)
            with stack.admin_client(cluster) as client:
                manifests.apply(client, [*manifests.load([DEMO]), accounts.user_secret(DEMO_USER, demo_password)])
                accounts.bind(client, DEMO_USER, DEMO_TENANT, "operator")
            (state_dir / "pids.json").write_text(
                json.dumps({p.name: p.pid for p in running.processes} | {"supervisor": cluster.supervisor_pid})
            )
            _write_env(env_file, running, demo_password)
            try:
                origins = (*stack.served_origins(running.ports.envoy), *stack.VITE_ORIGINS, *cors_origins)
                print(_instructions(running, grpcurl, env_file, origins), flush=True)
                signal.pause()
            finally:
                env_file.unlink(missing_ok=True)
    except KeyboardInterrupt:
        print("\nStopping…", file=sys.stderr, flush=True)
    except procs.ProcessError as error:
        print(f"make run failed: {error}", file=sys.stderr)
        return 1
    print("Stopped; nothing is left running.", file=sys.stderr)
    return 0


def _write_env(path: Path, running: stack.Stack, demo_password: str) -> None:
    """Shell `KEY=value` lines, so scripts and clients can find the running stack (`. .run/env`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = {
        "KUBECONFIG": running.cluster.kubeconfig,
        "NOVASPHERE_GRPC": running.grpc_envoy,
        "NOVASPHERE_HTTP": running.http,
        "NOVASPHERE_CA": str(running.edge.ca_cert),
        "NOVASPHERE_GRPC_DIRECT": running.grpc_direct,
        "NOVASPHERE_METRICS": running.metrics_url,
        "NOVASPHERE_NAMESPACE": DEMO_NAMESPACE,
        "NOVASPHERE_DEMO_USER": DEMO_USER,
        "NOVASPHERE_DEMO_PASSWORD": demo_password,
        "NOVASPHERE_DEMO_TENANT": DEMO_TENANT,
    }
    path.write_text("".join(f"{key}={value}\n" for key, value in lines.items()))


def _short(path: Path | None) -> Path | None:
    """`path` from the current folder when it is below it (`.run/edge-pki/ca.crt` for `make run`): lines to paste."""
    if path is None or not path.is_relative_to(Path.cwd()):
        return path
    return path.relative_to(Path.cwd())


def _instructions(running: stack.Stack, grpcurl: Path, env_file: Path, origins: tuple[str, ...]) -> str:
    http, grpc, ca = running.http, running.grpc_envoy, _short(running.edge.ca_cert)
    curl = f"curl --cacert {ca}"
    get = '{"name": "web-1", "namespace": "demo"}'
    return f"""
NovaSphere API is running on a local Kubernetes {running.cluster.kubernetes_version} control plane, with the
simulator of KubeVirt and vmoperator (sim/, {SIM_SPEED:g}x speed) running the demo VMs.

  Web console (sign in as below)       {http}/
  REST, gRPC-Web and gRPC (Envoy, TLS) {http}
  the local CA its certificate is from {ca}
      (curl --cacert, grpcurl -cacert; add it to a browser's trusted authorities to open the API there)
  gRPC, API server direct (plain)      {running.grpc_direct}
  Prometheus metrics of the API        {running.metrics_url}
  Prometheus (simulated, VM metrics)   {running.prometheus_url}
  Envoy admin                          http://127.0.0.1:{running.ports.envoy_admin}
  Browser pages may call the API from  {", ".join(origins)}
      (CORS; more with  make run CORS_ORIGINS="app://novasphere http://localhost:8080")
  Kubernetes (admin)                   export KUBECONFIG={running.cluster.kubeconfig}

Calls without credentials run as a development identity in tenant {DEMO_TENANT}. To log in as a real user (an
operator in that tenant: the web console's sign-in; her name and password are in {env_file}):
  . {env_file}; curl --cacert "$NOVASPHERE_CA" -s "$NOVASPHERE_HTTP/api/v1/auth/login" \\
    -d "{{\\"username\\":\\"$NOVASPHERE_DEMO_USER\\",\\"password\\":\\"$NOVASPHERE_DEMO_PASSWORD\\"}}"
  then send its accessToken as  -H "Authorization: Bearer TOKEN"  ({curl} {http}/api/v1/auth/me)

vmctl, the command-line client (in .venv/bin), needs one line of set-up:  . {env_file}
  .venv/bin/vmctl get -A            (then describe, start, stop, create -f …; --help lists them)
  .venv/bin/vmctl login -u "$NOVASPHERE_DEMO_USER" --password-stdin <<< "$NOVASPHERE_DEMO_PASSWORD"   (as her)

Try:
  {curl} -s {http}/api/v1/wukongs
  {curl} -s '{http}/api/v1/wukongs/web-1?namespace=demo'
  {curl} -s -i {http}/api/v1/wukongs/nope
  {curl} -s '{http}/api/v1/wukongs?sortBy=cpu&sortOrder=desc&status=running,stopped'
  {curl} -sN {http}/api/v1/watch/wukongs          (Server-Sent Events; Ctrl-C to stop)
  {curl} -s -X POST '{http}/api/v1/wukongs/db-1/start?namespace=demo' -d '{{}}'   (a task; then:)
  {curl} -sN {http}/api/v1/watch/tasks/TASK_ID      (its progress until it ends)
  {curl} -s '{http}/api/v1/wukongs/web-1/metrics?namespace=demo'   (CPU, memory, network, disk)
  {curl} -s {http}/api/v1/stats
  {curl} -s -X POST '{http}/api/v1/wukongs/web-1/console?namespace=demo' -d '{{"protocol":"SERIAL"}}'
      (a console link: open its consoleUrl, a wss:// URL, as a WebSocket within 30 s, offering the subprotocol
       ticket.novasphere.dev.<ticket>; noVNC takes it as wsProtocols)
  {grpcurl} -cacert {ca} {grpc} list
  {grpcurl} -cacert {ca} -d '{get}' {grpc} novasphere.v1.WukongService/GetWukong
  kubectl --kubeconfig {running.cluster.kubeconfig} get wukongs,vms,vmis,pods -A
  kubectl --kubeconfig {running.cluster.kubeconfig} get tasks -n novasphere-system
  kubectl --kubeconfig {running.cluster.kubeconfig} get --raw \
    /apis/subresources.kubevirt.io/v1/namespaces/demo/virtualmachineinstances/web-1-vm/guestosinfo
  {sys.executable} -m sim.vnc_proxy --kubeconfig {running.cluster.kubeconfig} --namespace demo --name web-1-vm
      (then point a VNC viewer at the port it prints, e.g. vncviewer 127.0.0.1::PORT)

These addresses are in {env_file} (source it). Logs: {running.cluster.state_dir}/logs and
{Path(running.cluster.state_dir).parent / "stack" / "logs"}. Ctrl-C stops everything.
"""
