"""Simulated CDI (Containerized Data Importer): a DataVolume gets a claim of the same name, waits for its first
consumer on WaitForFirstConsumer classes, then imports (ImportScheduled → ImportInProgress with a progress
percentage → Succeeded). vmoperator creates one per disk with an `image` (shared/reference/wukong.md §4)."""

from __future__ import annotations

import copy
import time

from sim import kubeapi
from sim.kubeapi import Body, KubeApi
from sim.runtime import Clock, Informer, Key, deep_get

SINCE = "sim.novasphere.dev/since"  # when the current phase began (epoch seconds), for a simulator restart
PROGRESS_STEPS = 4


class DataVolumes:
    def __init__(
        self,
        *,
        api: KubeApi,
        clock: Clock,
        data_volumes: Informer,
        pvcs: Informer,
        storage_classes: Informer,
        import_seconds: float,
    ) -> None:
        self._api = api
        self._clock = clock
        self._data_volumes = data_volumes
        self._pvcs = pvcs
        self._storage_classes = storage_classes
        self._import_seconds = import_seconds

    async def reconcile(self, key: Key) -> float | None:
        cached = self._data_volumes.get(*key)
        if cached is None or cached["metadata"].get("deletionTimestamp"):
            return None
        dv = copy.deepcopy(cached)
        namespace, name = key
        status = dv.setdefault("status", {})
        phase = status.get("phase", "")
        pvc = self._pvcs.get(namespace, name)
        if pvc is None:
            await self._create_claim(dv)
            return await self._advance(dv, "Pending", progress="N/A") if phase == "" else None
        claim_phase = deep_get(pvc, "status", "phase", default="")
        if phase in ("", "Pending", "WaitForFirstConsumer"):
            if claim_phase == "Bound":
                return await self._advance(dv, "ImportScheduled", progress="N/A")
            storage_class = self._storage_classes.get("", deep_get(pvc, "spec", "storageClassName", default=""))
            waits = storage_class is not None and storage_class.get("volumeBindingMode") == "WaitForFirstConsumer"
            if waits and phase != "WaitForFirstConsumer":
                return await self._advance(dv, "WaitForFirstConsumer", progress="N/A")
            return None
        elapsed = self._elapsed(dv)
        if phase == "ImportScheduled":
            return await self._advance(dv, "ImportInProgress", progress="0.00%")
        if phase == "ImportInProgress":
            if elapsed >= self._import_seconds:
                return await self._advance(dv, "Succeeded", progress="100.0%")
            step = self._import_seconds / PROGRESS_STEPS
            done = int(elapsed // step) * step
            progress = f"{100 * done / self._import_seconds:.2f}%"
            if status.get("progress") != progress:
                status["progress"] = progress
                await self._api.update(kubeapi.DATA_VOLUMES, dv, subresource="status")
            return step - (elapsed - done)
        return None

    def _elapsed(self, dv: Body) -> float:
        since = float((dv["metadata"].get("annotations") or {}).get(SINCE, time.time()))
        return (time.time() - since) * self._clock.speed

    async def _advance(self, dv: Body, phase: str, *, progress: str) -> float:
        dv["metadata"].setdefault("annotations", {})[SINCE] = f"{time.time():.3f}"
        dv = await self._api.update(kubeapi.DATA_VOLUMES, dv)
        dv.setdefault("status", {}).update(
            {"phase": phase, "progress": progress, "claimName": dv["metadata"]["name"], "restartCount": 0}
        )
        dv["status"]["conditions"] = _conditions(phase)
        await self._api.update(kubeapi.DATA_VOLUMES, dv, subresource="status")
        return 0.0

    async def _create_claim(self, dv: Body) -> None:
        metadata = dv["metadata"]
        claim = {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {
                "name": metadata["name"],
                "labels": {"app": "containerized-data-importer", "app.kubernetes.io/component": "storage"},
                "annotations": {"cdi.kubevirt.io/storage.contentType": "kubevirt"},
                "ownerReferences": [
                    {
                        "apiVersion": kubeapi.DATA_VOLUMES.api_version,
                        "kind": "DataVolume",
                        "name": metadata["name"],
                        "uid": metadata["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": copy.deepcopy(dv["spec"].get("pvc") or {}),
        }
        try:
            await self._api.create(kubeapi.PVCS, metadata["namespace"], claim)
        except kubeapi.Conflict as error:
            if not error.already_exists:
                raise


def _conditions(phase: str) -> list[Body]:
    ready = phase == "Succeeded"
    bound = phase not in ("", "Pending", "WaitForFirstConsumer")
    running = phase == "ImportInProgress"
    return [
        {"type": "Bound", "status": str(bound), "reason": "Bound" if bound else "Pending", "message": ""},
        {"type": "Ready", "status": str(ready), "reason": "Completed" if ready else "TransferRunning", "message": ""},
        {"type": "Running", "status": str(running), "reason": "Pod is running" if running else "", "message": ""},
    ]
