"""Session-wide fixtures: one real control plane and one API stack (API server + Envoy) per test session, a fresh
namespace per test. Every process is started here and stopped here (and dies with the test runner in any case)."""

from __future__ import annotations

import contextlib
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import grpc
import kubernetes.client
import pytest

import devcluster
from devcluster import procs
from devcluster import stack as devstack
from novasphere.v1 import task_service_pb2_grpc, wukong_service_pb2_grpc
from novasphere.v1.wukong_service_pb2_grpc import WukongServiceStub
from tests import kube_helpers

ALLOWED_ORIGIN = "http://localhost:3000"
# The development identity the API server runs every request as (until authentication), and its tenant's label.
TENANT = "tests"
TENANT_LABELS = {"novasphere.dev/tenant": TENANT}
API_ENV = {
    "NOVASPHERE_DEV_TENANT": TENANT,
    "NOVASPHERE_WATCH_BOOKMARK_SECONDS": "1",
    # A crashed replica's lease and unsent tasks are taken over within seconds, not the production 15 s and 45 s.
    "NOVASPHERE_LEASE_SECONDS": "2",
    "NOVASPHERE_TASK_HANDOFF_SECONDS": "3",
    "NOVASPHERE_SWEEP_SECONDS": "1",
}
# Simulated seconds per real second for the session's simulator: vmoperator's 10 s poll takes 0.5 s.
SIM_SPEED = 20.0


def pytest_configure(config: pytest.Config) -> None:
    # A SIGTERM (CI timeout, watchdog) unwinds like Ctrl-C, so fixtures stop what they started.
    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[devcluster.ClusterInfo]:
    with devcluster.running(tmp_path_factory.mktemp("cluster")) as info:
        yield info


@pytest.fixture(scope="session")
def kube(cluster: devcluster.ClusterInfo) -> Iterator[kubernetes.client.ApiClient]:
    """An admin client, for arranging test data (the API server itself never uses admin credentials)."""
    with devstack.admin_client(cluster) as client:
        yield client


@pytest.fixture(scope="session")
def stack(cluster: devcluster.ClusterInfo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[devstack.Stack]:
    with devstack.running(
        cluster,
        tmp_path_factory.mktemp("stack"),
        cors_allowed_origins=(ALLOWED_ORIGIN,),
        sim_speed=SIM_SPEED,
        api_env=API_ENV,
    ) as running:
        yield running


@pytest.fixture
def namespace(kube: kubernetes.client.ApiClient) -> Iterator[str]:
    """A fresh namespace of the test tenant for one test; deleted afterwards (the namespace controller removes what
    it holds)."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    kube_helpers.create_namespace(kube, name, TENANT_LABELS)
    yield name
    kube_helpers.delete_namespace(kube, name)


@pytest.fixture
def foreign_namespace(kube: kubernetes.client.ApiClient) -> Iterator[str]:
    """A namespace of another tenant."""
    name = f"f-{uuid.uuid4().hex[:10]}"
    kube_helpers.create_namespace(kube, name, {"novasphere.dev/tenant": "someone-else"})
    yield name
    kube_helpers.delete_namespace(kube, name)


@pytest.fixture(scope="session")
def grpc_direct(stack: devstack.Stack) -> Iterator[wukong_service_pb2_grpc.WukongServiceStub]:
    """WukongService over native gRPC, straight to the API server."""
    with grpc.insecure_channel(stack.grpc_direct) as channel:
        yield wukong_service_pb2_grpc.WukongServiceStub(channel)


@pytest.fixture(scope="session")
def tasks_direct(stack: devstack.Stack) -> Iterator[task_service_pb2_grpc.TaskServiceStub]:
    """TaskService over native gRPC, straight to the API server."""
    with grpc.insecure_channel(stack.grpc_direct) as channel:
        yield task_service_pb2_grpc.TaskServiceStub(channel)


@pytest.fixture(scope="session")
def grpc_envoy(stack: devstack.Stack) -> Iterator[wukong_service_pb2_grpc.WukongServiceStub]:
    """WukongService over native gRPC through Envoy (TLS)."""
    with stack.edge.channel() as channel:
        yield wukong_service_pb2_grpc.WukongServiceStub(channel)


@contextlib.contextmanager
def fronted_api(
    stack: devstack.Stack, state: Path, extra_env: dict[str, str], **envoy_options: Any
) -> Iterator[tuple[devstack.ApiServer, devstack.Envoy]]:
    """An API server of its own (with `extra_env`) behind an Envoy of its own (`envoy_options`, as for
    `devstack.envoy_settings`), on the session's cluster and edge certificate; both stopped afterwards."""
    api = devstack.start_api_server(
        api_kubeconfig=stack.api_kubeconfig, log_path=state / "api.log", extra_env=extra_env
    )
    with procs.stopping([api.process]):
        envoy = devstack.start_front(api, tls=stack.tls, state_dir=state, **envoy_options)
        with procs.stopping([envoy.process]):
            yield api, envoy


@contextlib.contextmanager
def api_process(stack: devstack.Stack, tmp_path: Path, **settings: str) -> Iterator[tuple[WukongServiceStub, str]]:
    """Another replica of the API server (same cluster, same service account), with extra settings; its stub and
    address."""
    env = {**API_ENV, **{f"NOVASPHERE_{key.upper()}": value for key, value in settings.items()}}
    api = devstack.start_api_server(
        api_kubeconfig=stack.api_kubeconfig, log_path=tmp_path / f"api-{uuid.uuid4().hex[:8]}.log", extra_env=env
    )
    with procs.stopping([api.process]), grpc.insecure_channel(api.target) as channel:
        yield WukongServiceStub(channel), api.target


@pytest.fixture(scope="module")
def second_api(stack: devstack.Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WukongServiceStub]:
    with api_process(stack, tmp_path_factory.mktemp("second-api")) as (stub, _):
        yield stub
