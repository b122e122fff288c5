"""Tenants own namespaces: a namespace labelled `novasphere.dev/tenant=<id>` belongs to tenant `<id>`, and the one also
labelled `novasphere.dev/default-namespace=true` is where its creations go by default.

The namespaces come from an informer, so a label change applies within a moment, without a restart. A namespace
that is not the caller's tenant's is reported exactly like one that does not exist (no existence leak).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from server import errors, names
from server.auth import Caller
from server.kube import namespaces
from server.kube.client import KubeClient
from server.kube.informer import Kind
from server.kube.namespaces import TENANT_LABEL
from server.lookups import Lookups

DEFAULT_NAMESPACE_LABEL = "novasphere.dev/default-namespace"
NAMESPACES = namespaces.TENANT_NAMESPACES


class Tenancy:
    """Which namespaces each tenant owns; fed by the namespace informer (an `informer.Handler`)."""

    def __init__(self, kube: KubeClient | None, lookups: Lookups | None = None) -> None:
        """`kube` None: what the informer holds only (unit tests)."""
        self._kube = kube
        self._lookups = lookups or Lookups()
        self._labels: dict[str, Mapping[str, str]] = {}
        self._by_tenant: dict[str, frozenset[str]] = {}
        self._default: dict[str, str] = {}
        self.synced = False
        self.listeners: list[Callable[[], None]] = []
        """Told after every change of which namespaces a tenant owns."""

    def namespaces(self, caller: Caller) -> frozenset[str]:
        return self._by_tenant.get(caller.tenant, frozenset())

    def tenants(self) -> dict[str, tuple[frozenset[str], str]]:
        """Every tenant with its namespaces and default namespace ("" if none is marked)."""
        return {tenant: (spaces, self._default.get(tenant, "")) for tenant, spaces in self._by_tenant.items()}

    def owner(self, namespace: str) -> str:
        """The tenant owning `namespace`, as the informer last saw it ("" for none)."""
        return self._labels.get(namespace, {}).get(TENANT_LABEL, "")

    async def scope(self, caller: Caller, namespace: str) -> frozenset[str]:
        """The namespaces a list or watch covers: `namespace` if given (it must be the tenant's), else all of them."""
        if not namespace:
            return self.namespaces(caller)
        names.check_namespace("namespace", namespace)
        await self._check_owned(caller, namespace)
        return frozenset({namespace})

    async def namespace_for(self, caller: Caller, namespace: str, *, field: str = "namespace") -> str:
        """The one namespace a call on a single Wukong uses: `namespace` if given, else the tenant's default."""
        if not namespace:
            default = self._default.get(caller.tenant) or await self._default_not_seen_yet(caller)
            if default is None:
                raise errors.InvalidArgument.field(
                    field,
                    f"is required: tenant '{caller.tenant}' has no default namespace (a namespace labelled "
                    f"{DEFAULT_NAMESPACE_LABEL}=true)",
                )
            return default
        names.check_namespace(field, namespace)
        await self._check_owned(caller, namespace)
        return namespace

    async def _default_not_seen_yet(self, caller: Caller) -> str | None:
        kube = self._kube
        if kube is None:
            return None
        selector = f"{TENANT_LABEL}={caller.tenant},{DEFAULT_NAMESPACE_LABEL}=true"

        async def fetch() -> str | None:
            return next(iter(await namespaces.names_labelled(kube, selector)), None)

        return await self._lookups.unseen("default-namespace", caller.tenant, client=caller.address, fetch=fetch)

    async def _check_owned(self, caller: Caller, namespace: str) -> None:
        """The informer knows; for a namespace it has not seen (created a moment ago), kube-apiserver does."""
        if namespace in self.namespaces(caller):
            return
        kube = self._kube
        found = None
        if kube is not None:

            async def fetch() -> dict[str, Any] | None:
                return await namespaces.get(kube, namespace)

            found = await self._lookups.unseen("namespace", namespace, client=caller.address, fetch=fetch)
        metadata = (found or {}).get("metadata") or {}
        owned = (metadata.get("labels") or {}).get(TENANT_LABEL) == caller.tenant
        if not owned or metadata.get("deletionTimestamp"):
            raise errors.NamespaceNotFound(namespace)

    # informer.Handler
    def replace(self, kind: Kind, items: list[dict[str, Any]], resource_version: int) -> None:
        self._labels = {item["metadata"]["name"]: item["metadata"].get("labels") or {} for item in items}
        self._reindex()
        self.synced = True

    def apply(self, kind: Kind, event_type: str, item: dict[str, Any], resource_version: int) -> None:
        name = item["metadata"]["name"]
        if event_type == "DELETED" or (item["metadata"].get("deletionTimestamp")):
            self._labels.pop(name, None)
        else:
            self._labels[name] = item["metadata"].get("labels") or {}
        self._reindex()

    def progress(self, kind: Kind, resource_version: int) -> None:
        pass

    def _reindex(self) -> None:
        by_tenant: dict[str, set[str]] = {}
        default: dict[str, str] = {}
        for namespace, labels in sorted(self._labels.items()):
            tenant = labels.get(TENANT_LABEL)
            if not tenant:
                continue
            by_tenant.setdefault(tenant, set()).add(namespace)
            if labels.get(DEFAULT_NAMESPACE_LABEL) == "true":
                default.setdefault(tenant, namespace)  # several marked: the first by name, deterministically
        self._by_tenant = {tenant: frozenset(spaces) for tenant, spaces in by_tenant.items()}
        self._default = default
        for listener in self.listeners:
            listener()
