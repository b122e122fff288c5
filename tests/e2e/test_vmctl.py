"""vmctl as users get it: its wheel built and installed into a fresh virtualenv (nothing of the server in it), run
as a subprocess against a real stack (an API server that requires credentials, behind Envoy with TLS)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import kubernetes.client
import pytest
import yaml

from devcluster import accounts, procs
from devcluster import stack as devstack
from novasphere.v1 import auth_service_pb2
from novasphere.v1.auth_service_pb2_grpc import AuthServiceStub
from server.kube import wukongs as kube_wukongs
from tests import kube_helpers
from tests.conftest import TENANT
from tests.e2e.test_auth import PASSWORD, SECURE_ENV

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "vmctl"
EXIT = {"ok": 0, "failed": 1, "usage": 2, "unauthenticated": 3, "denied": 4, "not found": 5, "conflict": 6}
SPEC = {"cpu": 1, "memory": "1Gi", "disks": [{"name": "root", "size": "1Gi", "storageClassName": "local-path"}]}


@dataclass(frozen=True)
class Installed:
    vmctl: Path
    python: Path


@dataclass(frozen=True)
class Front:
    server: str
    ca: Path
    grpc_target: str


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """`vmctl`'s wheel in a virtualenv of its own: only its declared dependencies."""
    uv = os.environ.get("UV") or shutil.which("uv")
    assert uv, "uv is needed to build vmctl's wheel (make test provides it)"
    place = tmp_path_factory.mktemp("vmctl")
    subprocess.run(
        [uv, "build", "--wheel", "--quiet", "--out-dir", str(place / "dist"), str(ROOT / "vmctl")],
        check=True,
        capture_output=True,
    )
    wheel = next((place / "dist").glob("vmctl-*.whl"))
    venv = place / "venv"
    subprocess.run([uv, "venv", "--quiet", str(venv)], check=True, capture_output=True)
    subprocess.run(
        [uv, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), str(wheel)],
        check=True,
        capture_output=True,
    )
    return Installed(vmctl=venv / "bin" / "vmctl", python=venv / "bin" / "python")


@pytest.fixture(scope="module")
def front(stack: devstack.Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Front]:
    """An API server that requires credentials, behind Envoy with TLS."""
    state = tmp_path_factory.mktemp("vmctl-stack")
    api = devstack.start_api_server(
        api_kubeconfig=stack.api_kubeconfig, log_path=state / "api.log", extra_env=SECURE_ENV
    )
    envoy = devstack.start_front(api, tls=stack.tls, state_dir=state)
    assert envoy.edge.ca_cert is not None
    with procs.stopping([api.process, envoy.process]):
        yield Front(server=envoy.edge.url, ca=envoy.edge.ca_cert, grpc_target=envoy.edge.target)


@pytest.fixture(scope="module")
def operator(kube: kubernetes.client.ApiClient) -> Iterator[str]:
    name = f"cli-{uuid.uuid4().hex[:8]}"
    accounts.create_user(kube, name, PASSWORD, tenant=TENANT, role="operator")
    yield name
    accounts.unbind(kube, name)


