"""Busybox pods pinned to the real node, and waiting for them."""

from __future__ import annotations

from typing import Any

import kubernetes.client

from devcluster import node
from tests import kube_helpers

POD_START_TIMEOUT = 60.0


def busybox_pod(name: str, image: str, script: str) -> kubernetes.client.V1Pod:
    """A hostNetwork pod running `sh -c script` on the real node (by its label, through the scheduler), with the
    default service account's token mounted; it stops at once when deleted."""
    return kubernetes.client.V1Pod(
        metadata=kubernetes.client.V1ObjectMeta(name=name),
        spec=kubernetes.client.V1PodSpec(
            host_network=True,
            node_selector=node.NODE_SELECTOR,
            termination_grace_period_seconds=0,
            containers=[
                kubernetes.client.V1Container(
                    name="main",
                    image=image,
                    image_pull_policy="Never",
                    command=["sh", "-c", script],
                    volume_mounts=[kubernetes.client.V1VolumeMount(name="scratch", mount_path="/scratch")],
                )
            ],
            volumes=[kubernetes.client.V1Volume(name="scratch", empty_dir=kubernetes.client.V1EmptyDirVolumeSource())],
        ),
    )


def run(core: kubernetes.client.CoreV1Api, namespace: str, pod: kubernetes.client.V1Pod) -> dict[str, Any]:
    """Creates `pod` and returns it (as JSON) once its containers are running."""
    created = kube_helpers.json_object(
        core.api_client.sanitize_for_serialization(core.create_namespaced_pod(namespace, pod))
    )
    name = created["metadata"]["name"]

    def running() -> dict[str, Any] | None:
        current = kube_helpers.json_object(
            core.api_client.sanitize_for_serialization(core.read_namespaced_pod(name, namespace))
        )
        statuses = kube_helpers.dig(current, "status", "containerStatuses") or []
        if statuses and all("running" in status["state"] for status in statuses):
            return current
        for status in statuses:
            waiting = status["state"].get("waiting") or {}
            if waiting.get("reason") in {"ErrImageNeverPull", "CreateContainerError", "CrashLoopBackOff"}:
                raise AssertionError(
                    f"pod {namespace}/{name} cannot run: {waiting['reason']}: {waiting.get('message')}"
                )
        return None

    return kube_helpers.eventually(running, timeout=POD_START_TIMEOUT, what=f"pod {namespace}/{name} to run")
