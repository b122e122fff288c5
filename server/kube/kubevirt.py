"""KubeVirt's VirtualMachines and VirtualMachineInstances (`kubevirt.io/v1`), read through informers.

vmoperator names a Wukong's VirtualMachine `<wukong>-vm`, and KubeVirt names the instance after the VM
(reference/wukong.md §4), so the name alone says which Wukong an object belongs to.
"""

from __future__ import annotations

from server.kube import errors
from server.kube.client import JsonObject, KubeClient
from server.kube.informer import Kind

VIRTUAL_MACHINES = Kind("virtualmachines", "/apis/kubevirt.io/v1/virtualmachines")
INSTANCES = Kind("virtualmachineinstances", "/apis/kubevirt.io/v1/virtualmachineinstances")
VM_SUFFIX = "-vm"


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
