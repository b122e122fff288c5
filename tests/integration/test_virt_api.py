"""The simulated virt-api as kube-apiserver serves it (aggregated API `subresources.kubevirt.io`, kubevirt.md §1, §2,
§4): discovery and registration, every lifecycle route through `kubectl --raw`, front-proxy authentication, VNC with
vncdotool through the TCP bridge and kube-apiserver's websocket route, the serial console, and "newest connection
wins" / `preserveSession`."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from PIL import Image

from devcluster import stack as devstack
from sim.kubeapi import Credentials
from tests import kube_helpers
from tests.kubectl import Kubectl
from tests.vnc import VNCDO, read_marker, run_novnc

GROUP_PATH = "/apis/subresources.kubevirt.io/v1"
READ_TIMEOUT = 30.0


@pytest.fixture
def kubectl(stack: devstack.Stack, namespace: str) -> Kubectl:
    return Kubectl(stack.cluster.kubeconfig, namespace)


def vm_path(namespace: str, name: str, action: str) -> str:
    return f"{GROUP_PATH}/namespaces/{namespace}/virtualmachines/{name}/{action}"


def vmi_path(namespace: str, name: str, action: str) -> str:
    return f"{GROUP_PATH}/namespaces/{namespace}/virtualmachineinstances/{name}/{action}"


def create_vm(kubectl: Kubectl, name: str, *, run_strategy: str = "Always", grace: int = 600) -> None:
    """A VirtualMachine as a KubeVirt user writes one (no vmoperator in between, so nothing reverts its spec)."""
    body = {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachine",
        "metadata": {"name": name},
        "spec": {
            "runStrategy": run_strategy,
            "template": {
                "metadata": {"labels": {"kubevirt.io/vm": name}},
                "spec": {
                    "terminationGracePeriodSeconds": grace,
                    "domain": {"devices": {}, "resources": {"requests": {"memory": "1Gi"}}},
                    "volumes": [{"name": "root", "containerDisk": {"image": "quay.io/containerdisks/ubuntu:22.04"}}],
                },
            },
        },
    }
    kubectl("apply", "-f", "-", stdin=json.dumps(body))


def assert_refused(result: subprocess.CompletedProcess[str], reason: str, message: str) -> None:
    assert result.returncode != 0, result.stdout
    assert f"Error from server ({reason}): {message}" in result.stderr, result.stderr


def test_registered_as_an_aggregated_api(kubectl: Kubectl) -> None:
    service = kubectl.get("apiservice", "v1.subresources.kubevirt.io")
    assert service is not None
    available = next(c for c in service["status"]["conditions"] if c["type"] == "Available")
    assert available["status"] == "True", available
    assert service["spec"]["caBundle"]  # verified by kube-apiserver, not insecureSkipTLSVerify (§4.1)

    for version in ("v1", "v1alpha3"):
        listing = json.loads(kubectl.raw("get", f"/apis/subresources.kubevirt.io/{version}").stdout)
        assert listing["groupVersion"] == f"subresources.kubevirt.io/{version}"
        names = {r["name"] for r in listing["resources"]}
        assert {"virtualmachines/start", "virtualmachineinstances/vnc", "virtualmachineinstances/console"} <= names


def test_lifecycle_routes_change_the_objects_as_kubevirt_does(kubectl: Kubectl) -> None:
    ns = kubectl.namespace
    create_vm(kubectl, "box")
    kubectl.wait_for("vm", "box", ("status", "printableStatus"), "Running")
    first = kubectl.wait_for("vmi", "box", ("status", "phase"), "Running")

    # §1.5 start on a running VM: 409 with KubeVirt's message, nothing changes
    assert_refused(
        kubectl.raw("replace", vm_path(ns, "box", "start")),
        "Conflict",
        'Operation cannot be fulfilled on virtualmachine.kubevirt.io "box": VM is already running',
    )
    assert_refused(
        kubectl.raw("replace", vm_path(ns, "nothing", "start")),
        "NotFound",
        'virtualmachine.kubevirt.io "nothing" not found',
    )

    # pause / unpause: Paused condition on the VMI, printableStatus Paused on the VM (§1.5, §3.3)
    assert kubectl.raw("replace", vmi_path(ns, "box", "pause")).returncode == 0
    kubectl.wait_for("vm", "box", ("status", "printableStatus"), "Paused")
    assert_refused(
        kubectl.raw("replace", vmi_path(ns, "box", "pause")),
        "Conflict",
        'Operation cannot be fulfilled on virtualmachineinstance.kubevirt.io "box": VMI is already paused',
    )
    assert_refused(
        kubectl.raw("replace", vmi_path(ns, "box", "softreboot")),
        "Conflict",
        'Operation cannot be fulfilled on virtualmachineinstance.kubevirt.io "box": VMI is paused',
    )
    assert kubectl.raw("replace", vmi_path(ns, "box", "unpause")).returncode == 0
    kubectl.wait_for("vm", "box", ("status", "printableStatus"), "Running")
    assert kubectl.raw("replace", vmi_path(ns, "box", "softreboot")).returncode == 0

    # restart: [Stop uid, Start] consumed by the VM controller → a new VMI
    assert kubectl.raw("replace", vm_path(ns, "box", "restart")).returncode == 0
    second = kube_helpers.eventually(
        lambda: (
            (v := kubectl.get("vmi", "box"))
            and v["metadata"]["uid"] != first["metadata"]["uid"]
            and kube_helpers.dig(v, "status", "phase") == "Running"
            and v
        ),
        timeout=90,
        what="a new VMI after restart",
    )

    # dry run: 202, nothing written
    assert kubectl.raw("replace", vm_path(ns, "box", "stop"), {"dryRun": ["All"]}).returncode == 0
    assert kube_helpers.dig(kubectl.get("vm", "box"), "spec", "runStrategy") == "Always"

    # force stop: the VMI's 600 s grace period is cut to 0 first, then runStrategy Halted
    assert kubectl.raw("replace", vm_path(ns, "box", "stop"), {"gracePeriod": 0}).returncode == 0
    assert kube_helpers.dig(kubectl.get("vm", "box"), "spec", "runStrategy") == "Halted"
    kubectl.wait_gone("vmi", "box")
    kubectl.wait_for("vm", "box", ("status", "printableStatus"), "Stopped")
    killed = [
        e
        for e in kubectl.items("events")
        if e["involvedObject"].get("uid") == second["metadata"]["uid"] and e["reason"] == "Deleted"
    ]
    assert killed, "a grace period shorter than the guest's shutdown kills it (event Deleted)"
    reasons = {
        e["reason"] for e in kubectl.items("events") if e["involvedObject"].get("kind") == "VirtualMachineInstance"
    }
    assert {"Paused", "Unpaused", "SoftRebooted"} <= reasons

    assert_refused(
        kubectl.raw("replace", vm_path(ns, "box", "stop")),
        "Conflict",
        'Operation cannot be fulfilled on virtualmachine.kubevirt.io "box": VM is not running',
    )
    assert_refused(
        kubectl.raw("replace", vm_path(ns, "box", "restart")),
        "Conflict",
        'Operation cannot be fulfilled on virtualmachine.kubevirt.io "box": RunStategy Halted does not support '
        "manual restart requests",
    )
    assert kubectl.raw("replace", vm_path(ns, "box", "start")).returncode == 0
    kubectl.wait_for("vm", "box", ("status", "printableStatus"), "Running")


def test_callers_without_the_front_proxy_certificate_are_refused(kubectl: Kubectl) -> None:
    """§4.4: X-Remote-User is trusted only from kube-apiserver's front-proxy client certificate."""
    port = json.loads(
        subprocess.run(
            ["kubectl", "-n", "kubevirt", "get", "service", "virt-api", "-o", "json"],
            env=kubectl.env,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
    )["spec"]["ports"][0]["port"]

    async def calls() -> tuple[int, int]:
        insecure = ssl.create_default_context()
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE
        headers = {"X-Remote-User": "mallory", "X-Remote-Group": "system:masters"}
        async with aiohttp.ClientSession() as session:
            async with session.get(f"https://127.0.0.1:{port}{GROUP_PATH}", ssl=insecure) as discovery:
                public = discovery.status
            stop = f"https://127.0.0.1:{port}{vm_path('default', 'any', 'stop')}"
            async with session.put(stop, ssl=insecure, headers=headers) as forged:
                return public, forged.status

    assert asyncio.run(calls()) == (200, 401)


# ---- consoles ---------------------------------------------------------------------------------------------------


def _websocket_url(credentials: Credentials, path: str) -> str:
    return credentials.server.replace("https://", "wss://", 1) + path


class _Sockets:
    """The TLS sockets under a test's console connections, so the test can wait until each has shut down: asyncio.run
    closes its loop at once, and a TLS shutdown still under way then leaves a socket for the garbage collector (a
    ResourceWarning in some later test)."""

    def __init__(self) -> None:
        self._raw: list[Any] = []

    def track(self, socket_: aiohttp.ClientWebSocketResponse) -> aiohttp.ClientWebSocketResponse:
        self._raw.append(socket_.get_extra_info("socket"))
        return socket_

    async def all_closed(self) -> None:
        async with asyncio.timeout(READ_TIMEOUT):
            # no public event says when asyncio's TLS shutdown has closed the socket, so look
            while any(raw.fileno() != -1 for raw in self._raw):  # noqa: ASYNC110
                await asyncio.sleep(0.02)


async def _read_until(socket_: aiohttp.ClientWebSocketResponse, marker: bytes, seen: bytearray) -> bytes:
    async def loop() -> bytes:
        while marker not in seen:
            message = await socket_.receive()
            if message.type != aiohttp.WSMsgType.BINARY:
                raise AssertionError(f"console ended before {marker!r}: {message.type} {seen[-200:]!r}")
            seen.extend(message.data)
        return bytes(seen)

    return await asyncio.wait_for(loop(), READ_TIMEOUT)


def test_serial_console_logs_in_and_runs_a_command(stack: devstack.Stack, kubectl: Kubectl) -> None:
    spec = {**kube_helpers.MINIMAL_SPEC, "cloudInitUser": {"name": "ops", "password": "s3cret"}}
    kubectl.apply_wukong("term", spec)
    kubectl.wait_for("vmi", "term-vm", ("status", "phase"), "Running")
    credentials = Credentials.from_kubeconfig(Path(stack.cluster.kubeconfig))
    url = _websocket_url(credentials, vmi_path(kubectl.namespace, "term-vm", "console"))

    async def session() -> tuple[str | None, bytes, int | None]:
        sockets = _Sockets()
        async with aiohttp.ClientSession(headers=dict(credentials.headers)) as client:
            first = sockets.track(await client.ws_connect(url, protocols=("plain.kubevirt.io",), ssl=credentials.tls))
            seen = bytearray()
            await first.send_bytes(b"\r")
            await _read_until(first, b"term login: ", seen)
            await first.send_bytes(b"ops\r")
            await _read_until(first, b"Password: ", seen)
            await first.send_bytes(b"s3cret\r")
            await _read_until(first, b"ops@term:~$ ", seen)
            await first.send_str("echo ignored")  # text frames are dropped (§2.3)
            await first.send_bytes(b"echo hello-from-serial\r")
            output = await _read_until(first, b"hello-from-serial\r\nops@term:~$ ", seen)
            # the newest connection wins: the first one's TCP connection goes, no close frame (§2.5)
            second = sockets.track(await client.ws_connect(url, protocols=("plain.kubevirt.io",), ssl=credentials.tls))
            ended = await asyncio.wait_for(first.receive(), READ_TIMEOUT)
            assert ended.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSE), ended
            await second.close()
        await sockets.all_closed()
        return first.protocol, output, first.close_code

    protocol, output, close_code = asyncio.run(session())
    users = json.loads(kubectl.raw("get", vmi_path(kubectl.namespace, "term-vm", "userlist")).stdout)
    guest = json.loads(kubectl.raw("get", vmi_path(kubectl.namespace, "term-vm", "guestosinfo")).stdout)
    assert [u["userName"] for u in users["items"]] == ["ops"]  # the guest agent sees the serial login
    assert guest["hostname"] == "term"
    assert guest["os"]["id"] == "ubuntu"
    assert protocol == "plain.kubevirt.io"
    assert b"ignored" not in output
    assert close_code in (None, 1006), close_code  # abnormal closure, as KubeVirt's peers see it


