"""Simulated vmoperator (NovaSphere's controller), as upstream behaves on `main` @ d059e5b — quirks included.
Every rule cites shared/reference/wukong.md.

One pass (`reconcile`) follows §5.2 step by step; the stored phase it produces is the table of §7 (stale `Running`
after a stop included). The controller watches only Wukongs (§5.1): changes to VMs, VMIs or claims are noticed only
on the 10 s polling (§6), on the echo of its own status writes, or on the next Wukong change.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sim import kubeapi, quantity
from sim.kubeapi import Body, KubeApi
from sim.runtime import Informer, Key, deep_get, now_rfc3339

FINALIZER = "wukong.novasphere.dev/finalizer"  # §0.2
POLL_SECONDS = 10.0  # §6: volumes not bound, VMI starting, VMI absent
INVALID_SPEC_SECONDS = 60.0  # §6
DEFAULT_MEMORY = "2Gi"  # §2: an unparseable memory falls back to 2Gi
DEFAULT_SUDO = "ALL=(ALL) NOPASSWD:ALL"  # §2
DEFAULT_SHELL = "/bin/bash"
DEFAULT_GROUPS = "sudo, adm, dialout, cdrom, floppy, audio, dip, video, plugdev, netdev"
SSH_KEY_NAMES = ("ssh-publickey", "id_rsa.pub", "authorized_keys", "publickey")  # §2 sshKeySecret


class ChildError(Exception):
    """A network, disk or VM step failed: phase Error and controller-runtime backoff (§5.2 G/H/J0)."""


# ---- pure rules -------------------------------------------------------------------------------------------------


def auto_start(spec: Mapping[str, Any]) -> bool:
    """§8: true only when `startStrategy` is absent; when present, its `autoStart` (absent counts as false)."""
    if spec.get("startStrategy") is None:
        return True
    return bool(spec["startStrategy"].get("autoStart", False))


def spec_valid(spec: Mapping[str, Any]) -> bool:
    """§2 validateSpec: cpu 1..64, memory set, at least one disk, every disk with name, size and storageClassName."""
    cpu = spec.get("cpu")
    if not isinstance(cpu, int) or not 1 <= cpu <= 64 or not spec.get("memory"):
        return False
    disks = spec.get("disks") or []
    return bool(disks) and all(d.get("name") and d.get("size") and d.get("storageClassName") for d in disks)


def conditions(*, vm_phase: str, networks: list[Body], volumes: list[Body], now: str) -> list[Body]:
    """§3.1: exactly Ready, NetworksConfigured, VolumesBound; lastTransitionTime is "now" on every write."""
    if vm_phase == "Running":
        ready = ("True", "VMRunning", "Virtual machine is running")
    elif vm_phase in ("Failed", "Unknown"):
        ready = ("False", "VMFailed", f"Virtual machine is in {vm_phase} state")
    elif vm_phase:
        ready = ("False", "VMCreating", f"Virtual machine is in {vm_phase} state")
    else:
        ready = ("False", "VMNotReady", "Virtual machine is not ready")
    all_bound = all(v.get("bound") for v in volumes)
    rows = [
        ("Ready", *ready),
        (
            "NetworksConfigured",
            "True" if networks else "False",
            "NetworksReady",
            f"{len(networks)} networks configured",
        ),
        ("VolumesBound", "True" if all_bound else "False", "VolumesReady", f"{len(volumes)} volumes bound"),
    ]
    return [{"type": t, "status": s, "reason": r, "message": m, "lastTransitionTime": now} for t, s, r, m in rows]


def phase_after_step_f(stored: str) -> str:
    """§5.2 F: a stored phase other than Creating or Running is rewritten to Creating before the children."""
    return stored if stored in ("Creating", "Running") else "Creating"


def phase_for_vm_status(vm_phase: str, spec: Mapping[str, Any]) -> str | None:
    """§5.2 J2: the phase to write for the observed VM status, or None for "Creating in memory only, no write"
    (which leaves the stored phase as it was: the source of the stale `Running`, §7)."""
    if vm_phase == "Running":
        return "Running"
    if vm_phase in ("Failed", "Unknown"):
        return "Error"
    if vm_phase == "" and spec.get("startStrategy") is not None and not auto_start(spec):
        return "Stopped"
    return None


def cloud_init_user_data(spec: Mapping[str, Any], ssh_keys: list[str]) -> str:
    """§5.3, in upstream's order."""
    lines = ["#cloud-config"]
    user = spec.get("cloudInitUser")
    if user is not None:
        lines.append("users:")
        lines.append(f"  - name: {user.get('name', '')}")
        password = user.get("passwordHash") or user.get("password")
        if password:
            lines.append(f"    passwd: {password}")
        lines.append(f"    sudo: {user.get('sudo') or DEFAULT_SUDO}")
        lines.append(f"    shell: {user.get('shell') or DEFAULT_SHELL}")
        groups = user.get("groups") or [DEFAULT_GROUPS]
        lines.append(f"    groups: {', '.join(groups)}")
        lines.append(f"    lock_passwd: {'true' if user.get('lockPasswd') else 'false'}")
        lines.append("ssh_pwauth: true")
        lines.append("disable_root: false")
    if ssh_keys:
        lines.append("ssh_authorized_keys:")
        lines += [f"  - {key}" for key in ssh_keys]
    statics = [
        n
        for n in spec.get("networks") or []
        if deep_get(n, "ipConfig", "mode") == "static" and deep_get(n, "ipConfig", "address")
    ]
    if statics:
        lines.append("network:")
        lines.append("  version: 2")
        lines.append("  ethernets:")
        for network in statics:
            config = network["ipConfig"]
            lines.append(f"    {network['name']}:")
            lines.append(f"      addresses: [{config['address']}]")
            if config.get("gateway"):
                lines.append(f"      gateway4: {config['gateway']}")
            if config.get("dnsServers"):
                lines.append(f"      nameservers: {{addresses: [{', '.join(config['dnsServers'])}]}}")
    return "\n".join(lines) + "\n"


