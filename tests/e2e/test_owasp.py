"""The OWASP API Security Top 10 (2023), one class per risk, against the real stack: an API server that refuses
anonymous calls, behind its own Envoy (TLS), on the session's control plane and simulator. Mostly REST through Envoy,
as mobile and desktop clients meet it; gRPC straight to the API server where it is the natural door (logins that must
not spend Envoy's per-address login budget, streams).

Tenants: `tests` (the caller's, namespace `home`) and `owasp-other` (namespace `away`, with a VM, a task and an
operator of its own). Envoy's own replies (no route, body too large, its login limit) carry the API's error shape: a
`google.rpc.Status` with the right code and an ErrorInfo reason (ROUTE_NOT_FOUND, REQUEST_TOO_LARGE, RATE_LIMITED).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import math
import pathlib
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import grpc
import httpx
import jwt
import kubernetes.client
import pytest
from google.api import annotations_pb2
from google.protobuf import descriptor_pb2

from devcluster import accounts, pki, procs
from devcluster import stack as devstack
from novasphere.v1 import auth_service_pb2 as auth_pb2
from novasphere.v1 import wukong_service_pb2 as service_pb2
from novasphere.v1.auth_service_pb2_grpc import AuthServiceStub
from novasphere.v1.wukong_service_pb2_grpc import WukongServiceStub
from novasphere_envoy import local_http
from server.auth.limits import MAX_STREAMS_PER_USER, RATES
from server.paging import MAX_PAGE_SIZE
from server.tasks.operations import BATCH_MAX
from server.wukongs.selectors import MAX_TEXT
from sim import faults
from tests import kube_helpers
from tests.conftest import ALLOWED_ORIGIN, TENANT, TENANT_LABELS, fronted_api
from tests.e2e.test_auth import PASSWORD, SECURE_ENV, _part, _signing_key
from tests.e2e.test_console import TICKET
from tests.e2e.test_tasks import annotate, running_wukong
from tests.e2e.test_wukong_api import SPEC, stored
from tests.fuzz_tenant import FUZZ_ENV, fuzz_tenant
from tests.status_helpers import details_of

OTHER_TENANT = "owasp-other"
PUBLIC_RPCS = {
    "Login": (400, "INVALID_ARGUMENT"),
    "Refresh": (400, "INVALID_ARGUMENT"),
    "Logout": (401, "UNAUTHENTICATED"),
}
"""Callable without credentials (DESIGN.md §5); Logout needs only the refresh token it ends."""


@dataclass(frozen=True)
class Stack:
    http: httpx.Client
    """REST through this module's Envoy (TLS), without credentials of its own."""
    auth: AuthServiceStub
    """Straight to the API server: logins here leave Envoy's per-address login budget to the tests of it."""
    wukongs: WukongServiceStub
    envoy: devstack.Envoy
    api: devstack.ApiServer
    tls: pki.EdgePki
    home: str
    away: str


@dataclass(frozen=True)
class Theirs:
    """The other tenant's VM, by name and UID, and a task of it."""

    name: str
    uid: str
    task_id: str


