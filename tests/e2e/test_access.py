"""Exposing a VM's ports as real Kubernetes Services through the API: NodePort with an allocated node port and the
right selector and owner, LoadBalancer with an address from the simulated load balancer, 4xx errors naming the field,
and the garbage collector removing a Service with its VM."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import kubernetes.client
import pytest

from devcluster import stack as devstack
from novasphere.v1 import access_service_pb2 as access_pb2
from novasphere.v1 import wukong_service_pb2 as service_pb2
from novasphere.v1.access_service_pb2_grpc import AccessServiceStub
from novasphere.v1.task_service_pb2_grpc import TaskServiceStub
from novasphere.v1.wukong_service_pb2_grpc import WukongServiceStub
from tests import kube_helpers
from tests.e2e.test_tasks import running_wukong, wait_task
from tests.status_helpers import details_of


@pytest.fixture(scope="module")
def access(stack: devstack.Stack) -> Iterator[AccessServiceStub]:
    with grpc.insecure_channel(stack.grpc_direct) as channel:
        yield AccessServiceStub(channel)


@pytest.fixture
def http(stack: devstack.Stack) -> Iterator[httpx.Client]:
    with stack.edge.http_client() as client:
        yield client


def service(kube: kubernetes.client.ApiClient, namespace: str, name: str) -> Any:
    return kubernetes.client.CoreV1Api(kube).read_namespaced_service(name, namespace)


def test_a_node_port_through_rest_is_a_real_service_that_goes_with_its_vm(
    grpc_direct: WukongServiceStub,
    tasks_direct: TaskServiceStub,
    http: httpx.Client,
    kube: kubernetes.client.ApiClient,
    namespace: str,
) -> None:
    running_wukong(grpc_direct, namespace, "web")
    response = http.post(
        "/api/v1/wukongs/web/access-services",
        params={"namespace": namespace},
        json={
            "serviceType": "NodePort",
            "serviceName": "web-ssh",
            "ports": [{"port": 22}, {"port": 8080, "targetPort": 80}],
        },
    )
    assert response.status_code == 200, response.text
    created = response.json()
    assert (created["name"], created["serviceType"], created["pending"]) == ("web-ssh", "NodePort", False)
    ssh, web = created["ports"]
    assert (ssh["name"], ssh["protocol"], ssh["port"], ssh["targetPort"]) == ("tcp-22", "TCP", 22, 22)
    assert (web["port"], web["targetPort"]) == (8080, 80)
    assert 30000 <= ssh["nodePort"] <= 32767
    assert ssh["accessAddr"].startswith("127.0.1.")
    assert ssh["accessAddr"].endswith(f":{ssh['nodePort']}")

    real = service(kube, namespace, "web-ssh")
    assert real.spec.type == "NodePort"
    assert real.spec.selector == {"vm.kubevirt.io/name": "web-vm"}
    assert [p.node_port for p in real.spec.ports] == [ssh["nodePort"], web["nodePort"]]
    assert [(o.kind, o.name) for o in real.metadata.owner_references] == [("VirtualMachine", "web-vm")]
    assert real.metadata.labels["app.kubernetes.io/managed-by"] == "novasphere-api"

    def shown() -> Any:
        listed = grpc_direct.ListWukongs(service_pb2.ListWukongsRequest(namespace=namespace)).wukongs[0]
        return listed if listed.service_info else None

    listed = kube_helpers.eventually(shown, what="the list item to show the Service")
    assert [p.access_addr for p in listed.service_info[0].ports] == [ssh["accessAddr"], web["accessAddr"]]
    detail = grpc_direct.GetWukong(service_pb2.GetWukongRequest(namespace=namespace, name="web")).detail
    assert [s.name for s in detail.access_services] == ["web-ssh"]

    deleted = grpc_direct.DeleteWukong(service_pb2.DeleteWukongRequest(namespace=namespace, name="web"))
    wait_task(tasks_direct, deleted.id)

    def collected() -> bool | None:
        try:
            service(kube, namespace, "web-ssh")
        except kubernetes.client.ApiException as error:
            return True if error.status == 404 else None
        return None

    kube_helpers.eventually(collected, timeout=60, what="the garbage collector to delete the Service with its VM")


def test_bad_ports_and_conflicts_are_4xx_naming_the_field(
    grpc_direct: WukongServiceStub, access: AccessServiceStub, http: httpx.Client, namespace: str
) -> None:
    running_wukong(grpc_direct, namespace, "db")
    first = access.CreateAccessService(
        access_pb2.CreateAccessServiceRequest(
            namespace=namespace, name="db", service_type="NodePort", ports=[access_pb2.PortSpec(port=5432)]
        )
    )
    taken = first.ports[0].node_port

    def refused(body: dict[str, Any], status: int = 400) -> dict[str, Any]:
        response = http.post("/api/v1/wukongs/db/access-services", params={"namespace": namespace}, json=body)
        assert response.status_code == status, response.text
        error = response.json()
        assert isinstance(error, dict)
        return error

    def violation(body: dict[str, Any]) -> dict[str, str]:
        error = refused(body)
        bad_request = next(d for d in error["details"] if d["@type"].endswith("BadRequest"))
        return {v["field"]: v["description"] for v in bad_request["fieldViolations"]}

    assert (
        "taken by another Service"
        in violation({"serviceType": "NodePort", "ports": [{"port": 5433, "nodePort": taken}]})["ports[0].nodePort"]
    )
    assert (
        "outside the cluster's node port range (30000-32767)"
        in violation({"serviceType": "NodePort", "ports": [{"port": 5433, "nodePort": 1000}]})["ports[0].nodePort"]
    )
    assert "1-65535" in violation({"serviceType": "NodePort", "ports": [{"port": 70000}]})["ports[0].port"]
    assert (
        "already given"
        in violation({"serviceType": "NodePort", "ports": [{"port": 22}, {"port": 22, "protocol": "tcp"}]})[
            "ports[1].port"
        ]
    )
    assert "NodePort or LoadBalancer" in violation({"serviceType": "ClusterIP", "ports": [{"port": 22}]})["serviceType"]
    assert (
        "starting with a letter"
        in violation({"serviceType": "NodePort", "serviceName": "9lives", "ports": [{"port": 22}]})["serviceName"]
    )
    assert violation({"serviceType": "NodePort"}) == {"ports": "give at least one port to expose"}
    duplicate = refused({"serviceType": "NodePort", "serviceName": first.name, "ports": [{"port": 22}]}, status=409)
    assert duplicate["details"][0]["reason"] == "ACCESS_SERVICE_ALREADY_EXISTS"
    response = http.post(
        "/api/v1/wukongs/nope/access-services",
        params={"namespace": namespace},
        json={"serviceType": "NodePort", "ports": [{"port": 22}]},
    )
    assert response.status_code == 404
    listed = access.ListAccessServices(access_pb2.ListAccessServicesRequest(namespace=namespace, name="db"))
    assert [s.name for s in listed.services] == [first.name]  # nothing else was created


def test_a_load_balancer_gets_an_address_and_only_our_services_can_be_deleted(
    grpc_direct: WukongServiceStub, access: AccessServiceStub, kube: kubernetes.client.ApiClient, namespace: str
) -> None:
    running_wukong(grpc_direct, namespace, "front")
    created = access.CreateAccessService(
        access_pb2.CreateAccessServiceRequest(
            namespace=namespace,
            name="front",
            service_type="LoadBalancer",
            service_name="front-lb",
            ports=[access_pb2.PortSpec(port=443, target_port=8443)],
        )
    )
    assert created.service_type == "LoadBalancer"

    def assigned() -> Any:
        found = access.ListAccessServices(access_pb2.ListAccessServicesRequest(namespace=namespace, name="front"))
        return found.services[0] if found.services and not found.services[0].pending else None

    address = kube_helpers.eventually(assigned, what="the load balancer's address").ports[0].access_addr
    assert address.startswith("127.0.2.")
    assert address.endswith(":443")

    # A Service NovaSphere did not create is not NovaSphere's to delete.
    kubernetes.client.CoreV1Api(kube).create_namespaced_service(
        namespace,
        {  # type: ignore[arg-type]  # the client accepts plain JSON
            "metadata": {"name": "theirs"},
            "spec": {"selector": {"vm.kubevirt.io/name": "front-vm"}, "ports": [{"port": 1}]},
        },
    )
    with pytest.raises(grpc.RpcError) as foreign:
        access.DeleteAccessService(
            access_pb2.DeleteAccessServiceRequest(namespace=namespace, name="front", service_name="theirs")
        )
    assert foreign.value.code() == grpc.StatusCode.NOT_FOUND
    assert details_of(foreign.value).reason == "ACCESS_SERVICE_NOT_FOUND"
    access.DeleteAccessService(
        access_pb2.DeleteAccessServiceRequest(namespace=namespace, name="front", service_name="front-lb")
    )
    with pytest.raises(kubernetes.client.ApiException):
        service(kube, namespace, "front-lb")
    assert service(kube, namespace, "theirs").metadata.name == "theirs"
