"""Simulated dynamic provisioner for the `rancher.io/local-path` StorageClasses (sim/crds/storageclasses.yaml): it
creates a PersistentVolume for each claim that asks for one and deletes released ones. Binding is left to the real
kube-controller-manager, which binds claim and volume as it would in any cluster.

Immediate classes are provisioned at once; WaitForFirstConsumer claims once the scheduler (here: the simulated VMI
scheduling step) has annotated them with the selected node, and the volume is then pinned to that node.
"""

from __future__ import annotations

import contextlib

from sim import faults, kubeapi
from sim.kubeapi import Body, KubeApi
from sim.runtime import Informer, Key, deep_get

PROVISIONER = "rancher.io/local-path"
SELECTED_NODE = "volume.kubernetes.io/selected-node"


class Provisioner:
    def __init__(
        self, *, api: KubeApi, pvcs: Informer, pvs: Informer, storage_classes: Informer, wukongs: Informer
    ) -> None:
        self._api = api
        self._pvcs = pvcs
        self._pvs = pvs
        self._storage_classes = storage_classes
        self._wukongs = wukongs

    async def reconcile_claim(self, key: Key) -> float | None:
        pvc = self._pvcs.get(*key)
        if pvc is None or pvc["metadata"].get("deletionTimestamp") or deep_get(pvc, "spec", "volumeName"):
            return None
        storage_class = self._storage_classes.get("", deep_get(pvc, "spec", "storageClassName", default=""))
        if storage_class is None or storage_class.get("provisioner") != PROVISIONER:
            return None
        annotations = pvc["metadata"].get("annotations") or {}
        node = annotations.get(SELECTED_NODE, "")
        if storage_class.get("volumeBindingMode") == "WaitForFirstConsumer" and not node:
            return None
        if faults.claim_never_binds(pvc, self._wukongs):
            return None
        if self._pvs.get("", _volume_name(pvc)) is None:
            try:
                await self._api.create(kubeapi.PVS, None, _volume(pvc, storage_class, node))
            except kubeapi.Conflict as error:
                if not error.already_exists:
                    raise
        return None

    async def reconcile_volume(self, key: Key) -> float | None:
        """Reclaim policy Delete: a released volume of ours goes."""
        pv = self._pvs.get(*key)
        if pv is None or deep_get(pv, "status", "phase") != "Released":
            return None
        if (pv["metadata"].get("annotations") or {}).get("pv.kubernetes.io/provisioned-by") != PROVISIONER:
            return None
        with contextlib.suppress(kubeapi.NotFound):
            await self._api.delete(kubeapi.PVS, None, pv["metadata"]["name"])
        return None


def _volume_name(pvc: Body) -> str:
    return f"pvc-{pvc['metadata']['uid']}"


def _volume(pvc: Body, storage_class: Body, node: str) -> Body:
    metadata = pvc["metadata"]
    spec: Body = {
        "capacity": {"storage": deep_get(pvc, "spec", "resources", "requests", "storage", default="1Gi")},
        "accessModes": deep_get(pvc, "spec", "accessModes", default=["ReadWriteOnce"]),
        "persistentVolumeReclaimPolicy": storage_class.get("reclaimPolicy", "Delete"),
        "storageClassName": storage_class["metadata"]["name"],
        "volumeMode": deep_get(pvc, "spec", "volumeMode", default="Filesystem"),
        "claimRef": {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "namespace": metadata["namespace"],
            "name": metadata["name"],
            "uid": metadata["uid"],
        },
        "hostPath": {"path": f"/var/lib/sim-local-path/{metadata['namespace']}_{metadata['name']}", "type": ""},
    }
    if node:
        spec["nodeAffinity"] = {
            "required": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}
                ]
            }
        }
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": _volume_name(pvc), "annotations": {"pv.kubernetes.io/provisioned-by": PROVISIONER}},
        "spec": spec,
    }