@pytest.fixture(scope="module")
def owasp(
    stack: devstack.Stack, kube: kubernetes.client.ApiClient, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    env = {**SECURE_ENV, **FUZZ_ENV, "NOVASPHERE_PROMETHEUS_URL": stack.prometheus_url}
    home, away = f"o-{uuid.uuid4().hex[:8]}", f"x-{uuid.uuid4().hex[:8]}"
    kube_helpers.create_namespace(kube, home, TENANT_LABELS)
    kube_helpers.create_namespace(kube, away, {"novasphere.dev/tenant": OTHER_TENANT})
    try:
        with (
            fronted_api(stack, tmp_path_factory.mktemp("owasp"), env, cors_allowed_origins=(ALLOWED_ORIGIN,)) as (
                api,
                envoy,
            ),
            grpc.insecure_channel(api.target) as channel,
            envoy.edge.http_client() as http,
        ):
            yield Stack(http, AuthServiceStub(channel), WukongServiceStub(channel), envoy, api, stack.tls, home, away)
    finally:
        kube_helpers.delete_namespace(kube, home)
        kube_helpers.delete_namespace(kube, away)


@pytest.fixture(scope="module")
def tokens(owasp: Stack, kube: kubernetes.client.ApiClient) -> Iterator[dict[str, str]]:
    """Access tokens by role: `operator` and `viewer` of the tests' tenant, `other` (an operator of the other one)."""
    made = {role: f"ow-{role}-{uuid.uuid4().hex[:8]}" for role in ("operator", "viewer", "other")}
    for role, name in made.items():
        tenant = OTHER_TENANT if role == "other" else TENANT
        accounts.create_user(kube, name, PASSWORD, tenant=tenant, role="operator" if role == "other" else role)
    yield {role: login(owasp, name) for role, name in made.items()}
    for name in made.values():
        accounts.unbind(kube, name)


@pytest.fixture(scope="module")
def theirs(owasp: Stack, tokens: dict[str, str], kube: kubernetes.client.ApiClient) -> Theirs:
    spec = {**SPEC, "startStrategy": {"autoStart": False}}
    created = kube_helpers.create_wukong(kube, owasp.away, "secret-vm", spec)
    started = owasp.http.post(
        "/api/v1/wukongs/secret-vm/start", json={"namespace": owasp.away}, headers=bearer(tokens["other"])
    )
    assert started.status_code == 200, started.text
    return Theirs("secret-vm", created["metadata"]["uid"], started.json()["id"])


@pytest.fixture(scope="module")
def mine(owasp: Stack, grpc_direct: WukongServiceStub) -> str:
    """A running VM of the tests' tenant (made by the session stack's development identity, of the same tenant)."""
    running_wukong(grpc_direct, owasp.home, "mine")
    return "mine"


@contextlib.contextmanager
def fresh_user(owasp: Stack, kube: kubernetes.client.ApiClient, role: str) -> Iterator[str]:
    """A new user of the tests' tenant (rate limits of its own); its access token."""
    name = f"ow-{role}-{uuid.uuid4().hex[:8]}"
    accounts.create_user(kube, name, PASSWORD, tenant=TENANT, role=role)
    try:
        yield login(owasp, name)
    finally:
        accounts.unbind(kube, name)


def login(owasp: Stack, username: str, password: str = PASSWORD) -> str:
    """Logs in once the replica has seen the new user; each attempt from an address of its own, so that the failures
    before it has do not lock the name out (5 from one address would)."""
    tries = iter(range(1, 1000))

    def attempt() -> str | None:
        address = (("x-novasphere-client-address", f"198.51.100.{next(tries) % 250}"),)
        try:
            request = auth_pb2.LoginRequest(username=username, password=password)
            return owasp.auth.Login(request, metadata=address).access_token
        except grpc.RpcError as error:
            if error.code() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
                return None  # the replica has not seen the new user yet
            raise

    return kube_helpers.eventually(attempt, timeout=20, what=f"login of {username}")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def error_of(response: httpx.Response) -> tuple[int, str]:
    """The HTTP status and the ErrorInfo reason of a `google.rpc.Status` answer ("" without one)."""
    assert response.headers["content-type"] == "application/json", response.text
    details = response.json().get("details") or []
    reasons = [d["reason"] for d in details if d["@type"].endswith("google.rpc.ErrorInfo")]
    return response.status_code, reasons[0] if reasons else ""


def violations_of(response: httpx.Response) -> dict[str, str]:
    details = response.json().get("details") or []
    found = [d for d in details if d["@type"].endswith("google.rpc.BadRequest")]
    return {v["field"]: v["description"] for bad in found for v in bad["fieldViolations"]}


def is_web_console(response: httpx.Response) -> bool:
    """The web console's index.html, as it answers every page path (its deep-link fallback)."""
    return (
        response.status_code == 200
        and response.headers["content-type"].startswith("text/html")
        and "csp-nonce" in response.text
        and "default-src 'self'" in response.headers["content-security-policy"]
    )


def http_rules() -> list[tuple[str, str, str, str]]:
    """(service, method, HTTP verb, path template) of every `google.api.http` rule, additional bindings included."""
    files = descriptor_pb2.FileDescriptorSet.FromString(devstack.DESCRIPTOR.read_bytes())
    rules = []
    for file in files.file:
        for service in file.service if file.package == "novasphere.v1" else ():
            for method in service.method:
                top = method.options.Extensions[annotations_pb2.http]
                for rule in (top, *top.additional_bindings):
                    verb = rule.WhichOneof("pattern")
                    if verb and verb != "custom":
                        rules.append((service.name, method.name, verb.upper(), getattr(rule, verb)))
    return rules


def concrete(template: str) -> str:
    """A path of the template, every `{field}` filled in."""
    parts = template.split("{")
    return parts[0] + "".join("x" + part.partition("}")[2] for part in parts[1:])


class TestApi1ObjectLevelAuthorization:
    """Another tenant's VM, by name or UID, and everything under it is NOT_FOUND: the same answer as for nothing."""

    def test_their_vm_by_name_in_their_namespace_or_mine_is_not_found(
        self, owasp: Stack, tokens: dict[str, str], theirs: Theirs
    ) -> None:
        me = bearer(tokens["operator"])
        in_theirs = owasp.http.get(f"/api/v1/wukongs/{theirs.name}", params={"namespace": owasp.away}, headers=me)
        assert error_of(in_theirs) == (404, "NAMESPACE_NOT_FOUND")
        in_mine = owasp.http.get(f"/api/v1/wukongs/{theirs.name}", params={"namespace": owasp.home}, headers=me)
        assert error_of(in_mine) == (404, "WUKONG_NOT_FOUND")
        listed = owasp.http.get("/api/v1/wukongs", params={"namespace": owasp.away}, headers=me)
        assert error_of(listed) == (404, "NAMESPACE_NOT_FOUND")

    def test_their_vm_by_uid_is_not_found_for_reads_and_operations(
        self, owasp: Stack, tokens: dict[str, str], theirs: Theirs
    ) -> None:
        me = bearer(tokens["operator"])
        assert error_of(owasp.http.get(f"/api/v1/vms/{theirs.uid}", headers=me)) == (404, "WUKONG_NOT_FOUND")
        stop = owasp.http.post(f"/api/v1/vms/{theirs.uid}/stop", json={}, headers=me)
        assert error_of(stop) == (404, "WUKONG_NOT_FOUND")
        deleted = owasp.http.delete(f"/api/v1/vms/{theirs.uid}", headers=me)
        assert error_of(deleted) == (404, "WUKONG_NOT_FOUND")
        metrics = owasp.http.get(f"/api/v1/vms/{theirs.uid}/metrics", headers=me)
        assert error_of(metrics) == (404, "WUKONG_NOT_FOUND")
        # the owner sees it: the refusals above are tenancy, not a missing VM
        assert owasp.http.get(f"/api/v1/vms/{theirs.uid}", headers=bearer(tokens["other"])).status_code == 200

    def test_their_tasks_consoles_access_services_and_metrics_are_not_found(
        self, owasp: Stack, tokens: dict[str, str], theirs: Theirs
    ) -> None:
        me = bearer(tokens["operator"])
        assert error_of(owasp.http.get(f"/api/v1/tasks/{theirs.task_id}", headers=me)) == (404, "TASK_NOT_FOUND")
        cancel = owasp.http.post(f"/api/v1/tasks/{theirs.task_id}/cancel", json={}, headers=me)
        assert error_of(cancel) == (404, "TASK_NOT_FOUND")
        listed = owasp.http.get("/api/v1/tasks", params={"namespace": owasp.away}, headers=me)
        assert error_of(listed) == (404, "NAMESPACE_NOT_FOUND")
        where = {"namespace": owasp.away}
        for method, path, body in (
            ("POST", "console", {**where, "protocol": "SERIAL"}),
            ("GET", "console/status", None),
            ("GET", "console/sessions", None),
            ("POST", "console/disconnect", where),
            ("GET", "access-services", None),
            ("POST", "access-services", {**where, "serviceType": "NodePort", "ports": [{"port": 22}]}),
            ("DELETE", "access-services/ssh", None),
            ("GET", "metrics", None),
        ):
            response = owasp.http.request(
                method,
                f"/api/v1/wukongs/{theirs.name}/{path}",
                params=where if body is None else None,
                json=body,
                headers=me,
            )
            assert error_of(response) == (404, "NAMESPACE_NOT_FOUND"), (method, path, response.text)


class TestApi2BrokenAuthentication:
    """Tokens that are tampered, unsigned, expired, revoked or from another key are UNAUTHENTICATED; guessing
    passwords locks the name out."""

    def test_bad_tokens_are_refused_over_rest(
        self, owasp: Stack, tokens: dict[str, str], kube: kubernetes.client.ApiClient
    ) -> None:
        good = tokens["viewer"]
        head, payload, signature = good.split(".")
        claims = jwt.decode(good, options={"verify_signature": False})
        kid = jwt.get_unverified_header(good)["kid"]
        past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=1)
        bad = {
            "tampered signature": f"{head}.{payload}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}",
            "other tenant claimed": f"{head}.{_part(json.dumps({**claims, 'tid': OTHER_TENANT}).encode())}.{signature}",
            "alg none": f"{_part(json.dumps({'alg': 'none', 'kid': kid}).encode())}.{payload}.",
            "expired": jwt.encode(
                {**claims, "iat": past - datetime.timedelta(minutes=15), "nbf": past, "exp": past},
                _signing_key(kube, kid),
                algorithm="ES256",
                headers={"kid": kid},
            ),
            "garbage": "not-a-token",
        }
        for why, token in bad.items():
            response = owasp.http.get("/api/v1/auth/me", headers=bearer(token))
            assert error_of(response) == (401, "UNAUTHENTICATED"), why
        unknown_key = owasp.http.get("/api/v1/auth/me", headers={"X-API-Key": "nsk_" + "A" * 43})
        assert error_of(unknown_key) == (401, "UNAUTHENTICATED")
        assert error_of(owasp.http.get("/api/v1/wukongs")) == (401, "UNAUTHENTICATED")

    def test_a_logged_out_sessions_token_is_refused(self, owasp: Stack, kube: kubernetes.client.ApiClient) -> None:
        name = f"ow-out-{uuid.uuid4().hex[:8]}"
        accounts.create_user(kube, name, PASSWORD, tenant=TENANT, role="viewer")
        try:
            login(owasp, name)  # the replica knows the user now
            grant = owasp.auth.Login(auth_pb2.LoginRequest(username=name, password=PASSWORD))
            assert owasp.http.get("/api/v1/auth/me", headers=bearer(grant.access_token)).status_code == 200
            out = owasp.http.post(
                "/api/v1/auth/logout",
                json={"refreshToken": grant.refresh_token},
                headers=bearer(grant.access_token),
            )
            assert out.status_code == 200, out.text

            def refused() -> bool | None:
                response = owasp.http.get("/api/v1/auth/me", headers=bearer(grant.access_token))
                return True if error_of(response) == (401, "UNAUTHENTICATED") else None

            kube_helpers.eventually(refused, timeout=10, what="the logged-out token refused")
        finally:
            accounts.unbind(kube, name)

    def test_guessing_a_password_locks_the_name_out(self, owasp: Stack, kube: kubernetes.client.ApiClient) -> None:
        name = f"ow-guess-{uuid.uuid4().hex[:8]}"
        accounts.create_user(kube, name, PASSWORD, tenant=TENANT, role="viewer")
        try:
            login(owasp, name)
            for _ in range(5):
                with pytest.raises(grpc.RpcError) as failed:
                    owasp.auth.Login(auth_pb2.LoginRequest(username=name, password="guess"))
                assert details_of(failed.value).reason == "LOGIN_FAILED"
            right = owasp.http.post("/api/v1/auth/login", json={"username": name, "password": PASSWORD})
            assert error_of(right) == (429, "TOO_MANY_LOGIN_ATTEMPTS")
        finally:
            accounts.unbind(kube, name)