class Vmctl:
    """Runs the installed vmctl with a config file and environment of its own (no ~/.config, no .run/env)."""

    def __init__(self, installed: Installed, front: Front, home: Path, namespace: str) -> None:
        self.path = installed.vmctl
        self.env = {
            "PATH": os.environ["PATH"],
            "HOME": str(home),
            "VMCTL_CONFIG": str(home / "vmctl-config"),
            "VMCTL_SERVER": front.server,
            "VMCTL_CA": str(front.ca),
            "VMCTL_NAMESPACE": namespace,
        }

    def run(self, *args: str, stdin: str = "", expect: str = "ok", env: dict[str, str] | None = None) -> str:
        done = subprocess.run(
            [str(self.path), *args],
            input=stdin,
            capture_output=True,
            text=True,
            env={**self.env, **(env or {})},
            timeout=120,
        )
        assert done.returncode == EXIT[expect], (
            f"vmctl {' '.join(args)} → {done.returncode}\n{done.stdout}{done.stderr}"
        )
        if expect != "ok":
            lines = done.stderr.strip().splitlines()
            assert len(lines) == 1, f"not one line: {done.stderr}"
            return lines[0]
        return done.stdout

    @contextlib.contextmanager
    def running(self, *args: str) -> Iterator[subprocess.Popen[str]]:
        """vmctl running in the background (a watch, a proxy), its output line by line; stopped on the way out."""
        process = subprocess.Popen(
            [str(self.path), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self.env
        )
        try:
            yield process
        finally:
            process.terminate()
            process.communicate(timeout=10)

    def login(self, user: str) -> None:
        out = self.run("login", "-u", user, "--password-stdin", stdin=PASSWORD + "\n")
        assert f"as {user} (tenant {TENANT})" in out


@pytest.fixture
def vmctl(installed: Installed, front: Front, tmp_path: Path, namespace: str) -> Vmctl:
    return Vmctl(installed, front, tmp_path, namespace)


def test_the_wheel_installs_alone_without_anything_of_the_server(installed: Installed) -> None:
    for module in ("kubernetes", "server", "aiohttp"):
        missing = subprocess.run(  # not from this checkout's folder, which holds server/
            [str(installed.python), "-c", f"import {module}"], capture_output=True, cwd=installed.python.parent
        )
        assert missing.returncode != 0, f"{module} is in vmctl's virtualenv"
    assert subprocess.run([str(installed.vmctl), "--client-version"], capture_output=True, text=True).stdout == (
        "vmctl 0.1.0\n"
    )


def test_login_create_get_describe_set_and_delete(
    vmctl: Vmctl, operator: str, kube: kubernetes.client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    vmctl.login(operator)
    config = Path(vmctl.env["VMCTL_CONFIG"])
    assert config.stat().st_mode & 0o777 == 0o600
    assert "REDACTED" in vmctl.run("config", "view")
    assert vmctl.run("whoami").startswith(f"{operator} in tenant {TENANT}: ")
    assert vmctl.run("version").splitlines() == [
        "Client: vmctl 0.1.0",
        f"Server: NovaSphere API 0.1.0 at {vmctl.env['VMCTL_SERVER']} (serving)",
    ]

    manifest = tmp_path / "vms.yaml"
    manifest.write_text(
        yaml.safe_dump_all(
            [{"name": "alpha", "labels": {"tier": "web"}, "spec": SPEC}, {"name": "bravo", "spec": {**SPEC, "cpu": 2}}]
        )
    )
    assert vmctl.run("create", "-f", str(manifest), "--dry-run").count("checked (dry run)") == 2
    assert kube_helpers.wukong_names(kube, namespace) == []
    assert vmctl.run("create", "-f", str(manifest)).count("created") == 2
    assert vmctl.run("create", "-f", str(manifest)).count("created") == 2  # a re-run creates nothing twice
    assert kube_helpers.wukong_names(kube, namespace) == ["alpha", "bravo"]

    assert vmctl.run("get", "-o", "name").split() == ["wukong/alpha", "wukong/bravo"]
    listed = json.loads(vmctl.run("get", "-o", "json"))
    assert [(w["name"], w["spec"]["cpu"]) for w in listed["items"]] == [("alpha", 1), ("bravo", 2)]
    table = vmctl.run("get").splitlines()
    assert table[0].split() == ["NAME", "STATUS", "CPU", "MEMORY", "NODE", "IP", "AGE"]
    assert vmctl.run("get", "-l", "tier=web", "-o", "custom-columns=VM:.name,CPU:.spec.cpu").split() == [
        "VM",
        "CPU",
        "alpha",
        "1",
    ]

    # get -o yaml | create -f - under a new name: the output reads back in
    exported = yaml.safe_load(vmctl.run("get", "alpha", "-o", "yaml"))
    exported["name"] = "charlie"
    assert "wukong/charlie created" in vmctl.run("create", "-f", "-", stdin=yaml.safe_dump(exported))
    assert kube_helpers.wukong_names(kube, namespace) == ["alpha", "bravo", "charlie"]

    described = vmctl.run("describe", "alpha")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)  # what a person sees, kept to look at
    for file, args in (("get.txt", ("get",)), ("get-wide.txt", ("get", "-o", "wide"))):
        (ARTIFACTS / file).write_text(vmctl.run(*args))
    (ARTIFACTS / "describe.txt").write_text(described)
    for section in ("Name:", "Status:", "Networks:", "Disks:", "Access services:", "Recent tasks:", "Events:"):
        assert section in described
    assert "root" in described.split("Disks:")[1]

    assert "cpu set to 3" in vmctl.run("set", "cpu", "alpha", "3")
    assert kube_helpers.wukong_spec(kube, namespace, "alpha")["cpu"] == 3

    key = tmp_path / "id_ed25519.pub"
    key.write_text(kube_helpers.ssh_public_key("ada@laptop") + "\n")
    assert vmctl.run("ssh-keys", "add", "ada-laptop", "-f", str(key)).startswith("sshkey/ada-laptop added")
    assert vmctl.run("ssh-keys", "list", "-o", "name").split() == ["sshkey/ada-laptop"]
    assert "deleted" in vmctl.run("ssh-keys", "delete", "ada-laptop")

    out = vmctl.run("delete", "bravo", "charlie")
    assert "succeeded" in out
    assert kube_helpers.wukong_names(kube, namespace) == ["alpha"]
    assert "Logged out" in vmctl.run("logout")
    assert "vmctl login" in vmctl.run("get", expect="unauthenticated")


def test_operations_wait_with_progress_and_batches_go_by_label(
    vmctl: Vmctl, operator: str, kube: kubernetes.client.ApiClient, namespace: str
) -> None:
    vmctl.login(operator)
    for name in ("web-1", "web-2", "db-1"):
        spec = {**SPEC, "startStrategy": {"autoStart": True}}
        kube_helpers.create_wukong(kube, namespace, name, spec, labels={"tier": name.split("-")[0]})
    kube_helpers.eventually(lambda: vmctl.run("get", "-o", "json").count('"RUNNING"') == 3 or None, what="3 running")

    out = vmctl.run("stop", "-l", "tier=web", "--force")
    assert "stop 2 VMs" in out
    assert "2 succeeded, 0 failed" in out
    states = {w["name"]: w["status"]["powerState"] for w in json.loads(vmctl.run("get", "-o", "json"))["items"]}
    assert states == {"web-1": "STOPPED", "web-2": "STOPPED", "db-1": "RUNNING"}

    out = vmctl.run("start", "web-1")
    assert f"start {namespace}/web-1: succeeded" in out
    queued = vmctl.run("stop", "web-1", "--no-wait")
    task_id = queued.split()[0].removeprefix("task/")
    assert "succeeded" in vmctl.run("tasks", "watch", task_id)
    assert task_id in vmctl.run("tasks", "list", "--vm", "web-1", "-o", "name")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "tasks.txt").write_text(vmctl.run("tasks", "list", "-o", "wide"))
    refused = vmctl.run("pause", "web-1", expect="conflict")  # stopped: nothing to pause
    assert refused.startswith("error: ")


