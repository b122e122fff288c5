"""A tenant of its own for a fuzzing or load-test run, whose per-user rate limits the API server raises (otherwise most
generated cases only meet RATE_LIMITED): start the API server with `FUZZ_ENV`, then `with fuzz_tenant(kube) as t:`
log in as `t.username` / `t.password` (an operator: every vm:* permission, task:query, apikey:manage) and send
everything to `t.namespace` (its default namespace) or `t.spare_namespace`. Envoy's per-address limit
(SidecarSettings.requests_per_second_per_ip) is not raised: keep the run under it."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import kubernetes.client

from devcluster import accounts
from tests import kube_helpers

FUZZ_TENANT = "fuzz"
FUZZ_FACTOR = 100
FUZZ_ENV = {"NOVASPHERE_RATE_LIMIT_FACTORS": f"{FUZZ_TENANT}={FUZZ_FACTOR}"}
"""The API server setting that raises the fuzz tenant's limits (server/auth/limits.py)."""
PASSWORD = "fuzzing is a kind of testing"


@dataclass(frozen=True)
class FuzzTenant:
    tenant: str
    namespace: str
    """The tenant's default namespace (where creations without `namespace` go)."""
    spare_namespace: str
    username: str
    password: str


@contextlib.contextmanager
def fuzz_tenant(kube: kubernetes.client.ApiClient) -> Iterator[FuzzTenant]:
    """Two fresh namespaces of tenant `fuzz` (the first its default) and an operator of it; all gone afterwards."""
    suffix = uuid.uuid4().hex[:8]
    tenant_label = {"novasphere.dev/tenant": FUZZ_TENANT}
    made = FuzzTenant(FUZZ_TENANT, f"fuzz-{suffix}", f"fuzz-{suffix}-b", f"fuzzer-{suffix}", PASSWORD)
    kube_helpers.create_namespace(kube, made.namespace, {**tenant_label, "novasphere.dev/default-namespace": "true"})
    kube_helpers.create_namespace(kube, made.spare_namespace, tenant_label)
    accounts.create_user(kube, made.username, PASSWORD, tenant=FUZZ_TENANT, role="operator")
    try:
        yield made
    finally:
        accounts.unbind(kube, made.username)
        kube_helpers.delete_namespace(kube, made.namespace)
        kube_helpers.delete_namespace(kube, made.spare_namespace)
