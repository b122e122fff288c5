"""Bench data.

- `namespace_of_wukongs`: a tenant's namespace holding N small Wukongs (`vm-00000`, `vm-00001`, …), applied in one go
  (no VMs behind them).
- `seed_running`: N *running* VMs written straight into kube-apiserver, no simulator: for each, the Wukong with the
  status vmoperator writes, its VirtualMachine and VirtualMachineInstance `<name>-vm` and its virt-launcher Pod, each
  shaped and sized like KubeVirt's own (shared/reference/wukong.md §3-4, kubevirt.md §3; the launcher Pod as
  virt-controller builds it), each written by the component that writes it in a real cluster (its User-Agent names
  the managedFields manager), statuses through the /status subresource where the CRD has one (Wukong, VM, Pod; the
  VMI has none). The builders are pure functions, so a unit test can check that the API derives RUNNING from them.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import kubernetes.client

from devcluster import manifests
from sim import kubeapi, nodes
from sim.kubeapi import Credentials
from sim.kubevirt import vmi_controller

Body = dict[str, Any]

LAUNCHER_IMAGE = "quay.io/kubevirt/virt-launcher:v1.9.0"
LAUNCHER_IMAGE_ID = "quay.io/kubevirt/virt-launcher@sha256:" + hashlib.sha256(b"virt-launcher").hexdigest()
NODES = 8
STORAGE_CLASS = "local-path"
TIERS = ("web", "db", "cache")
# Who writes what in a real cluster: the User-Agent's first word becomes the managedFields manager.
API_AGENT = "novasphere-api/v1 (linux/amd64)"
VMOPERATOR_AGENT = "manager/v0.0.0 (linux/amd64) kubernetes/$Format"
VIRT_CONTROLLER_AGENT = "virt-controller/v1.9.0 (linux/amd64) kubevirt.io/client-go"
VIRT_HANDLER_AGENT = "virt-handler/v1.9.0 (linux/amd64) kubevirt.io/client-go"
KUBELET_AGENT = "kubelet/v1.32.4 (linux/amd64) kubernetes/59526cd"
PV_BINDER_AGENT = "kube-controller-manager/v1.32.4 (linux/amd64) kubernetes/59526cd/persistent-volume-binder"


def namespace_of_wukongs(admin: kubernetes.client.ApiClient, *, namespace: str, tenant: str, count: int) -> None:
    manifests.apply(
        admin,
        [
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": namespace, "labels": {"novasphere.dev/tenant": tenant}},
            },
            *(
                {
                    "apiVersion": "vm.novasphere.dev/v1alpha1",
                    "kind": "Wukong",
                    "metadata": {"name": f"vm-{i:05d}", "namespace": namespace},
                    "spec": {"cpu": 1, "memory": "1Gi"},
                }
                for i in range(count)
            ),
        ],
    )


# -- the objects of one running VM (pure)


@dataclass(frozen=True)
class RunningVm:
    """What differs between the seeded VMs."""

    namespace: str
    name: str
    index: int
    cpu: int
    memory_gi: int
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def vm_name(self) -> str:
        return f"{self.name}-vm"

    @property
    def node(self) -> str:
        return nodes.node_name(1 + self.index % NODES)

    @property
    def pod_ip(self) -> str:
        return f"10.244.{self.index // 250 % 250}.{2 + self.index % 250}"

    @property
    def mac(self) -> str:
        digest = hashlib.sha256(f"{self.namespace}/{self.name}".encode()).digest()
        return "02:" + ":".join(f"{b:02x}" for b in digest[:5])

    @property
    def pod_name(self) -> str:
        suffix = base64.b32encode(hashlib.sha256(self.name.encode()).digest()).decode().lower()[:5]
        return f"virt-launcher-{self.vm_name}-{suffix}"


def numbered(namespace: str, index: int, labels: Mapping[str, str] | None = None, name: str = "") -> RunningVm:
    """The `index`-th bench VM: `vm-<index>`, sizes and a `tier` label cycling as the list benchmark expects."""
    return RunningVm(
        namespace=namespace,
        name=name or f"vm-{index:05d}",
        index=index,
        cpu=index % 8 + 1,
        memory_gi=index % 8 + 1,
        labels=labels if labels is not None else {"tier": TIERS[index % len(TIERS)]},
    )


def _at(seconds_ago: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - seconds_ago))


def _owner(api_version: str, kind: str, name: str, uid: str, *, block: bool = True) -> Body:
    owner: Body = {"apiVersion": api_version, "kind": kind, "name": name, "uid": uid, "controller": True}
    if block:
        owner["blockOwnerDeletion"] = True
    return owner


def _condition(kind: str, status: str, reason: str = "", message: str = "", *, probe: bool = True) -> Body:
    condition: Body = {"type": kind, "status": status, "lastTransitionTime": _at(3600)}
    if probe:
        condition["lastProbeTime"] = None
    if reason:
        condition["reason"] = reason
    if message:
        condition["message"] = message
    return condition


def wukong(vm: RunningVm) -> Body:
    """The Wukong as a client creates it (spec as the list benchmark has always used, plus a cloud-init user)."""
    return {
        "apiVersion": kubeapi.WUKONGS.api_version,
        "kind": "Wukong",
        "metadata": {"name": vm.name, "namespace": vm.namespace, "labels": dict(vm.labels)},
        "spec": {
            "cpu": vm.cpu,
            "memory": f"{vm.memory_gi}Gi",
            "osImage": "ubuntu-22.04",
            "disks": [
                {
                    "name": "root",
                    "size": "10Gi",
                    "storageClassName": STORAGE_CLASS,
                    "boot": True,
                    "image": "docker://quay.io/containerdisks/ubuntu:22.04",
                }
            ],
            "cloudInitUser": {"name": "ubuntu", "sudo": "ALL=(ALL) NOPASSWD:ALL", "shell": "/bin/bash"},
        },
    }


def claim(vm: RunningVm, wukong_uid: str) -> Body:
    """The root disk's PersistentVolumeClaim as vmoperator creates it (`<wukong>-<disk>`, reference/wukong.md §4)."""
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": f"{vm.name}-root",
            "namespace": vm.namespace,
            "labels": {"app.kubernetes.io/managed-by": "vmoperator", "vm.novasphere.dev/wukong": vm.name},
            "ownerReferences": [_owner(kubeapi.WUKONGS.api_version, "Wukong", vm.name, wukong_uid)],
        },
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "10Gi"}},
            "storageClassName": STORAGE_CLASS,
            "volumeMode": "Filesystem",
            "volumeName": f"pvc-{hashlib.sha256(vm.name.encode()).hexdigest()[:32]}",
        },
    }