EDITOR = """#!/bin/bash
# vmctl edit's $EDITOR in the test: the first time, someone else changes the VM's memory with kubectl while the user
# changes its vCPUs; the second time (the conflict), the file is kept to be checked and saved as it is.
echo opened >> "$EDIT_LOG"
if [ "$(wc -l < "$EDIT_LOG")" = 1 ]; then
  kubectl -n "$EDIT_NAMESPACE" patch wukongs.vm.novasphere.dev edited --type merge \\
    -p '{"spec":{"memory":"2Gi"}}' >/dev/null
  sed -i 's/^  cpu: 1$/  cpu: 2/' "$1"
else
  cp "$1" "$EDIT_LOG.reopened"
fi
"""


def test_edit_sends_only_what_changed_and_a_conflict_reopens_the_editor_on_top_of_theirs(
    vmctl: Vmctl,
    operator: str,
    stack: devstack.Stack,
    kube: kubernetes.client.ApiClient,
    namespace: str,
    tmp_path: Path,
) -> None:
    vmctl.login(operator)
    kube_helpers.create_wukong(kube, namespace, "edited", SPEC, labels={"keep": "me"})
    editor = tmp_path / "editor.sh"
    editor.write_text(EDITOR)
    editor.chmod(0o755)
    log = tmp_path / "edits.log"
    env = {"EDITOR": str(editor), "EDIT_LOG": str(log), "EDIT_NAMESPACE": namespace}
    env["KUBECONFIG"] = str(stack.cluster.kubeconfig)
    out = vmctl.run("edit", "edited", env=env)
    assert "wukong/edited edited: spec.cpu" in out
    assert log.read_text().count("opened") == 2
    reopened = (tmp_path / "edits.log.reopened").read_text()
    assert "It changed since you opened it (spec.memory)" in reopened
    assert "cpu: 2" in reopened
    spec = kube_helpers.wukong_spec(kube, namespace, "edited")
    assert (spec["cpu"], spec["memory"]) == (2, "2Gi")  # mine on top of theirs

    unchanged = tmp_path / "unchanged.sh"
    unchanged.write_text("#!/bin/bash\ntrue\n")
    unchanged.chmod(0o755)
    assert "unchanged" in vmctl.run("edit", "edited", env={"EDITOR": str(unchanged)})