class TestApi3PropertyLevelAuthorization:
    """Output-only properties sent by a client are ignored, platform labels refused, and no answer carries a secret."""

    def test_status_uid_and_etag_sent_on_create_are_ignored(
        self, owasp: Stack, tokens: dict[str, str], kube: kubernetes.client.ApiClient
    ) -> None:
        body = {
            "name": "forged",
            "uid": "00000000-0000-0000-0000-000000000000",
            "etag": "1",
            "status": {"powerState": "RUNNING", "ip": "10.0.0.1"},
            "availableActions": ["DELETE"],
            "createTime": "2000-01-01T00:00:00Z",
            "spec": {**SPEC, "startStrategy": {"autoStart": False}},
        }
        created = owasp.http.post(
            "/api/v1/wukongs", params={"namespace": owasp.home}, json=body, headers=bearer(tokens["operator"])
        )
        assert created.status_code == 200, created.text
        kept = stored(kube, owasp.home, "forged")
        assert created.json()["uid"] == kept["metadata"]["uid"] != body["uid"]
        assert "status" not in kept or kept["status"].get("ip") != "10.0.0.1"
        assert created.json()["status"]["powerState"] != "RUNNING"

    def test_platform_labels_are_refused_on_create_and_update(
        self, owasp: Stack, tokens: dict[str, str], mine: str
    ) -> None:
        me = bearer(tokens["operator"])
        for key in ("novasphere.dev/tenant", "kubevirt.io/vm", "x.novasphere.dev/owner"):
            body = {"name": "relabelled", "labels": {key: OTHER_TENANT}, "spec": SPEC}
            created = owasp.http.post("/api/v1/wukongs", params={"namespace": owasp.home}, json=body, headers=me)
            assert error_of(created) == (400, "INVALID_ARGUMENT")
            assert violations_of(created) == {
                f"labels[{key}]": f"the prefix '{key.rpartition('/')[0]}/' is reserved for the platform; choose another"
            }
        updated = owasp.http.patch(
            f"/api/v1/wukongs/{mine}",
            params={"updateMask": "labels"},
            json={"namespace": owasp.home, "labels": {"novasphere.dev/tenant": OTHER_TENANT}},
            headers=me,
        )
        assert error_of(updated) == (400, "INVALID_ARGUMENT")
        assert list(violations_of(updated)) == ["labels[novasphere.dev/tenant]"]

    def test_output_only_fields_cannot_be_named_in_an_update_mask(
        self, owasp: Stack, tokens: dict[str, str], mine: str
    ) -> None:
        for mask in ("status", "uid", "spec.password_hash", "metadata.owner_references"):
            updated = owasp.http.patch(
                f"/api/v1/wukongs/{mine}",
                params={"updateMask": mask},
                json={"namespace": owasp.home, "status": {"powerState": "STOPPED"}},
                headers=bearer(tokens["operator"]),
            )
            assert error_of(updated) == (400, "INVALID_ARGUMENT"), mask
            assert list(violations_of(updated)) == ["updateMask"], mask

    def test_owner_references_are_no_field_of_the_api_and_ignored(
        self, owasp: Stack, tokens: dict[str, str], kube: kubernetes.client.ApiClient
    ) -> None:
        body = {
            "name": "owned",
            "ownerReferences": [{"apiVersion": "v1", "kind": "Namespace", "name": "kube-system", "uid": "x"}],
            "metadata": {"ownerReferences": [{"apiVersion": "v1", "kind": "Namespace", "name": "x", "uid": "x"}]},
            "spec": {**SPEC, "startStrategy": {"autoStart": False}},
        }
        response = owasp.http.post(
            "/api/v1/wukongs", params={"namespace": owasp.home}, json=body, headers=bearer(tokens["operator"])
        )
        assert response.status_code == 200, response.text
        kept = stored(kube, owasp.home, "owned")
        assert "ownerReferences" not in kept["metadata"]
        assert "ownerReferences" not in response.text

    def test_a_cloud_init_password_is_hashed_and_never_answered(
        self, owasp: Stack, tokens: dict[str, str], kube: kubernetes.client.ApiClient
    ) -> None:
        secret = f"S3cret-{uuid.uuid4().hex}"
        spec = {**SPEC, "startStrategy": {"autoStart": False}, "cloudInitUser": {"name": "ada", "password": secret}}
        me = bearer(tokens["operator"])
        created = owasp.http.post(
            "/api/v1/wukongs", params={"namespace": owasp.home}, json={"name": "pw", "spec": spec}, headers=me
        )
        assert created.status_code == 200, created.text
        read = owasp.http.get("/api/v1/wukongs/pw", params={"namespace": owasp.home}, headers=me)
        listed = owasp.http.get("/api/v1/wukongs", params={"namespace": owasp.home}, headers=me)
        kept = stored(kube, owasp.home, "pw")
        password_hash = kept["spec"]["cloudInitUser"]["passwordHash"]
        assert password_hash.startswith("$6$")
        for answer in (created, read, listed):
            assert secret not in answer.text
            assert password_hash not in answer.text

    def test_api_keys_and_sessions_are_listed_without_their_secrets(self, owasp: Stack, tokens: dict[str, str]) -> None:
        me = bearer(tokens["operator"])
        made = owasp.http.post("/api/v1/auth/api-keys", json={"name": "ci", "permissions": ["vm:query"]}, headers=me)
        assert made.status_code == 200, made.text
        key = made.json()["key"]
        listed = owasp.http.get("/api/v1/auth/api-keys", headers=me)
        sessions = owasp.http.get("/api/v1/auth/sessions", headers=me)
        myself = owasp.http.get("/api/v1/auth/me", headers=me)
        for answer in (listed, sessions, myself):
            assert answer.status_code == 200, answer.text
            assert key not in answer.text
            assert key.partition("_")[2][8:] not in answer.text
            assert tokens["operator"] not in answer.text
            assert "passwordHash" not in answer.text


