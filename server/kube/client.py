"""The process's one connection to kube-apiserver and the thread pool its blocking calls run on."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import json
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, ParamSpec, TypedDict, TypeVar, Unpack

import kubernetes.client
import kubernetes.config
from kubernetes.client.exceptions import ApiException

from server import tracing
from server.kube import errors
from server.metrics import Metrics

P = ParamSpec("P")
T = TypeVar("T")

# (connect, read) seconds for one request; list pages are bounded, so a slow answer means trouble, not size.
REQUEST_TIMEOUT = (5.0, 30.0)
JsonObject = dict[str, Any]


def only_uid(uid: str) -> JsonObject:
    """DeleteOptions that delete the object only while it is the one with this UID (else 409)."""
    return {"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": {"uid": uid}}


def resource_of(path: str) -> str:
    """The resource (and subresource) a request path names, e.g. `wukongs`, `tasks/status`, `virtualmachines/start`:
    what a call is grouped by, without the namespace and object names that would make every call its own group."""
    parts = path.split("?", 1)[0].strip("/").split("/")
    # /api/v1/... or /apis/<group>/<version>/..., then optionally namespaces/<namespace>/...
    rest = parts[2:] if parts[:1] == ["api"] else parts[3:]
    if rest[:1] == ["namespaces"] and len(rest) > 2:
        rest = rest[2:]
    return "/".join(rest[::2]) or "namespaces"


class RequestOptions(TypedDict, total=False):
    query: Mapping[str, str | int]
    body: object
    content_type: str
    expect_json: bool


class Stream:
    """The lines of a streaming response; `close()` from any thread ends a blocked read."""

    def __init__(self, response: Any) -> None:
        self._response = response

    def __iter__(self) -> Iterator[bytes]:
        buffered = b""
        with errors.translated():
            try:
                for chunk in self._response.stream(amt=None, decode_content=False):
                    buffered += chunk
                    *lines, buffered = buffered.split(b"\n")
                    yield from (line for line in lines if line)
            finally:
                self._response.release_conn()

    def close(self) -> None:
        self._response.shutdown()


class KubeClient:
    """Runs `kubernetes` client calls off the event loop, with their errors translated to `kube.errors`.

    The default asyncio executor has only min(32, cpus + 4) = 6 threads on a 2-core machine, and watches hold a thread
    each, so calls get a pool of their own, with as many pooled HTTP connections as threads.
    """

    def __init__(self, api_client: kubernetes.client.ApiClient, *, threads: int, metrics: Metrics) -> None:
        self.api_client = api_client
        self._metrics = metrics
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="kube")
        self.custom_objects = kubernetes.client.CustomObjectsApi(api_client)

    @classmethod
    def connect(cls, *, kubeconfig: Path | None, threads: int, metrics: Metrics) -> KubeClient:
        """From a kubeconfig file, or from the pod's service account (token re-read as it rotates) when None."""
        configuration = kubernetes.client.Configuration()
        if kubeconfig is None:
            kubernetes.config.load_incluster_config(client_configuration=configuration, try_refresh_token=True)
        else:
            kubernetes.config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
        configuration.connection_pool_maxsize = threads
        return cls(kubernetes.client.ApiClient(configuration), threads=threads, metrics=metrics)

    async def call(self, function: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """`function(*args, **kwargs)` on the pool, with a request timeout; raises `kube.errors.KubeError`."""
        kwargs.setdefault("_request_timeout", REQUEST_TIMEOUT)
        loop = asyncio.get_running_loop()
        with errors.translated():
            return await loop.run_in_executor(self._executor, functools.partial(function, *args, **kwargs))

    async def request(self, method: str, path: str, **options: Unpack[RequestOptions]) -> JsonObject:
        """One JSON request to `path` (e.g. `/api/v1/namespaces/x/pods`) on the pool; raises `kube.errors.KubeError`.
        Inside a trace, a CLIENT span named by verb and resource (never the object's name) records it."""
        if not tracing.enabled():
            return await self.call(self.request_blocking, method, path, **options)
        resource = resource_of(path)
        attributes = {"http.request.method": method, "url.path": path, "k8s.resource": resource}
        with tracing.span(
            f"kube {method} {resource}", kind=tracing.Kind.CLIENT, attributes=attributes, only_in_trace=True
        ) as span:
            try:
                return await self.call(self.request_blocking, method, path, **options)
            except errors.KubeError as error:
                span.set("http.response.status_code", error.status)
                raise

    def request_blocking(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str | int] | None = None,
        body: object = None,
        content_type: str = "application/json",
        expect_json: bool = True,
        _request_timeout: tuple[float, float] = REQUEST_TIMEOUT,
    ) -> JsonObject:
        """`request`, blocking: for a thread of its own (informers) or the pool. Without `expect_json` the answer's
        body is ignored (virt-api's subresources answer with an empty one) and `{}` returned."""
        with self._observed(method, path, query), errors.translated():
            response = self._send(method, path, query, body, content_type, _request_timeout)
            payload = response.read()
        return json_object(payload, method, path) if expect_json else {}

    def read_blocking(self, path: str, *, query: Mapping[str, str | int]) -> bytes:
        """A GET's body undecoded, blocking: for a caller that decodes it when it chooses (an informer's list pages,
        see `informer.DECODING`); raises `kube.errors.KubeError`."""
        with self._observed("GET", path, query), errors.translated():
            payload: bytes = self._send("GET", path, query, None, "application/json", REQUEST_TIMEOUT).read()
        return payload

    def stream_lines(self, path: str, *, query: Mapping[str, str | int], read_timeout: float) -> Stream:
        """A streaming GET (a watch), blocking, for a thread of its own: returns once kube-apiserver has answered
        (raises `kube.errors.KubeError` if it refused), then yields the body's lines as they come."""
        with self._observed("GET", path, query), errors.translated():
            response = self._send("GET", path, query, None, "application/json", (REQUEST_TIMEOUT[0], read_timeout))
        return Stream(response.response)

    @contextlib.contextmanager
    def _observed(self, method: str, path: str, query: Mapping[str, str | int] | None) -> Iterator[None]:
        """Times the call for the Kubernetes call metrics; the code is the HTTP status class, or the failure's status
        (`unreachable` when there was no answer)."""
        verb, resource = call_labels(method, path, query or {})
        started = time.monotonic()
        try:
            yield
        except errors.KubeError as error:
            code = str(error.status) if error.status else "unreachable"
            self._metrics.kube_call(
                verb=verb, resource=resource, code=code, seconds=time.monotonic() - started, failed=True
            )
            raise
        self._metrics.kube_call(
            verb=verb, resource=resource, code="2xx", seconds=time.monotonic() - started, failed=False
        )

    def _send(
        self,
        method: str,
        path: str,
        query: Mapping[str, str | int] | None,
        body: object,
        content_type: str,
        timeout: tuple[float, float],
    ) -> kubernetes.client.rest.RESTResponse:
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type
        method, url, headers, body, _ = self.api_client.param_serialize(
            method,
            path,
            query_params=list((query or {}).items()),
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        response = self.api_client.call_api(method, url, header_params=headers, body=body, _request_timeout=timeout)
        if not 200 <= response.status < 300:
            response.read()
            raise ApiException(http_resp=response)
        return response

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        self.api_client.close()


def json_object(payload: bytes, method: str, path: str) -> JsonObject:
    """The JSON object an answer holds; raises `kube.errors.Malformed` for anything else."""
    try:
        decoded = json.loads(payload)
    except ValueError:  # an aggregated API (metrics-server, virt-api) answering badly, e.g. a truncated body
        raise errors.Malformed(
            f"expected JSON from {method} {path}, got {len(payload)} bytes of something else"
        ) from None
    if not isinstance(decoded, dict):
        raise errors.Malformed(f"expected a JSON object from {method} {path}")
    return decoded


_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch"}


def call_labels(method: str, path: str, query: Mapping[str, str | int]) -> tuple[str, str]:
    """(verb, resource) of a request as kube-apiserver's audit log names them: `list`, `get`, `watch`, `create`, …;
    `pods`, `virtualmachines/start` (a subresource). Names and namespaces are left out: they would make a label
    of unbounded values."""
    parts = [part for part in path.split("?")[0].split("/") if part]
    if parts[:1] == ["api"]:
        rest = parts[2:]
    elif parts[:1] == ["apis"]:
        rest = parts[3:]
    else:
        return method.lower(), "nonresource"
    if rest[:1] == ["namespaces"] and len(rest) > 2:
        rest = rest[2:]
    resource, named, subresource = rest[0] if rest else "", len(rest) > 1, rest[2] if len(rest) > 2 else ""
    if method == "GET":
        verb = "get" if named else "watch" if str(query.get("watch", "")).lower() == "true" else "list"
    elif method == "DELETE":
        verb = "delete" if named else "deletecollection"
    else:
        verb = _VERBS.get(method, method.lower())
    return verb, f"{resource}/{subresource}" if subresource else resource
