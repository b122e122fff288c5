"""Simulated KubeVirt: the VM and VMI controllers (virt-controller), the node side (virt-handler, with the launcher
pod's scheduling and kubelet status), as shared/reference/kubevirt.md describes them."""