class TestApi4ResourceConsumption:
    """Every unbounded input has a bound, and crossing it is refused before any work."""

    def test_page_size_selector_and_batch_have_bounds(self, owasp: Stack, tokens: dict[str, str]) -> None:
        me = bearer(tokens["viewer"])
        big_page = owasp.http.get("/api/v1/wukongs", params={"pageSize": MAX_PAGE_SIZE + 1}, headers=me)
        assert error_of(big_page) == (400, "INVALID_ARGUMENT")
        assert list(violations_of(big_page)) == ["pageSize"]
        long_selector = owasp.http.get("/api/v1/wukongs", params={"labelSelector": "a" * (MAX_TEXT + 1)}, headers=me)
        assert error_of(long_selector) == (400, "INVALID_ARGUMENT")
        assert violations_of(long_selector) == {
            "labelSelector": f"is {MAX_TEXT + 1} characters long; at most {MAX_TEXT}"
        }
        names = [f"v{n}" for n in range(BATCH_MAX + 1)]
        batch = owasp.http.post(
            "/api/v1/wukongs:batch",
            json={"operation": "STOP", "namespace": owasp.home, "names": names, "validateOnly": True},
            headers=bearer(tokens["operator"]),
        )
        assert error_of(batch) == (400, "INVALID_ARGUMENT")
        assert violations_of(batch) == {"names": f"at most {BATCH_MAX} names per batch"}

    def test_a_huge_bad_value_is_refused_without_echoing_it(self, owasp: Stack, tokens: dict[str, str]) -> None:
        """Under the body limit but far over any header's: the refusal quotes a bounded part of it (echoed whole,
        it failed Envoy's connection to the API server: a 502 here, and for every call on that connection)."""
        body = {"name": "big", "spec": {**SPEC, "sshKeySecret": "k" * 500_000}}
        response = owasp.http.post(
            "/api/v1/wukongs", params={"namespace": owasp.home}, json=body, headers=bearer(tokens["operator"])
        )
        assert error_of(response) == (400, "INVALID_ARGUMENT")
        assert len(response.content) < 4096

    def test_a_body_over_a_mebibyte_is_413_before_the_api_server(self, owasp: Stack, tokens: dict[str, str]) -> None:
        body = {"name": "big", "labels": {"pad": "x"}, "spec": {**SPEC, "sshKeySecret": "k" * (1 << 20)}}
        response = owasp.http.post(
            "/api/v1/wukongs", params={"namespace": owasp.home}, json=body, headers=bearer(tokens["operator"])
        )
        assert error_of(response) == (413, "REQUEST_TOO_LARGE")

    def test_one_user_holds_a_bounded_number_of_streams(self, owasp: Stack, tokens: dict[str, str], mine: str) -> None:
        auth = (("authorization", f"Bearer {tokens['viewer']}"),)
        request = service_pb2.WatchWukongRequest(namespace=owasp.home, name=mine)
        held = [owasp.wukongs.WatchWukong(request, metadata=auth, timeout=60) for _ in range(MAX_STREAMS_PER_USER)]
        try:
            assert all(next(stream).wukong.name == mine for stream in held)
            with pytest.raises(grpc.RpcError) as refused:
                next(owasp.wukongs.WatchWukong(request, metadata=auth, timeout=60))
            assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert details_of(refused.value).reason == "RATE_LIMITED"
        finally:
            for stream in held:
                stream.cancel()


