"""The process's one connection to kube-apiserver and the thread pool its blocking calls run on."""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

import kubernetes.client
import kubernetes.config

from server.kube import errors

P = ParamSpec("P")
T = TypeVar("T")

# (connect, read) seconds for one request; list pages are bounded, so a slow answer means trouble, not size.
REQUEST_TIMEOUT = (5.0, 30.0)


class KubeClient:
    """Runs `kubernetes` client calls off the event loop, with their errors translated to `kube.errors`.

    The default asyncio executor has only min(32, cpus + 4) = 6 threads on a 2-core machine, and watches hold a thread
    each, so calls get a pool of their own, with as many pooled HTTP connections as threads.
    """

    def __init__(self, api_client: kubernetes.client.ApiClient, *, threads: int) -> None:
        self.api_client = api_client
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="kube")
        self.custom_objects = kubernetes.client.CustomObjectsApi(api_client)

    @classmethod
    def connect(cls, *, kubeconfig: Path | None, threads: int) -> KubeClient:
        """From a kubeconfig file, or from the pod's service account (token re-read as it rotates) when None."""
        configuration = kubernetes.client.Configuration()
        if kubeconfig is None:
            kubernetes.config.load_incluster_config(client_configuration=configuration, try_refresh_token=True)
        else:
            kubernetes.config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
        configuration.connection_pool_maxsize = threads
        return cls(kubernetes.client.ApiClient(configuration), threads=threads)

    async def call(self, function: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """`function(*args, **kwargs)` on the pool, with a request timeout; raises `kube.errors.KubeError`."""
        kwargs.setdefault("_request_timeout", REQUEST_TIMEOUT)
        loop = asyncio.get_running_loop()
        with errors.translated():
            return await loop.run_in_executor(self._executor, functools.partial(function, *args, **kwargs))

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        self.api_client.close()
