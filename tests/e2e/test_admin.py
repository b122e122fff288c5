"""AdminService end to end, against the API processes of `test_auth` (no development identity): a platform
administrator creates a tenant and a user, binds the user there, and the user logs in to it; password changes and
disabling end sessions; deleting a user removes its keys and bindings; roles are defined, applied and protected while
bound; a tenant administrator manages its own tenant's bindings and nothing more, and cannot grant beyond its own
permissions; concurrent binding edits are all kept; bad input changes nothing."""

from __future__ import annotations

import concurrent.futures
import functools
import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import kubernetes.client
import pytest
from google.protobuf import field_mask_pb2

from devcluster import accounts
from novasphere.v1 import admin_service_pb2 as pb
from novasphere.v1 import auth_service_pb2 as auth_pb2
from novasphere.v1 import wukong_service_pb2 as service_pb2
from novasphere.v1.admin_service_pb2_grpc import AdminServiceStub
from tests import kube_helpers
from tests.conftest import TENANT
from tests.e2e.test_auth import PASSWORD, Secure, bearer, login, refused, secure, user
from tests.status_helpers import details_of

__all__ = ["secure", "user"]  # fixtures shared with test_auth

NEW_PASSWORD = "a different horse, battery staple"


@pytest.fixture(scope="module")
def admin_stub(secure: Secure) -> AdminServiceStub:
    return secure.first.admin


@pytest.fixture
def as_admin(secure: Secure, user: Callable[..., str]) -> tuple[tuple[str, str]]:
    return bearer(login(secure.first, user("admin")).access_token)


@pytest.fixture
def cleanup(kube: kubernetes.client.ApiClient) -> Iterator[dict[str, list[str]]]:
    """Tenants' namespaces and users the test made through the API; removed afterwards."""
    made: dict[str, list[str]] = {"namespaces": [], "users": []}
    yield made
    core = kubernetes.client.CoreV1Api(kube)
    for name in made["users"]:
        accounts.unbind(kube, name)
        try:
            core.delete_namespaced_secret(f"user-{name}", accounts.API_NAMESPACE)
        except kubernetes.client.ApiException as error:
            if error.status != 404:
                raise
    for namespace in made["namespaces"]:
        kube_helpers.delete_namespace(kube, namespace)


def code_of(call: Callable[[], Any]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as raised:
        call()
    return raised.value


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_an_administrator_creates_a_tenant_and_a_user_who_then_works_there(
    secure: Secure,
    admin_stub: AdminServiceStub,
    as_admin: tuple[tuple[str, str]],
    kube: kubernetes.client.ApiClient,
    cleanup: dict[str, list[str]],
) -> None:
    tenant, first, second, name = unique("acme"), unique("acme-a"), unique("acme-b"), unique("alice")
    cleanup["namespaces"] += [first, second]
    cleanup["users"].append(name)
    kube_helpers.create_namespace(kube, second)  # an existing, unlabelled namespace is adopted

    created = admin_stub.CreateTenant(
        pb.CreateTenantRequest(tenant_id=tenant, namespaces=[first, second]), metadata=as_admin
    )
    assert (created.default_namespace, sorted(created.namespaces)) == (first, sorted([first, second]))
    labels = {n: _labels(kube, n) for n in (first, second)}
    assert labels[first]["novasphere.dev/tenant"] == tenant
    assert labels[first]["novasphere.dev/default-namespace"] == "true"
    assert labels[second]["novasphere.dev/tenant"] == tenant
    assert "novasphere.dev/default-namespace" not in labels[second]

    def listed() -> pb.Tenant | None:
        tenants = admin_stub.ListTenants(pb.ListTenantsRequest(), metadata=as_admin).tenants
        return next((t for t in tenants if t.tenant_id == tenant and len(t.namespaces) == 2), None)

    kube_helpers.eventually(listed, timeout=10, what="the tenant in ListTenants")
    duplicate = code_of(
        lambda: admin_stub.CreateTenant(
            pb.CreateTenantRequest(tenant_id=tenant, namespaces=[unique("x")]), metadata=as_admin
        )
    )
    assert duplicate.code() == grpc.StatusCode.ALREADY_EXISTS
    assert details_of(duplicate).reason == "TENANT_ALREADY_EXISTS"

    admin_stub.CreateUser(pb.CreateUserRequest(username=name, password=PASSWORD), metadata=as_admin)
    no_role = code_of(lambda: secure.first.auth.Login(auth_pb2.LoginRequest(username=name, password=PASSWORD)))
    assert no_role.code() in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED)
    binding = admin_stub.CreateRoleBinding(
        pb.CreateRoleBindingRequest(username=name, role="operator", tenant_id=tenant), metadata=as_admin
    )
    assert (binding.username, binding.tenant_id, binding.role) == (name, tenant, "operator")

    grant = login(secure.second, name)  # the other replica sees it too
    assert grant.identity.tenant_id == tenant
    wukongs = secure.second.wukongs.ListWukongs(service_pb2.ListWukongsRequest(), metadata=bearer(grant.access_token))
    assert wukongs.total == 0
    users = {u.username: u for u in admin_stub.ListUsers(pb.ListUsersRequest(), metadata=as_admin).users}
    assert [(b.tenant_id, b.role) for b in users[name].bindings] == [(tenant, "operator")]

    released = admin_stub.DeleteTenant(pb.DeleteTenantRequest(tenant_id=tenant), metadata=as_admin)
    assert sorted(released.released_namespaces) == sorted([first, second])
    assert kube_helpers.namespace_exists(kube, first)  # namespaces (and their VMs) stay
    assert "novasphere.dev/tenant" not in _labels(kube, first)
    assert all(b["tenant"] != tenant for b in accounts.bindings(kube))