def test_edit_from_a_file_replaces_only_the_fields_it_gives(
    vmctl: Vmctl, operator: str, namespace: str, kube: kubernetes.client.ApiClient
) -> None:
    vmctl.login(operator)
    kube_helpers.create_wukong(kube, namespace, "filed", SPEC, labels={"keep": "me"})
    out = vmctl.run("edit", "filed", "-f", "-", stdin="spec:\n  cpu: 3\nlabels:\n  team: web\n")
    assert out == "wukong/filed edited: labels, spec.cpu\n"
    spec = kube_helpers.wukong_spec(kube, namespace, "filed")
    assert (spec["cpu"], spec["memory"]) == (3, "1Gi")  # memory, not given, stays
    assert "unchanged" in vmctl.run("edit", "filed", "-f", "-", stdin="spec:\n  cpu: 3\n")
    refused = vmctl.run("edit", "filed", "-f", "-", stdin="status:\n  node: x\n", expect="usage")
    assert refused == "error: only `labels` and `spec` can be edited; nothing was changed"
    refused = vmctl.run("edit", "filed", "-f", "-", stdin="spec:\n  cpu: 0\n", expect="usage")
    assert "cpu" in refused
    assert kube_helpers.wukong_spec(kube, namespace, "filed")["cpu"] == 3


def test_watch_prints_a_change_made_with_kubectl(
    vmctl: Vmctl, operator: str, kube: kubernetes.client.ApiClient, namespace: str
) -> None:
    vmctl.login(operator)
    kube_helpers.create_wukong(kube, namespace, "watched", SPEC)
    with vmctl.running("get", "watched", "-w", "-o", "json") as watching:
        assert watching.stdout is not None
        first = json.loads(watching.stdout.readline())  # JSON Lines of events: the current state first
        assert (first["type"], first["wukong"]["name"]) == ("ADDED", "watched")
        kubernetes.client.CustomObjectsApi(kube).patch_namespaced_custom_object(
            kube_wukongs.GROUP,
            kube_wukongs.VERSION,
            namespace,
            kube_wukongs.PLURAL,
            "watched",
            {"metadata": {"labels": {"changed": "by-kubectl"}}},
        )
        for line in watching.stdout:
            event = json.loads(line)
            if event["wukong"].get("labels", {}).get("changed") == "by-kubectl":
                assert event["type"] == "MODIFIED"
                break
        else:
            pytest.fail(f"the watch ended before the change: {watching.stderr.read() if watching.stderr else ''}")


