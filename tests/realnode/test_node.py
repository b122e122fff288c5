"""A real kubelet + containerd node in the local control plane runs pods: scheduled by label, with the service
account's token projected, their logs in files, and their hostNetwork ports on loopback."""

from __future__ import annotations

import kubernetes.client

from devcluster import node, procs
from tests import kube_helpers
from tests.realnode import pods
from tests.realnode.conftest import BUSYBOX_IMAGE

TOKEN_CHECK = (
    "test -s /var/run/secrets/kubernetes.io/serviceaccount/token"
    " && test -s /var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
    " && echo ok && sleep 100000"
)


def test_the_node_is_ready_with_its_label(real_node: node.RealNode, realnode_kube: kubernetes.client.ApiClient) -> None:
    found = kube_helpers.json_object(
        realnode_kube.sanitize_for_serialization(kubernetes.client.CoreV1Api(realnode_kube).read_node(node.NODE_NAME))
    )

    assert found["metadata"]["labels"][node.NODE_LABEL] == "true"
    assert {c["type"]: c["status"] for c in found["status"]["conditions"]}["Ready"] == "True"
    assert found["status"]["nodeInfo"]["kubeletVersion"] == real_node.cluster.kubernetes_version
    assert not found["spec"].get("taints")  # the not-ready taint is gone: pods can be scheduled


def test_a_pod_runs_with_its_service_account_token(
    real_node: node.RealNode, realnode_kube: kubernetes.client.ApiClient, realnode_namespace: str
) -> None:
    core = kubernetes.client.CoreV1Api(realnode_kube)

    running = pods.run(core, realnode_namespace, pods.busybox_pod("token", BUSYBOX_IMAGE, TOKEN_CHECK))

    assert running["spec"]["nodeName"] == node.NODE_NAME  # placed by the scheduler, from the label alone
    kube_helpers.eventually(
        lambda: real_node.container_log(realnode_namespace, "token", "main") == "ok\n",
        what="the container to log ok",
    )


def test_a_host_network_port_answers_on_loopback(
    real_node: node.RealNode, realnode_kube: kubernetes.client.ApiClient, realnode_namespace: str
) -> None:
    (port,) = procs.free_ports(1)
    script = (
        "mkdir -p /scratch/www && echo hello > /scratch/www/index.html"
        f" && exec httpd -f -p 127.0.0.1:{port} -h /scratch/www"
    )

    pods.run(
        kubernetes.client.CoreV1Api(realnode_kube),
        realnode_namespace,
        pods.busybox_pod("httpd", BUSYBOX_IMAGE, script),
    )

    body = kube_helpers.eventually(
        lambda: procs.http_get(f"http://127.0.0.1:{port}/index.html"), what="the pod's httpd to answer"
    )
    assert body == b"hello\n"
