"""Simulated virt-api: KubeVirt's `subresources.kubevirt.io` aggregated API (shared/reference/kubevirt.md §1, §2, §4).

Registered the way virt-operator registers it (§4.1): a KubeVirt CA in Secret `kubevirt/kubevirt-ca`, a serving
certificate for `virt-api.kubevirt.svc`, Service `kubevirt/virt-api` (ExternalName → localhost, as
control-plane.md verified) and APIServices `v1` / `v1alpha3.subresources.kubevirt.io` with the CA as `caBundle`.
kube-apiserver authenticates and authorises the caller, then proxies with its front-proxy client certificate and
`X-Remote-User`/`X-Remote-Group`; this server trusts those headers only over a connection whose client certificate
chains to the requestheader CA (§4.4 step 4), and answers discovery without one (§4.2).

Lifecycle decisions are `lifecycle.py`'s; this module performs them on the objects. Consoles: `vnc` serves the
simulated screen (`rfb.py`), `console` the simulated serial port (`serial.py`); one connection per VMI and kind, the
newest wins by dropping the older one's TCP connection (peers see 1006), and `vnc?preserveSession=true` refuses a
newcomer instead (§2.5).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from aiohttp import WSMsgType, web

from sim import aggregated, faults, kubeapi
from sim.events import VIRT_HANDLER, EventRecorder
from sim.kubeapi import Body, KubeApi
from sim.kubevirt import lifecycle, rules
from sim.kubevirt.lifecycle import ApiError
from sim.kubevirt.rfb import ProtocolError, RfbServer, Screen
from sim.kubevirt.serial import SerialGuest, users_from_cloud_init
from sim.runtime import Informer, deep_get, now_rfc3339

log = logging.getLogger("sim.virt-api")

GROUP = "subresources.kubevirt.io"
VERSIONS = ("v1", "v1alpha3")
PROTOCOL = "plain.kubevirt.io"
MAX_BODY = 1 << 20
SESSION_CHECK_SECONDS = 0.25
VERSION_INFO = {
    "gitVersion": "v1.9.0-novasphere-simulator",
    "gitCommit": "d923fdb",
    "gitTreeState": "clean",
    "buildDate": "2026-08-22T00:00:00Z",
    "goVersion": "go1.24",
    "compiler": "gc",
    "platform": "linux/amd64",
}
# §4.3: what virt-api lists (names only, all namespaced)
RESOURCES = (
    ["expand-vm-spec"]
    + [
        f"virtualmachineinstances/{sub}"
        for sub in (
            "vnc",
            "vnc/screenshot",
            "console",
            "portforward",
            "backup",
            "redefine-checkpoint",
            "pause",
            "unpause",
            "freeze",
            "unfreeze",
            "reset",
            "softreboot",
            "guestosinfo",
            "userlist",
            "filesystemlist",
            "addvolume",
            "removevolume",
            "objectgraph",
            "sev/fetchcertchain",
            "sev/querylaunchmeasurement",
            "sev/setupsession",
            "sev/injectlaunchsecret",
            "evacuate/cancel",
        )
    ]
    + [
        f"virtualmachines/{sub}"
        for sub in ("start", "stop", "restart", "migrate", "expand-spec", "objectgraph", "evacuate/cancel")
    ]
)
REGISTRATION = aggregated.Registration(
    group=GROUP,
    versions=VERSIONS,
    namespace="kubevirt",
    service="virt-api",
    ca_secret="kubevirt-ca",  # noqa: S106 (a Secret's name)
    ca_common_name="kubevirt.io@simulator",
    service_labels={"kubevirt.io": "virt-api"},
    api_service_labels={"kubevirt.io": "virt-api-aggregator", "app.kubernetes.io/managed-by": "virt-operator"},
)
VM_ACTIONS = {
    "start": lifecycle.start,
    "stop": lifecycle.stop,
    "restart": lifecycle.restart,
    "migrate": lifecycle.migrate,
}


def _status(error: ApiError) -> web.Response:
    return web.json_response(error.status(), status=error.code)


@dataclass
class _Session:
    request: web.Request
    since: str


class VirtApi:
    def __init__(
        self, *, api: KubeApi, events: EventRecorder, vmis: Informer, wukongs: Informer | None = None, port: int = 0
    ) -> None:
        self._api = api
        self._wukongs = wukongs
        self._events = events
        self._vmis = vmis
        vmis.on_change(self._forget_deleted)
        self._port = port
        self._sessions: dict[tuple[str, str], _Session] = {}  # (VMI uid, "vnc" | "console")
        self._screens: dict[str, Screen] = {}
        self._guests: dict[str, SerialGuest] = {}
        self.ready = asyncio.Event()

    def _forget_deleted(self, old: Body | None, new: Body | None) -> None:
        """A deleted VMI's screen and serial session go with it (its open consoles end on their own)."""
        if new is None and old is not None:
            self._screens.pop(old["metadata"]["uid"], None)
            self._guests.pop(old["metadata"]["uid"], None)

    # ---- registration (§4.1) -----------------------------------------------------------------------------------

    async def run(self) -> None:
        app = web.Application(middlewares=[aggregated.front_proxy_only(REGISTRATION, log)], client_max_size=MAX_BODY)
        self._routes(app)
        async with aggregated.serving(self._api, REGISTRATION, app, port=self._port) as port:
            log.info("virt-api (simulated) on https://127.0.0.1:%d, registered as %s", port, GROUP)
            self.ready.set()
            try:
                await asyncio.Event().wait()
            finally:
                for session in list(self._sessions.values()):
                    _drop(session.request)

    # ---- HTTP ---------------------------------------------------------------------------------------------------

    def _routes(self, app: web.Application) -> None:
        base = "/apis/" + GROUP + "/{version}"
        app.router.add_get("/apis", self._group_list)
        app.router.add_get(f"/apis/{GROUP}", self._group)
        app.router.add_get(base, self._resource_list)
        app.router.add_get(base + "/version", self._version)
        app.router.add_get(base + "/healthz", self._healthz)
        app.router.add_put(base + "/namespaces/{namespace}/virtualmachines/{name}/{action}", self._vm_action)
        app.router.add_put(base + "/namespaces/{namespace}/virtualmachineinstances/{name}/{action}", self._vmi_action)
        for agent_route in ("guestosinfo", "userlist", "filesystemlist"):
            app.router.add_get(
                base + "/namespaces/{namespace}/virtualmachineinstances/{name}/" + agent_route, self._guest_agent
            )
        app.router.add_get(base + "/namespaces/{namespace}/virtualmachineinstances/{name}/vnc", self._vnc)
        app.router.add_get(base + "/namespaces/{namespace}/virtualmachineinstances/{name}/console", self._console)
        # not KubeVirt's: the simulator's own window onto what its VNC server received (absent from discovery)
        app.router.add_get(
            base + "/namespaces/{namespace}/virtualmachineinstances/{name}/simulator-keys", self._simulator_keys
        )

    async def _group_list(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"kind": "APIGroupList", "apiVersion": "v1", "groups": [REGISTRATION.discovery_group()]}
        )

    async def _group(self, request: web.Request) -> web.Response:
        group = REGISTRATION.discovery_group()
        group["name"] = "subresource.kubevirt.io"  # upstream's typo, kept (kubevirt.md §1.1); nothing reads it
        return web.json_response({"kind": "APIGroup", "apiVersion": "v1", **group})

    async def _resource_list(self, request: web.Request) -> web.Response:
        version = request.match_info["version"]
        return web.json_response(
            {
                "kind": "APIResourceList",
                "apiVersion": "v1",
                "groupVersion": f"{GROUP}/{version}",
                # KubeVirt sets only name and namespaced; Go's encoder still writes the other (non-omitempty) fields
                # of metav1.APIResource, which clients such as the Python dynamic client require.
                "resources": [
                    {"name": name, "singularName": "", "namespaced": True, "kind": "", "verbs": None}
                    for name in RESOURCES
                ],
            }
        )

    async def _version(self, request: web.Request) -> web.Response:
        return web.json_response(VERSION_INFO)

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _vm_action(self, request: web.Request) -> web.StreamResponse:
        namespace, name, action = (request.match_info[k] for k in ("namespace", "name", "action"))
        decide = VM_ACTIONS.get(action)
        if decide is None:
            raise web.HTTPNotFound()
        raw = await request.read()
        try:
            if action in ("stop", "restart"):
                lifecycle.parse_body(raw)  # §1.5: a bad body is 400 before the VM is looked up
            vm = await self._get(kubeapi.VIRTUAL_MACHINES, namespace, name, lifecycle.VM_RESOURCE)
            vmi = await self._find(kubeapi.VIRTUAL_MACHINE_INSTANCES, namespace, name)
            outcome = decide(vm, vmi, raw)
            await self._perform(outcome, vm, vmi, action)
        except ApiError as error:
            return _status(error)
        return web.Response(status=202)  # every VM route answers 202 Accepted, empty body (§0 fact 2)

    async def _perform(self, outcome: lifecycle.Outcome, vm: Body, vmi: Body | None, action: str) -> None:
        namespace, name = vm["metadata"]["namespace"], vm["metadata"]["name"]
        if outcome.vmi_grace_seconds is not None and vmi is not None:
            await self._api.patch(
                kubeapi.VIRTUAL_MACHINE_INSTANCES,
                namespace,
                name,
                {"spec": {"terminationGracePeriodSeconds": outcome.vmi_grace_seconds}},
                dry_run=outcome.dry_run,
            )
        if outcome.error is not None:
            raise outcome.error
        try:
            for patch, subresource in ((outcome.vm_spec_patch, None), (outcome.vm_status_patch, "status")):
                if patch:
                    await self._api.patch(
                        kubeapi.VIRTUAL_MACHINES,
                        namespace,
                        name,
                        patch,
                        kind="json",
                        subresource=subresource,
                        dry_run=outcome.dry_run,
                    )
        except kubeapi.ApiError as error:
            if error.status in (409, 422):  # the JSON-patch `test` saw a concurrent change
                raise lifecycle.conflict(
                    lifecycle.VM_RESOURCE, name, f"jsonpatch test operation does not apply: {error.message}"
                ) from error
            raise lifecycle.internal(error.message) from error
        if action == "migrate" and not outcome.dry_run:
            migration = {
                "apiVersion": kubeapi.MIGRATIONS.api_version,
                "kind": "VirtualMachineInstanceMigration",
                "metadata": {"generateName": "kubevirt-migrate-vm-", "namespace": namespace},
                "spec": {"vmiName": name},
            }
            try:
                await self._api.create(kubeapi.MIGRATIONS, namespace, migration)
            except kubeapi.ApiError as error:
                raise lifecycle.internal(error.message) from error

    async def _vmi_action(self, request: web.Request) -> web.StreamResponse:
        namespace, name, action = (request.match_info[k] for k in ("namespace", "name", "action"))
        if action not in ("pause", "unpause", "softreboot", "reset"):
            raise web.HTTPNotFound()
        raw = await request.read()
        try:
            vm = await self._find(kubeapi.VIRTUAL_MACHINES, namespace, name) if action == "unpause" else None
            vmi = await self._get(kubeapi.VIRTUAL_MACHINE_INSTANCES, namespace, name, lifecycle.VMI_RESOURCE)
            if action == "pause":
                effect = lifecycle.pause(vmi, raw)
            elif action == "unpause":
                effect = lifecycle.unpause(vmi, raw, vm=vm)
            elif action == "softreboot":
                effect = lifecycle.softreboot(vmi)
            else:
                effect = lifecycle.reset(vmi)
            if not effect.dry_run:
                await self._apply_vmi_effect(vmi, effect)
        except ApiError as error:
            return _status(error)
        return web.Response(status=200)

    async def _apply_vmi_effect(self, vmi: Body, effect: lifecycle.VmiAction) -> None:
        """What virt-handler does on the node: the Paused condition (the VMI has no status subresource, §3.1)."""
        namespace, name = vmi["metadata"]["namespace"], vmi["metadata"]["name"]
        if effect.paused is not None:
            for _ in range(5):
                updated = copy.deepcopy(vmi)
                conditions = [c for c in deep_get(updated, "status", "conditions", default=[]) if c["type"] != "Paused"]
                if effect.paused:
                    conditions.append(
                        {
                            "type": "Paused",
                            "status": "True",
                            "reason": "PausedByUser",
                            "message": "VMI was paused by user",
                            "lastProbeTime": None,
                            "lastTransitionTime": now_rfc3339(),
                        }
                    )
                updated.setdefault("status", {})["conditions"] = conditions
                try:
                    vmi = await self._api.update(kubeapi.VIRTUAL_MACHINE_INSTANCES, updated)
                    break
                except kubeapi.Conflict:
                    vmi = await self._api.get(kubeapi.VIRTUAL_MACHINE_INSTANCES, namespace, name)
        if effect.event_reason in ("SoftRebooted", "Reset"):
            self._guests.pop(vmi["metadata"]["uid"], None)  # the guest's shell session ends with the reboot
        await self._events.record(
            vmi,
            reason=effect.event_reason,
            message=effect.event_message,
            component=VIRT_HANDLER,
            host=deep_get(vmi, "status", "nodeName", default=""),
        )

    async def _guest_agent(self, request: web.Request) -> web.Response:
        """What the guest agent reports (§1.5): the guest OS of the VMI status, who is logged in on the serial
        console, one root filesystem."""
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        route = request.path.rsplit("/", 1)[1]
        try:
            vmi = lifecycle.guest_agent_precheck(
                await self._find(kubeapi.VIRTUAL_MACHINE_INSTANCES, namespace, name), name
            )
        except ApiError as error:
            return web.Response(status=error.code, text=error.message)
        guest = self._guests.get(vmi["metadata"]["uid"])
        session = guest.logged_in() if guest is not None else None
        users = [{"userName": session[0], "domain": "", "loginTime": session[1]}] if session else []
        if route == "userlist":
            return web.json_response({"metadata": {}, "items": users or None})
        disks = [
            {
                "diskName": "vda1",
                "mountPoint": "/",
                "fileSystemType": "ext4",
                "usedBytes": 2_147_483_648,
                "totalBytes": 10_737_418_240,
                "disk": [{"serial": "root", "busType": "virtio"}],
            }
        ]
        if route == "filesystemlist":
            return web.json_response({"metadata": {}, "items": disks})
        return web.json_response(
            {
                "guestAgentVersion": "6.2.0",
                "supportedCommands": [{"name": c, "enabled": True} for c in ("guest-info", "guest-get-users")],
                "hostname": name.removesuffix("-vm"),
                "os": deep_get(vmi, "status", "guestOSInfo", default={}),
                "timezone": "UTC, 0",
                "userList": users,
                "fsInfo": {"disks": disks},
                "fsFreezeStatus": "thawed",
            }
        )

    async def _get(self, resource: kubeapi.Resource, namespace: str, name: str, singular: str) -> Body:
        found = await self._find(resource, namespace, name)
        if found is None:
            raise lifecycle.not_found(singular, name)
        return found

    async def _find(self, resource: kubeapi.Resource, namespace: str, name: str) -> Body | None:
        try:
            return await self._api.get(resource, namespace, name)
        except kubeapi.NotFound:
            return None

    async def _simulator_keys(self, request: web.Request) -> web.Response:
        """Simulator only: the key events the VMI's simulated VNC screen received, in order (`[{"down", "keysym"}]`),
        so tests can check what a VNC client typed."""
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        vmi = await self._find(kubeapi.VIRTUAL_MACHINE_INSTANCES, namespace, name)
        screen = self._screens.get(vmi["metadata"]["uid"]) if vmi is not None else None
        events = [{"down": down, "keysym": keysym} for down, keysym in screen.key_events] if screen else []
        return web.json_response({"keys": events})

    # ---- consoles (§2) -------------------------------------------------------------------------------------------

    async def _vnc(self, request: web.Request) -> web.StreamResponse:
        return await self._stream(request, "vnc")

    async def _console(self, request: web.Request) -> web.StreamResponse:
        return await self._stream(request, "console")

    async def _stream(self, request: web.Request, kind: str) -> web.StreamResponse:
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        try:
            vmi = await self._find(kubeapi.VIRTUAL_MACHINE_INSTANCES, namespace, name)
            lifecycle.console_precheck(vmi, name, kind=kind)
        except ApiError as error:
            return _status(error)
        assert vmi is not None  # console_precheck
        wukong = faults.wukong_of_vm_name(name, namespace, self._wukongs) if self._wukongs is not None else None
        mode = faults.malformed_mode(wukong, faults.MALFORMED_CONSOLE)
        if mode is not None:
            status = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": faults.BACKEND_TEXT}
            return faults.malformed_answer(mode, status, {**status, "code": faults.BACKEND_TEXT})
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return web.Response(
                status=400, text="websocket: the client is not using the websocket protocol: 'upgrade' token not found"
            )
        uid = vmi["metadata"]["uid"]
        held = self._sessions.get((uid, kind))
        if held is not None and kind == "vnc" and request.query.get("preserveSession") == "true":
            log.info("vnc of %s/%s refused: preserveSession and a session since %s", namespace, name, held.since)
            return _status(lifecycle.PRESERVED_VNC)
        socket_ = web.WebSocketResponse(protocols=(PROTOCOL,), autoping=True, max_msg_size=MAX_BODY)
        await socket_.prepare(request)
        if held is not None:
            log.info("%s of %s/%s: a new connection replaces the one since %s", kind, namespace, name, held.since)
            _drop(held.request)
        session = _Session(request, now_rfc3339())
        self._sessions[(uid, kind)] = session
        try:
            if kind == "vnc":
                await self._serve_vnc(request, socket_, vmi)
            else:
                await self._serve_serial(request, socket_, vmi)
        finally:
            if self._sessions.get((uid, kind)) is session:
                del self._sessions[(uid, kind)]
        return socket_

    def _vmi_state(self, namespace: str, name: str, uid: str) -> str:
        vmi = self._vmis.get(namespace, name)
        if vmi is None or vmi["metadata"]["uid"] != uid:
            return "Gone"
        if (rules.condition(vmi, "Paused") or {}).get("status") == "True":
            return "Paused"
        return str(deep_get(vmi, "status", "phase", default=""))

    async def _serve_vnc(self, request: web.Request, socket_: web.WebSocketResponse, vmi: Body) -> None:
        namespace, name, uid = (vmi["metadata"][k] for k in ("namespace", "name", "uid"))
        screen = self._screens.setdefault(uid, Screen(name, state=lambda: self._vmi_state(namespace, name, uid)))
        server = RfbServer(screen)
        await socket_.send_bytes(server.start())

        async def push_changes() -> None:
            while True:
                await asyncio.sleep(SESSION_CHECK_SECONDS)
                if screen.state() in ("Gone", "Succeeded", "Failed"):
                    log.info("vnc of %s/%s closed: the VMI stopped", namespace, name)
                    _drop(request)
                    return
                update = server.pending_update()
                if update:
                    await socket_.send_bytes(update)

        await self._pump(socket_, server.feed, push_changes)

    async def _serve_serial(self, request: web.Request, socket_: web.WebSocketResponse, vmi: Body) -> None:
        namespace, name, uid = (vmi["metadata"][k] for k in ("namespace", "name", "uid"))
        guest = self._guests.get(uid)
        if guest is None:
            guest = SerialGuest(
                hostname=name.removesuffix("-vm"),
                users=users_from_cloud_init(_cloud_init(vmi)),
                describe=lambda: _facts(self._vmis.get(namespace, name)),
            )
            self._guests[uid] = guest

        async def watch_guest() -> None:
            while True:
                await asyncio.sleep(SESSION_CHECK_SECONDS)
                if self._vmi_state(namespace, name, uid) in ("Gone", "Succeeded", "Failed"):
                    log.info("console of %s/%s closed: the VMI stopped", namespace, name)
                    _drop(request)
                    return
                if self._guests.get(uid) is not guest:  # soft reboot: the session ended
                    await socket_.send_bytes(b"\r\n[  OK  ] Reached target Reboot.\r\n")
                    return

        await self._pump(socket_, guest.feed, watch_guest)

    async def _pump(
        self,
        socket_: web.WebSocketResponse,
        feed: Callable[[bytes], bytes],
        background: Callable[[], Coroutine[Any, Any, None]],
    ) -> None:
        """Binary frames in (text frames are dropped, §2.3), the reply out; ends when either side does."""
        side = asyncio.create_task(background())
        try:
            async for message in socket_:
                if message.type != WSMsgType.BINARY:
                    continue
                try:
                    reply = feed(message.data)
                except ProtocolError as error:
                    log.info("console protocol error: %s", error)
                    await socket_.close()
                    break
                if reply:
                    await socket_.send_bytes(reply)
        except ConnectionResetError:
            pass
        finally:
            side.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await side


def _drop(request: web.Request) -> None:
    """Close a console the way KubeVirt does when a newer one takes over: the TCP connection goes, no close frame."""
    if request.transport is not None:
        request.transport.abort()


def _cloud_init(vmi: Body) -> str:
    for volume in deep_get(vmi, "spec", "volumes", default=[]):
        for source in ("cloudInitNoCloud", "cloudInitConfigDrive"):
            data = deep_get(volume, source, "userData", default="")
            if data:
                return str(data)
    return ""


def _facts(vmi: Body | None) -> dict[str, str]:
    if vmi is None:
        return {}
    interfaces = deep_get(vmi, "status", "interfaces", default=[])
    return {
        "vmi": vmi["metadata"]["name"],
        "node": str(deep_get(vmi, "status", "nodeName", default="")),
        "ip": str(interfaces[0].get("ipAddress", "")) if interfaces else "",
        "phase": str(deep_get(vmi, "status", "phase", default="")),
    }
