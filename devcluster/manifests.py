"""Applies YAML manifests (CRDs, deploy/) to a cluster with server-side apply, as `kubectl apply --server-side`."""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import kubernetes.client
import yaml
from kubernetes.dynamic import DynamicClient

FIELD_MANAGER = "novasphere-devcluster"
REPO_ROOT = Path(__file__).resolve().parent.parent
# Applied in this order: CRDs first, then the namespace the rest lives in. sim/ owns vmoperator's and KubeVirt's
# CRDs (a real cluster has them already); deploy/ holds the API's own.
SIM_CRDS = tuple(sorted((REPO_ROOT / "sim" / "crds").glob("*.yaml")))
DEPLOY = (
    REPO_ROOT / "deploy" / "namespace.yaml",
    REPO_ROOT / "deploy" / "authz.yaml",
    *sorted((REPO_ROOT / "deploy" / "crds").glob("*.yaml")),
    *sorted((REPO_ROOT / "deploy" / "rbac").glob("*.yaml")),
)


def load(paths: Iterable[Path]) -> list[dict[str, Any]]:
    documents: list[dict[str, Any]] = []
    for path in paths:
        documents += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return documents


def apply(api_client: kubernetes.client.ApiClient, documents: Iterable[dict[str, Any]]) -> None:
    """Creates or updates each object; waits for CRDs to be Established so their kinds are usable at once."""
    dynamic = DynamicClient(api_client)
    for document in documents:
        resource = dynamic.resources.get(api_version=document["apiVersion"], kind=document["kind"])
        metadata = document["metadata"]
        dynamic.server_side_apply(
            resource,
            body=document,
            name=metadata["name"],
            namespace=metadata.get("namespace"),
            field_manager=FIELD_MANAGER,
            force_conflicts=True,
        )
        if document["kind"] == "CustomResourceDefinition":
            _wait_established(api_client, metadata["name"])


def _wait_established(api_client: kubernetes.client.ApiClient, name: str, timeout: float = 30.0) -> None:
    extensions = kubernetes.client.ApiextensionsV1Api(api_client)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        crd = extensions.read_custom_resource_definition(name)
        conditions = (crd.status.conditions if crd.status else None) or []
        if any(c.type == "Established" and c.status == "True" for c in conditions):
            return
        time.sleep(0.1)
    raise TimeoutError(f"CRD {name} not Established after {timeout:.0f} s")
