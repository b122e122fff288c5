"""kube-apiserver goes away under a running API server, on a control plane of this test's own (the session's shared one
is left alone): it is SIGKILLed mid-watch, then started again on the same etcd. Past NOVASPHERE_STALE_SECONDS the
replica is not ready (its health service and /readyz agree), calls answer UNAVAILABLE with a retry hint instead of
serving what may be stale, its watch streams end in-band; it stays alive throughout. Once kube-apiserver is back it
is ready again, and a watch resumed from its cursor has every change, made before, during or after the outage."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import kubernetes.client
import pytest
from grpc_health.v1 import health_pb2

from devcluster import controlplane, procs
from devcluster import stack as devstack
from novasphere.v1 import wukong_pb2
from novasphere.v1 import wukong_service_pb2 as service_pb2
from novasphere.v1.wukong_service_pb2_grpc import WukongServiceStub
from tests import kube_helpers
from tests.conftest import API_ENV, TENANT_LABELS
from tests.integration.test_api_server import HEALTH_CODECS
from tests.status_helpers import details_of, details_of_status
from tests.watching import grpc_watch

STALE_SECONDS = 2
NAMESPACE = "outage"
Event = wukong_pb2.WukongEvent


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[controlplane.ControlPlane]:
    with controlplane.running_in_process(tmp_path_factory.mktemp("own-cluster")) as running:
        devstack.install(running.info)
        yield running


def _label(kube: kubernetes.client.ApiClient, name: str, value: str) -> None:
    kubernetes.client.CustomObjectsApi(kube).patch_namespaced_custom_object(
        "vm.novasphere.dev", "v1alpha1", NAMESPACE, "wukongs", name, {"metadata": {"labels": {"step": value}}}
    )


def test_an_apiserver_outage_makes_the_replica_unready_and_stale_reads_unavailable_and_loses_nothing(
    plane: controlplane.ControlPlane, tmp_path: Path
) -> None:
    with devstack.admin_client(plane.info) as kube:
        kube_helpers.create_namespace(kube, NAMESPACE, TENANT_LABELS)
        for name in ("a1", "a2", "a3"):
            kube_helpers.create_wukong(kube, NAMESPACE, name, labels={"step": "created"})
        api_kubeconfig = devstack.service_account_kubeconfig(plane.info, tmp_path / "api.kubeconfig")
        api = devstack.start_api_server(
            api_kubeconfig=api_kubeconfig,
            log_path=tmp_path / "api.log",
            extra_env={**API_ENV, "NOVASPHERE_STALE_SECONDS": str(STALE_SECONDS)},
        )
        admin = f"http://127.0.0.1:{api.admin}"
        with procs.stopping([api.process]), grpc.insecure_channel(api.target) as channel:
            stub = WukongServiceStub(channel)
            health = channel.unary_unary("/grpc.health.v1.Health/Check", **HEALTH_CODECS)

            def serving() -> bool:
                status = health(health_pb2.HealthCheckRequest(service=""), timeout=5).status
                return bool(status == health_pb2.HealthCheckResponse.SERVING)

            events = grpc_watch(stub, service_pb2.WatchWukongRequest(namespace=NAMESPACE))
            events.wait_for(lambda e: e.type == Event.BOOKMARK, what="the initial state")
            assert sorted(e.wukong.name for e in events.events if e.type == Event.ADDED) == ["a1", "a2", "a3"]

            def during_the_outage() -> None:
                # made just before the kill or while kube-apiserver is gone, the replica cannot know these yet
                kube_helpers.eventually(lambda: not serving(), timeout=30, what="readiness to turn false")
                not_ready = httpx.get(f"{admin}/readyz", timeout=5)
                assert not_ready.status_code == 503
                assert "cut off from kube-apiserver" in not_ready.text
                assert httpx.get(f"{admin}/livez", timeout=5).status_code == 200  # never restarted for an outage
                with pytest.raises(grpc.RpcError) as stale:
                    stub.ListWukongs(service_pb2.ListWukongsRequest(namespace=NAMESPACE))
                assert stale.value.code() == grpc.StatusCode.UNAVAILABLE
                details = details_of(stale.value)
                assert details.reason == "REPLICA_STALE"
                assert details.retry_seconds
                ending = events.wait_for(lambda e: e.type == Event.ERROR, what="the watch to end in-band")
                assert details_of_status(ending.error).reason == "REPLICA_STALE"

            _label(kube, "a3", "before-the-kill")
            plane.restart_apiserver(down=during_the_outage)

            kube_helpers.eventually(serving, timeout=60, what="readiness back once kube-apiserver is")
            assert httpx.get(f"{admin}/readyz", timeout=5).status_code == 200
            _label(kube, "a1", "after")
            kubernetes.client.CustomObjectsApi(kube).delete_namespaced_custom_object(
                "vm.novasphere.dev", "v1alpha1", NAMESPACE, "wukongs", "a2"
            )
            kube_helpers.create_wukong(kube, NAMESPACE, "a4", labels={"step": "created"})

            cursor = next(e.cursor for e in reversed(events.events) if e.cursor)
            resumed = grpc_watch(stub, service_pb2.WatchWukongRequest(namespace=NAMESPACE, cursor=cursor))
            try:
                resumed.wait_for(lambda e: e.type == Event.ADDED and e.wukong.name == "a4", what="a4")
                resumed.wait_for(lambda e: e.type == Event.DELETED and e.wukong.name == "a2", what="a2 deleted")
                resumed.wait_for(
                    lambda e: e.wukong.name == "a1" and e.wukong.labels.get("step") == "after", what="a1's change"
                )
                # on whichever stream: the first may have had it before kube-apiserver went, the resumed one after
                before_the_kill = [
                    e for e in [*events.events, *resumed.events] if e.wukong.labels.get("step") == "before-the-kill"
                ]
                assert [e.wukong.name for e in before_the_kill][:1] == ["a3"], "the change made just before the kill"
            finally:
                resumed.close()
                events.close()
