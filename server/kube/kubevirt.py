"""KubeVirt's VirtualMachines and VirtualMachineInstances (`kubevirt.io/v1`), read through informers.

vmoperator names a Wukong's VirtualMachine `<wukong>-vm`, and KubeVirt names the instance after the VM
(reference/wukong.md §4), so the name alone says which Wukong an object belongs to.
"""

from __future__ import annotations

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