def build_vm_spec(wukong: Body, *, network_status: list[Body], ssh_keys: list[str]) -> tuple[Body, Body]:
    """(annotations, spec) of VM `<name>-vm` as vm.go builds them (§4.1)."""
    name, spec = wukong["metadata"]["name"], wukong["spec"]
    try:
        memory = quantity.canonical(str(spec.get("memory", "")))
    except ValueError:
        memory = DEFAULT_MEMORY
    attached = [(i, s["nadName"]) for i, s in enumerate(network_status) if s.get("nadName")]
    annotations: Body = {}
    if attached:
        annotations["k8s.v1.cni.cncf.io/networks"] = json.dumps(
            [{"interface": f"net{i + 1}", "name": nad} for i, nad in attached], separators=(",", ":")
        )
    disks = spec.get("disks") or []
    volumes: list[Body] = [
        {"name": d["name"], "persistentVolumeClaim": {"claimName": f"{name}-{d['name']}"}} for d in disks
    ]
    if spec.get("osImage") or spec.get("sshKeySecret") or spec.get("cloudInitUser") is not None:
        volumes.append(
            {"name": "cloudinitdisk", "cloudInitNoCloud": {"userData": cloud_init_user_data(spec, ssh_keys)}}
        )
    template_spec: Body = {
        "domain": {
            "cpu": {"cores": spec["cpu"]},
            "memory": {"guest": memory},
            "devices": {
                "disks": [{"name": d["name"], "disk": {"bus": "virtio"}} for d in disks],
                "interfaces": [{"name": "default", "masquerade": {}}]
                + [{"name": nad, "bridge": {}} for _, nad in attached],
            },
        },
        "networks": [{"name": "default", "pod": {}}]
        + [{"name": nad, "multus": {"networkName": nad}} for _, nad in attached],
        "volumes": volumes,
    }
    high_availability = spec.get("highAvailability") or {}
    if high_availability.get("nodeSelector"):
        template_spec["nodeSelector"] = dict(high_availability["nodeSelector"])
    if high_availability.get("tolerations"):
        template_spec["tolerations"] = [
            {k: t[k] for k in ("key", "operator", "value", "effect") if k in t}
            for t in high_availability["tolerations"]
        ]  # tolerationSeconds is dropped (§2)
    template: Body = {"spec": template_spec}
    if annotations:
        template["metadata"] = {"annotations": dict(annotations)}
    return annotations, {"running": auto_start(spec), "template": template}