@pytest.fixture
def vnc_bridge(stack: devstack.Stack, kubectl: Kubectl) -> Iterator[int]:
    create_vm(kubectl, "screen")
    kubectl.wait_for("vmi", "screen", ("status", "phase"), "Running")
    bridge = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sim.vnc_proxy",
            "--kubeconfig",
            stack.cluster.kubeconfig,
            "--namespace",
            kubectl.namespace,
            "--name",
            "screen",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ},
    )
    try:
        assert bridge.stdout is not None
        yield int(json.loads(bridge.stdout.readline())["port"])
    finally:
        bridge.terminate()
        bridge.wait(10)
        if bridge.stdout is not None:
            bridge.stdout.close()


def _vncdo(port: int, *actions: str) -> None:
    subprocess.run([VNCDO, "-s", f"127.0.0.1::{port}", *actions], check=True, timeout=60)


def test_vncdotool_through_the_bridge_sees_the_vm_and_its_input(vnc_bridge: int, tmp_path: Path) -> None:
    before, after = tmp_path / "before.png", tmp_path / "after.png"
    _vncdo(vnc_bridge, "capture", str(before))
    _vncdo(vnc_bridge, "type", "hello", "move", "300", "300", "click", "1", "capture", str(after))

    assert read_marker(Image.open(before)) == "screen"  # the VM's name, read back from pixels
    assert Image.open(before).tobytes() != Image.open(after).tobytes()  # keys and pointer changed the screen


