"""KubeVirt's VirtualMachines and VirtualMachineInstances (`kubevirt.io/v1`), read through informers.

vmoperator names a Wukong's VirtualMachine `<wukong>-vm`, and KubeVirt names the instance after the VM
(reference/wukong.md §4), so the name alone says which Wukong an object belongs to.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from server.kube import errors, slim
from server.kube.client import JsonObject, KubeClient
from server.kube.informer import Kind

VM_SUFFIX = "-vm"


def keep_vm(raw: JsonObject) -> JsonObject:
    """What the cache keeps of a VirtualMachine: its identity, run intent, printable status and conditions."""
    spec: Mapping[str, Any] = raw.get("spec") or {}
    status: Mapping[str, Any] = raw.get("status") or {}
    kept_status = slim.texts(status, "printableStatus")
    kept_status["conditions"] = slim.conditions(status.get("conditions"))
    return {
        "metadata": slim.metadata(raw.get("metadata") or {}),
        "spec": slim.texts(spec, "running", "runStrategy"),
        "status": kept_status,
    }


def keep_instance(raw: JsonObject) -> JsonObject:
    """What the cache keeps of a VirtualMachineInstance: its identity, the guest's CPU and memory as running, and the
    status the API derives power state, node, addresses, readiness, start time and guest OS from."""
    domain: Mapping[str, Any] = (raw.get("spec") or {}).get("domain") or {}
    status: Mapping[str, Any] = raw.get("status") or {}
    kept_status = slim.texts(status, "phase", "nodeName") | slim.pick(status, "activePods")
    kept_status["conditions"] = slim.conditions(status.get("conditions"))
    kept_status["interfaces"] = [
        slim.texts(i, "name", "interfaceName") | slim.pick(i, "ipAddress", "ipAddresses", "mac")
        for i in status.get("interfaces") or []
        if isinstance(i, Mapping)
    ]
    kept_status["phaseTransitionTimestamps"] = [
        t
        for t in status.get("phaseTransitionTimestamps") or []
        if isinstance(t, Mapping) and t.get("phase") == "Running"
    ]
    if "guestOSInfo" in status:
        kept_status["guestOSInfo"] = slim.texts(status["guestOSInfo"] or {}, "prettyName")
    cpu, memory = domain.get("cpu") or {}, domain.get("memory") or {}
    kept_domain = {"cpu": slim.pick(cpu, "cores"), "memory": slim.texts(memory, "guest")}
    return {
        "metadata": slim.metadata(raw.get("metadata") or {}),
        "spec": {"domain": kept_domain},
        "status": kept_status,
    }


VIRTUAL_MACHINES = Kind("virtualmachines", "/apis/kubevirt.io/v1/virtualmachines", keep=keep_vm, reuse_on_relist=True)
INSTANCES = Kind(
    "virtualmachineinstances",
    "/apis/kubevirt.io/v1/virtualmachineinstances",
    keep=keep_instance,
    reuse_on_relist=True,
)


def vm_name(wukong: str) -> str:
    return wukong + VM_SUFFIX


def wukong_of(vm_or_instance_name: str) -> str | None:
    """The Wukong a VM or instance belongs to; None for one vmoperator did not create."""
    if not vm_or_instance_name.endswith(VM_SUFFIX) or len(vm_or_instance_name) == len(VM_SUFFIX):
        return None
    return vm_or_instance_name[: -len(VM_SUFFIX)]


SUBRESOURCES = "/apis/subresources.kubevirt.io/v1"


def vm_path(namespace: str, name: str) -> str:
    return f"/apis/kubevirt.io/v1/namespaces/{namespace}/virtualmachines/{name}"


def instance_path(namespace: str, name: str) -> str:
    return f"/apis/kubevirt.io/v1/namespaces/{namespace}/virtualmachineinstances/{name}"


async def get_instance(client: KubeClient, *, namespace: str, name: str) -> JsonObject | None:
    """A VirtualMachineInstance read now (not from the informer); None when there is none."""
    try:
        return await client.request("GET", instance_path(namespace, name))
    except errors.NotFound:
        return None


async def stop(client: KubeClient, *, namespace: str, vm: str, grace_period_seconds: int | None) -> None:
    """KubeVirt's VM `stop` (202). A grace period shortens a running instance's first (kubevirt.md §1.5)."""
    body = {} if grace_period_seconds is None else {"gracePeriod": grace_period_seconds}
    await _put(client, f"{SUBRESOURCES}/namespaces/{namespace}/virtualmachines/{vm}/stop", body)


async def restart(client: KubeClient, *, namespace: str, vm: str, force: bool) -> None:
    """KubeVirt's VM `restart` (202): a new instance replaces the current one; forced, without a graceful shutdown."""
    body = {"gracePeriodSeconds": 0} if force else {}
    await _put(client, f"{SUBRESOURCES}/namespaces/{namespace}/virtualmachines/{vm}/restart", body)


async def pause(client: KubeClient, *, namespace: str, instance: str) -> None:
    await _put(client, f"{SUBRESOURCES}/namespaces/{namespace}/virtualmachineinstances/{instance}/pause", {})


async def unpause(client: KubeClient, *, namespace: str, instance: str) -> None:
    await _put(client, f"{SUBRESOURCES}/namespaces/{namespace}/virtualmachineinstances/{instance}/unpause", {})


async def _put(client: KubeClient, path: str, body: JsonObject) -> None:
    """virt-api answers 200/202 with an empty body, which is not JSON."""
    await client.request("PUT", path, body=body, expect_json=False)