def test_a_new_password_or_disabling_ends_the_users_sessions_and_deleting_removes_everything(
    secure: Secure,
    admin_stub: AdminServiceStub,
    as_admin: tuple[tuple[str, str]],
    kube: kubernetes.client.ApiClient,
    cleanup: dict[str, list[str]],
) -> None:
    name = unique("bob")
    cleanup["users"].append(name)
    admin_stub.CreateUser(pb.CreateUserRequest(username=name, password=PASSWORD), metadata=as_admin)
    admin_stub.CreateRoleBinding(pb.CreateRoleBindingRequest(username=name, role="operator"), metadata=as_admin)
    session = login(secure.first, name)
    me = auth_pb2.MeRequest()
    secure.second.auth.Me(me, metadata=bearer(session.access_token))

    mask = field_mask_pb2.FieldMask(paths=["password"])
    admin_stub.UpdateUser(
        pb.UpdateUserRequest(username=name, password=NEW_PASSWORD, update_mask=mask), metadata=as_admin
    )
    kube_helpers.eventually(
        lambda: _refused_now(lambda: secure.second.auth.Me(me, metadata=bearer(session.access_token))),
        timeout=5,
        what="the old session refused after the password change",
    )
    refused(lambda: secure.first.auth.Refresh(auth_pb2.RefreshRequest(refresh_token=session.refresh_token)))
    refused(lambda: secure.first.auth.Login(auth_pb2.LoginRequest(username=name, password=PASSWORD)))
    fresh = login(secure.first, name, NEW_PASSWORD)
    key = secure.first.auth.CreateApiKey(
        auth_pb2.CreateApiKeyRequest(name="ci", permissions=["vm:query"]), metadata=bearer(fresh.access_token)
    ).key

    disable = field_mask_pb2.FieldMask(paths=["disabled"])
    admin_stub.UpdateUser(pb.UpdateUserRequest(username=name, disabled=True, update_mask=disable), metadata=as_admin)
    kube_helpers.eventually(
        lambda: _refused_now(lambda: secure.first.auth.Me(me, metadata=(("x-api-key", key),))),
        timeout=5,
        what="the disabled user's key refused",
    )
    refused(lambda: secure.first.auth.Login(auth_pb2.LoginRequest(username=name, password=NEW_PASSWORD)))
    admin_stub.UpdateUser(pb.UpdateUserRequest(username=name, disabled=False, update_mask=disable), metadata=as_admin)
    kube_helpers.eventually(
        lambda: True if not _refused_now(lambda: secure.first.auth.Me(me, metadata=(("x-api-key", key),))) else None,
        timeout=5,
        what="the key working again once the user is enabled",
    )

    admin_stub.DeleteUser(pb.DeleteUserRequest(username=name), metadata=as_admin)
    kube_helpers.eventually(
        lambda: _refused_now(lambda: secure.first.auth.Me(me, metadata=(("x-api-key", key),))),
        timeout=5,
        what="the deleted user's key refused",
    )
    secrets = kubernetes.client.CoreV1Api(kube).list_namespaced_secret(
        accounts.API_NAMESPACE, label_selector=f"novasphere.dev/user={name}"
    )
    assert secrets.items == []  # user, sessions and keys all gone
    assert all(b["user"] != name for b in accounts.bindings(kube))
    gone = code_of(lambda: admin_stub.DeleteUser(pb.DeleteUserRequest(username=name), metadata=as_admin))
    assert gone.code() == grpc.StatusCode.NOT_FOUND
    assert details_of(gone).reason == "USER_NOT_FOUND"