def test_refusals_have_their_exit_codes_and_one_line_messages(
    vmctl: Vmctl, operator: str, kube: kubernetes.client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    assert "run `vmctl login`" in vmctl.run("get", expect="unauthenticated")
    vmctl.login(operator)
    assert "'nothing-here'" in vmctl.run("describe", "nothing-here", expect="not found")
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"name": "bad", "spec": {**SPEC, "memory": "lots"}}))
    line = vmctl.run("create", "-f", str(bad), expect="usage")
    assert "spec.memory" in line
    assert "'lots' is not a quantity" in line
    assert kube_helpers.wukong_names(kube, namespace) == []
    kube_helpers.create_wukong(kube, namespace, "taken", SPEC)
    taken = tmp_path / "taken.yaml"
    taken.write_text(yaml.safe_dump({"name": "taken", "spec": {**SPEC, "cpu": 4}}))
    assert "already exists" in vmctl.run("create", "-f", str(taken), expect="conflict")
    vmctl.run("get", "--bogus-flag", expect="usage")
    assert "unknown output format" in vmctl.run("get", "-o", "xml", expect="usage")

    viewer = f"cli-viewer-{uuid.uuid4().hex[:6]}"
    accounts.create_user(kube, viewer, PASSWORD, tenant=TENANT, role="viewer")
    try:
        vmctl.login(viewer)
        assert "vm:stop" in vmctl.run("stop", "taken", expect="denied")
        answer = subprocess.run(
            [str(vmctl.path), "auth", "can-i", "vm:stop"], env=vmctl.env, capture_output=True, text=True
        )
        assert (answer.returncode, answer.stdout) == (EXIT["denied"], "no\n")
    finally:
        accounts.unbind(kube, viewer)


def test_a_token_or_an_api_key_from_the_environment(
    vmctl: Vmctl, operator: str, front: Front, kube: kubernetes.client.ApiClient, namespace: str
) -> None:
    kube_helpers.create_wukong(kube, namespace, "scripted", SPEC)
    with grpc.secure_channel(front.grpc_target, grpc.ssl_channel_credentials(front.ca.read_bytes())) as channel:
        auth = AuthServiceStub(channel)
        token = auth.Login(auth_service_pb2.LoginRequest(username=operator, password=PASSWORD)).access_token
        bearer = (("authorization", f"Bearer {token}"),)
        key = auth.CreateApiKey(
            auth_service_pb2.CreateApiKeyRequest(name="ci", permissions=["vm:query"]), metadata=bearer
        ).key
    for variable, value in (("VMCTL_TOKEN", token), ("VM_TOKEN", token), ("VMCTL_API_KEY", key)):
        assert vmctl.run("get", "-o", "name", env={variable: value}).split() == ["wukong/scripted"], variable
    assert "vm:stop" in vmctl.run("stop", "scripted", env={"VMCTL_API_KEY": key}, expect="denied")


def test_ports_are_exposed_listed_and_unexposed(
    vmctl: Vmctl, operator: str, kube: kubernetes.client.ApiClient, namespace: str
) -> None:
    vmctl.login(operator)
    kube_helpers.create_wukong(kube, namespace, "served", {**SPEC, "startStrategy": {"autoStart": True}})
    kube_helpers.eventually(lambda: "Running" in vmctl.run("get", "served") or None, what="the VM running")
    out = vmctl.run("expose", "served", "--port", "22", "--service-name", "served-ssh")
    assert out.startswith("service/served-ssh 22/TCP → 127.0.1.")
    services = json.loads(vmctl.run("services", "served", "-o", "json"))
    assert [s["name"] for s in services["items"]] == ["served-ssh"]
    assert "deleted" in vmctl.run("unexpose", "served", "served-ssh")
    assert "is not PORT[:TARGET[:NODEPORT]]" in vmctl.run("expose", "served", "--port", "twenty-two", expect="usage")


