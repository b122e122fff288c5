"""The verb and resource labels of the Kubernetes call metrics name what kube-apiserver's audit log would, and never
a namespace or an object's name (unbounded label values)."""

from __future__ import annotations

import pytest

from server.kube.client import call_labels


@pytest.mark.parametrize(
    ("method", "path", "query", "labels"),
    [
        ("GET", "/api/v1/namespaces/ns/pods", {}, ("list", "pods")),
        ("GET", "/api/v1/pods", {"watch": "true", "resourceVersion": "5"}, ("watch", "pods")),
        ("GET", "/api/v1/namespaces/ns/pods/p", {}, ("get", "pods")),
        ("GET", "/api/v1/namespaces/ns", {}, ("get", "namespaces")),
        ("GET", "/api/v1/namespaces", {"labelSelector": "x"}, ("list", "namespaces")),
        ("POST", "/apis/vm.novasphere.dev/v1/namespaces/ns/wukongs", {}, ("create", "wukongs")),
        ("PATCH", "/apis/api.novasphere.dev/v1/namespaces/ns/tasks/t-1/status", {}, ("patch", "tasks/status")),
        (
            "PUT",
            "/apis/subresources.kubevirt.io/v1/namespaces/ns/virtualmachines/vm/start",
            {},
            ("update", "virtualmachines/start"),
        ),
        ("DELETE", "/api/v1/namespaces/ns/secrets/s", {}, ("delete", "secrets")),
        ("DELETE", "/api/v1/namespaces/ns/secrets", {}, ("deletecollection", "secrets")),
        ("GET", "/apis/metrics.k8s.io/v1beta1/namespaces/ns/pods/p", {}, ("get", "pods")),
        ("GET", "/version", {}, ("get", "nonresource")),
    ],
)
def test_labels(method: str, path: str, query: dict[str, str], labels: tuple[str, str]) -> None:
    assert call_labels(method, path, query) == labels