class TestApi5FunctionLevelAuthorization:
    """Every administration RPC is refused to an operator and to an API key (keys never hold admin permissions)."""

    def test_every_admin_route_is_permission_denied_to_operators_and_api_keys(
        self, owasp: Stack, tokens: dict[str, str]
    ) -> None:
        me = bearer(tokens["operator"])
        made = owasp.http.post("/api/v1/auth/api-keys", json={"name": "adm", "permissions": ["vm:query"]}, headers=me)
        assert made.status_code == 200, made.text
        routes = [(verb, path) for service, _, verb, path in http_rules() if service == "AdminService"]
        assert len(routes) == 13
        for who, headers in (("operator", me), ("API key", {"X-API-Key": made.json()["key"]})):
            for verb, template in routes:
                response = owasp.http.request(
                    verb, concrete(template), json={} if verb in ("POST", "PUT", "PATCH") else None, headers=headers
                )
                assert error_of(response) == (403, "PERMISSION_DENIED"), (who, verb, template, response.text)

    def test_an_api_key_cannot_be_made_with_an_admin_permission(self, owasp: Stack, tokens: dict[str, str]) -> None:
        made = owasp.http.post(
            "/api/v1/auth/api-keys",
            json={"name": "escalate", "permissions": ["user:manage"]},
            headers=bearer(tokens["operator"]),
        )
        assert error_of(made) == (400, "INVALID_ARGUMENT")
        assert list(violations_of(made)) == ["permissions"]


