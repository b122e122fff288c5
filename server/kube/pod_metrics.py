"""The resource metrics API (`metrics.k8s.io/v1beta1`, served by metrics-server through kube-apiserver): the last
sample of one pod. metrics-server keeps only the latest scrape, so there is no history to ask for."""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass

from server import quantity, timestamps
from server.kube import errors
from server.kube.client import KubeClient

GROUP_VERSION = "metrics.k8s.io/v1beta1"
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(h|ms|us|µs|ns|m|s)")
_DURATION_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
COMPUTE_CONTAINER = "compute"
"""The launcher's container in which QEMU runs the guest."""
MALFORMED = "the metrics.k8s.io API answered with something other than a PodMetrics"
"""What a client is told of a malformed answer: that it was one, never its text."""


class MetricsApiUnavailable(Exception):
    """The cluster serves no resource metrics API (metrics-server missing or down); the message says which."""


@dataclass(frozen=True)
class PodSample:
    timestamp: datetime.datetime | None
    window_seconds: float
    cpu_cores: float
    memory_bytes: int


async def sample(client: KubeClient, *, namespace: str, pod: str, container: str) -> PodSample | None:
    """`container`'s usage in the pod's latest sample (the whole pod's when the container is not listed); None while
    metrics-server has none (a pod just started needs two scrapes, and it reports only running pods)."""
    path = f"/apis/{GROUP_VERSION}/namespaces/{namespace}/pods/{pod}"
    try:
        metrics = await client.request("GET", path)
    except errors.NotFound as error:
        if "podmetrics" in error.detail:  # the API answered: it has no sample of this pod
            return None
        raise MetricsApiUnavailable(
            "the cluster serves no metrics.k8s.io API: install metrics-server for VM CPU and memory"
        ) from error
    except errors.Malformed as error:
        raise MetricsApiUnavailable(MALFORMED) from error
    except (errors.Unreachable, errors.TooManyRequests) as error:
        raise MetricsApiUnavailable(
            f"the metrics.k8s.io API is not answering ({error.status or 'no answer'})"
        ) from error
    try:
        containers = list(metrics.get("containers") or [])
        chosen = [c for c in containers if c.get("name") == container] or containers
        cpu = sum(quantity.parse_cores(str((c.get("usage") or {}).get("cpu") or "0")) for c in chosen)
        memory = sum(quantity.parse_bytes(str((c.get("usage") or {}).get("memory") or "0")) for c in chosen)
    except (AttributeError, TypeError, ValueError) as error:  # not metrics-server's PodMetrics: say so, not why
        raise MetricsApiUnavailable(MALFORMED) from error
    return PodSample(
        timestamp=timestamps.parse(str(metrics.get("timestamp") or "")),
        window_seconds=_seconds(str(metrics.get("window") or "")),
        cpu_cores=cpu,
        memory_bytes=memory,
    )


def _seconds(duration: str) -> float:
    """A Go duration as metrics-server writes it (`15.012s`, `1m0s`, `500ms`); 0 if it is not one."""
    parts = _DURATION_PART.findall(duration)
    if not parts or "".join(number + unit for number, unit in parts) != duration:
        return 0.0
    return sum(float(number) * _DURATION_UNITS[unit] for number, unit in parts)