async def _drain(socket_: aiohttp.ClientWebSocketResponse) -> aiohttp.WSMsgType:
    """Read until the connection ends; the type of the last message."""
    while (message := await socket_.receive()).type == aiohttp.WSMsgType.BINARY:
        pass
    return message.type


def test_vnc_newest_wins_preserve_session_refuses_and_a_stop_closes_it(stack: devstack.Stack, kubectl: Kubectl) -> None:
    create_vm(kubectl, "desk")
    kubectl.wait_for("vmi", "desk", ("status", "phase"), "Running")
    credentials = Credentials.from_kubeconfig(Path(stack.cluster.kubeconfig))
    url = _websocket_url(credentials, vmi_path(kubectl.namespace, "desk", "vnc"))
    upgrade = {
        "Connection": "Upgrade",
        "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
    }

    async def scenario() -> tuple[bytes, Any, int, dict[str, Any], Any]:
        sockets = _Sockets()
        async with aiohttp.ClientSession(headers=dict(credentials.headers)) as client:
            first = sockets.track(await client.ws_connect(url, protocols=("plain.kubevirt.io",), ssl=credentials.tls))
            greeting = (await first.receive_bytes(timeout=READ_TIMEOUT))[:12]
            second = sockets.track(await client.ws_connect(url + "?preserveSession=false", ssl=credentials.tls))
            kicked = await asyncio.wait_for(first.receive(), READ_TIMEOUT)
            https = url.replace("wss://", "https://", 1) + "?preserveSession=true"
            async with client.get(https, headers=upgrade, ssl=credentials.tls) as refused:
                status, body = refused.status, await refused.json()
            # stopping the VM ends its console
            stop = credentials.server + vm_path(kubectl.namespace, "desk", "stop")
            async with client.put(stop, json={"gracePeriod": 0}, ssl=credentials.tls) as stopped:
                assert stopped.status == 202
            ended = await asyncio.wait_for(_drain(second), READ_TIMEOUT)
        await sockets.all_closed()
        return greeting, kicked.type, status, body, ended

    greeting, kicked, status, body, ended = asyncio.run(scenario())
    assert ended in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSE)
    assert greeting == b"RFB 003.008\n"
    assert kicked in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSE)
    assert status == 500
    assert body["message"] == (
        "Internal error occurred: Can't connect to websocket (503): websocket: bad handshake: application info: "
        "Active VNC connection. Request denied."
    )


