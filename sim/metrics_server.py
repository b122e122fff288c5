"""Simulated metrics-server: the resource metrics API `metrics.k8s.io/v1beta1`, registered as an aggregated API.

Registered as the metrics-server manifest does (APIService `v1beta1.metrics.k8s.io` → Service
`kube-system/metrics-server`), but with a CA bundle instead of `insecureSkipTLSVerify`, through `sim/aggregated.py`.
kube-apiserver checks RBAC on `pods.metrics.k8s.io` / `nodes.metrics.k8s.io` before it proxies.

What metrics-server answers, kept: PodMetrics and NodeMetrics with the last scrape's usage (CPU in nanocores,
memory as working set in Ki) per container, the scrape's `timestamp` and the `window` its CPU rate covers; samples
change once per resolution (15 s, `--metric-resolution`'s default, in simulated time); a pod is reported once it has
run for a full resolution (a CPU rate needs two scrapes) and only while it runs: otherwise 404
`podmetrics.metrics.k8s.io "<ns>/<name>" not found`. The values are simulated (`guest_load.py`): only launcher
pods exist here, and their load is the VM's.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Mapping

from aiohttp import web

from sim import aggregated, faults, guest_load
from sim.kubeapi import Body, KubeApi
from sim.kubevirt import rules
from sim.runtime import Informer, deep_get, epoch_seconds, now_rfc3339, rfc3339_at

log = logging.getLogger("sim.metrics-server")

GROUP = "metrics.k8s.io"
VERSION = "v1beta1"
RESOLUTION_SECONDS = 15.0
"""Simulated seconds between two scrapes."""
NODE_BASE_CPU_CORES = 0.25
NODE_BASE_MEMORY_BYTES = 1200 << 20
REGISTRATION = aggregated.Registration(
    group=GROUP,
    versions=(VERSION,),
    namespace="kube-system",
    service="metrics-server",
    ca_secret="metrics-server-ca",  # noqa: S106 (a Secret's name)
    ca_common_name="metrics-server@simulator",
    service_labels={"k8s-app": "metrics-server"},
    api_service_labels={"k8s-app": "metrics-server"},
    group_priority_minimum=100,
    version_priority=100,
)
RESOURCES = (
    {"name": "nodes", "singularName": "", "namespaced": False, "kind": "NodeMetrics", "verbs": ["get", "list"]},
    {"name": "pods", "singularName": "", "namespaced": True, "kind": "PodMetrics", "verbs": ["get", "list"]},
)


class MetricsServer:
    def __init__(
        self, *, api: KubeApi, pods: Informer, vmis: Informer, nodes: Informer, wukongs: Informer, speed: float
    ) -> None:
        self._api = api
        self._wukongs = wukongs
        self._pods = pods
        self._vmis = vmis
        self._nodes = nodes
        self._speed = speed
        self.ready = asyncio.Event()

    async def run(self) -> None:
        app = web.Application(middlewares=[aggregated.front_proxy_only(REGISTRATION, log)])
        base = f"/apis/{GROUP}/{{version}}"
        app.router.add_get("/apis", self._group_list)
        app.router.add_get(f"/apis/{GROUP}", self._group)
        app.router.add_get(base, self._resource_list)
        app.router.add_get(base + "/healthz", self._healthz)
        app.router.add_get(base + "/pods", self._list_pods)
        app.router.add_get(base + "/namespaces/{namespace}/pods", self._list_pods)
        app.router.add_get(base + "/namespaces/{namespace}/pods/{name}", self._get_pod)
        app.router.add_get(base + "/nodes", self._list_nodes)
        app.router.add_get(base + "/nodes/{name}", self._get_node)
        async with aggregated.serving(self._api, REGISTRATION, app, port=0) as port:
            log.info("metrics-server (simulated) on https://127.0.0.1:%d, registered as %s", port, GROUP)
            self.ready.set()
            await asyncio.Event().wait()

    # ---- discovery ------------------------------------------------------------------------------------------------

    async def _group_list(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"kind": "APIGroupList", "apiVersion": "v1", "groups": [REGISTRATION.discovery_group()]}
        )

    async def _group(self, request: web.Request) -> web.Response:
        return web.json_response({"kind": "APIGroup", "apiVersion": "v1", **REGISTRATION.discovery_group()})

    async def _resource_list(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "kind": "APIResourceList",
                "apiVersion": "v1",
                "groupVersion": f"{GROUP}/{VERSION}",
                "resources": list(RESOURCES),
            }
        )

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    # ---- resources ------------------------------------------------------------------------------------------------

    async def _get_pod(self, request: web.Request) -> web.Response:
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        pod = self._pods.get(namespace, name)
        scrape = self._scrape_time()
        metrics = self._pod_metrics(pod, scrape) if pod is not None else None
        if metrics is None:
            return _not_found("podmetrics", f"{namespace}/{name}", name)
        vmi = (pod or {}).get("metadata", {}).get("labels", {}).get("vm.kubevirt.io/name", "")
        mode = faults.malformed_mode(faults.wukong_of_vm_name(vmi, namespace, self._wukongs), faults.MALFORMED_METRICS)
        if mode is not None:
            wrong = {**metrics, "containers": {"compute": {"cpu": faults.BACKEND_TEXT}}, "window": 15}
            return faults.malformed_answer(mode, metrics, wrong)
        return web.json_response(metrics)

    async def _list_pods(self, request: web.Request) -> web.Response:
        namespace = request.match_info.get("namespace")
        try:
            wanted = _selector(request.query.get("labelSelector", ""))
        except ValueError as error:
            return _bad_request(str(error))
        scrape = self._scrape_time()
        items = []
        for pod in self._pods.items():
            if namespace and pod["metadata"].get("namespace") != namespace:
                continue
            if not _matches(pod["metadata"].get("labels") or {}, wanted):
                continue
            metrics = self._pod_metrics(pod, scrape)
            if metrics is not None:
                items.append(metrics)
        return web.json_response(
            {"kind": "PodMetricsList", "apiVersion": f"{GROUP}/{VERSION}", "metadata": {}, "items": items}
        )

    async def _get_node(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        node = self._nodes.get("", name)
        if node is None:
            return _not_found("nodemetrics", name, name)
        return web.json_response(self._node_metrics(node, self._scrape_time()))

    async def _list_nodes(self, request: web.Request) -> web.Response:
        scrape = self._scrape_time()
        items = [self._node_metrics(node, scrape) for node in self._nodes.items()]
        return web.json_response(
            {"kind": "NodeMetricsList", "apiVersion": f"{GROUP}/{VERSION}", "metadata": {}, "items": items}
        )

    # ---- samples --------------------------------------------------------------------------------------------------

    def _scrape_time(self) -> float:
        """The (real) time of the last scrape: scrapes happen every resolution, on its multiples."""
        resolution = RESOLUTION_SECONDS / self._speed
        return math.floor(time.time() / resolution) * resolution

    def _pod_metrics(self, pod: Body, scrape: float) -> Body | None:
        load = self._pod_load(pod, scrape)
        if load is None:
            return None
        metadata = pod["metadata"]
        return {
            "kind": "PodMetrics",
            "apiVersion": f"{GROUP}/{VERSION}",
            "metadata": {
                "name": metadata["name"],
                "namespace": metadata["namespace"],
                "creationTimestamp": now_rfc3339(),
                "labels": dict(metadata.get("labels") or {}),
            },
            "timestamp": rfc3339_at(scrape),
            "window": self._window(),
            "containers": [{"name": "compute", "usage": _usage(load.cpu_cores, load.memory_bytes)}],
        }

    def _pod_load(self, pod: Body, scrape: float) -> guest_load.GuestLoad | None:
        """The launcher's load at `scrape`, or None while metrics-server would have no sample of it."""
        if deep_get(pod, "status", "phase") != "Running" or pod["metadata"].get("deletionTimestamp"):
            return None
        started = epoch_seconds(str(deep_get(pod, "status", "startTime", default="") or ""))
        if started is None or (scrape - started) * self._speed < RESOLUTION_SECONDS:
            return None
        labels: Mapping[str, str] = pod["metadata"].get("labels") or {}
        vmi = self._vmis.get(pod["metadata"]["namespace"], labels.get("vm.kubevirt.io/name", ""))
        if vmi is None:
            return guest_load.GuestLoad(0.005, guest_load.QEMU_OVERHEAD_BYTES, 0, 0, 0, 0)
        paused = (rules.condition(vmi, "Paused") or {}).get("status") == "True"
        return guest_load.of(vmi, at=scrape * self._speed, uptime=(scrape - started) * self._speed, paused=paused)

    def _node_metrics(self, node: Body, scrape: float) -> Body:
        cpu, memory = NODE_BASE_CPU_CORES, NODE_BASE_MEMORY_BYTES
        for pod in self._pods.items():
            if deep_get(pod, "spec", "nodeName") == node["metadata"]["name"]:
                load = self._pod_load(pod, scrape)
                if load is not None:
                    cpu, memory = cpu + load.cpu_cores, memory + load.memory_bytes
        return {
            "kind": "NodeMetrics",
            "apiVersion": f"{GROUP}/{VERSION}",
            "metadata": {
                "name": node["metadata"]["name"],
                "creationTimestamp": now_rfc3339(),
                "labels": dict(node["metadata"].get("labels") or {}),
            },
            "timestamp": rfc3339_at(scrape),
            "window": self._window(),
            "usage": _usage(cpu, memory),
        }

    def _window(self) -> str:
        return f"{RESOLUTION_SECONDS / self._speed:.3f}s"