def claim_status() -> Body:
    return {"phase": "Bound", "accessModes": ["ReadWriteOnce"], "capacity": {"storage": "10Gi"}}


def wukong_status(vm: RunningVm) -> Body:
    """`status` as vmoperator writes it once the VMI runs (wukong.md §3, §7)."""
    now = _at(0)
    return {
        "phase": "Running",
        "vmName": vm.vm_name,
        "nodeName": vm.node,
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "VMRunning",
                "message": "Virtual machine is running",
                "lastTransitionTime": now,
            },
            {
                "type": "NetworksConfigured",
                "status": "False",
                "reason": "NetworksReady",
                "message": "0 networks configured",
                "lastTransitionTime": now,
            },
            {
                "type": "VolumesBound",
                "status": "True",
                "reason": "VolumesReady",
                "message": "1 volumes bound",
                "lastTransitionTime": now,
            },
        ],
        "networks": [],
        "volumes": [{"name": "root", "pvcName": f"{vm.name}-root", "bound": True, "size": "10Gi"}],
    }


def _user_data() -> str:
    return (
        "#cloud-config\nusers:\n- name: ubuntu\n  sudo: ALL=(ALL) NOPASSWD:ALL\n  shell: /bin/bash\n"
        "  groups: sudo, adm, dialout, cdrom, floppy, audio, dip, video, plugdev, netdev\n  lock_passwd: false\n"
        "ssh_pwauth: true\ndisable_root: false\n"
    )


def _template_spec(vm: RunningVm) -> Body:
    """The VM template as vmoperator builds it (wukong.md §4.1)."""
    return {
        "domain": {
            "cpu": {"cores": vm.cpu},
            "memory": {"guest": f"{vm.memory_gi}Gi"},
            "devices": {
                "disks": [{"name": "root", "disk": {"bus": "virtio"}}],
                "interfaces": [{"name": "default", "masquerade": {}}],
            },
        },
        "networks": [{"name": "default", "pod": {}}],
        "volumes": [
            {"name": "root", "persistentVolumeClaim": {"claimName": f"{vm.name}-root"}},
            {"name": "cloudinitdisk", "cloudInitNoCloud": {"userData": _user_data()}},
        ],
    }


