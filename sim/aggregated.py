"""Serving a simulated extension API server behind kube-apiserver's aggregation layer (kubevirt.md §4).

What virt-operator does for virt-api and the metrics-server manifest does for metrics-server, shared: a CA kept in a
Secret (so a restarted simulator keeps the same `caBundle`), a serving certificate for `<service>.<namespace>.svc`,
an ExternalName Service pointing at localhost, and one APIService per version. kube-apiserver authenticates and
authorises every caller, then proxies with its front-proxy client certificate and `X-Remote-User`/`X-Remote-Group`;
`front_proxy_only` trusts those headers only over a connection whose client certificate chains to the requestheader
CA (§4.4 step 4), and lets discovery, `version` and `healthz` through without one (§4.2: the aggregator's
availability probe comes without a client certificate).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import socket
import ssl
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from devcluster import pki
from sim import kubeapi
from sim.kubeapi import Body, KubeApi
from sim.kubevirt import rules

log = logging.getLogger("sim.aggregated")

PUBLIC_PATHS = ("", "version", "healthz")
"""What follows `/apis/<group>/<version>` on the routes anyone may call: discovery and the health endpoints."""


@dataclass(frozen=True)
class Registration:
    """Where an extension API server is registered: its group and versions, Service, CA Secret and labels."""

    group: str
    versions: tuple[str, ...]
    namespace: str
    service: str
    ca_secret: str
    ca_common_name: str
    service_labels: Mapping[str, str] = field(default_factory=dict)
    api_service_labels: Mapping[str, str] = field(default_factory=dict)
    group_priority_minimum: int = 1000
    version_priority: int = 15

    def discovery_group(self) -> dict[str, Any]:
        versions = [{"groupVersion": f"{self.group}/{v}", "version": v} for v in self.versions]
        return {"name": self.group, "versions": versions, "preferredVersion": versions[0]}


@contextlib.asynccontextmanager
async def serving(api: KubeApi, registration: Registration, app: web.Application, *, port: int) -> AsyncIterator[int]:
    """Serves `app` over TLS on 127.0.0.1:`port` (0: any free port), registered and Available; yields the port."""
    ca_key, ca_cert = await _ca(api, registration)
    service = f"{registration.service}.{registration.namespace}"
    server_key, server_cert = pki.issue(
        ca_key,
        ca_cert,
        common_name=f"{service}.svc",
        usage=ExtendedKeyUsageOID.SERVER_AUTH,
        dns_names=(f"{service}.svc", service, registration.service, "localhost"),
        ip_addresses=("127.0.0.1",),
    )
    auth = await api.get(kubeapi.CONFIG_MAPS, "kube-system", "extension-apiserver-authentication")
    requestheader_ca = auth.get("data", {}).get("requestheader-client-ca-file", "")
    if not requestheader_ca:
        raise RuntimeError("kube-apiserver publishes no requestheader CA: start it with the front-proxy flags")
    context = _tls_context(server_key, server_cert, requestheader_ca)

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    bound = int(listener.getsockname()[1])
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    try:
        await web.SockSite(runner, listener, ssl_context=context).start()
        await _register(api, registration, bound, ca_cert.public_bytes(serialization.Encoding.PEM))
        await _await_available(api, registration)
        yield bound
    finally:
        await runner.cleanup()


def front_proxy_only(registration: Registration, logger: logging.Logger) -> Middleware:
    """Middleware: 401 for a resource request without the front-proxy client certificate and caller headers."""

    @web.middleware
    async def authenticate(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.match_info.get("version", registration.versions[0]) not in registration.versions:
            raise web.HTTPNotFound()
        base = f"/apis/{registration.group}/{request.match_info.get('version', '')}"
        rest = request.path.removeprefix(base).strip("/") if request.path.startswith(base) else ""
        public = not request.path.startswith(base + "/") or rest in PUBLIC_PATHS
        peer = request.transport.get_extra_info("peercert") if request.transport else None
        user = request.headers.get("X-Remote-User", "")
        groups = request.headers.getall("X-Remote-Group", [])
        if not public and not (peer and user and groups):
            logger.warning(
                "refused %s %s: no front-proxy client certificate or caller headers", request.method, request.path
            )
            return web.Response(status=401, text="request is not authenticated: no front-proxy client certificate")
        if not public:
            logger.debug("%s %s by %s", request.method, request.path, user)
        return await handler(request)

    return authenticate


async def _ca(api: KubeApi, registration: Registration) -> tuple[Any, x509.Certificate]:
    await _ensure(api, kubeapi.NAMESPACES, None, {"metadata": {"name": registration.namespace}})
    try:
        secret = await api.get(kubeapi.SECRETS, registration.namespace, registration.ca_secret)
    except kubeapi.NotFound:
        ca_key, ca_cert = pki.self_signed_ca(registration.ca_common_name)
        key_pem = ca_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": registration.ca_secret, "namespace": registration.namespace},
            "type": "kubernetes.io/tls",
            "data": {"tls.crt": _b64(ca_cert.public_bytes(serialization.Encoding.PEM)), "tls.key": _b64(key_pem)},
        }
        try:
            await api.create(kubeapi.SECRETS, registration.namespace, secret)
        except kubeapi.Conflict:  # another simulator won the race: use its CA
            secret = await api.get(kubeapi.SECRETS, registration.namespace, registration.ca_secret)
    data = secret["data"]
    loaded = serialization.load_pem_private_key(base64.b64decode(data["tls.key"]), password=None)
    return loaded, x509.load_pem_x509_certificate(base64.b64decode(data["tls.crt"]))


async def _register(api: KubeApi, registration: Registration, port: int, ca_pem: bytes) -> None:
    namespace, name = registration.namespace, registration.service
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(registration.service_labels)},
        "spec": {
            "type": "ExternalName",
            "externalName": "localhost",
            "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
        },
    }
    await _apply(api, kubeapi.SERVICES, namespace, service)
    for version in registration.versions:
        api_service = {
            "apiVersion": "apiregistration.k8s.io/v1",
            "kind": "APIService",
            "metadata": {"name": f"{version}.{registration.group}", "labels": dict(registration.api_service_labels)},
            "spec": {
                "group": registration.group,
                "version": version,
                "service": {"namespace": namespace, "name": name, "port": port},
                "groupPriorityMinimum": registration.group_priority_minimum,
                "versionPriority": registration.version_priority,
                "caBundle": _b64(ca_pem),
            },
        }
        await _apply(api, kubeapi.API_SERVICES, None, api_service)


async def _await_available(api: KubeApi, registration: Registration) -> None:
    """kube-aggregator probes a changed APIService at once (§4.2); wait for it so callers never see a 503."""
    name = f"{registration.versions[0]}.{registration.group}"
    available: Body = {}
    for _ in range(150):
        service = await api.get(kubeapi.API_SERVICES, None, name)
        available = rules.condition(service, "Available") or {}
        if available.get("status") == "True":
            return
        await asyncio.sleep(0.2)
    log.warning("APIService %s is not Available yet: %s", name, available.get("message", ""))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _tls_context(key: Any, cert: x509.Certificate, client_ca_pem: str) -> ssl.SSLContext:
    """The serving certificate; client certificates verified when given (§4.2: probes come without one)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.verify_mode = ssl.CERT_OPTIONAL
    context.load_verify_locations(cadata=client_ca_pem)
    with tempfile.TemporaryDirectory() as scratch:  # ssl loads a chain only from files
        cert_path, key_path = Path(scratch) / "tls.crt", Path(scratch) / "tls.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        context.load_cert_chain(cert_path, key_path)
    return context


async def _ensure(api: KubeApi, resource: kubeapi.Resource, namespace: str | None, body: Body) -> None:
    with contextlib.suppress(kubeapi.Conflict):
        await api.create(resource, namespace, {"apiVersion": resource.api_version, "kind": resource.kind, **body})


async def _apply(api: KubeApi, resource: kubeapi.Resource, namespace: str | None, body: Body) -> None:
    """Create, or replace the spec of what a previous run left (level-triggered: a restart may pick a new port)."""
    try:
        await api.create(resource, namespace, body)
    except kubeapi.Conflict:
        current = await api.get(resource, namespace, body["metadata"]["name"])
        current["spec"] = {**current.get("spec", {}), **body["spec"]}
        await api.update(resource, current)