@pytest.fixture
def kubectl_proxy(kubectl: Kubectl) -> Iterator[int]:
    """`kubectl proxy` on loopback: plain HTTP and WebSocket in, the admin's client certificate out."""
    proxy = subprocess.Popen(
        ["kubectl", "proxy", "--address=127.0.0.1", "--port=0"], env=kubectl.env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proxy.stdout is not None
        line = proxy.stdout.readline()  # "Starting to serve on 127.0.0.1:PORT"
        yield int(line.strip().rsplit(":", 1)[1])
    finally:
        proxy.terminate()
        proxy.wait(10)
        if proxy.stdout is not None:
            proxy.stdout.close()


def test_novnc_in_chromium_renders_the_screen_through_kube_apiserver(
    kubectl: Kubectl, kubectl_proxy: int, tmp_path: Path
) -> None:
    create_vm(kubectl, "browser")
    kubectl.wait_for("vmi", "browser", ("status", "phase"), "Running")
    url = f"ws://127.0.0.1:{kubectl_proxy}{vmi_path(kubectl.namespace, 'browser', 'vnc')}?preserveSession=true"
    seen = run_novnc(url, tmp_path / "novnc.png")
    assert seen["connected"] is True
    assert seen["desktopName"] == "browser"  # RFB ServerInit's name
    assert seen["marker"] == "browser"  # the VM name, read from the canvas noVNC drew


def test_console_errors_come_before_the_upgrade(kubectl: Kubectl) -> None:
    ns = kubectl.namespace
    create_vm(kubectl, "off", run_strategy="Halted")
    assert_refused(
        kubectl.raw("get", vmi_path(ns, "off", "vnc")),
        "NotFound",
        'virtualmachineinstance.kubevirt.io "off" not found',
    )
    kubectl.apply_wukong("slow", dict(kube_helpers.MINIMAL_SPEC), {"sim.novasphere.dev/boot-seconds": "10000"})
    kubectl.wait_for("vmi", "slow-vm", ("status", "phase"), "Scheduled")
    assert_refused(kubectl.raw("get", vmi_path(ns, "slow-vm", "console")), "BadRequest", "VMI is not running")