def test_a_user_created_again_under_a_deleted_ones_name_inherits_nothing(
    secure: Secure,
    admin_stub: AdminServiceStub,
    as_admin: tuple[tuple[str, str]],
    cleanup: dict[str, list[str]],
) -> None:
    """DeleteUser removes sessions, keys and bindings (listed from the cluster) before the user: the new user of the
    same name, made at once, finds none of the old one's credentials working."""
    name = unique("reborn")
    cleanup["users"].append(name)
    admin_stub.CreateUser(pb.CreateUserRequest(username=name, password=PASSWORD), metadata=as_admin)
    admin_stub.CreateRoleBinding(pb.CreateRoleBindingRequest(username=name, role="operator"), metadata=as_admin)
    old = login(secure.first, name)
    old_key = secure.first.auth.CreateApiKey(
        auth_pb2.CreateApiKeyRequest(name="old", permissions=["vm:query"]), metadata=bearer(old.access_token)
    ).key

    admin_stub.DeleteUser(pb.DeleteUserRequest(username=name), metadata=as_admin)
    admin_stub.CreateUser(pb.CreateUserRequest(username=name, password=NEW_PASSWORD), metadata=as_admin)
    admin_stub.CreateRoleBinding(pb.CreateRoleBindingRequest(username=name, role="operator"), metadata=as_admin)
    new = login(secure.first, name, NEW_PASSWORD)

    me = auth_pb2.MeRequest()
    for replica in (secure.first, secure.second):
        for metadata in (bearer(old.access_token), (("x-api-key", old_key),)):
            kube_helpers.eventually(
                functools.partial(_refused_now, functools.partial(replica.auth.Me, me, metadata=metadata)),
                timeout=5,
                what="the old user's credentials refused",
            )
    refused(lambda: secure.first.auth.Refresh(auth_pb2.RefreshRequest(refresh_token=old.refresh_token)))
    assert not secure.first.auth.ListApiKeys(auth_pb2.ListApiKeysRequest(), metadata=bearer(new.access_token)).api_keys
    sessions = secure.first.auth.ListSessions(auth_pb2.ListSessionsRequest(), metadata=bearer(new.access_token))
    assert [s.current for s in sessions.sessions] == [True]


def test_roles_are_defined_applied_and_kept_while_bound(
    secure: Secure, admin_stub: AdminServiceStub, as_admin: tuple[tuple[str, str]], user: Callable[..., str]
) -> None:
    role = unique("reader")
    admin_stub.PutRole(pb.PutRoleRequest(name=role, permissions=["vm:query"]), metadata=as_admin)
    name = user(role)
    token = login(secure.first, name).access_token
    secure.first.wukongs.ListWukongs(service_pb2.ListWukongsRequest(), metadata=bearer(token))
    me = secure.first.auth.Me(auth_pb2.MeRequest(), metadata=bearer(token))
    assert list(me.permissions) == ["vm:query"]

    in_use = code_of(lambda: admin_stub.DeleteRole(pb.DeleteRoleRequest(name=role), metadata=as_admin))
    assert in_use.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert name in str(in_use.details())
    admin_stub.PutRole(pb.PutRoleRequest(name=role, permissions=["vm:query", "task:query"]), metadata=as_admin)

    def widened() -> bool | None:
        held = secure.second.auth.Me(auth_pb2.MeRequest(), metadata=bearer(token)).permissions
        return True if "task:query" in held else None

    kube_helpers.eventually(widened, timeout=10, what="the redefined role on the other replica")
    roles = admin_stub.ListRoles(pb.ListRolesRequest(), metadata=as_admin)
    assert {"vm:query", "binding:manage", "tenant:manage"} <= set(roles.known_permissions)
    assert {r.name: list(r.permissions) for r in roles.roles}[role] == ["task:query", "vm:query"]

    bad = code_of(lambda: admin_stub.PutRole(pb.PutRoleRequest(name=role, permissions=["vm:fly"]), metadata=as_admin))
    assert bad.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "vm:fly" in details_of(bad).field_violations["permissions"]
    admin_stub.DeleteRoleBinding(pb.DeleteRoleBindingRequest(username=name, role=role), metadata=as_admin)
    admin_stub.DeleteRole(pb.DeleteRoleRequest(name=role), metadata=as_admin)
    assert role not in {r.name for r in admin_stub.ListRoles(pb.ListRolesRequest(), metadata=as_admin).roles}


