"""Simulated VMI lifecycle: virt-controller's VMI side (launcher pod), the scheduler, the kubelet and virt-handler
(shared/reference/kubevirt.md §3.4, §5).

Phases: "" → Pending → Scheduling (launcher pod created) → Scheduled (pod bound to a node and running) → Running
(guest booted: interfaces, Ready, agent); a deleted VMI shuts down within its termination grace period → Succeeded;
a crash → Failed. Each step waits its configured (simulated) delay, measured from the time the phase began as
recorded on the object, so a restarted simulator continues where it was.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import math
import random
import string
import time
from collections.abc import Mapping
from dataclasses import dataclass

from sim import faults, kubeapi, quantity
from sim.events import VIRT_HANDLER, VM_CONTROLLER, EventRecorder
from sim.kubeapi import Body, KubeApi
from sim.kubevirt import rules
from sim.nodes import SIMULATED_LABEL
from sim.runtime import Clock, Informer, Key, deep_get, now_rfc3339

PHASE_SINCE = "sim.novasphere.dev/phase-since"  # epoch seconds the current phase began (finer than the timestamps)
SHUTDOWN_SINCE = "sim.novasphere.dev/shutdown-since"
CREATED_BY = "kubevirt.io/created-by"
LAUNCHER_IMAGE = "quay.io/kubevirt/virt-launcher:v1.9.0"
LAUNCHER_SCHEDULER = "novasphere-simulator"
"""The launcher pods' schedulerName: the simulator places them itself (`_place`, with its delays and faults), so a real
kube-scheduler (devcluster's real node brings one) leaves them alone."""
SELECTED_NODE = "volume.kubernetes.io/selected-node"
GUEST_OS = {
    "name": "Ubuntu",
    "kernelRelease": "5.15.0-91-generic",
    "version": "22.04.3 LTS (Jammy Jellyfish)",
    "prettyName": "Ubuntu 22.04.3 LTS",
    "versionId": "22.04",
    "kernelVersion": "#101-Ubuntu SMP",
    "machine": "x86_64",
    "id": "ubuntu",
}


@dataclass(frozen=True)
class Delays:
    """Simulated seconds each step takes (divided by the speed factor in real time)."""

    pending: float = 1.0
    scheduling: float = 2.0
    boot: float = 8.0
    guest_shutdown: float = 5.0
    unschedulable_retry: float = 5.0


def pod_ip(pod_uid: str) -> str:
    """A stable address in 127.16.0.0/12: loopback only, nothing real is ever addressed."""
    digest = hashlib.sha256(pod_uid.encode()).digest()
    return f"127.{16 + digest[0] % 16}.{digest[1]}.{1 + digest[2] % 254}"


def mac_address(vmi_uid: str) -> str:
    digest = hashlib.sha256(vmi_uid.encode()).digest()
    return "02:" + ":".join(f"{b:02x}" for b in digest[:5])  # locally administered


class VmiController:
    def __init__(
        self,
        *,
        api: KubeApi,
        clock: Clock,
        events: EventRecorder,
        delays: Delays,
        vmis: Informer,
        pods: Informer,
        nodes: Informer,
        pvcs: Informer,
        data_volumes: Informer,
        wukongs: Informer,
    ) -> None:
        self._api = api
        self._clock = clock
        self._events = events
        self._delays = delays
        self._vmis = vmis
        self._pods = pods
        self._nodes = nodes
        self._pvcs = pvcs
        self._data_volumes = data_volumes
        self._wukongs = wukongs
        self._next_node = 0

    # ---- VMI -------------------------------------------------------------------------------------------------

    async def reconcile(self, key: Key) -> float | None:
        cached = self._vmis.get(*key)
        if cached is None:
            return None
        vmi = copy.deepcopy(cached)
        if vmi["metadata"].get("deletionTimestamp"):
            return await self._shut_down(vmi)
        phase = deep_get(vmi, "status", "phase", default="")
        wukong = faults.wukong_of_vm_name(key[1], key[0], self._wukongs)
        pod = self._launcher_pod(vmi)
        elapsed = self._elapsed(vmi, PHASE_SINCE)
        crash_after = faults.crash_after_seconds(wukong)
        step = {
            "": 0.0,
            "Pending": self._delays.pending,
            "Scheduling": self._delays.scheduling,
            "Scheduled": faults.boot_seconds(wukong, self._delays.boot),
            "Running": math.inf if crash_after is None else crash_after,
        }.get(phase, math.inf)
        target, reason = rules.vmi_phase_after(
            phase,
            pod=_pod_state(pod),
            step_done=elapsed >= step,
            fails_to_start=faults.fails_to_start(wukong),
            crash_due=elapsed >= step and phase == "Running",
        )
        if target == phase:  # wait for the step's delay, or for the scheduler and kubelet
            if elapsed < step:
                return None if math.isinf(step) else step - elapsed
            if phase == "Scheduling" and pod is not None and not deep_get(pod, "spec", "nodeName"):
                return await self._place(vmi, pod)
            return None  # a pod change or the VMI's deletion brings us back
        if target == "Failed":
            return await self._fail(vmi, pod, reason=reason)
        if target == "Pending":
            await self._set_phase(vmi, "Pending")
            return self._delays.pending
        if target == "Scheduling":
            if pod is None:
                await self._create_pod(vmi)
            await self._set_phase(vmi, "Scheduling")
            return self._delays.scheduling
        if target == "Scheduled" and pod is not None:
            return await self._scheduled(vmi, pod)
        if target == "Running" and pod is not None:
            return await self._boot(vmi, pod)
        return None

    async def _place(self, vmi: Body, pod: Body) -> float | None:
        """As the scheduler: bind the launcher pod to a matching node, or report why none fits."""
        node = self._choose_node(vmi)
        if node is None:
            await self._set_condition(
                vmi,
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": f"0/{len(self._nodes)} nodes are available: "
                    "node(s) didn't match Pod's node affinity/selector.",
                },
            )
            return self._delays.unschedulable_retry
        await self._bind(pod, node)
        return None  # the pod change (kubelet) brings us back

    async def _scheduled(self, vmi: Body, pod: Body) -> float | None:
        node = pod["spec"]["nodeName"]
        status = vmi.setdefault("status", {})
        status["nodeName"] = node
        status["activePods"] = {pod["metadata"]["uid"]: node}
        status["qosClass"] = "Burstable"
        status["launcherContainerImageVersion"] = LAUNCHER_IMAGE
        status["conditions"] = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"] + [
            _condition("PodScheduled", "True")
        ]
        await self._set_phase(vmi, "Scheduled")
        await self._events.record(
            vmi, reason="Created", message="VirtualMachineInstance defined.", component=VIRT_HANDLER, host=node
        )
        return faults.boot_seconds(
            faults.wukong_of_vm_name(vmi["metadata"]["name"], vmi["metadata"]["namespace"], self._wukongs),
            self._delays.boot,
        )

    async def _boot(self, vmi: Body, pod: Body) -> float | None:
        status = vmi.setdefault("status", {})
        address = deep_get(pod, "status", "podIP", default="")
        status["interfaces"] = [
            {
                "name": "default",
                "ipAddress": address,
                "ipAddresses": [address],
                "mac": mac_address(vmi["metadata"]["uid"]),
                "interfaceName": "enp1s0",
                "podInterfaceName": "eth0",
                "infoSource": "domain, guest-agent",
                "queueCount": 1,
                "linkState": "up",
            }
        ]
        status["guestOSInfo"] = dict(GUEST_OS)
        status["conditions"] = [
            c
            for c in status.get("conditions") or []
            if c.get("type") not in ("Ready", "AgentConnected", "LiveMigratable")
        ] + [
            _condition("Ready", "True"),
            _condition("AgentConnected", "True"),
            _condition(
                "LiveMigratable",
                "False",
                reason="DisksNotLiveMigratable",
                message="cannot migrate VMI: PVC is not shared, live migration requires that all PVCs must be shared "
                "(using ReadWriteMany access mode)",
            ),
        ]
        if deep_get(vmi, "spec", "startStrategy") == "Paused":
            status["conditions"].append(
                _condition("Paused", "True", reason="PausedByUser", message="VMI was paused by user")
            )
        await self._set_phase(vmi, "Running")
        await self._events.record(
            vmi,
            reason="Started",
            message="VirtualMachineInstance started.",
            component=VIRT_HANDLER,
            host=status.get("nodeName", ""),
        )
        wukong = faults.wukong_of_vm_name(vmi["metadata"]["name"], vmi["metadata"]["namespace"], self._wukongs)
        return faults.crash_after_seconds(wukong)

    async def _fail(self, vmi: Body, pod: Body | None, *, reason: str) -> float | None:
        status = vmi.setdefault("status", {})
        status["reason"] = reason
        status["conditions"] = [c for c in status.get("conditions") or [] if c.get("type") != "Ready"] + [
            _condition("Ready", "False", reason="GuestNotRunning", message="Guest VM is not reported as running")
        ]
        status.pop("interfaces", None)
        await self._set_phase(vmi, "Failed")
        await self._events.record(
            vmi,
            reason="Stopped",
            message="The VirtualMachineInstance crashed.",
            warning=True,
            component=VIRT_HANDLER,
            host=status.get("nodeName", ""),
        )
        if pod is not None:
            await self._finish_pod(pod, succeeded=False)
        return None

    async def _shut_down(self, vmi: Body) -> float | None:
        """A deleted VMI: the guest shuts down within the termination grace period (killed when that is shorter),
        then the launcher pod goes and the finalizers are released."""
        status = vmi.setdefault("status", {})
        phase = status.get("phase", "")
        node = status.get("nodeName", "")
        pod = self._launcher_pod(vmi)
        if phase not in rules.FINAL_PHASES:
            if phase in ("Scheduled", "Running"):
                annotations = vmi["metadata"].setdefault("annotations", {})
                if SHUTDOWN_SINCE not in annotations:
                    annotations[SHUTDOWN_SINCE] = f"{time.time():.3f}"
                    vmi = await self._api.update(kubeapi.VIRTUAL_MACHINE_INSTANCES, vmi)
                    await self._events.record(
                        vmi,
                        reason="ShuttingDown",
                        message="Signaled Graceful Shutdown",
                        component=VIRT_HANDLER,
                        host=node,
                    )
                grace = deep_get(vmi, "spec", "terminationGracePeriodSeconds", default=rules.DEFAULT_GRACE_SECONDS)
                wukong = faults.wukong_of_vm_name(vmi["metadata"]["name"], vmi["metadata"]["namespace"], self._wukongs)
                guest_shutdown = faults.shutdown_seconds(wukong, self._delays.guest_shutdown)
                needed = min(float(grace), guest_shutdown)
                elapsed = self._elapsed(vmi, SHUTDOWN_SINCE)
                if elapsed < needed:
                    return needed - elapsed
                if float(grace) < guest_shutdown:
                    await self._events.record(
                        vmi,
                        reason="Deleted",
                        message="VirtualMachineInstance stopping",
                        component=VIRT_HANDLER,
                        host=node,
                    )
                status = vmi.setdefault("status", {})
            status.pop("interfaces", None)
            status["conditions"] = [
                c for c in status.get("conditions") or [] if c.get("type") not in ("Ready", "Paused", "AgentConnected")
            ] + [_condition("Ready", "False", reason="PodTerminating", message="virt-launcher pod is terminating")]
            await self._set_phase(vmi, "Succeeded")
            if phase in ("Scheduled", "Running"):
                await self._events.record(
                    vmi,
                    reason="Stopped",
                    message="The VirtualMachineInstance was shut down.",
                    component=VIRT_HANDLER,
                    host=node,
                )
            return 0.0
        if pod is not None:
            await self._delete_pod(vmi, pod)
            return None  # the pod's deletion brings us back
        vmi = copy.deepcopy(self._vmis.get(vmi["metadata"]["namespace"], vmi["metadata"]["name"]) or vmi)
        vmi["metadata"]["finalizers"] = [
            f for f in vmi["metadata"].get("finalizers") or [] if f not in rules.VMI_FINALIZERS
        ]
        with contextlib.suppress(kubeapi.NotFound):
            await self._api.update(kubeapi.VIRTUAL_MACHINE_INSTANCES, vmi)
        return None

    async def _set_phase(self, vmi: Body, phase: str) -> None:
        """VMI status lives on the main resource (no status subresource, §3.1)."""
        vmi["metadata"].setdefault("annotations", {})[PHASE_SINCE] = f"{time.time():.3f}"
        status = vmi.setdefault("status", {})
        status["phase"] = phase
        status.setdefault("phaseTransitionTimestamps", []).append(
            {"phase": phase, "phaseTransitionTimestamp": now_rfc3339()}
        )
        status.setdefault("conditions", [])
        await self._api.update(kubeapi.VIRTUAL_MACHINE_INSTANCES, vmi)

    async def _set_condition(self, vmi: Body, condition: Body) -> None:
        status = vmi.setdefault("status", {})
        existing = rules.condition(vmi, condition["type"])
        if existing is not None and all(existing.get(k) == v for k, v in condition.items()):
            return
        status["conditions"] = [c for c in status.get("conditions") or [] if c.get("type") != condition["type"]] + [
            {**condition, "lastProbeTime": None, "lastTransitionTime": now_rfc3339()}
        ]
        await self._api.update(kubeapi.VIRTUAL_MACHINE_INSTANCES, vmi)

    def _elapsed(self, obj: Body, annotation: str) -> float:
        since = (obj["metadata"].get("annotations") or {}).get(annotation)
        return (time.time() - float(since)) * self._clock.speed if since else 0.0

    # ---- launcher pod, scheduler, kubelet ---------------------------------------------------------------------

    def _launcher_pod(self, vmi: Body) -> Body | None:
        pods = self._pods.by_index(CREATED_BY, vmi["metadata"]["uid"])
        return pods[0] if pods else None

    async def _create_pod(self, vmi: Body) -> Body:
        metadata = vmi["metadata"]
        suffix = "".join(random.choices(string.ascii_lowercase + string.digits, k=5))  # noqa: S311 (a name)
        grace = int(deep_get(vmi, "spec", "terminationGracePeriodSeconds", default=rules.DEFAULT_GRACE_SECONDS))
        claims = [
            {"name": v["name"], "persistentVolumeClaim": {"claimName": v["persistentVolumeClaim"]["claimName"]}}
            for v in deep_get(vmi, "spec", "volumes", default=[])
            if "persistentVolumeClaim" in v
        ]
        body = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": f"virt-launcher-{metadata['name']}-{suffix}",
                "namespace": metadata["namespace"],
                "labels": {
                    "kubevirt.io": "virt-launcher",
                    CREATED_BY: metadata["uid"],
                    "vm.kubevirt.io/name": metadata["name"],
                    **(metadata.get("labels") or {}),
                },
                "annotations": {"kubevirt.io/domain": metadata["name"]},
                "ownerReferences": [
                    {
                        "apiVersion": kubeapi.VIRTUAL_MACHINE_INSTANCES.api_version,
                        "kind": "VirtualMachineInstance",
                        "name": metadata["name"],
                        "uid": metadata["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": {
                "schedulerName": LAUNCHER_SCHEDULER,
                "restartPolicy": "Never",
                "automountServiceAccountToken": False,
                "terminationGracePeriodSeconds": grace + 15,
                "nodeSelector": {
                    "kubevirt.io/schedulable": "true",
                    **(deep_get(vmi, "spec", "nodeSelector", default={})),
                },
                "tolerations": deep_get(vmi, "spec", "tolerations", default=[]),
                "containers": [{"name": "compute", "image": LAUNCHER_IMAGE, "resources": _launcher_requests(vmi)}],
                "volumes": claims,
            },
        }
        pod = await self._api.create(kubeapi.PODS, metadata["namespace"], body)
        await self._events.record(
            vmi,
            reason="SuccessfulCreate",
            message=f"Created virtual machine pod {pod['metadata']['name']}",
            component=VM_CONTROLLER,
        )
        return pod

    def _choose_node(self, vmi: Body) -> str | None:
        """Round robin over the nodes that match the VMI's nodeSelector (and are simulated, so schedulable)."""
        wanted: Mapping[str, str] = {
            "kubevirt.io/schedulable": "true",
            **deep_get(vmi, "spec", "nodeSelector", default={}),
        }
        candidates = sorted(
            node["metadata"]["name"]
            for node in self._nodes.items()
            if all((node["metadata"].get("labels") or {}).get(k) == v for k, v in wanted.items())
        )
        if not candidates:
            return None
        self._next_node += 1
        chosen: str = candidates[self._next_node % len(candidates)]
        return chosen

    async def _bind(self, pod: Body, node: str) -> None:
        """As the scheduler: name the node on the pod's WaitForFirstConsumer claims, then bind the pod."""
        namespace = pod["metadata"]["namespace"]
        for claim_name in claims_of(pod):
            claim = self._pvcs.get(namespace, claim_name)
            if claim is None or deep_get(claim, "status", "phase") == "Bound":
                continue
            if (claim["metadata"].get("annotations") or {}).get(SELECTED_NODE) != node:
                await self._api.patch(
                    kubeapi.PVCS,
                    namespace,
                    claim["metadata"]["name"],
                    {"metadata": {"annotations": {SELECTED_NODE: node}}},
                )
        binding = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": pod["metadata"]["name"], "namespace": namespace},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        }
        with contextlib.suppress(kubeapi.Conflict):  # already bound
            await self._api.create_subresource(kubeapi.PODS, namespace, pod["metadata"]["name"], "binding", binding)

    async def reconcile_pod(self, key: Key) -> float | None:
        """The kubelet of the simulated nodes: runs a bound pod once its claims are bound (and imported), finishes
        the deletion of pods (there is no kubelet to confirm it)."""
        pod = self._pods.get(*key)
        if pod is None or not deep_get(pod, "spec", "nodeName"):
            return None
        node = self._nodes.get("", pod["spec"]["nodeName"])
        if deep_get(node, "metadata", "labels", SIMULATED_LABEL) != "true":
            return None  # a real node's pod (devcluster.node): its kubelet runs it
        if pod["metadata"].get("deletionTimestamp"):
            with contextlib.suppress(kubeapi.NotFound):
                await self._api.delete(kubeapi.PODS, key[0], key[1], grace_seconds=0)
            return None
        if deep_get(pod, "status", "phase", default="Pending") != "Pending" or not self._volumes_ready(pod):
            return None
        host_ip = next(
            (a["address"] for a in deep_get(node, "status", "addresses", default=[]) if a.get("type") == "InternalIP"),
            "",
        )
        address = pod_ip(pod["metadata"]["uid"])
        now = now_rfc3339()
        updated = copy.deepcopy(pod)
        updated["status"] = {
            **updated.get("status", {}),  # keeps what kube-apiserver set (qosClass is immutable)
            "phase": "Running",
            "hostIP": host_ip,
            "hostIPs": [{"ip": host_ip}],
            "podIP": address,
            "podIPs": [{"ip": address}],
            "startTime": now,
            "conditions": [
                {"type": t, "status": "True", "lastProbeTime": None, "lastTransitionTime": now}
                for t in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled")
            ],
            "containerStatuses": [
                {
                    "name": "compute",
                    "image": LAUNCHER_IMAGE,
                    "imageID": LAUNCHER_IMAGE,
                    "ready": True,
                    "started": True,
                    "restartCount": 0,
                    "state": {"running": {"startedAt": now}},
                }
            ],
        }
        await self._api.update(kubeapi.PODS, updated, subresource="status")
        return None

    def _volumes_ready(self, pod: Body) -> bool:
        """Claims bound, and imported where a DataVolume fills them (the kubelet mounts only then)."""
        namespace = pod["metadata"]["namespace"]
        for claim in claims_of(pod):
            if deep_get(self._pvcs.get(namespace, claim), "status", "phase") != "Bound":
                return False
            data_volume = self._data_volumes.get(namespace, claim)
            if data_volume is not None and deep_get(data_volume, "status", "phase") != "Succeeded":
                return False
        return True

    async def _finish_pod(self, pod: Body, *, succeeded: bool) -> None:
        updated = copy.deepcopy(pod)
        updated.setdefault("status", {})["phase"] = "Succeeded" if succeeded else "Failed"
        with contextlib.suppress(kubeapi.ApiError):
            await self._api.update(kubeapi.PODS, updated, subresource="status")

    async def _delete_pod(self, vmi: Body, pod: Body) -> None:
        try:
            await self._api.delete(kubeapi.PODS, pod["metadata"]["namespace"], pod["metadata"]["name"], grace_seconds=0)
        except kubeapi.NotFound:
            return
        await self._events.record(
            vmi,
            reason="SuccessfulDelete",
            message=f"Deleted virtual machine pod {pod['metadata']['name']}",
            component=VM_CONTROLLER,
        )


def claims_of(pod_or_vm: Body) -> list[str]:
    """Claim names among the volumes of a pod, or of a VM's template."""
    spec = pod_or_vm.get("spec", {})
    volumes = spec.get("volumes") or deep_get(spec, "template", "spec", "volumes", default=[])
    return [v["persistentVolumeClaim"]["claimName"] for v in volumes if "persistentVolumeClaim" in v]


def _condition(kind: str, status: str, *, reason: str = "", message: str = "") -> Body:
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastProbeTime": None,
        "lastTransitionTime": now_rfc3339(),
    }


def _pod_state(pod: Body | None) -> str:
    if pod is None:
        return "absent"
    return "running" if deep_get(pod, "status", "phase") == "Running" else "pending"


# KubeVirt's defaults: a vCPU requests 1/cpuAllocationRatio (10) of a core; the launcher asks for the guest's memory
# plus an overhead it computes from the VM's devices, approximated here by a fixed 256 MiB.
CPU_ALLOCATION_RATIO = 10
MEMORY_OVERHEAD_BYTES = 256 * 2**20


def _launcher_requests(vmi: Body) -> Body:
    """The compute container's requests, so ResourceQuotas count (and admit) launcher pods as in a real cluster."""
    cores = int(deep_get(vmi, "spec", "domain", "cpu", "cores", default=1) or 1)
    guest = str(deep_get(vmi, "spec", "domain", "memory", "guest", default="") or "0")
    memory = quantity.to_bytes(guest) + MEMORY_OVERHEAD_BYTES
    return {"requests": {"cpu": f"{cores * 1000 // CPU_ALLOCATION_RATIO}m", "memory": str(memory)}}