def virtual_machine(vm: RunningVm, wukong_uid: str) -> Body:
    return {
        "apiVersion": kubeapi.VIRTUAL_MACHINES.api_version,
        "kind": "VirtualMachine",
        "metadata": {
            "name": vm.vm_name,
            "namespace": vm.namespace,
            "annotations": {
                "kubevirt.io/latest-observed-api-version": "v1",
                "kubevirt.io/storage-observed-api-version": "v1",
            },
            "finalizers": ["kubevirt.io/virtualMachineControllerFinalize"],
            "ownerReferences": [_owner(kubeapi.WUKONGS.api_version, "Wukong", vm.name, wukong_uid, block=False)],
        },
        "spec": {"running": True, "template": {"metadata": {"creationTimestamp": None}, "spec": _template_spec(vm)}},
    }


def _mirrored_conditions() -> list[Body]:
    return [
        _condition("Ready", "True"),
        _condition("AgentConnected", "True"),
        _condition(
            "LiveMigratable",
            "False",
            "DisksNotLiveMigratable",
            "cannot migrate VMI: PVC root is not shared, live migration requires that all PVCs must be shared "
            "(using ReadWriteMany access mode)",
        ),
        _condition(
            "StorageLiveMigratable",
            "False",
            "DisksNotLiveMigratable",
            "cannot migrate VMI: PVC root is not shared, live migration requires that all PVCs must be shared "
            "(using ReadWriteMany access mode)",
        ),
    ]


def virtual_machine_status(vm: RunningVm) -> Body:
    """As virt-controller's VM controller writes it for a running VMI (kubevirt.md §3.2-3.3)."""
    return {
        "created": True,
        "ready": True,
        "printableStatus": "Running",
        "runStrategy": "Always",
        "observedGeneration": 1,
        "desiredGeneration": 1,
        "conditions": _mirrored_conditions(),
        "volumeSnapshotStatuses": [
            {"name": "root", "enabled": False, "reason": "No VolumeSnapshotClass: Volume snapshots are not configured"},
            {
                "name": "cloudinitdisk",
                "enabled": False,
                "reason": "Snapshot is not supported for this volumeSource type",
            },
        ],
    }


def instance(vm: RunningVm, vm_uid: str) -> Body:
    """The VMI as virt-controller creates it from the template, after KubeVirt's defaulting, with the status it has
    once scheduled (the VMI has no status subresource)."""
    spec = _template_spec(vm)
    domain = spec["domain"]
    domain["cpu"].update({"model": "host-model", "sockets": 1, "threads": 1, "maxSockets": 4})
    domain["devices"]["disks"].append({"name": "cloudinitdisk", "disk": {"bus": "virtio"}})
    domain["devices"]["interfaces"][0]["macAddress"] = vm.mac
    domain["devices"]["rng"] = {}
    domain["features"] = {"acpi": {"enabled": True}}
    domain["firmware"] = {"uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{vm.namespace}/{vm.vm_name}"))}
    domain["machine"] = {"type": "q35"}
    domain["memory"]["maxGuest"] = f"{vm.memory_gi * 4}Gi"
    domain["resources"] = {"requests": {"memory": f"{vm.memory_gi}Gi"}}
    spec.update({"architecture": "amd64", "evictionStrategy": "None", "terminationGracePeriodSeconds": 180})
    return {
        "apiVersion": kubeapi.VIRTUAL_MACHINE_INSTANCES.api_version,
        "kind": "VirtualMachineInstance",
        "metadata": {
            "name": vm.vm_name,
            "namespace": vm.namespace,
            "labels": {"kubevirt.io/nodeName": vm.node, "vm.kubevirt.io/name": vm.vm_name},
            "annotations": {
                "kubevirt.io/latest-observed-api-version": "v1",
                "kubevirt.io/storage-observed-api-version": "v1",
                "kubevirt.io/vm-generation": "1",
            },
            "finalizers": ["kubevirt.io/virtualMachineControllerFinalize", "foregroundDeleteVirtualMachine"],
            "ownerReferences": [_owner(kubeapi.VIRTUAL_MACHINES.api_version, "VirtualMachine", vm.vm_name, vm_uid)],
        },
        "spec": spec,
        "status": {
            "phase": "Scheduling",
            "phaseTransitionTimestamps": [
                {"phase": "Pending", "phaseTransitionTimestamp": _at(3620)},
                {"phase": "Scheduling", "phaseTransitionTimestamp": _at(3619)},
            ],
            "qosClass": "Burstable",
            "guestOSInfo": {},
            "conditions": [],
            "runtimeUser": 107,
            "virtualMachineRevisionName": f"revision-start-vm-{vm_uid}-1",
        },
    }


