"""KubeVirt's launcher Pods (`virt-launcher-<vmi>-xxxxx`), read through an informer of just those Pods."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from server.kube import slim
from server.kube.client import JsonObject
from server.kube.informer import Kind

VMI_NAME_LABEL = "vm.kubevirt.io/name"
"""KubeVirt labels each launcher Pod with its instance's name."""


def keep(raw: JsonObject) -> JsonObject:
    """What the cache keeps of a launcher Pod: which instance it runs, its node and phase (its containers, volumes and
    managedFields, most of its size, are never read)."""
    return {
        "metadata": slim.metadata(raw.get("metadata") or {}, labels=(VMI_NAME_LABEL,)),
        "spec": slim.texts(raw.get("spec") or {}, "nodeName"),
        "status": slim.texts(raw.get("status") or {}, "phase"),
    }


LAUNCHERS = Kind("pods", "/api/v1/pods", label_selector="kubevirt.io=virt-launcher", keep=keep, reuse_on_relist=True)

Raw = Mapping[str, Any]


def active_launcher(launchers: Iterable[Raw], instance: Raw | None) -> Raw | None:
    """The Pod that runs the instance now: the one the instance names in `status.activePods`, else the newest
    (during a restart or migration an old Pod may still be terminating beside the new one)."""
    candidates = list(launchers)
    if not candidates:
        return None
    active = ((instance or {}).get("status") or {}).get("activePods") or {}
    for pod in candidates:
        if pod["metadata"].get("uid") in active:
            return pod
    return max(candidates, key=lambda pod: str(pod["metadata"].get("creationTimestamp") or ""))
