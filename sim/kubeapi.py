"""A small asyncio client for kube-apiserver (httpx), enough for controllers: get, list, watch, create, update,
patch, delete on any resource, with the errors controllers branch on.

The simulator writes tens of thousands of objects; an async client keeps hundreds of requests in flight on one
event loop, where the official (blocking) client would need a thread per request.
"""

from __future__ import annotations

import base64
import collections
import json
import ssl
import tempfile
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

Body = dict[str, Any]


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class NotFound(ApiError):
    pass


class Conflict(ApiError):
    """409: a stale resourceVersion, or the object already exists (`already_exists`)."""

    @property
    def already_exists(self) -> bool:
        return "already exists" in self.message


class Gone(ApiError):
    """410: the resourceVersion a watch asked for is too old; list again."""


@dataclass(frozen=True)
class Resource:
    """A resource type: where its objects live in the API."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None = None, name: str | None = None, subresource: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name:
            base += f"/{name}"
        if subresource:
            base += f"/{subresource}"
        return base


# The resources the simulator touches.
WUKONGS = Resource("vm.novasphere.dev", "v1alpha1", "wukongs", "Wukong")
VIRTUAL_MACHINES = Resource("kubevirt.io", "v1", "virtualmachines", "VirtualMachine")
VIRTUAL_MACHINE_INSTANCES = Resource("kubevirt.io", "v1", "virtualmachineinstances", "VirtualMachineInstance")
DATA_VOLUMES = Resource("cdi.kubevirt.io", "v1beta1", "datavolumes", "DataVolume")
NADS = Resource("k8s.cni.cncf.io", "v1", "network-attachment-definitions", "NetworkAttachmentDefinition")
PODS = Resource("", "v1", "pods", "Pod")
PVCS = Resource("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim")
PVS = Resource("", "v1", "persistentvolumes", "PersistentVolume", namespaced=False)
NODES = Resource("", "v1", "nodes", "Node", namespaced=False)
EVENTS = Resource("", "v1", "events", "Event")
MIGRATIONS = Resource("kubevirt.io", "v1", "virtualmachineinstancemigrations", "VirtualMachineInstanceMigration")
NAMESPACES = Resource("", "v1", "namespaces", "Namespace", namespaced=False)
SECRETS = Resource("", "v1", "secrets", "Secret")
CONFIG_MAPS = Resource("", "v1", "configmaps", "ConfigMap")
SERVICES = Resource("", "v1", "services", "Service")
API_SERVICES = Resource("apiregistration.k8s.io", "v1", "apiservices", "APIService", namespaced=False)
STORAGE_CLASSES = Resource("storage.k8s.io", "v1", "storageclasses", "StorageClass", namespaced=False)


@dataclass(frozen=True)
class Credentials:
    """Where kube-apiserver is and how to talk to it, from a kubeconfig with embedded data (what devcluster writes):
    a TLS context trusting the cluster CA, holding the client certificate if there is one, else a bearer header."""

    server: str
    tls: ssl.SSLContext
    headers: Mapping[str, str]

    @classmethod
    def from_kubeconfig(cls, path: Path) -> Credentials:
        config = yaml.safe_load(path.read_text())
        context = next(c["context"] for c in config["contexts"] if c["name"] == config["current-context"])
        cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == context["cluster"])
        user = next(u["user"] for u in config["users"] if u["name"] == context["user"])
        tls = ssl.create_default_context(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
        headers = {}
        if "client-certificate-data" in user:
            with tempfile.TemporaryDirectory() as scratch:  # ssl loads a chain only from files
                cert, key = Path(scratch) / "tls.crt", Path(scratch) / "tls.key"
                cert.write_bytes(base64.b64decode(user["client-certificate-data"]))
                key.write_bytes(base64.b64decode(user["client-key-data"]))
                tls.load_cert_chain(cert, key)
        else:
            headers["Authorization"] = f"Bearer {user['token']}"
        return cls(str(cluster["server"]), tls, headers)


class KubeApi:
    def __init__(self, client: httpx.AsyncClient, watch_client: httpx.AsyncClient) -> None:
        self._client = client
        self._watch_client = watch_client
        self.requests: collections.Counter[str] = collections.Counter()
        """Requests sent, by HTTP method and by "METHOD resource[/subresource]", for the simulator's stats line."""

    @classmethod
    def from_kubeconfig(cls, path: Path, *, max_connections: int = 16) -> KubeApi:
        """Client-certificate or token kubeconfigs with embedded data (what devcluster writes)."""
        credentials = Credentials.from_kubeconfig(path)
        tls, headers = credentials.tls, dict(credentials.headers)
        # HTTP/1.1 throughout: over HTTP/2 (one shared connection) kube-apiserver took up to twice the write rate,
        # but the simulator's start-up stalled now and then with no error; a pool of keep-alive connections is
        # steady. Each long-lived watch holds a connection of its own.
        client = httpx.AsyncClient(
            base_url=credentials.server,
            verify=tls,
            headers=headers,
            timeout=httpx.Timeout(30.0),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        )
        watch_client = httpx.AsyncClient(
            base_url=credentials.server,
            verify=tls,
            headers=headers,
            timeout=httpx.Timeout(30.0, read=None),
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=16),
        )
        return cls(client, watch_client)

    async def close(self) -> None:
        await self._client.aclose()
        await self._watch_client.aclose()

    async def get(self, resource: Resource, namespace: str | None, name: str) -> Body:
        return await self._request("GET", resource.path(namespace, name), resource.plural)

    async def list(self, resource: Resource, **params: str) -> Body:
        return await self._request("GET", resource.path(), resource.plural, params=params)

    async def create(self, resource: Resource, namespace: str | None, body: Mapping[str, Any]) -> Body:
        return await self._request("POST", resource.path(namespace), resource.plural, json=body)

    async def create_subresource(
        self, resource: Resource, namespace: str | None, name: str, subresource: str, body: Mapping[str, Any]
    ) -> Body:
        """POST to an object's subresource (a pod's `binding`)."""
        path = resource.path(namespace, name, subresource)
        return await self._request("POST", path, _label(resource, subresource), json=body)

    async def update(self, resource: Resource, body: Mapping[str, Any], *, subresource: str | None = None) -> Body:
        metadata = body["metadata"]
        return await self._request(
            "PUT",
            resource.path(metadata.get("namespace"), metadata["name"], subresource),
            _label(resource, subresource),
            json=body,
        )

    async def patch(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        patch: Any,
        *,
        subresource: str | None = None,
        kind: str = "merge",
        dry_run: bool = False,
    ) -> Body:
        content_type = {
            "merge": "application/merge-patch+json",
            "json": "application/json-patch+json",
        }[kind]
        return await self._request(
            "PATCH",
            resource.path(namespace, name, subresource),
            _label(resource, subresource),
            content=json.dumps(patch),
            headers={"Content-Type": content_type},
            params={"dryRun": "All"} if dry_run else None,
        )

    async def delete(
        self, resource: Resource, namespace: str | None, name: str, *, grace_seconds: int | None = None
    ) -> None:
        body: Body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
        if grace_seconds is not None:
            body["gracePeriodSeconds"] = grace_seconds
        await self._request("DELETE", resource.path(namespace, name), resource.plural, json=body)

    async def watch(self, resource: Resource, resource_version: str) -> AsyncIterator[Body]:
        """Watch events (`{"type", "object"}`) from `resource_version`, bookmarks included, until the server ends
        the stream (then list or watch again from the last version seen)."""
        params = {
            "watch": "true",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": "300",
        }
        async with self._watch_client.stream("GET", resource.path(), params=params) as response:
            if response.status_code != 200:
                await response.aread()
                raise _error(response)
            async for line in response.aiter_lines():
                if not line:
                    continue
                event = json.loads(line)
                if event.get("type") == "ERROR":
                    status = event.get("object", {})
                    raise _error_from(int(status.get("code", 500)), str(status.get("message", "")))
                yield event

    async def _request(self, method: str, path: str, label: str, **kwargs: Any) -> Body:
        self.requests[method] += 1
        self.requests[f"{method} {label}"] += 1
        response = await self._client.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise _error(response)
        if not response.content:
            return {}
        body: Body = response.json()
        return body


def _label(resource: Resource, subresource: str | None) -> str:
    return f"{resource.plural}/{subresource}" if subresource else resource.plural


def _error(response: httpx.Response) -> ApiError:
    try:
        message = str(response.json().get("message", response.text))
    except ValueError:
        message = response.text
    return _error_from(response.status_code, message)


def _error_from(status: int, message: str) -> ApiError:
    cls = {404: NotFound, 409: Conflict, 410: Gone}.get(status, ApiError)
    return cls(status, message)