def nad_config(wukong_name: str, network: Mapping[str, Any]) -> str:
    """§4.1 NAD `spec.config`, keys in upstream's order."""
    config: Body = {"cniVersion": "0.3.1", "type": network["type"]}
    if network["type"] in ("bridge", "ovs"):
        config["bridge"] = network.get("bridgeName") or f"br-{network['name']}"
        if network.get("vlanId"):
            config["vlan"] = network["vlanId"]
    ip_config = network.get("ipConfig")
    if ip_config and ip_config.get("mode") == "dhcp":
        config["ipam"] = {"type": "dhcp"}
    elif ip_config and ip_config.get("mode") == "static" and ip_config.get("address"):
        ipam: Body = {"addresses": [{"address": ip_config["address"]}]}
        if ip_config.get("gateway"):
            ipam["routes"] = [{"dst": "0.0.0.0/0", "gw": ip_config["gateway"]}]
        ipam["type"] = "static"
        config["ipam"] = ipam
    return json.dumps(config, separators=(",", ":"))


# ---- the controller ---------------------------------------------------------------------------------------------


@dataclass
class Caches:
    wukongs: Informer
    vms: Informer
    vmis: Informer
    pvcs: Informer
    data_volumes: Informer
    storage_classes: Informer


class VmOperator:
    def __init__(self, *, api: KubeApi, caches: Caches) -> None:
        self._api = api
        self._caches = caches

    async def reconcile(self, key: Key) -> float | None:
        """One pass of §5.2; returns the RequeueAfter in simulated seconds, or raises for a backoff requeue."""
        cached = self._caches.wukongs.get(*key)
        if cached is None:  # A
            return None
        wukong = copy.deepcopy(cached)
        metadata = wukong["metadata"]
        finalizers: list[str] = metadata.setdefault("finalizers", [])
        if metadata.get("deletionTimestamp"):  # B: only removes the finalizer; children go by GC or stay (§10)
            if FINALIZER in finalizers:
                finalizers.remove(FINALIZER)
                await self._api.update(kubeapi.WUKONGS, wukong)
            return None
        if FINALIZER not in finalizers:  # C
            finalizers.append(FINALIZER)
            await self._api.update(kubeapi.WUKONGS, wukong)
            return 0.0
        spec, status = wukong["spec"], wukong.setdefault("status", {})
        if not spec_valid(spec):  # D: no condition, no message (§2)
            status["phase"] = "Error"
            await self._write_status(wukong, ignore_errors=True)
            return INVALID_SPEC_SECONDS
        if not status.get("phase"):  # E
            status["phase"] = "Pending"
            await self._write_status(wukong)
            return 0.0
        if phase_after_step_f(status["phase"]) != status["phase"]:  # F
            status["phase"] = phase_after_step_f(status["phase"])
            wukong = await self._write_status(wukong)
            status = wukong["status"]

        try:
            networks = await self._networks(wukong)  # G
            volumes = await self._disks(wukong)  # H
        except ChildError:
            status["phase"] = "Error"
            await self._write_status(wukong)
            raise
        status["volumes"] = volumes
        if networks:  # `omitempty` in the Go type
            status["networks"] = networks
        else:
            status.pop("networks", None)
        if not all(v["bound"] for v in volumes):  # I: the phase stays as it is (stale Running included)
            status["conditions"] = conditions(vm_phase="", networks=networks, volumes=volumes, now=now_rfc3339())
            await self._write_status(wukong)
            return POLL_SECONDS

        try:
            await self._apply_vm(wukong, networks)  # J0
        except kubeapi.ApiError as error:
            status["phase"] = "Error"
            await self._write_status(wukong)
            raise ChildError(str(error)) from error

        vm_phase, node_name = self._vm_status(key)  # J1
        status["vmName"] = f"{metadata['name']}-vm"  # J2 (in memory; written only below)
        if node_name:
            status["nodeName"] = node_name
        phase = phase_for_vm_status(vm_phase, spec)
        if phase is None:  # Pending/Scheduling/Scheduled/Stopped/Succeeded/"": Creating in memory, no write
            return POLL_SECONDS
        status["phase"] = phase
        status["conditions"] = conditions(vm_phase=vm_phase, networks=networks, volumes=volumes, now=now_rfc3339())
        await self._write_status(wukong)
        return None

    async def _write_status(self, wukong: Body, *, ignore_errors: bool = False) -> Body:
        """`Status().Update` with the object read at the start of the pass (a stale one conflicts)."""
        try:
            return await self._api.update(kubeapi.WUKONGS, wukong, subresource="status")
        except kubeapi.ApiError:
            if ignore_errors:
                return wukong
            raise

    async def _networks(self, wukong: Body) -> list[Body]:
        """§5.4 (multus.go on main)."""
        namespace, name = wukong["metadata"]["namespace"], wukong["metadata"]["name"]
        entries = []
        for network in wukong["spec"].get("networks") or []:
            nad = network.get("nadName") or f"{name}-{network['name']}-nad"
            try:
                await self._api.get(kubeapi.NADS, namespace, nad)
                entries.append({"name": network["name"], "nadName": nad})
            except kubeapi.NotFound as error:
                if network.get("nadName"):
                    entries.append({"name": network["name"], "nadName": nad})  # a missing given NAD is no error here
                else:
                    # On main the Multus-CRD existence check fails (apiextensions is not in the manager's scheme),
                    # so auto-creating a NAD ends in phase Error (§10, inferred; see sim/README.md).
                    raise ChildError(f"checking the Multus CRD for {nad}") from error
            except kubeapi.ApiError as error:
                raise ChildError(str(error)) from error
        return entries

    async def _disks(self, wukong: Body) -> list[Body]:
        """§4 and §4.2: create each disk's claim (or DataVolume) when missing and decide whether it counts as bound."""
        namespace, name = wukong["metadata"]["namespace"], wukong["metadata"]["name"]
        volumes = []
        for disk in wukong["spec"].get("disks") or []:
            claim = f"{name}-{disk['name']}"
            bound = (
                await self._data_volume_bound(namespace, claim, disk)
                if disk.get("image")
                else await self._claim_bound(namespace, claim, disk)
            )
            volumes.append({"name": disk["name"], "pvcName": claim, "bound": bound, "size": disk["size"]})
        return volumes

    async def _claim_bound(self, namespace: str, claim: str, disk: Mapping[str, Any]) -> bool:
        pvc = self._caches.pvcs.get(namespace, claim)
        if pvc is None:
            await self._create(kubeapi.PVCS, namespace, _claim(claim, disk))
            return False
        phase = deep_get(pvc, "status", "phase", default="")
        return phase == "Bound" or (phase == "Pending" and self._waits_for_consumer(disk["storageClassName"]))

    async def _data_volume_bound(self, namespace: str, claim: str, disk: Mapping[str, Any]) -> bool:
        data_volume = self._caches.data_volumes.get(namespace, claim)
        if data_volume is None:
            await self._create(kubeapi.DATA_VOLUMES, namespace, _data_volume(claim, disk))
            return False
        phase = deep_get(data_volume, "status", "phase", default="")
        if phase == "Succeeded":
            pvc_phase = deep_get(self._caches.pvcs.get(namespace, claim), "status", "phase", default="")
            if pvc_phase == "Lost":
                raise ChildError(f"PVC {claim} is Lost")
            return bool(pvc_phase == "Bound")
        if phase in ("Failed", "Error"):
            raise ChildError(f"DataVolume {claim} is {phase}")
        if phase == "WaitForFirstConsumer":
            return self._waits_for_consumer(disk["storageClassName"])
        return False

    def _waits_for_consumer(self, storage_class: str) -> bool:
        found = self._caches.storage_classes.get("", storage_class)
        return found is not None and found.get("volumeBindingMode") == "WaitForFirstConsumer"

    async def _create(self, resource: kubeapi.Resource, namespace: str, body: Body) -> None:
        try:
            await self._api.create(resource, namespace, body)
        except kubeapi.Conflict as error:
            if not error.already_exists:  # the cache was behind: it exists, as the next pass will see
                raise ChildError(str(error)) from error
        except kubeapi.ApiError as error:
            raise ChildError(str(error)) from error

    async def _apply_vm(self, wukong: Body, networks: list[Body]) -> None:
        """J0: create VM `<name>-vm` with the Wukong as its only owner, or rebuild its spec and merge annotations.

        Upstream calls Update on every pass; an identical update is a no-op in kube-apiserver, so it is skipped here.
        """
        metadata = wukong["metadata"]
        namespace, vm_name = metadata["namespace"], f"{metadata['name']}-vm"
        annotations, spec = build_vm_spec(
            wukong, network_status=networks, ssh_keys=await self._ssh_keys(namespace, wukong["spec"])
        )
        existing = self._caches.vms.get(namespace, vm_name)
        if existing is None:
            body: Body = {
                "apiVersion": kubeapi.VIRTUAL_MACHINES.api_version,
                "kind": "VirtualMachine",
                "metadata": {
                    "name": vm_name,
                    "namespace": namespace,
                    "ownerReferences": [
                        {
                            "apiVersion": kubeapi.WUKONGS.api_version,
                            "kind": "Wukong",
                            "name": metadata["name"],
                            "uid": metadata["uid"],
                            "controller": True,
                        }
                    ],
                },
                "spec": spec,
            }
            if annotations:
                body["metadata"]["annotations"] = annotations
            try:
                await self._api.create(kubeapi.VIRTUAL_MACHINES, namespace, body)
            except kubeapi.Conflict as error:
                if not error.already_exists:
                    raise
            return
        merged = {**(existing["metadata"].get("annotations") or {}), **annotations}
        if existing["spec"] == spec and (existing["metadata"].get("annotations") or {}) == merged:
            return
        updated = copy.deepcopy(existing)
        updated["spec"] = spec
        if merged:
            updated["metadata"]["annotations"] = merged
        await self._api.update(kubeapi.VIRTUAL_MACHINES, updated)

    def _vm_status(self, key: Key) -> tuple[str, str]:
        """J1 GetVMStatus: "" if the VM is not in the cache; "Stopped" without a VMI; else the VMI phase, with ""
        reported as "Unknown"."""
        namespace, name = key
        if self._caches.vms.get(namespace, f"{name}-vm") is None:
            return "", ""
        vmi = self._caches.vmis.get(namespace, f"{name}-vm")
        if vmi is None:
            return "Stopped", ""
        return deep_get(vmi, "status", "phase", default="") or "Unknown", deep_get(
            vmi, "status", "nodeName", default=""
        )

    async def _ssh_keys(self, namespace: str, spec: Mapping[str, Any]) -> list[str]:
        """§2 sshKeySecret: the first known key name, else any non-empty key; a missing Secret is ignored."""
        secret_name = spec.get("sshKeySecret")
        if not secret_name:
            return []
        try:
            secret = await self._api.get(kubeapi.Resource("", "v1", "secrets", "Secret"), namespace, secret_name)
        except kubeapi.NotFound:
            return []
        data: dict[str, str] = secret.get("data") or {}
        import base64

        chosen = next((data[k] for k in SSH_KEY_NAMES if data.get(k)), next((v for v in data.values() if v), ""))
        text = base64.b64decode(chosen).decode(errors="replace") if chosen else ""
        return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def _claim(name: str, disk: Mapping[str, Any]) -> Body:
    """§4.1 PVC: no labels, no owner."""
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": disk["size"]}},
            "storageClassName": disk["storageClassName"],
        },
    }


def _data_volume(name: str, disk: Mapping[str, Any]) -> Body:
    """§4.1 DataVolume: http source for http(s) images, else registry (leading docker:// removed)."""
    image: str = disk["image"]
    source = (
        {"http": {"url": image}}
        if image.startswith(("http://", "https://"))
        else {"registry": {"url": image.removeprefix("docker://"), "pullMethod": "pod"}}
    )
    return {
        "apiVersion": kubeapi.DATA_VOLUMES.api_version,
        "kind": "DataVolume",
        "metadata": {"name": name},
        "spec": {
            "source": source,
            "pvc": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": disk["size"]}},
                "storageClassName": disk["storageClassName"],
            },
        },
    }
