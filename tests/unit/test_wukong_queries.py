"""Bad input is refused before anything reaches Kubernetes. The client points at an address where nothing listens,
so a request that got through would fail as Unreachable instead of INVALID_ARGUMENT."""

from __future__ import annotations

from collections.abc import Iterator

import kubernetes.client
import pytest

from server import errors
from server.kube.client import KubeClient
from server.wukongs.queries import WukongQueries


@pytest.fixture
def queries() -> Iterator[WukongQueries]:
    configuration = kubernetes.client.Configuration(host="https://127.0.0.1:1")
    kube = KubeClient(kubernetes.client.ApiClient(configuration), threads=1)
    yield WukongQueries(kube=kube, default_namespace="default")
    kube.close()


@pytest.mark.parametrize(
    ("namespace", "name", "field"),
    [("default", "", "name"), ("default", "UPPER", "name"), ("no/slash", "vm", "namespace"), ("-x", "vm", "namespace")],
)
async def test_get_refuses_bad_names(queries: WukongQueries, namespace: str, name: str, field: str) -> None:
    with pytest.raises(errors.InvalidArgument) as raised:
        await queries.get(namespace=namespace, name=name)

    assert [v.field for v in raised.value.violations] == [field]


@pytest.mark.parametrize(
    ("page_size", "page_token", "field"),
    [(-1, "", "page_size"), (501, "", "page_size"), (10, "%%%", "page_token"), (10, "e30", "page_token")],
)
async def test_list_refuses_bad_paging(queries: WukongQueries, page_size: int, page_token: str, field: str) -> None:
    with pytest.raises(errors.InvalidArgument) as raised:
        await queries.list(namespace="", page_size=page_size, page_token=page_token)

    assert [v.field for v in raised.value.violations] == [field]