class TestApi6SensitiveBusinessFlows:
    """Console links, creations and logins are rate-limited; a tenant raised for fuzzing is not, and only it."""

    def test_console_links_are_limited_per_user(
        self, owasp: Stack, kube: kubernetes.client.ApiClient, mine: str
    ) -> None:
        burst = RATES["/novasphere.v1.ConsoleService/CreateConsoleSession"].burst
        with fresh_user(owasp, kube, "operator") as token:
            answers = [
                owasp.http.post(
                    "/api/v1/wukongs/nothing-here/console", json={"namespace": owasp.home}, headers=bearer(token)
                ).status_code
                for _ in range(burst)
            ]
            assert answers == [404] * burst
            limited = owasp.http.post(
                f"/api/v1/wukongs/{mine}/console", json={"namespace": owasp.home}, headers=bearer(token)
            )
        assert error_of(limited) == (429, "RATE_LIMITED")
        retry = [d for d in limited.json()["details"] if d["@type"].endswith("google.rpc.RetryInfo")]
        assert retry[0]["retryDelay"].endswith("s")

    def test_creations_are_limited_per_user_and_a_fuzz_tenant_gets_more(
        self, owasp: Stack, kube: kubernetes.client.ApiClient
    ) -> None:
        rate = RATES["/novasphere.v1.WukongService/CreateWukong"]
        with fresh_user(owasp, kube, "operator") as normal, fuzz_tenant(kube) as fuzz:

            def create(token: str, namespace: str, n: int) -> int:
                return owasp.http.post(
                    "/api/v1/wukongs",
                    params={"namespace": namespace, "validateOnly": True},
                    json={"name": f"c{n}", "spec": SPEC},
                    headers=bearer(token),
                ).status_code

            # The bucket refills while the requests go (one a second): a loaded machine may fit a few more in.
            started, codes = time.monotonic(), list[int]()
            while 429 not in codes and len(codes) < 2 * rate.burst:
                codes.append(create(normal, owasp.home, len(codes)))
            refilled = math.ceil((time.monotonic() - started) * rate.per_minute / 60)
            fuzz_token = login(owasp, fuzz.username, fuzz.password)
            fuzzed = [create(fuzz_token, fuzz.namespace, n) for n in range(rate.burst + 1)]

        assert codes[: rate.burst] == [200] * rate.burst
        assert codes[-1] == 429, codes
        assert len(codes) <= rate.burst + refilled + 1, (codes, refilled)
        assert fuzzed == [200] * (rate.burst + 1)

    def test_logins_from_one_address_are_limited_by_envoy(self, owasp: Stack, tmp_path: pathlib.Path) -> None:
        """On an Envoy of its own with a small login budget (this module's keeps its budget for the other tests)."""
        envoy = devstack.start_front(owasp.api, tls=owasp.tls, state_dir=tmp_path, logins_per_minute_per_ip=3)
        attempt = {"username": f"nobody-{uuid.uuid4().hex[:8]}", "password": "nope"}
        with procs.stopping([envoy.process]), envoy.edge.http_client() as http:
            answers = [http.post("/api/v1/auth/login", json=attempt) for _ in range(5)]
        assert [error_of(a) for a in answers[:3]] == [(401, "LOGIN_FAILED")] * 3
        assert [error_of(a) for a in answers[3:]] == [(429, "RATE_LIMITED")] * 2


class TestApi7ServerSideRequestForgery:
    """The API fetches no URL itself, but a disk's image is fetched by the cluster (a CDI import): only from the
    allowed sources (NOVASPHERE_IMAGE_SOURCES), refused otherwise with the field named."""

    BAD = ("http://169.254.169.254/latest/meta-data/", "http://127.0.0.1:9464/metrics", "file:///etc/shadow")

    def test_an_image_from_elsewhere_is_refused_on_create_naming_the_field(
        self, owasp: Stack, tokens: dict[str, str]
    ) -> None:
        for image in self.BAD:
            spec = {**SPEC, "disks": [{**SPEC["disks"][0], "image": image}]}
            response = owasp.http.post(
                "/api/v1/wukongs",
                params={"namespace": owasp.home, "validateOnly": True},
                json={"name": "ssrf", "spec": spec},
                headers=bearer(tokens["operator"]),
            )
            assert error_of(response) == (400, "INVALID_ARGUMENT"), image
            description = violations_of(response)["spec.disks[0].image"]
            assert description.startswith(f"'{image}' is not from an allowed image source; images must start with")
            assert "docker://quay.io/" in description

    def test_an_image_from_elsewhere_is_refused_on_update_and_an_allowed_one_passes(
        self, owasp: Stack, tokens: dict[str, str], mine: str
    ) -> None:
        def update(image: str) -> httpx.Response:
            disks = [SPEC["disks"][0], {**SPEC["disks"][0], "name": "data", "image": image}]
            return owasp.http.patch(
                f"/api/v1/wukongs/{mine}",
                params={"updateMask": "spec.disks", "validateOnly": True},
                json={"namespace": owasp.home, "spec": {**SPEC, "disks": disks}},
                headers=bearer(tokens["operator"]),
            )

        refused = update(self.BAD[0])
        assert error_of(refused) == (400, "INVALID_ARGUMENT")
        assert list(violations_of(refused)) == ["spec.disks[1].image"]
        allowed = update("docker://quay.io/containerdisks/ubuntu:22.04")
        assert allowed.status_code == 200, allowed.text


