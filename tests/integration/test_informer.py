"""The informer against the real kube-apiserver: a handler that raises loses no change (the informer lists again and
the handler rebuilds from what the cluster holds), a list again hands on the kept copies of unchanged objects, and
retries back off exponentially with jitter."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import kubernetes.client

from server.kube import informer as informers
from server.kube.client import KubeClient
from server.kube.informer import Informer, Kind


class _Flaky:
    """Mirrors ConfigMap names; raises once on the change it is told to fail on."""

    def __init__(self, fail_on: str) -> None:
        self.names: set[str] = set()
        self._fail_on = fail_on

    def replace(self, kind: Kind, items: list[dict[str, Any]], resource_version: int) -> None:
        self.names = {item["metadata"]["name"] for item in items}

    def apply(self, kind: Kind, event_type: str, item: dict[str, Any], resource_version: int) -> None:
        name = item["metadata"]["name"]
        if name == self._fail_on:
            self._fail_on = ""
            raise RuntimeError("a bug in a handler")
        if event_type == "DELETED":
            self.names.discard(name)
        else:
            self.names.add(name)

    def progress(self, kind: Kind, resource_version: int) -> None:
        pass


async def test_a_handler_that_raises_loses_no_change(
    admin_kube: KubeClient, kube: kubernetes.client.ApiClient, namespace: str
) -> None:
    handler = _Flaky(fail_on="second")
    watching = Informer(
        admin_kube,
        Kind("test-configmaps", f"/api/v1/namespaces/{namespace}/configmaps"),
        handler,
        asyncio.get_running_loop(),
    )
    watching.start()
    try:
        async with asyncio.timeout(30):
            while watching.lists == 0:  # noqa: ASYNC110 - the informer's thread: nothing to await
                await asyncio.sleep(0.05)
        core = kubernetes.client.CoreV1Api(kube)
        for name in ("first", "second", "third"):
            core.create_namespaced_config_map(
                namespace, kubernetes.client.V1ConfigMap(metadata=kubernetes.client.V1ObjectMeta(name=name))
            )
        async with asyncio.timeout(30):
            while not {"first", "second", "third"} <= handler.names:  # noqa: ASYNC110 - the informer's thread feeds it
                await asyncio.sleep(0.05)
        assert watching.lists == 2  # the first list, and the one after the handler failed
    finally:
        watching.stop()


class _Latest:
    """The latest kept copy of each ConfigMap (by uid), and every list's items; raises once on `boom`."""

    def __init__(self) -> None:
        self.latest: dict[str, dict[str, Any]] = {}
        self.lists: list[list[dict[str, Any]]] = []
        self._fail = True

    def replace(self, kind: Kind, items: list[dict[str, Any]], resource_version: int) -> None:
        self.lists.append(items)
        self.latest = {item["metadata"]["uid"]: item for item in items}

    def apply(self, kind: Kind, event_type: str, item: dict[str, Any], resource_version: int) -> None:
        if item["metadata"]["name"] == "boom" and self._fail:
            self._fail = False
            raise RuntimeError("a bug in a handler")
        self.latest[item["metadata"]["uid"]] = item

    def progress(self, kind: Kind, resource_version: int) -> None:
        pass


async def test_a_list_again_reuses_the_kept_copy_of_each_unchanged_object(
    admin_kube: KubeClient, kube: kubernetes.client.ApiClient, namespace: str
) -> None:
    kept: list[str] = []

    def keep(item: dict[str, Any]) -> dict[str, Any]:
        kept.append(item["metadata"]["name"])
        return {"metadata": dict(item["metadata"]), "data": dict(item.get("data") or {})}

    handler = _Latest()
    kind = Kind("test-configmaps", f"/api/v1/namespaces/{namespace}/configmaps", keep=keep, reuse_on_relist=True)
    watching = Informer(admin_kube, kind, handler, asyncio.get_running_loop())
    core = kubernetes.client.CoreV1Api(kube)

    def names() -> dict[str, dict[str, Any]]:
        return {item["metadata"]["name"]: item for item in handler.latest.values()}

    async def until(condition: Callable[[], bool]) -> None:
        async with asyncio.timeout(30):
            while not condition():  # noqa: ASYNC110 - the informer's thread feeds the handler
                await asyncio.sleep(0.05)

    watching.start()
    try:
        await until(lambda: watching.lists == 1)
        for name in ("same", "changed"):
            core.create_namespaced_config_map(
                namespace, kubernetes.client.V1ConfigMap(metadata=kubernetes.client.V1ObjectMeta(name=name))
            )
        core.patch_namespaced_config_map("changed", namespace, {"data": {"k": "v"}})
        await until(lambda: names().get("changed", {}).get("data") == {"k": "v"})
        changed = names()["changed"]["metadata"]["uid"]
        before = dict(handler.latest)
        kept.clear()
        core.create_namespaced_config_map(
            namespace, kubernetes.client.V1ConfigMap(metadata=kubernetes.client.V1ObjectMeta(name="boom"))
        )
        await until(lambda: len(handler.lists) == 2)
        relisted = {item["metadata"]["uid"]: item for item in handler.lists[1]}
        assert set(before) < set(relisted)  # everything there before, and boom
        assert all(relisted[uid] is item for uid, item in before.items())  # the same objects, not copies
        assert relisted[changed]["data"] == {"k": "v"}
        assert kept == ["boom"]  # its event; the list kept nothing again
        core.patch_namespaced_config_map("changed", namespace, {"data": {"k": "w"}})
        await until(lambda: names()["changed"]["data"] == {"k": "w"})
        assert names()["changed"] is not relisted[changed]
    finally:
        watching.stop()


def test_retries_back_off_exponentially_with_jitter() -> None:
    for failures, step in ((1, 0.5), (2, 1.0), (3, 2.0), (7, 30.0), (20, 30.0)):
        waits = {informers.backoff_seconds(failures) for _ in range(50)}
        assert all(step / 2 <= wait <= step for wait in waits), (failures, waits)
        assert len(waits) > 1  # jittered: replicas do not retry in step