GUEST_USER, GUEST_PASSWORD = "ada", "sesame-open-1"


def _running_with_a_user(vmctl: Vmctl, kube: kubernetes.client.ApiClient, namespace: str, name: str) -> None:
    spec = {
        **SPEC,
        "startStrategy": {"autoStart": True},
        "cloudInitUser": {"name": GUEST_USER, "password": GUEST_PASSWORD},
    }
    kube_helpers.create_wukong(kube, namespace, name, spec)
    kube_helpers.eventually(lambda: "Running" in vmctl.run("get", name) or None, what=f"{name} running")


def test_the_serial_console_in_a_terminal_runs_a_command_and_ctrl_bracket_leaves(
    vmctl: Vmctl, operator: str, kube: kubernetes.client.ApiClient, namespace: str
) -> None:
    vmctl.login(operator)
    _running_with_a_user(vmctl, kube, namespace, "term")
    server = f"vmctl-{uuid.uuid4().hex[:8]}"  # a tmux server of its own, started with vmctl's environment
    env = {**vmctl.env, "TERM": "xterm-256color"}

    def tmux(*args: str) -> str:
        done = subprocess.run(["tmux", "-L", server, *args], env=env, capture_output=True, text=True, check=True)
        return done.stdout

    def screen() -> str:
        return tmux("capture-pane", "-p", "-t", "console")

    def shows(text: str) -> str:
        return kube_helpers.eventually(lambda: screen() if text in screen() else None, timeout=30, what=text)

    tmux(
        "new-session",
        "-d",
        "-s",
        "console",
        "-x",
        "120",
        "-y",
        "30",
        f"{vmctl.path} console term; echo EXIT=$?; sleep 60",
    )
    try:
        shows("Ctrl-] leaves")
        tmux("send-keys", "-t", "console", "Enter")
        shows("login:")
        tmux("send-keys", "-t", "console", GUEST_USER, "Enter")
        shows("Password:")
        tmux("send-keys", "-t", "console", GUEST_PASSWORD, "Enter")
        shows("Welcome to Ubuntu")
        tmux("send-keys", "-t", "console", "echo typed-in-vmctl", "Enter")
        shows("\ntyped-in-vmctl")
        tmux("send-keys", "-t", "console", "C-]")
        seen = shows("EXIT=0")
        assert "[console closed: you left with Ctrl-]]" in seen
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / "console.txt").write_text(seen)
    finally:
        subprocess.run(["tmux", "-L", server, "kill-server"], env=env, capture_output=True, check=False)


def test_vnc_proxy_only_serves_the_vms_screen_to_a_vnc_client(
    vmctl: Vmctl, operator: str, kube: kubernetes.client.ApiClient, namespace: str
) -> None:
    from PIL import Image

    from tests.vnc import VNCDO, read_marker

    vmctl.login(operator)
    _running_with_a_user(vmctl, kube, namespace, "screen")
    with vmctl.running("vnc", "screen", "--proxy-only") as proxy:
        assert proxy.stdout is not None
        port = json.loads(proxy.stdout.readline())["port"]
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / "vnc.png"
        subprocess.run([VNCDO, "-s", f"127.0.0.1::{port}", "capture", str(shot)], check=True, timeout=60)
        assert read_marker(Image.open(shot)) == "screen-vm"  # the simulated screen names its VM