class TestApi8SecurityMisconfiguration:
    """Security headers on every answer, a CORS allow-list, and Envoy's admin and the server's metrics private."""

    @pytest.fixture(scope="class")
    @classmethod
    def answers(cls, owasp: Stack, tokens: dict[str, str]) -> dict[str, httpx.Response]:
        return {
            "api 200": owasp.http.get("/api/v1/auth/me", headers=bearer(tokens["viewer"])),
            "api 401": owasp.http.get("/api/v1/wukongs"),
            "envoy 404": owasp.http.get("/api/v1/no-such-thing"),
            "page": owasp.http.get("/"),
        }

    def test_hsts_on_every_answer_over_tls(self, answers: dict[str, httpx.Response]) -> None:
        assert {name: r.headers.get("strict-transport-security") for name, r in answers.items()} == dict.fromkeys(
            answers, f"max-age={int(devstack.DEV_HSTS_MAX_AGE.total_seconds())}"
        )

    def test_pages_carry_a_content_security_policy_and_nosniff(self, answers: dict[str, httpx.Response]) -> None:
        page = answers["page"]
        assert is_web_console(page)
        policy = page.headers["content-security-policy"]
        assert "script-src 'self';" in policy
        assert "frame-ancestors 'none'" in policy
        assert page.headers["x-content-type-options"] == "nosniff"

    def test_nosniff_on_every_api_answer(self, answers: dict[str, httpx.Response]) -> None:
        assert {name: r.headers.get("x-content-type-options") for name, r in answers.items()} == dict.fromkeys(
            answers, "nosniff"
        )

    def test_no_answer_names_the_proxy_or_its_version(self, answers: dict[str, httpx.Response]) -> None:
        named = {name: "envoy" in r.headers.get("server", "").lower() for name, r in answers.items()}
        assert named == dict.fromkeys(answers, False)

    def test_cors_answers_only_the_allowed_origins(self, owasp: Stack) -> None:
        def preflight(origin: str) -> httpx.Response:
            return owasp.http.options(
                "/api/v1/wukongs",
                headers={"Origin": origin, "Access-Control-Request-Method": "GET"},
            )

        allowed = preflight(ALLOWED_ORIGIN)
        assert allowed.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
        assert "access-control-allow-origin" not in preflight("https://evil.example").headers

    def test_envoy_admin_and_the_servers_metrics_are_not_on_the_public_listener(self, owasp: Stack) -> None:
        assert owasp.envoy.admin != local_http.HostPort("127.0.0.1", owasp.envoy.edge.port)
        for path in ("/stats", "/server_info", "/config_dump", "/clusters", "/metrics", "/stats/prometheus"):
            response = owasp.http.get(path)
            assert is_web_console(response), path  # the web console's deep-link fallback, nothing of Envoy's
            assert "envoy" not in response.text.lower(), path
        for path in ("/quitquitquit", "/healthcheck/fail", "/logging"):
            assert error_of(owasp.http.post(path)) == (404, "ROUTE_NOT_FOUND"), path
        # they are where they belong: on loopback ports of their own
        assert devstack.envoy_ready(owasp.envoy.admin)
        assert b"novasphere_grpc_requests_total" in (procs.http_get(owasp.api.metrics_url) or b"")


class TestApi9InventoryManagement:
    """What Envoy serves is the document's routes and the web console's pages; nothing else answers."""

    def test_every_documented_route_reaches_the_api_server(self, owasp: Stack) -> None:
        rules = http_rules()
        assert len(rules) == 76
        for service, method, verb, template in rules:
            body: dict[str, Any] | None = {} if verb in ("POST", "PUT", "PATCH") else None
            response = owasp.http.request(verb, concrete(template), json=body, timeout=10)
            if method in PUBLIC_RPCS:  # answered by the API server, for what the empty request lacks
                assert error_of(response) == PUBLIC_RPCS[method], (method, response.text)
            else:  # only the API server says UNAUTHENTICATED with a reason: the route exists and leads there
                assert error_of(response) == (401, "UNAUTHENTICATED"), (service, method, verb, template)

    @pytest.mark.parametrize(
        ("verb", "path"),
        [
            ("GET", "/api/v1/unknown"),
            ("GET", "/api/v2/wukongs"),
            ("GET", "/api/v1/admin"),
            ("GET", "/api/v1/wukongs/x/y/z"),
            ("GET", "/api/"),
            ("POST", "/admin"),
            ("DELETE", "/"),
        ],
    )
    def test_an_undocumented_api_path_is_not_found(self, owasp: Stack, verb: str, path: str) -> None:
        assert error_of(owasp.http.request(verb, path)) == (404, "ROUTE_NOT_FOUND")

    def test_an_undocumented_method_of_a_documented_path_is_405_naming_the_others(self, owasp: Stack) -> None:
        response = owasp.http.put("/api/v1/wukongs", json={})
        assert error_of(response) == (405, "METHOD_NOT_ALLOWED")
        assert response.headers["allow"] == "GET, POST"

    @pytest.mark.parametrize(
        "path", ["/admin", "/debug", "/debug/pprof", "/metrics", "/stats", "/.env", "/server_info", "/vms/x/console"]
    )
    def test_a_page_path_gets_the_web_consoles_deep_link_fallback(self, owasp: Stack, path: str) -> None:
        response = owasp.http.get(path)
        assert is_web_console(response)
        assert response.headers["cache-control"] == "no-cache"

    def test_the_web_consoles_static_files_are_its_bundle(self, owasp: Stack) -> None:
        page = owasp.http.get("/")
        asset = page.text.split('src="', 1)[1].split('"', 1)[0]
        assert asset.startswith("/assets/")
        script = owasp.http.get(asset)
        assert script.status_code == 200
        assert script.headers["content-type"].startswith(("application/javascript", "text/javascript"))
        missing = owasp.http.get("/assets/no-such-file.js")
        assert missing.status_code == 404
        assert missing.text == "no such file\n"

    def test_the_openapi_document_is_served_and_describes_every_route(self, owasp: Stack) -> None:
        document = owasp.http.get("/api/v1/openapi.json")
        assert document.status_code == 200
        described = sorted(
            (method.upper(), concrete(path))
            for path, item in document.json()["paths"].items()
            for method in item
            if method in ("get", "post", "put", "patch", "delete")
        )
        assert described == sorted((verb, concrete(template)) for _, _, verb, template in http_rules())