def _usage(cpu_cores: float, memory_bytes: int) -> dict[str, str]:
    return {"cpu": f"{round(cpu_cores * 1e9)}n", "memory": f"{memory_bytes // 1024}Ki"}


def _selector(text: str) -> list[tuple[str, str, str]]:
    """Equality-based label selectors (`k=v`, `k==v`, `k!=v`, `k`, `!k`), which is all the API here sends."""
    terms = []
    for raw in filter(None, (part.strip() for part in text.split(","))):
        for operator in ("!=", "==", "="):
            if operator in raw:
                key, value = raw.split(operator, 1)
                terms.append((key.strip(), "!=" if operator == "!=" else "=", value.strip()))
                break
        else:
            if raw.startswith("!"):
                terms.append((raw[1:].strip(), "!", ""))
            elif raw.replace("/", "").replace(".", "").replace("-", "").replace("_", "").isalnum():
                terms.append((raw, "exists", ""))
            else:
                raise ValueError(f"unable to parse requirement: {raw!r} (the simulator supports equality selectors)")
    return terms


def _matches(labels: Mapping[str, str], terms: list[tuple[str, str, str]]) -> bool:
    for key, operator, value in terms:
        present = key in labels
        if (
            (operator == "=" and labels.get(key) != value)
            or (operator == "!=" and labels.get(key) == value)
            or (operator == "exists" and not present)
            or (operator == "!" and present)
        ):
            return False
    return True


def _not_found(kind: str, key: str, name: str) -> web.Response:
    return web.json_response(
        {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": f'{kind}.{GROUP} "{key}" not found',
            "reason": "NotFound",
            "details": {"name": name, "group": GROUP, "kind": kind},
            "code": 404,
        },
        status=404,
    )


def _bad_request(message: str) -> web.Response:
    return web.json_response(
        {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": "BadRequest",
            "code": 400,
        },
        status=400,
    )