def test_top_api_keys_and_administration(
    vmctl: Vmctl, operator: str, kube: kubernetes.client.ApiClient, namespace: str
) -> None:
    vmctl.login(operator)
    _running_with_a_user(vmctl, kube, namespace, "busy")

    def sampled() -> str | None:
        shown = vmctl.run("top")
        return shown if "busy" in shown and "%" in shown else None

    top = kube_helpers.eventually(sampled, what="the VM's metrics")
    assert top.splitlines()[0].split()[:3] == ["NAME", "CPU", "MEMORY"]

    created = vmctl.run("apikeys", "create", "ci", "-p", "vm:query")
    key_id, key = created.split()[0].removeprefix("apikey/"), created.split()[-1]
    assert f"apikey/{key_id}" in vmctl.run("apikeys", "list", "-o", "name").split()
    assert vmctl.run("get", "-o", "name", env={"VMCTL_API_KEY": key}).split() == ["wukong/busy"]
    assert "revoked" in vmctl.run("apikeys", "revoke", key_id)
    vmctl.run("get", env={"VMCTL_API_KEY": key}, expect="unauthenticated")
    assert "tenant:manage" in vmctl.run("admin", "tenants", expect="denied")

    administrator = f"cli-admin-{uuid.uuid4().hex[:6]}"
    accounts.create_user(kube, administrator, PASSWORD, tenant=TENANT, role="admin")
    newcomer = f"cli-new-{uuid.uuid4().hex[:6]}"
    try:
        vmctl.login(administrator)
        assert operator in vmctl.run("admin", "users", "list")
        assert "viewer" in vmctl.run("admin", "roles", "list", "-o", "name")
        assert TENANT in vmctl.run("admin", "tenants", "-o", "name")
        vmctl.run("admin", "users", "create", newcomer, "--password-stdin", stdin=PASSWORD + "\n")
        assert "created" in vmctl.run("admin", "bindings", "create", newcomer, "viewer", "--tenant", TENANT)
        rows = [line.split() for line in vmctl.run("admin", "bindings", "list", "--tenant", TENANT).splitlines()]
        assert [newcomer, TENANT, "viewer"] in rows
        assert "deleted" in vmctl.run("admin", "users", "delete", newcomer)
    finally:
        accounts.unbind(kube, administrator)


def test_contexts_choose_the_server_and_its_tls(vmctl: Vmctl, operator: str, front: Front) -> None:
    """Two contexts for the same server: one trusting its CA, one skipping verification; `use-context` switches."""
    no_env = {"VMCTL_SERVER": "", "VMCTL_CA": ""}
    vmctl.run("config", "set-context", "checked", "--server", front.server, "--certificate-authority", str(front.ca))
    vmctl.run("config", "set-context", "trusting", "--server", front.server, "--insecure-skip-tls-verify", "true")
    contexts = vmctl.run("config", "get-contexts").splitlines()
    assert [line.split()[:2] for line in contexts[1:]] == [["*", "checked"], ["trusting", front.server]]
    vmctl.run("login", "-u", operator, "--password-stdin", stdin=PASSWORD + "\n", env=no_env)
    assert vmctl.run("config", "current-context") == "checked\n"
    vmctl.run("--context", "trusting", "login", "-u", operator, "--password-stdin", stdin=PASSWORD + "\n", env=no_env)
    assert 'Switched to context "trusting"' in vmctl.run("config", "use-context", "trusting")
    assert vmctl.run("whoami", env=no_env).startswith(operator)
    vmctl.run("config", "set-context", "checked", "--certificate-authority", "/nonexistent/ca.pem")
    assert "cannot read the CA file" in vmctl.run("--context", "checked", "get", env=no_env, expect="usage")


def test_completion_scripts_load_in_bash(installed: Installed) -> None:
    script = subprocess.run([str(installed.vmctl), "completion", "bash"], capture_output=True, text=True, check=True)
    loaded = subprocess.run(
        ["bash", "-c", f"{script.stdout}\ncomplete -p vmctl"], capture_output=True, text=True, check=True
    )
    assert "vmctl" in loaded.stdout
    offered = subprocess.run(
        [str(installed.vmctl)],
        env={
            "PATH": os.environ["PATH"],
            "_VMCTL_COMPLETE": "bash_complete",
            "COMP_WORDS": "vmctl sto",
            "COMP_CWORD": "1",
        },
        capture_output=True,
        text=True,
        check=True,
    )
    assert "plain,stop" in offered.stdout.splitlines()