def test_a_tenant_administrator_manages_its_own_tenant_within_its_own_permissions(
    secure: Secure, admin_stub: AdminServiceStub, user: Callable[..., str], kube: kubernetes.client.ApiClient
) -> None:
    boss, member = user("tenant-admin"), user("viewer")
    as_boss = bearer(login(secure.first, boss).access_token)
    admin_stub.CreateRoleBinding(pb.CreateRoleBindingRequest(username=member, role="operator"), metadata=as_boss)
    listed = admin_stub.ListRoleBindings(pb.ListRoleBindingsRequest(), metadata=as_boss).role_bindings
    assert {(b.username, b.role) for b in listed if b.username == member} == {(member, "viewer"), (member, "operator")}
    assert all(b.tenant_id == TENANT for b in listed)

    escalation = code_of(
        lambda: admin_stub.CreateRoleBinding(
            pb.CreateRoleBindingRequest(username=member, role="admin"), metadata=as_boss
        )
    )
    assert escalation.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "admin" in str(escalation.details())
    elsewhere = code_of(
        lambda: admin_stub.ListRoleBindings(pb.ListRoleBindingsRequest(tenant_id="some-other"), metadata=as_boss)
    )
    assert elsewhere.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "tenant:manage" in str(elsewhere.details())
    for platform_only in (
        lambda: admin_stub.ListUsers(pb.ListUsersRequest(), metadata=as_boss),
        lambda: admin_stub.CreateTenant(pb.CreateTenantRequest(tenant_id="x", namespaces=["x"]), metadata=as_boss),
        lambda: admin_stub.PutRole(pb.PutRoleRequest(name="viewer", permissions=["admin"]), metadata=as_boss),
    ):
        assert code_of(platform_only).code() == grpc.StatusCode.PERMISSION_DENIED
    admin_stub.DeleteRoleBinding(pb.DeleteRoleBindingRequest(username=member, role="operator"), metadata=as_boss)
    assert (member, TENANT, "operator") not in {(b["user"], b["tenant"], b["role"]) for b in accounts.bindings(kube)}


def test_concurrent_binding_edits_are_all_kept(
    admin_stub: AdminServiceStub,
    as_admin: tuple[tuple[str, str]],
    user: Callable[..., str],
    kube: kubernetes.client.ApiClient,
) -> None:
    members = [user("viewer") for _ in range(8)]

    def bind(name: str) -> pb.RoleBinding:
        request = pb.CreateRoleBindingRequest(username=name, role="operator")
        return admin_stub.CreateRoleBinding(request, metadata=as_admin)

    with concurrent.futures.ThreadPoolExecutor(len(members)) as pool:
        list(pool.map(bind, members))
    stored = {(b["user"], b["role"]) for b in accounts.bindings(kube)}
    assert all((name, "operator") in stored and (name, "viewer") in stored for name in members)