def instance_status(vm: RunningVm, pod_uid: str) -> Body:
    """What virt-handler adds once the guest runs (kubevirt.md §3.4): interfaces, guest OS, Ready, and the rest."""
    return {
        "phase": "Running",
        "nodeName": vm.node,
        "activePods": {pod_uid: vm.node},
        "launcherContainerImageVersion": LAUNCHER_IMAGE,
        "migrationMethod": "BlockMigration",
        "migrationTransport": "Unix",
        "selinuxContext": "none",
        "phaseTransitionTimestamps": [
            {"phase": "Pending", "phaseTransitionTimestamp": _at(3620)},
            {"phase": "Scheduling", "phaseTransitionTimestamp": _at(3619)},
            {"phase": "Scheduled", "phaseTransitionTimestamp": _at(3610)},
            {"phase": "Running", "phaseTransitionTimestamp": _at(3600)},
        ],
        "interfaces": [
            {
                "name": "default",
                "ipAddress": vm.pod_ip,
                "ipAddresses": [vm.pod_ip, f"fd10:244::{vm.index % 65535:x}"],
                "mac": vm.mac,
                "interfaceName": "enp1s0",
                "podInterfaceName": "eth0",
                "infoSource": "domain, guest-agent",
                "queueCount": 1,
                "linkState": "up",
            }
        ],
        "guestOSInfo": dict(vmi_controller.GUEST_OS),
        "conditions": _mirrored_conditions(),
        "currentCPUTopology": {"cores": vm.cpu, "sockets": 1, "threads": 1},
        "machine": {"type": "pc-q35-rhel9.4.0"},
        "memory": {
            "guestAtBoot": f"{vm.memory_gi}Gi",
            "guestCurrent": f"{vm.memory_gi}Gi",
            "guestRequested": f"{vm.memory_gi}Gi",
        },
        "volumeStatus": [
            {
                "name": "cloudinitdisk",
                "size": 1048576,
                "target": "vdb",
            },
            {
                "name": "root",
                "target": "vda",
                "persistentVolumeClaimInfo": {
                    "accessModes": ["ReadWriteOnce"],
                    "capacity": {"storage": "10Gi"},
                    "claimName": f"{vm.name}-root",
                    "filesystemOverhead": "0.055",
                    "requests": {"storage": "10Gi"},
                    "volumeMode": "Filesystem",
                },
            },
        ],
    }


_LAUNCHER_VOLUMES = ("private", "public", "sockets", "virt-bin-share-dir", "libvirt-runtime", "ephemeral-disks")


