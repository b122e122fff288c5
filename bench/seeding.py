"""Bench data: a tenant's namespace holding N small Wukongs (`vm-00000`, `vm-00001`, …), applied in one go."""

from __future__ import annotations

import kubernetes.client

from devcluster import manifests


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