def test_bad_input_is_refused_naming_the_field_and_changes_nothing(
    secure: Secure,
    admin_stub: AdminServiceStub,
    as_admin: tuple[tuple[str, str]],
    kube: kubernetes.client.ApiClient,
    namespace: str,
) -> None:
    before = accounts.bindings(kube)
    cases: list[tuple[Any, grpc.StatusCode, str]] = [
        (
            pb.CreateTenantRequest(tenant_id="Not A Label", namespaces=["fine"]),
            grpc.StatusCode.INVALID_ARGUMENT,
            "tenant_id",
        ),
        (
            pb.CreateTenantRequest(tenant_id="t1", namespaces=["kube-system"]),
            grpc.StatusCode.INVALID_ARGUMENT,
            "namespaces[0]",
        ),
        (pb.CreateTenantRequest(tenant_id="t1"), grpc.StatusCode.INVALID_ARGUMENT, "namespaces"),
        (pb.CreateUserRequest(username="Bad_Name", password=PASSWORD), grpc.StatusCode.INVALID_ARGUMENT, "username"),
        (pb.CreateUserRequest(username="short-pw", password="short"), grpc.StatusCode.INVALID_ARGUMENT, "password"),
        (pb.UpdateUserRequest(username="nobody-here"), grpc.StatusCode.INVALID_ARGUMENT, "update_mask"),
        (pb.PutRoleRequest(name="r1"), grpc.StatusCode.INVALID_ARGUMENT, "permissions"),
    ]
    methods: dict[type, Callable[..., Any]] = {
        pb.CreateTenantRequest: admin_stub.CreateTenant,
        pb.CreateUserRequest: admin_stub.CreateUser,
        pb.UpdateUserRequest: admin_stub.UpdateUser,
        pb.PutRoleRequest: admin_stub.PutRole,
    }
    for request, code, field in cases:
        error = code_of(functools.partial(methods[type(request)], request, metadata=as_admin))
        assert (error.code(), field in details_of(error).field_violations) == (code, True), (request, error)

    # A namespace of another tenant is not taken over, and nothing of the request is applied.
    fresh = unique("grab")
    taken = code_of(
        lambda: admin_stub.CreateTenant(
            pb.CreateTenantRequest(tenant_id=unique("grab"), namespaces=[fresh, namespace]), metadata=as_admin
        )
    )
    assert taken.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert TENANT in str(taken.details())
    assert not kube_helpers.namespace_exists(kube, fresh)

    me = secure.first.auth.Me(auth_pb2.MeRequest(), metadata=as_admin).username
    for self_harm in (
        lambda: admin_stub.DeleteUser(pb.DeleteUserRequest(username=me), metadata=as_admin),
        lambda: admin_stub.DeleteTenant(pb.DeleteTenantRequest(tenant_id=TENANT), metadata=as_admin),
        lambda: admin_stub.UpdateUser(
            pb.UpdateUserRequest(username=me, disabled=True, update_mask=field_mask_pb2.FieldMask(paths=["disabled"])),
            metadata=as_admin,
        ),
    ):
        error = code_of(self_harm)
        assert (error.code(), details_of(error).reason) == (grpc.StatusCode.FAILED_PRECONDITION, "SELF_LOCKOUT")
    for missing, reason in (
        (lambda: admin_stub.DeleteRole(pb.DeleteRoleRequest(name="no-such-role"), metadata=as_admin), "ROLE_NOT_FOUND"),
        (
            lambda: admin_stub.CreateRoleBinding(
                pb.CreateRoleBindingRequest(username="no-such-user", role="viewer"), metadata=as_admin
            ),
            "USER_NOT_FOUND",
        ),
        (
            lambda: admin_stub.DeleteRoleBinding(
                pb.DeleteRoleBindingRequest(username=me, role="viewer"), metadata=as_admin
            ),
            "ROLE_BINDING_NOT_FOUND",
        ),
        (
            lambda: admin_stub.DeleteTenant(pb.DeleteTenantRequest(tenant_id="no-such-tenant"), metadata=as_admin),
            "TENANT_NOT_FOUND",
        ),
    ):
        error = code_of(missing)
        assert (error.code(), details_of(error).reason) == (grpc.StatusCode.NOT_FOUND, reason)
    assert accounts.bindings(kube) == before


def test_rest_paths_of_the_admin_surface(
    secure: Secure, as_admin: tuple[tuple[str, str]], cleanup: dict[str, list[str]]
) -> None:
    name = unique("carol")
    cleanup["users"].append(name)
    headers = dict(as_admin)
    created = secure.http.post("/api/v1/admin/users", json={"username": name, "password": PASSWORD}, headers=headers)
    assert created.status_code == 200, created.text
    assert created.json() == {"username": name, "disabled": False, "bindings": []}  # no password echoed
    events = [json.loads(line) for line in secure.logs[0].read_text().splitlines() if line.startswith("{")]
    changes = [e for e in events if e["event"] == "admin.change" and e.get("target_user") == name]
    assert [(e["action"], e["request_id"]) for e in changes] == [("user.created", created.headers["x-request-id"])]
    again = secure.http.post("/api/v1/admin/users", json={"username": name, "password": PASSWORD}, headers=headers)
    assert again.status_code == 409
    bound = secure.http.post("/api/v1/admin/role-bindings", json={"username": name, "role": "viewer"}, headers=headers)
    assert bound.status_code == 200
    assert bound.json()["tenantId"] == TENANT
    patched = secure.http.patch(
        f"/api/v1/admin/users/{name}", json={"disabled": True, "updateMask": "disabled"}, headers=headers
    )
    assert patched.status_code == 200
    assert patched.json()["disabled"] is True
    roles = secure.http.get("/api/v1/admin/roles", headers=headers).json()
    assert "viewer" in {r["name"] for r in roles["roles"]}
    unbound = secure.http.delete(f"/api/v1/admin/role-bindings/{name}/viewer", headers=headers)
    assert unbound.status_code == 200
    assert secure.http.delete(f"/api/v1/admin/users/{name}", headers=headers).status_code == 200
    assert secure.http.get("/api/v1/admin/users", headers={}).status_code == 401


def _refused_now(call: Callable[[], Any]) -> bool | None:
    try:
        call()
    except grpc.RpcError as error:
        if error.code() == grpc.StatusCode.UNAUTHENTICATED:
            return True
        raise
    return None


def _labels(kube: kubernetes.client.ApiClient, namespace: str) -> dict[str, str]:
    read: Any = kubernetes.client.CoreV1Api(kube).read_namespace(namespace)
    return dict(read.metadata.labels or {})