def launcher_pod(vm: RunningVm, vmi_uid: str) -> Body:
    """The virt-launcher Pod as virt-controller creates it for the VMI (already bound to its node)."""
    memory_mi = vm.memory_gi * 1024 + 262
    freeze = ["/usr/bin/virt-freezer", "--name", vm.vm_name, "--namespace", vm.namespace]
    mounts = [
        {"mountPath": "/var/run/kubevirt-private", "name": "private"},
        {"mountPath": "/var/run/kubevirt", "name": "public"},
        {"mountPath": "/var/run/kubevirt-ephemeral-disks", "name": "ephemeral-disks"},
        {
            "mountPath": "/var/run/kubevirt/container-disks",
            "mountPropagation": "HostToContainer",
            "name": "container-disks",
        },
        {"mountPath": "/var/run/libvirt", "name": "libvirt-runtime"},
        {"mountPath": "/var/run/kubevirt/sockets", "name": "sockets"},
        {
            "mountPath": "/var/run/kubevirt/hotplug-disks",
            "mountPropagation": "HostToContainer",
            "name": "hotplug-disks",
        },
        {"mountPath": "/var/run/kubevirt-private/vmi-disks/root", "name": "root"},
    ]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": vm.pod_name,
            "generateName": f"virt-launcher-{vm.vm_name}-",
            "namespace": vm.namespace,
            "labels": {
                "kubevirt.io": "virt-launcher",
                "kubevirt.io/created-by": vmi_uid,
                "kubevirt.io/nodeName": vm.node,
                "vm.kubevirt.io/name": vm.vm_name,
            },
            "annotations": {
                "descheduler.alpha.kubernetes.io/request-evict-only": "",
                "kubectl.kubernetes.io/default-container": "compute",
                "kubevirt.io/domain": vm.vm_name,
                "kubevirt.io/migrationTransportUnix": "true",
                "kubevirt.io/vm-generation": "1",
                "post.hook.backup.velero.io/command": json.dumps([*freeze[:1], "--unfreeze", *freeze[1:]]),
                "post.hook.backup.velero.io/container": "compute",
                "pre.hook.backup.velero.io/command": json.dumps([*freeze[:1], "--freeze", *freeze[1:]]),
                "pre.hook.backup.velero.io/container": "compute",
            },
            "ownerReferences": [
                _owner(kubeapi.VIRTUAL_MACHINE_INSTANCES.api_version, "VirtualMachineInstance", vm.vm_name, vmi_uid)
            ],
        },
        "spec": {
            "nodeName": vm.node,
            "automountServiceAccountToken": False,
            "containers": [
                {
                    "name": "compute",
                    "image": LAUNCHER_IMAGE,
                    "imagePullPolicy": "IfNotPresent",
                    "command": [
                        "/usr/bin/virt-launcher-monitor",
                        "--qemu-timeout",
                        "321s",
                        "--name",
                        vm.vm_name,
                        "--uid",
                        vmi_uid,
                        "--namespace",
                        vm.namespace,
                        "--kubevirt-share-dir",
                        "/var/run/kubevirt",
                        "--ephemeral-disk-dir",
                        "/var/run/kubevirt-ephemeral-disks",
                        "--container-disk-dir",
                        "/var/run/kubevirt/container-disks",
                        "--grace-period-seconds",
                        "195",
                        "--hook-sidecars",
                        "0",
                        "--ovmf-path",
                        "/usr/share/OVMF",
                        "--run-as-nonroot",
                    ],
                    "env": [
                        {"name": "XDG_CACHE_HOME", "value": "/var/run/kubevirt-private"},
                        {"name": "XDG_CONFIG_HOME", "value": "/var/run/kubevirt-private"},
                        {"name": "XDG_RUNTIME_DIR", "value": "/var/run"},
                        {
                            "name": "POD_NAME",
                            "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}},
                        },
                    ],
                    "resources": {
                        "limits": {
                            "devices.kubevirt.io/kvm": "1",
                            "devices.kubevirt.io/tun": "1",
                            "devices.kubevirt.io/vhost-net": "1",
                        },
                        "requests": {
                            "cpu": f"{vm.cpu * 100}m",
                            "devices.kubevirt.io/kvm": "1",
                            "devices.kubevirt.io/tun": "1",
                            "devices.kubevirt.io/vhost-net": "1",
                            "ephemeral-storage": "50M",
                            "memory": f"{memory_mi}Mi",
                        },
                    },
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]},
                        "privileged": False,
                        "runAsGroup": 107,
                        "runAsNonRoot": True,
                        "runAsUser": 107,
                    },
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File",
                    "volumeMounts": mounts,
                },
                {
                    "name": "guest-console-log",
                    "image": LAUNCHER_IMAGE,
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["/usr/bin/virt-tail"],
                    "args": ["--logfile", f"/var/run/kubevirt-private/{vmi_uid}/virt-serial0-log"],
                    "resources": {
                        "limits": {"cpu": "15m", "memory": "60M"},
                        "requests": {"cpu": "5m", "memory": "35M"},
                    },
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                        "runAsNonRoot": True,
                        "runAsUser": 107,
                    },
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File",
                    "volumeMounts": [{"mountPath": "/var/run/kubevirt-private", "name": "private", "readOnly": True}],
                },
            ],
            "dnsPolicy": "ClusterFirst",
            "enableServiceLinks": False,
            "hostname": vm.vm_name,
            "nodeSelector": {"kubernetes.io/arch": "amd64", "kubevirt.io/schedulable": "true"},
            "preemptionPolicy": "PreemptLowerPriority",
            "priority": 0,
            "readinessGates": [{"conditionType": "kubevirt.io/virtual-machine-unpaused"}],
            "restartPolicy": "Never",
            "schedulerName": "default-scheduler",
            "securityContext": {"fsGroup": 107, "runAsGroup": 107, "runAsNonRoot": True, "runAsUser": 107},
            "serviceAccountName": "default",
            "terminationGracePeriodSeconds": 210,
            "tolerations": [
                {
                    "effect": "NoExecute",
                    "key": "node.kubernetes.io/not-ready",
                    "operator": "Exists",
                    "tolerationSeconds": 300,
                },
                {
                    "effect": "NoExecute",
                    "key": "node.kubernetes.io/unreachable",
                    "operator": "Exists",
                    "tolerationSeconds": 300,
                },
            ],
            "volumes": [
                *({"name": name, "emptyDir": {}} for name in _LAUNCHER_VOLUMES),
                {"name": "container-disks", "emptyDir": {}},
                {"name": "hotplug-disks", "emptyDir": {}},
                {"name": "root", "persistentVolumeClaim": {"claimName": f"{vm.name}-root"}},
            ],
        },
    }