class TestApi10UnsafeConsumption:
    """Malformed answers of metrics-server, Prometheus and KubeVirt's console (the simulator's malformed-* faults)
    become the documented UNAVAILABLE state or a clean refusal, and none of the backend's text reaches the client."""

    def _metrics(self, owasp: Stack, token: str, mine: str, wanted: str, group: str) -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            response = owasp.http.get(
                f"/api/v1/wukongs/{mine}/metrics", params={"namespace": owasp.home}, headers=bearer(token)
            )
            assert response.status_code == 200, response.text
            assert faults.BACKEND_TEXT not in response.text
            answer = response.json()
            state = answer.get("state") if group == "" else answer.get(group, {}).get("state")
            return answer if state == wanted else None

        return kube_helpers.eventually(probe, timeout=30, what=f"{group or 'metrics'} {wanted}")

    @pytest.mark.parametrize("mode", faults.MALFORMED_MODES)
    def test_metrics_server_answering_badly_is_unavailable(
        self, owasp: Stack, tokens: dict[str, str], kube: kubernetes.client.ApiClient, mine: str, mode: str
    ) -> None:
        self._metrics(owasp, tokens["viewer"], mine, "AVAILABLE", "")
        annotate(kube, owasp.home, mine, {faults.MALFORMED_METRICS: mode})
        try:
            answer = self._metrics(owasp, tokens["viewer"], mine, "UNAVAILABLE", "")
            expected = (
                "the metrics.k8s.io API is not answering (500)"
                if mode == "html-500"
                else "the metrics.k8s.io API answered with something other than a PodMetrics"
            )
            assert answer["message"] == expected
            assert "cpu" not in answer
        finally:
            annotate(kube, owasp.home, mine, {faults.MALFORMED_METRICS: None})  # type: ignore[dict-item]

    @pytest.mark.parametrize("mode", faults.MALFORMED_MODES)
    def test_prometheus_answering_badly_is_unavailable(
        self, owasp: Stack, tokens: dict[str, str], kube: kubernetes.client.ApiClient, mine: str, mode: str
    ) -> None:
        annotate(kube, owasp.home, mine, {faults.MALFORMED_PROMETHEUS: mode})
        try:
            answer = self._metrics(owasp, tokens["viewer"], mine, "UNAVAILABLE", "network")
            assert answer["network"]["message"] == "Prometheus is not answering; network metrics are unavailable"
            assert answer["disk"]["message"] == "Prometheus is not answering; disk metrics are unavailable"
        finally:
            annotate(kube, owasp.home, mine, {faults.MALFORMED_PROMETHEUS: None})  # type: ignore[dict-item]

    # kube-apiserver passes the 500 on, and answers an upgrade its backend did not make with a 503 of its own
    @pytest.mark.parametrize(("mode", "status"), [("html-500", 500), ("not-json", 503), ("truncated", 503)])
    async def test_kubevirts_console_answering_badly_is_a_clean_refusal(
        self, owasp: Stack, kube: kubernetes.client.ApiClient, mine: str, mode: str, status: int
    ) -> None:
        annotate(kube, owasp.home, mine, {faults.MALFORMED_CONSOLE: mode})
        try:
            with fresh_user(owasp, kube, "operator") as token:
                link = owasp.http.post(
                    f"/api/v1/wukongs/{mine}/console", json={"namespace": owasp.home}, headers=bearer(token)
                )
                assert link.status_code == 200, link.text
                session = link.json()
                async with aiohttp.ClientSession() as client:
                    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                        await client.ws_connect(
                            session["consoleUrl"],
                            protocols=(TICKET + session["ticket"], "binary"),
                            ssl=owasp.envoy.edge.ssl_context(),
                        )
                assert refused.value.status == 502
                ended = owasp.http.get(
                    f"/api/v1/wukongs/{mine}/console/status",
                    params={"namespace": owasp.home},
                    headers=bearer(token),
                )
            assert ended.status_code == 200, ended.text
            assert ended.json()["closeReason"] == f"KubeVirt refused the console ({status})"
            assert faults.BACKEND_TEXT not in ended.text
        finally:
            annotate(kube, owasp.home, mine, {faults.MALFORMED_CONSOLE: None})  # type: ignore[dict-item]
