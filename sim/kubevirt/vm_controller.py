"""Simulated virt-controller, VirtualMachine side (shared/reference/kubevirt.md §1.6, §3.2, §3.3, §5): turns a VM's
run strategy and `status.stateChangeRequests` into VMIs, and keeps the VM's status (printableStatus, created,
ready, mirrored conditions, startFailure) as KubeVirt does."""

from __future__ import annotations

import copy
import datetime
import hashlib
import json

from sim import kubeapi
from sim.events import VM_CONTROLLER, EventRecorder
from sim.kubeapi import Body, KubeApi
from sim.kubevirt import rules
from sim.runtime import Clock, Informer, Key, deep_get, now_rfc3339

TEMPLATE_HASH = "sim.novasphere.dev/template-hash"  # the VM template a VMI was made from (for RestartRequired)


def template_hash(vm: Body) -> str:
    template = deep_get(vm, "spec", "template", default={})
    return hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:16]


class VmController:
    def __init__(
        self,
        *,
        api: KubeApi,
        clock: Clock,
        events: EventRecorder,
        vms: Informer,
        vmis: Informer,
        pvcs: Informer,
        data_volumes: Informer,
        storage_classes: Informer,
    ) -> None:
        self._api = api
        self._clock = clock
        self._events = events
        self._vms = vms
        self._vmis = vmis
        self._pvcs = pvcs
        self._data_volumes = data_volumes
        self._storage_classes = storage_classes

    async def reconcile(self, key: Key) -> float | None:
        cached = self._vms.get(*key)
        if cached is None:
            return None
        vm = copy.deepcopy(cached)
        vmi = self._vmis.get(*key)
        metadata = vm["metadata"]
        finalizers: list[str] = metadata.setdefault("finalizers", [])

        if metadata.get("deletionTimestamp"):
            if vmi is not None and not vmi["metadata"].get("deletionTimestamp"):
                await self._delete_vmi(vm, vmi)
            if vmi is None and rules.VM_FINALIZER in finalizers:
                finalizers.remove(rules.VM_FINALIZER)
                await self._api.update(kubeapi.VIRTUAL_MACHINES, vm)
                return None
            await self._write_status(vm, vmi, create_pending=False)
            return None
        if rules.VM_FINALIZER not in finalizers:
            finalizers.append(rules.VM_FINALIZER)
            await self._api.update(kubeapi.VIRTUAL_MACHINES, vm)
            return 0.0

        try:
            strategy = rules.run_strategy(vm.get("spec", {}))
        except rules.RunStrategyError:
            return None  # KubeVirt's webhook rejects such a VM; nothing to run
        status = vm.setdefault("status", {})
        requests: list[Body] = list(status.get("stateChangeRequests") or [])
        create_pending = False
        requeue: float | None = None

        if requests:
            first = requests[0]
            if first.get("action") == "Stop":
                if vmi is not None and vmi["metadata"]["uid"] == first.get("uid"):
                    if not vmi["metadata"].get("deletionTimestamp"):
                        await self._delete_vmi(vm, vmi)
                else:
                    requests.pop(0)  # done: no VMI, or a VMI with another UID
            elif first.get("action") == "Start":
                if vmi is None:
                    await self._create_vmi(vm, strategy, paused=deep_get(first, "data", "paused") == "true")
                    create_pending = True
                elif not rules.is_final(vmi) and not vmi["metadata"].get("deletionTimestamp"):
                    requests.pop(0)  # done: a live VMI exists
                elif rules.is_final(vmi) and not vmi["metadata"].get("deletionTimestamp"):
                    await self._delete_vmi(vm, vmi)
        elif strategy in ("Always", "RerunOnFailure", "Once"):
            requeue, create_pending = await self._keep_running(vm, vmi, strategy)
        elif strategy == "Halted" and vmi is not None and _live(vmi):
            await self._delete_vmi(vm, vmi)
        status["stateChangeRequests"] = requests
        if deep_get(vmi, "status", "phase") == "Running":
            status.pop("startFailure", None)
        await self._write_status(vm, vmi, create_pending=create_pending, strategy=strategy)
        return requeue

    async def _keep_running(self, vm: Body, vmi: Body | None, strategy: str) -> tuple[float | None, bool]:
        """Always makes a VMI whenever none is live; RerunOnFailure replaces a Failed one; Once never restarts.
        A crashed VMI counts a start failure and the next start waits (CrashLoopBackOff)."""
        status = vm["status"]
        if vmi is None:
            if strategy == "Once" and status.get("runStrategy"):
                return None, False  # Once already ran
            retry_after = deep_get(status, "startFailure", "retryAfterTimestamp")
            if retry_after:
                wait = (_parse(retry_after) - datetime.datetime.now(datetime.UTC)).total_seconds()
                if wait > 0:
                    return wait * self._clock.speed, False  # requeues are in simulated seconds
            await self._create_vmi(vm, strategy)
            return None, True
        if rules.is_final(vmi) and not vmi["metadata"].get("deletionTimestamp"):
            failed = deep_get(vmi, "status", "phase") == "Failed"
            if strategy == "Once" or (strategy == "RerunOnFailure" and not failed):
                return None, False
            if failed:
                count = int(deep_get(status, "startFailure", "consecutiveFailCount", default=0)) + 1
                retry = datetime.datetime.now(datetime.UTC) + datetime.timedelta(
                    seconds=self._clock.scaled(rules.start_failure_backoff(count))
                )
                status["startFailure"] = {
                    "consecutiveFailCount": count,
                    "lastFailedVMIUID": vmi["metadata"]["uid"],
                    "retryAfterTimestamp": retry.strftime("%Y-%m-%dT%H:%M:%SZ"),
                }
            await self._delete_vmi(vm, vmi)
        return None, False

    async def _create_vmi(self, vm: Body, strategy: str, *, paused: bool = False) -> None:
        """VMI named as the VM, labels and annotations from the template, spec = template spec, owned by the VM."""
        metadata, template = vm["metadata"], deep_get(vm, "spec", "template", default={})
        template_metadata = template.get("metadata") or {}
        spec = copy.deepcopy(template.get("spec") or {})
        if paused:
            spec["startStrategy"] = "Paused"
        body = {
            "apiVersion": kubeapi.VIRTUAL_MACHINE_INSTANCES.api_version,
            "kind": "VirtualMachineInstance",
            "metadata": {
                "name": metadata["name"],
                "namespace": metadata["namespace"],
                "labels": {**(template_metadata.get("labels") or {}), "vm.kubevirt.io/name": metadata["name"]},
                "annotations": {
                    **(template_metadata.get("annotations") or {}),
                    "kubevirt.io/vm-generation": str(metadata.get("generation", 1)),
                    TEMPLATE_HASH: template_hash(vm),
                },
                "finalizers": list(rules.VMI_FINALIZERS),
                "ownerReferences": [
                    {
                        "apiVersion": kubeapi.VIRTUAL_MACHINES.api_version,
                        "kind": "VirtualMachine",
                        "name": metadata["name"],
                        "uid": metadata["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": spec,
        }
        try:
            created = await self._api.create(kubeapi.VIRTUAL_MACHINE_INSTANCES, metadata["namespace"], body)
        except kubeapi.Conflict as error:
            if error.already_exists:
                return  # the cache was behind
            raise
        except kubeapi.ApiError as error:
            await self._events.record(
                vm,
                reason="FailedCreate",
                message=f"Error creating virtual machine instance: {error.message}",
                warning=True,
                component=VM_CONTROLLER,
            )
            raise
        vm["status"]["runStrategy"] = strategy
        await self._events.record(
            vm,
            reason="SuccessfulCreate",
            message="Started the virtual machine by creating the new virtual machine instance "
            + created["metadata"]["name"],
            component=VM_CONTROLLER,
        )

    async def _delete_vmi(self, vm: Body, vmi: Body) -> None:
        try:
            await self._api.delete(
                kubeapi.VIRTUAL_MACHINE_INSTANCES, vmi["metadata"]["namespace"], vmi["metadata"]["name"]
            )
        except kubeapi.NotFound:
            return
        await self._events.record(
            vm,
            reason="SuccessfulDelete",
            message=f"Stopped the virtual machine by deleting the virtual machine instance {vmi['metadata']['uid']}",
            component=VM_CONTROLLER,
        )

    async def _write_status(
        self, vm: Body, vmi: Body | None, *, create_pending: bool, strategy: str | None = None
    ) -> None:
        before = deep_get(self._vms.get(vm["metadata"]["namespace"], vm["metadata"]["name"]), "status", default={})
        status = vm.setdefault("status", {})
        if vmi is not None:
            status["created"] = True
        else:
            status.pop("created", None)
        if (rules.condition(vmi, "Ready") or {}).get("status") == "True":
            status["ready"] = True
        else:
            status.pop("ready", None)
        restart_required = (
            vmi is not None
            and not rules.is_final(vmi)
            and (vmi["metadata"].get("annotations") or {}).get(TEMPLATE_HASH, template_hash(vm)) != template_hash(vm)
        )
        status["conditions"] = _keep_transition_times(
            rules.vm_conditions(vmi, restart_required=restart_required, now=now_rfc3339()),
            before.get("conditions") or [],
        )
        status["printableStatus"] = rules.printable_status(
            vm=vm, vmi=vmi, create_pending=create_pending, **self._volume_state(vm)
        )
        status["observedGeneration"] = vm["metadata"].get("generation", 1)
        status["desiredGeneration"] = vm["metadata"].get("generation", 1)
        if not status.get("stateChangeRequests"):
            status.pop("stateChangeRequests", None)
        if status == before:
            return
        await self._api.update(kubeapi.VIRTUAL_MACHINES, vm, subresource="status")

    def _volume_state(self, vm: Body) -> dict[str, bool]:
        """DataVolume and claim state behind printableStatus rows 7, 9 and 10."""
        namespace = vm["metadata"]["namespace"]
        claims = [
            v["persistentVolumeClaim"]["claimName"]
            for v in deep_get(vm, "spec", "template", "spec", "volumes", default=[])
            if "persistentVolumeClaim" in v
        ]
        error = provisioning = unbound = False
        for claim in claims:
            data_volume = self._data_volumes.get(namespace, claim)
            if data_volume is not None:
                phase = deep_get(data_volume, "status", "phase", default="")
                error = error or phase in ("Failed", "Error")
                provisioning = provisioning or phase not in ("Succeeded", "Failed", "Error", "WaitForFirstConsumer")
                continue
            pvc = self._pvcs.get(namespace, claim)
            if pvc is None or deep_get(pvc, "status", "phase") == "Bound":
                continue
            storage_class = self._storage_classes.get("", deep_get(pvc, "spec", "storageClassName", default=""))
            waits = storage_class is not None and storage_class.get("volumeBindingMode") == "WaitForFirstConsumer"
            unbound = unbound or not waits
        return {"data_volume_error": error, "data_volume_provisioning": provisioning, "claim_unbound": unbound}


def _live(vmi: Body) -> bool:
    """Not final and not already being deleted."""
    return not rules.is_final(vmi) and not vmi["metadata"].get("deletionTimestamp")


def _keep_transition_times(fresh: list[Body], previous: list[Body]) -> list[Body]:
    """A condition keeps its lastTransitionTime while its status stays the same."""
    earlier = {c.get("type"): c for c in previous}
    for item in fresh:
        old = earlier.get(item["type"])
        if old is not None and old.get("status") == item["status"]:
            item["lastTransitionTime"] = old.get("lastTransitionTime", item["lastTransitionTime"])
    return fresh


def _parse(timestamp: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