def launcher_pod_status(vm: RunningVm) -> Body:
    """As the kubelet reports a running launcher."""
    started = _at(3610)

    def container(name: str) -> Body:
        return {
            "name": name,
            "containerID": "containerd://" + hashlib.sha256(f"{vm.pod_name}/{name}".encode()).hexdigest(),
            "image": LAUNCHER_IMAGE,
            "imageID": LAUNCHER_IMAGE_ID,
            "lastState": {},
            "ready": True,
            "restartCount": 0,
            "started": True,
            "state": {"running": {"startedAt": started}},
        }

    host_ip = nodes.node_address(1 + vm.index % NODES)
    return {
        "phase": "Running",
        "conditions": [
            _condition(
                "kubevirt.io/virtual-machine-unpaused", "True", "NotPaused", "the virtual machine is not paused"
            ),
            _condition("PodReadyToStartContainers", "True"),
            _condition("Initialized", "True"),
            _condition("Ready", "True"),
            _condition("ContainersReady", "True"),
            _condition("PodScheduled", "True"),
        ],
        "containerStatuses": [container("compute"), container("guest-console-log")],
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "podIP": vm.pod_ip,
        "podIPs": [{"ip": vm.pod_ip}],
        "qosClass": "Burstable",
        "startTime": _at(3615),
    }


# -- writing them


class Writer:
    """kube-apiserver clients, one per component identity, sharing one connection limit."""

    def __init__(self, kubeconfig: Path, *, connections: int) -> None:
        credentials = Credentials.from_kubeconfig(kubeconfig)
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        self._clients = {
            agent: httpx.AsyncClient(
                base_url=credentials.server,
                verify=credentials.tls,
                headers={**credentials.headers, "User-Agent": agent},
                timeout=httpx.Timeout(120.0),
                limits=limits,
            )
            for agent in (
                API_AGENT,
                VMOPERATOR_AGENT,
                VIRT_CONTROLLER_AGENT,
                VIRT_HANDLER_AGENT,
                KUBELET_AGENT,
                PV_BINDER_AGENT,
            )
        }
        self.requests = 0

    async def close(self) -> None:
        for client in self._clients.values():
            await client.aclose()

    async def create(self, agent: str, resource: kubeapi.Resource, body: Body) -> Body:
        return await self._send(agent, "POST", resource.path(body["metadata"].get("namespace")), json=body)

    async def patch_status(
        self, agent: str, resource: kubeapi.Resource, namespace: str, name: str, status: Body
    ) -> Body:
        """A merge patch of `status`: through /status when the kind has that subresource (the VMI does not)."""
        subresource = None if resource is kubeapi.VIRTUAL_MACHINE_INSTANCES else "status"
        return await self._send(
            agent,
            "PATCH",
            resource.path(namespace, name, subresource),
            content=json.dumps({"status": status}),
            headers={"Content-Type": "application/merge-patch+json"},
        )

    async def _send(self, agent: str, method: str, path: str, **options: Any) -> Body:
        for attempt in range(5):
            self.requests += 1
            response = await self._clients[agent].request(method, path, **options)
            if response.status_code == 429 or (response.status_code >= 500 and attempt < 4):
                await asyncio.sleep(0.2 * 2**attempt)  # kube-apiserver asked to slow down
                continue
            if response.status_code >= 400:
                raise kubeapi.ApiError(response.status_code, f"{method} {path}: {response.text[:500]}")
            body: Body = response.json()
            return body
        raise kubeapi.ApiError(429, f"{method} {path}: still throttled")


