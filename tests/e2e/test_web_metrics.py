"""The web console's access services, live metrics and tenant overview in Debian's chromium, against the real stack:
a NodePort created in the detail page's dialog (and a refused one whose error lands on its port row), its addresses
as links on the detail page and in the list's column, deleted after confirmation; the metrics charts gaining points
from the simulated metrics-server and Prometheus and saying NOT_RUNNING, not zero, after a stop; the overview's counts
and resources per namespace for VMs made in known states. Screenshots in test-artifacts/web/."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import grpc
import kubernetes.client
import pytest

from devcluster import accounts
from devcluster import stack as devstack
from novasphere.v1 import access_service_pb2 as access_pb2
from novasphere.v1 import stats_service_pb2 as stats_pb2
from novasphere.v1 import wukong_pb2
from novasphere.v1 import wukong_service_pb2 as service_pb2
from novasphere.v1.access_service_pb2_grpc import AccessServiceStub
from novasphere.v1.stats_service_pb2_grpc import StatsServiceStub
from novasphere.v1.wukong_service_pb2_grpc import WukongServiceStub
from sim import faults
from tests import kube_helpers
from tests.conftest import TENANT
from tests.e2e.test_auth import PASSWORD
from tests.e2e.test_tasks import Power, running_wukong, wait_power
from tests.e2e.test_wukong_api import create
from tests.web_browser import Browser, Tab
from tests.web_console import Web, open_signed_in, shot

TIMEOUT = 30.0
TABLET = (768, 1024)
ROW = ".ant-table-tbody tr.ant-table-row"
DIALOG = ".ant-modal:has(#access-create)"


@pytest.fixture(scope="module")
def access(stack: devstack.Stack) -> Iterator[AccessServiceStub]:
    with grpc.insecure_channel(stack.grpc_direct) as channel:
        yield AccessServiceStub(channel)


@pytest.fixture(scope="module")
def stats(stack: devstack.Stack) -> Iterator[StatsServiceStub]:
    with grpc.insecure_channel(stack.grpc_direct) as channel:
        yield StatsServiceStub(channel)


def detail_path(namespace: str, name: str) -> str:
    return f"/vms/{namespace}/{name}"


def links(tab: Tab, scope: str) -> list[tuple[str, str]]:
    """The access address links inside `scope`: (text, href)."""
    found = tab.evaluate(
        f"[...document.querySelectorAll({json.dumps(scope + ' a[data-testid=access-address]')})]"
        ".map((a) => [a.textContent, a.getAttribute('href')])"
    )
    return [(str(text), str(href)) for text, href in found]


def fits_its_width(tab: Tab) -> bool:
    """Whether the page needs no horizontal scrolling (wide tables scroll inside their own box)."""
    return bool(tab.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def chart_points(tab: Tab, chart: str) -> int:
    """How many data points the chart instance holds (the EChart wrapper writes them into data-points)."""
    return int(tab.evaluate(f"Number(document.querySelector('[data-testid={chart}]')?.dataset.points ?? -1)"))


def test_an_access_service_made_in_the_dialog_is_listed_as_links_and_deleted_after_confirmation(
    web: Web,
    browser: Browser,
    operator: str,
    namespace: str,
    grpc_direct: WukongServiceStub,
    access: AccessServiceStub,
) -> None:
    running_wukong(grpc_direct, namespace, "web")
    tab = open_signed_in(browser, web, operator, path=detail_path(namespace, "web"))
    tab.wait("[data-testid=access-services] >> text=No ports exposed")

    tab.click("[data-testid=access-services] button:has-text('Expose ports')")
    tab.wait(DIALOG)
    tab.fill("#access-create_serviceName", "web-ports")
    tab.fill("#access-create_ports_0_port", "22")
    tab.click(f"{DIALOG} button:has-text('Add a port')")
    tab.fill("#access-create_ports_1_port", "8080")
    tab.fill("#access-create_ports_1_targetPort", "80")
    tab.click(f"{DIALOG} button[type=submit]")
    tab.wait(f"[data-testid=access-services] {ROW} >> text=web-ports")
    tab.wait(DIALOG, state="hidden")

    (created,) = access.ListAccessServices(
        access_pb2.ListAccessServicesRequest(namespace=namespace, name="web")
    ).services
    assert (created.name, created.service_type) == ("web-ports", "NodePort")
    assert [(p.port, p.target_port) for p in created.ports] == [(22, 22), (8080, 80)]
    addresses = [p.access_addr for p in created.ports]
    assert all(addresses)
    expected_links = [(address, f"http://{address}/") for address in addresses]
    assert links(tab, "[data-testid=access-services]") == expected_links
    port_cells = tab.texts(f"[data-testid=access-services] {ROW} td:nth-child(3) span.ant-typography")
    assert port_cells == [f"{p.port} → {p.target_port}/TCP, node port {p.node_port}" for p in created.ports]
    tab.wait("[data-testid=metrics-cpu-chart][data-points]:not([data-points='0'])", ms=int(TIMEOUT * 1000))
    shot(tab, "vm-detail-metrics-access")

    # the second row asks for the node port the first service holds: kube-apiserver refuses, on that row's field
    taken = created.ports[0].node_port
    tab.click("[data-testid=access-services] button:has-text('Expose ports')")
    tab.wait(DIALOG)
    tab.fill("#access-create_ports_0_port", "9000")
    tab.click(f"{DIALOG} button:has-text('Add a port')")
    tab.fill("#access-create_ports_1_port", "9001")
    tab.fill("#access-create_ports_1_nodePort", str(taken))
    tab.click(f"{DIALOG} button[type=submit]")
    error = "[data-testid=port-row-1] .ant-form-item-explain-error"
    tab.wait(error)
    assert "taken by another Service" in tab.text(error)
    assert tab.count("[data-testid=port-row-1] .ant-form-item-has-error #access-create_ports_1_nodePort") == 1
    assert tab.count("[data-testid=port-row-0] .ant-form-item-explain-error") == 0
    assert tab.count("[data-testid=access-create-error]") == 0  # placed on its field, not left for the alert
    shot(tab, "access-create-port-error")
    tab.click(f"{DIALOG} button:has-text('Cancel')")
    tab.wait(DIALOG, state="hidden")
    assert [
        s.name
        for s in access.ListAccessServices(
            access_pb2.ListAccessServicesRequest(namespace=namespace, name="web")
        ).services
    ] == ["web-ports"]

    # the list's column: the same addresses, as links
    tab.goto(f"{web.url}/vms?ns={namespace}")
    tab.wait(f"{ROW} a[data-testid=access-address]")
    kube_helpers.eventually(
        lambda: links(tab, ROW) == expected_links, timeout=TIMEOUT, what="the list's access column to show both links"
    )
    shot(tab, "vm-list-access-links")

    tab.goto(web.url + detail_path(namespace, "web"))
    tab.click("button[aria-label='Delete access service web-ports']")
    tab.wait(".ant-modal-confirm-title >> text=Delete access service web-ports?")
    assert list(
        access.ListAccessServices(access_pb2.ListAccessServicesRequest(namespace=namespace, name="web")).services
    )
    tab.click(".ant-modal-confirm .ant-btn-dangerous")
    tab.wait("[data-testid=access-services] >> text=No ports exposed")
    assert not access.ListAccessServices(access_pb2.ListAccessServicesRequest(namespace=namespace, name="web")).services


@pytest.fixture
def viewer(kube: kubernetes.client.ApiClient) -> Iterator[str]:
    name = f"web-viewer-{uuid.uuid4().hex[:8]}"
    accounts.create_user(kube, name, PASSWORD, tenant=TENANT, role="viewer")
    yield name
    accounts.unbind(kube, name)


def test_a_viewer_sees_the_access_services_and_their_addresses_but_no_action(
    web: Web,
    browser: Browser,
    viewer: str,
    namespace: str,
    grpc_direct: WukongServiceStub,
    access: AccessServiceStub,
) -> None:
    create(grpc_direct, namespace, "quiet", startStrategy={"autoStart": False})
    wait_power(grpc_direct, namespace, "quiet", Power.STOPPED)
    for kind, port in (("NodePort", 22), ("LoadBalancer", 443)):
        access.CreateAccessService(
            access_pb2.CreateAccessServiceRequest(
                namespace=namespace, name="quiet", service_type=kind, ports=[access_pb2.PortSpec(port=port)]
            )
        )

    def assigned() -> list[wukong_pb2.AccessServiceInfo] | None:
        listed = access.ListAccessServices(access_pb2.ListAccessServicesRequest(namespace=namespace, name="quiet"))
        both = len(listed.services) == 2 and all(not s.pending for s in listed.services)
        return list(listed.services) if both else None

    services = kube_helpers.eventually(assigned, timeout=TIMEOUT, what="the load balancer's address")
    tab = open_signed_in(browser, web, viewer, path=detail_path(namespace, "quiet"))
    tab.wait(f"[data-testid=access-services] {ROW} a[data-testid=access-address]")
    kube_helpers.eventually(lambda: len(links(tab, "[data-testid=access-services]")) == 2, timeout=5, what="2 links")
    scheme = {"NodePort": "http", "LoadBalancer": "https"}  # the guest's port 443 opens over TLS
    assert sorted(links(tab, "[data-testid=access-services]")) == sorted(
        (s.ports[0].access_addr, f"{scheme[s.service_type]}://{s.ports[0].access_addr}/") for s in services
    )
    assert any(s.ports[0].access_addr.startswith("127.0.2.") for s in services)  # the load balancer's own address
    assert tab.count("[data-testid=access-services] button") == 0  # neither "Expose ports" nor "Delete"
    assert tab.texts("[data-testid=access-services] thead th") == [
        "Name",
        "Type",
        "Ports (service → guest)",
        "Address",
        "Created",
    ]
    tab.wait("[data-testid=metrics-state][data-state=NOT_RUNNING]")
    shot(tab, "vm-detail-access-viewer")

    tab.evaluate("localStorage.setItem('novasphere.language', 'zh-CN')")
    tab.reload()
    tab.wait("[data-testid=metrics-state] >> text=未运行：虚拟机运行时才有监控数据")
    tab.wait(f"[data-testid=access-services] {ROW} a[data-testid=access-address]")
    assert tab.texts("[data-testid=access-services] thead th")[:2] == ["名称", "类型"]
    shot(tab, "vm-detail-access-viewer-zh-CN")


def test_the_metrics_charts_gain_points_and_say_not_running_after_a_stop(
    web: Web, browser: Browser, operator: str, namespace: str, grpc_direct: WukongServiceStub
) -> None:
    running_wukong(grpc_direct, namespace, "busy", cpu=2)
    tab = open_signed_in(browser, web, operator, path=detail_path(namespace, "busy"))
    tab.wait("[data-testid=metrics-connection] >> text=Live", ms=int(TIMEOUT * 1000))

    def points_at_least(wanted: int) -> int | None:
        points = chart_points(tab, "metrics-cpu-chart")
        return points if points >= wanted else None

    first = kube_helpers.eventually(lambda: points_at_least(1), timeout=TIMEOUT, what="a first CPU point")
    later = kube_helpers.eventually(lambda: points_at_least(first + 2), timeout=TIMEOUT, what="two more CPU points")
    assert chart_points(tab, "metrics-memory-chart") >= later  # one memory point per sample too
    assert chart_points(tab, "metrics-network-chart") >= 2 * later  # received and sent
    assert chart_points(tab, "metrics-disk-chart") >= 2 * later  # read and written
    assert tab.count("[data-testid=metrics-state]") == 0  # measured: no state to explain
    summary = tab.text("[data-testid=metrics-summary]")
    assert "of 2 vCPUs" in summary
    # a tooltip is drawn on the canvas: ECharts' HTML tooltips would break the Content-Security-Policy (the browser
    # fixture fails the test on any violation)
    tab.hover("[data-testid=metrics-network-chart]", x=600, y=120)
    shot(tab, "vm-detail-metrics")
    tab.viewport(*TABLET)
    # the rest at a tablet's width (the page as a whole is wider there: the events table, not these cards, holds it)

    grpc_direct.StopWukong(service_pb2.StopWukongRequest(namespace=namespace, name="busy", force=True))
    tab.wait("[data-testid=metrics-state][data-state=NOT_RUNNING]", ms=int(TIMEOUT * 1000))
    assert tab.text("[data-testid=metrics-state]") == "Not running: metrics exist only while the VM runs"
    # nothing measured is drawn: the points the chart holds are the samples taken while it ran, the rest a gap
    held = chart_points(tab, "metrics-cpu-chart")
    assert held >= later
    assert tab.text("[data-testid=metrics-samples]") == str(held)
    summary = tab.text("[data-testid=metrics-summary]")
    assert summary.count("Not running") == 4  # CPU, memory, network, disk
    shot(tab, "vm-detail-metrics-not-running-768")


def _wukong(namespace: str, name: str, cpu: int, memory: str, kind: str) -> dict[str, Any]:
    disk = {"name": "root", "size": "1Gi", "storageClassName": "local-path"}
    annotations = {}
    spec: dict[str, Any] = {"cpu": cpu, "memory": memory, "disks": [disk]}
    if kind == "stopped":
        spec["startStrategy"] = {"autoStart": False}
    if kind == "provisioning":  # an Immediate class whose claim never binds: vmoperator waits for it
        spec["disks"] = [{**disk, "storageClassName": "sim-immediate"}]
        annotations[faults.PVC_NEVER_BINDS] = "true"
    return {
        "apiVersion": "vm.novasphere.dev/v1alpha1",
        "kind": "Wukong",
        "metadata": {"name": name, "namespace": namespace, "annotations": annotations},
        "spec": spec,
    }


def test_the_overview_counts_the_namespaces_vms_by_state_and_their_resources_against_the_quota(
    web: Web,
    browser: Browser,
    operator: str,
    namespace: str,
    kube: kubernetes.client.ApiClient,
    stats: StatsServiceStub,
) -> None:
    kubernetes.client.CoreV1Api(kube).create_namespaced_resource_quota(
        namespace,
        {  # type: ignore[arg-type]  # the client accepts plain JSON
            "metadata": {"name": "vms"},
            "spec": {"hard": {"requests.cpu": "10", "requests.memory": "20Gi"}},
        },
    )
    custom = kubernetes.client.CustomObjectsApi(kube)
    for name, cpu, memory, kind in (
        ("up-1", 1, "1Gi", "running"),
        ("up-2", 2, "2Gi", "running"),
        ("down", 4, "2Gi", "stopped"),
        ("stuck", 1, "1Gi", "provisioning"),
    ):
        body = _wukong(namespace, name, cpu, memory, kind)
        custom.create_namespaced_custom_object("vm.novasphere.dev", "v1alpha1", namespace, "wukongs", body)

    def settled() -> stats_pb2.NamespaceStats | None:
        found = stats.GetStats(stats_pb2.GetStatsRequest(namespace=namespace)).namespaces
        if len(found) != 1:
            return None
        usage, quota = found[0].usage, found[0].quota
        counts = (usage.vms, usage.running, usage.stopped, usage.provisioning, usage.transitioning)
        # the quota controller charges the two launcher pods: 100m per vCPU, the guest's memory plus 256 MiB
        charged = (quota.cpu_used_millis, quota.memory_used_mb) == (300, 3 * 1024 + 2 * 256)
        return found[0] if counts == (4, 2, 1, 1, 0) and charged else None

    kube_helpers.eventually(settled, timeout=60, what="the four VMs in their states, the running ones charged")
    tab = open_signed_in(browser, web, operator, path="/overview")
    row = f"[data-testid=namespace-{namespace}]"
    tab.wait(row)
    expected = [
        namespace,
        "4",  # VMs
        "2",  # running
        "1",  # stopped
        "0",  # paused
        "1",  # provisioning
        "0",  # error
        "0",  # changing state
        "8",  # vCPUs requested: 1 + 2 + 4 + 1
        "3",  # allocated: the running ones
        "0.3 / 10",  # quota used / limit
        "6 GiB",  # memory requested: 1 + 2 + 2 + 1
        "3 GiB",
        "3.5 GiB / 20 GiB",
    ]
    # this page's API replica follows the cluster on its own: the page reads again every 10 s until it agrees
    kube_helpers.eventually(
        lambda: tab.texts(f"{row} td") == expected, timeout=TIMEOUT, what=f"the row to read {expected}"
    )
    assert tab.text("[data-testid=namespace-total] td") == "Total"
    tab.wait("[data-testid=overview-power-chart][data-points]")
    assert chart_points(tab, "overview-power-chart") > 0
    tab.hover("[data-testid=overview-power-chart]", x=250, y=110)
    shot(tab, "overview")
    tab.viewport(*TABLET)
    kube_helpers.eventually(lambda: fits_its_width(tab), timeout=5, what="the overview to fit 768 px")
    shot(tab, "overview-768")

    tab.evaluate("localStorage.setItem('novasphere.language', 'zh-CN')")  # what the language switcher remembers
    tab.reload()
    tab.wait(f"{row} >> text=0.3 / 10")
    assert tab.texts(".ant-table-thead th")[:3] == ["命名空间", "虚拟机", "运行中"]
    shot(tab, "overview-zh-CN")