async def write_running(writer: Writer, vm: RunningVm) -> int:
    """The five objects of one running VM (the four it runs as and its root disk's claim), in the order (and by
    the writers) a real cluster has them; returns the highest resourceVersion written."""
    created = await writer.create(API_AGENT, kubeapi.WUKONGS, wukong(vm))
    vm_object = await writer.create(
        VMOPERATOR_AGENT, kubeapi.VIRTUAL_MACHINES, virtual_machine(vm, created["metadata"]["uid"])
    )
    vmi = await writer.create(
        VIRT_CONTROLLER_AGENT, kubeapi.VIRTUAL_MACHINE_INSTANCES, instance(vm, vm_object["metadata"]["uid"])
    )
    pod = await writer.create(VIRT_CONTROLLER_AGENT, kubeapi.PODS, launcher_pod(vm, vmi["metadata"]["uid"]))
    await writer.create(VMOPERATOR_AGENT, kubeapi.PVCS, claim(vm, created["metadata"]["uid"]))
    written = [
        await writer.patch_status(PV_BINDER_AGENT, kubeapi.PVCS, vm.namespace, f"{vm.name}-root", claim_status()),
        await writer.patch_status(KUBELET_AGENT, kubeapi.PODS, vm.namespace, vm.pod_name, launcher_pod_status(vm)),
        await writer.patch_status(
            VIRT_HANDLER_AGENT,
            kubeapi.VIRTUAL_MACHINE_INSTANCES,
            vm.namespace,
            vm.vm_name,
            instance_status(vm, pod["metadata"]["uid"]),
        ),
        await writer.patch_status(
            VIRT_CONTROLLER_AGENT, kubeapi.VIRTUAL_MACHINES, vm.namespace, vm.vm_name, virtual_machine_status(vm)
        ),
        await writer.patch_status(VMOPERATOR_AGENT, kubeapi.WUKONGS, vm.namespace, vm.name, wukong_status(vm)),
    ]
    return max(int(body["metadata"]["resourceVersion"]) for body in written)


@dataclass
class Seeded:
    vms: int
    requests: int
    seconds: float
    resource_version: int


async def seed_running(
    kubeconfig: Path,
    vms: list[RunningVm],
    *,
    tenant: str,
    concurrency: int = 48,
    progress: Callable[[int], None] | None = None,
) -> Seeded:
    """Nodes, the tenant's namespace(s) and every VM of `vms` running; bounded concurrency, VM by VM in order."""
    started = time.monotonic()
    api = kubeapi.KubeApi.from_kubeconfig(kubeconfig)
    writer = Writer(kubeconfig, connections=concurrency)
    try:
        await nodes.ensure(api, NODES)
        for namespace in sorted({vm.namespace for vm in vms}):
            await api.create(
                kubeapi.NAMESPACES,
                None,
                {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {"name": namespace, "labels": {"novasphere.dev/tenant": tenant}},
                },
            )
            await _default_service_account(api, namespace)
        limit = asyncio.Semaphore(concurrency)
        done = 0
        highest = 0

        async def one(vm: RunningVm) -> None:
            nonlocal done, highest
            async with limit:
                highest = max(highest, await write_running(writer, vm))
            done += 1
            if progress is not None and done % 1000 == 0:
                progress(done)

        await asyncio.gather(*(one(vm) for vm in vms))
        return Seeded(len(vms), writer.requests, time.monotonic() - started, highest)
    finally:
        await writer.close()
        await api.close()


async def _default_service_account(api: kubeapi.KubeApi, namespace: str, within: float = 60.0) -> None:
    """Pods name the `default` ServiceAccount, which kube-controller-manager creates in each new namespace."""
    deadline = time.monotonic() + within
    while True:
        try:
            await api.get(kubeapi.Resource("", "v1", "serviceaccounts", "ServiceAccount"), namespace, "default")
            return
        except kubeapi.NotFound:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no ServiceAccount default in {namespace} after {within:.0f} s") from None
            await asyncio.sleep(0.1)
