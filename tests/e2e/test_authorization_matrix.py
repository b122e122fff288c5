"""The authorisation matrix: every RPC of the API (streams included) by {anonymous, viewer, operator, admin, operator
of another tenant, API key with and without the permission}, through gRPC and through REST, against API servers
that refuse anonymous calls.

The expected outcome of each cell is written here from the role definitions (deploy/authz.yaml, DESIGN.md §5), not
read from the server's table: UNAUTHENTICATED (401) without credentials, PERMISSION_DENIED (403) without the
permission, NOT_FOUND (404) for another tenant's VM or task, and otherwise the request's own outcome, named for each
RPC in `ALLOWED`: success, or the domain error its (deliberately harmless) input must meet. Mutations that must be
denied are sent for real and must leave everything as it was; allowed ones are sent with `validate_only` or with
invalid input, so the matrix changes nothing. The task RPCs name a real task of the other tenant's.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import httpx
import kubernetes.client
import pytest
from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor_pb2, field_mask_pb2, json_format, symbol_database
from google.protobuf.message import Message

from devcluster import accounts, procs
from devcluster import stack as devstack
from novasphere.v1 import (
    access_service_pb2,
    admin_service_pb2,
    auth_service_pb2,
    catalog_service_pb2,
    console_service_pb2,
    metrics_service_pb2,
    notification_service_pb2,
    ssh_key_service_pb2,
    stats_service_pb2,
    task_pb2,
    task_service_pb2,
    wukong_pb2,
    wukong_service_pb2,
)
from novasphere.v1.auth_service_pb2_grpc import AuthServiceStub
from novasphere.v1.task_service_pb2_grpc import TaskServiceStub
from novasphere.v1.wukong_service_pb2_grpc import WukongServiceStub
from tests import kube_helpers
from tests.conftest import TENANT
from tests.e2e.test_auth import PASSWORD, SECURE_ENV
from tests.e2e.test_tasks import running_wukong
from tests.e2e.test_wukong_api import stored

VIEWER = {"vm:query", "task:query", "notification:subscribe"}
OPERATOR = VIEWER | {
    "vm:create",
    "vm:update",
    "vm:delete",
    "vm:start",
    "vm:stop",
    "vm:restart",
    "vm:pause",
    "vm:console:access",
    "vm:access-service:manage",
    "vm:ssh-key:manage",
    "apikey:manage",
}
TENANT_ADMIN = OPERATOR | {"binding:manage", "vm:console:manage", "notification:webhook:manage"}
KEY_ABLE = OPERATOR - {"apikey:manage"}  # keys never hold administration: they cannot manage keys
PUBLIC, ANY_CALLER = "public", "any caller"
NEEDS: dict[str, str] = {  # what each RPC needs, from DESIGN.md §5 and the issue texts
    "WukongService/ListWukongs": "vm:query",
    "WukongService/GetWukong": "vm:query",
    "WukongService/WatchWukong": "vm:query",
    "WukongService/CreateWukong": "vm:create",
    "WukongService/UpdateWukong": "vm:update",
    "WukongService/StartWukong": "vm:start",
    "WukongService/StopWukong": "vm:stop",
    "WukongService/RestartWukong": "vm:restart",
    "WukongService/PauseWukong": "vm:pause",
    "WukongService/ResumeWukong": "vm:pause",
    "WukongService/DeleteWukong": "vm:delete",
    "WukongService/BatchWukongOperation": "vm:start",  # the batch below starts
    "TaskService/GetTask": "task:query",
    "TaskService/ListTasks": "task:query",
    "TaskService/WatchTask": "task:query",
    "TaskService/WatchTasks": "task:query",
    "TaskService/CancelTask": "task:query",
    "AccessService/CreateAccessService": "vm:access-service:manage",
    "AccessService/ListAccessServices": "vm:query",
    "AccessService/DeleteAccessService": "vm:access-service:manage",
    "StatsService/GetStats": "vm:query",
    "CatalogService/ListStorageClasses": "vm:query",
    "CatalogService/ListNetworkAttachments": "vm:query",
    "SshKeyService/CreateSshKey": "vm:ssh-key:manage",
    "SshKeyService/ListSshKeys": "vm:query",
    "SshKeyService/DeleteSshKey": "vm:ssh-key:manage",
    "NotificationService/RegisterDevice": "notification:subscribe",
    "NotificationService/ListDevices": "notification:subscribe",
    "NotificationService/DeleteDevice": "notification:subscribe",
    "NotificationService/GetNotificationPreferences": "notification:subscribe",
    "NotificationService/UpdateNotificationPreferences": "notification:subscribe",
    "NotificationService/GetPushSettings": "notification:subscribe",
    "NotificationService/SendTestNotification": "notification:subscribe",
    "NotificationService/CreateWebhook": "notification:webhook:manage",
    "NotificationService/ListWebhooks": "notification:webhook:manage",
    "NotificationService/DeleteWebhook": "notification:webhook:manage",
    "MetricsService/GetWukongMetrics": "vm:query",
    "MetricsService/WatchWukongMetrics": "vm:query",
    "AuthService/Login": PUBLIC,
    "AuthService/Refresh": PUBLIC,
    "AuthService/Logout": ANY_CALLER,
    "AuthService/Me": ANY_CALLER,
    "AuthService/CheckPermission": ANY_CALLER,
    "AuthService/CreateApiKey": "apikey:manage",
    "AuthService/ListApiKeys": "apikey:manage",
    "AuthService/RevokeApiKey": "apikey:manage",
    "ConsoleService/CreateConsoleSession": "vm:console:access",
    "ConsoleService/GetConsoleStatus": "vm:console:access",
    "ConsoleService/DisconnectConsole": "vm:console:access",
    "ConsoleService/ListConsoleSessions": "vm:console:access",
    "AdminService/ListTenants": "tenant:manage",
    "AdminService/CreateTenant": "tenant:manage",
    "AdminService/DeleteTenant": "tenant:manage",
    "AdminService/ListUsers": "user:manage",
    "AdminService/CreateUser": "user:manage",
    "AdminService/UpdateUser": "user:manage",
    "AdminService/DeleteUser": "user:manage",
    "AdminService/ListRoles": "binding:manage",
    "AdminService/PutRole": "role:manage",
    "AdminService/DeleteRole": "role:manage",
    "AdminService/ListRoleBindings": "binding:manage",
    "AdminService/CreateRoleBinding": "binding:manage",
    "AdminService/DeleteRoleBinding": "binding:manage",
    "AuthService/ChangePassword": ANY_CALLER,
    "AuthService/ListSessions": ANY_CALLER,
    "AuthService/RevokeSession": ANY_CALLER,
}
OK, INVALID, MISSING, NOT_NOW = (
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION,
)
ALLOWED: dict[str, grpc.StatusCode] = {  # the outcome of each allowed request below, by what it asks
    "WukongService/ListWukongs": OK,
    "WukongService/GetWukong": OK,
    "WukongService/WatchWukong": OK,
    "WukongService/CreateWukong": OK,  # validate_only
    "WukongService/UpdateWukong": OK,  # validate_only
    "WukongService/StartWukong": NOT_NOW,  # the VM runs already
    "WukongService/StopWukong": OK,  # validate_only
    "WukongService/RestartWukong": OK,  # validate_only
    "WukongService/PauseWukong": OK,  # validate_only
    "WukongService/ResumeWukong": NOT_NOW,  # not paused
    "WukongService/DeleteWukong": OK,  # validate_only
    "WukongService/BatchWukongOperation": OK,  # validate_only
    "TaskService/GetTask": MISSING,  # the other tenant's task
    "TaskService/ListTasks": OK,
    "TaskService/WatchTask": MISSING,
    "TaskService/WatchTasks": OK,
    "TaskService/CancelTask": MISSING,
    "AccessService/CreateAccessService": INVALID,  # service type "Bogus"
    "AccessService/ListAccessServices": OK,
    "AccessService/DeleteAccessService": MISSING,  # no such Service
    "StatsService/GetStats": OK,
    "CatalogService/ListStorageClasses": OK,
    "CatalogService/ListNetworkAttachments": OK,
    "SshKeyService/CreateSshKey": INVALID,  # not a public key
    "SshKeyService/ListSshKeys": OK,
    "SshKeyService/DeleteSshKey": MISSING,  # no such key
    "NotificationService/RegisterDevice": INVALID,  # no platform
    "NotificationService/ListDevices": OK,
    "NotificationService/DeleteDevice": MISSING,
    "NotificationService/GetNotificationPreferences": OK,
    "NotificationService/UpdateNotificationPreferences": INVALID,  # no such time zone
    "NotificationService/GetPushSettings": OK,
    "NotificationService/SendTestNotification": MISSING,  # no such device
    "NotificationService/CreateWebhook": INVALID,  # no kind
    "NotificationService/ListWebhooks": OK,
    "NotificationService/DeleteWebhook": MISSING,
    "MetricsService/GetWukongMetrics": OK,
    "MetricsService/WatchWukongMetrics": OK,
    "AuthService/Login": INVALID,  # no username
    "AuthService/Refresh": INVALID,  # no token
    "AuthService/Logout": OK,
    "AuthService/Me": OK,
    "AuthService/CheckPermission": OK,
    "AuthService/CreateApiKey": INVALID,  # no permissions
    "AuthService/ListApiKeys": OK,
    "AuthService/RevokeApiKey": MISSING,  # no such key
    "AuthService/ChangePassword": INVALID,  # too short a new password
    "AuthService/ListSessions": OK,
    "AuthService/RevokeSession": MISSING,  # no such session of the caller's
    "ConsoleService/CreateConsoleSession": INVALID,  # a 5 s lifetime
    "ConsoleService/GetConsoleStatus": OK,
    "ConsoleService/DisconnectConsole": MISSING,  # no session open
    "ConsoleService/ListConsoleSessions": OK,
    "AdminService/ListTenants": OK,
    "AdminService/CreateTenant": INVALID,  # "Not A Tenant"
    "AdminService/DeleteTenant": MISSING,
    "AdminService/ListUsers": OK,
    "AdminService/CreateUser": INVALID,  # too short a password
    "AdminService/UpdateUser": INVALID,  # no update_mask
    "AdminService/DeleteUser": MISSING,
    "AdminService/ListRoles": OK,
    "AdminService/PutRole": INVALID,  # an unknown permission
    "AdminService/DeleteRole": MISSING,
    "AdminService/ListRoleBindings": OK,
    "AdminService/CreateRoleBinding": MISSING,  # no such user
    "AdminService/DeleteRoleBinding": MISSING,
}
MATRIX_KEY = "matrix-key"
PUBLIC_KEY = kube_helpers.ssh_public_key("matrix")
ONLY_LOGGED_IN = {"AuthService/ChangePassword", "AuthService/ListSessions", "AuthService/RevokeSession"}
"""One's own password and sessions: an API key is refused by the domain (PERMISSION_DENIED)."""
# RPCs on the VM or its namespace: another tenant's caller gets NOT_FOUND there (no existence leak).
ON_THE_VM = {
    name
    for name in NEEDS
    if name.startswith(
        ("WukongService/", "MetricsService/", "AccessService/", "ConsoleService/", "CatalogService/", "SshKeyService/")
    )
} - {
    "AccessService/CreateAccessService",  # its input is invalid on purpose: refused before the VM is looked up
    "ConsoleService/CreateConsoleSession",  # likewise
    "SshKeyService/CreateSshKey",  # likewise
} | {"TaskService/ListTasks", "TaskService/WatchTasks"}  # they name the VM's namespace
OTHER_TENANTS_TASK = {"TaskService/GetTask", "TaskService/WatchTask", "TaskService/CancelTask"}
"""The other tenant's operator may read its own task; cancelling it, ended already, is not possible any more."""
KEY_MANAGEMENT = {
    "AuthService/CreateApiKey",
    "AuthService/ListApiKeys",
    "AuthService/RevokeApiKey",
}  # keys never hold apikey:manage
REFUSED = {grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED}
HTTP_OF = {  # Envoy's mapping of gRPC codes to HTTP statuses
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
}


@dataclass(frozen=True)
class Who:
    name: str
    permissions: set[str] | None  # None: anonymous
    metadata: tuple[tuple[str, str], ...]
    other_tenant: bool = False
    api_key: bool = False
    username: str = ""
    tenant: str = TENANT


@dataclass(frozen=True)
class Target:
    namespace: str
    vm: str
    vm_id: str
    viewer: str
    """The matrix's viewer: refused administration names it (and must leave it as it was)."""
    other_tenant: str
    probe: str
    """A name no refused request may bring into being (tenant, namespace, user)."""
    other_task: str
    """A task of the other tenant's, ended."""


@dataclass(frozen=True)
class Doors:
    channel: grpc.Channel
    http: httpx.Client


@pytest.fixture(scope="module")
def doors(stack: devstack.Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Doors]:
    state = tmp_path_factory.mktemp("matrix")
    api = devstack.start_api_server(
        api_kubeconfig=stack.api_kubeconfig, log_path=state / "api.log", extra_env=SECURE_ENV
    )
    envoy = devstack.start_front(api, tls=stack.tls, state_dir=state)
    with (
        procs.stopping([api.process, envoy.process]),
        grpc.insecure_channel(api.target) as channel,
        envoy.edge.http_client() as http,
    ):
        yield Doors(channel, http)


@pytest.fixture(scope="module")
def callers(doors: Doors, kube: kubernetes.client.ApiClient) -> Iterator[list[Who]]:
    suffix = uuid.uuid4().hex[:6]
    roles = {
        "viewer": "viewer",
        "operator": "operator",
        "tenant-admin": "tenant-admin",
        "admin": "admin",
        "other": "operator",
    }
    names = {who: f"m-{who}-{suffix}" for who in roles}
    for who, role in roles.items():
        tenant = f"matrix-elsewhere-{suffix}" if who == "other" else TENANT
        accounts.create_user(kube, names[who], PASSWORD, tenant=tenant, role=role)
    auth = AuthServiceStub(doors.channel)
    tokens = {who: _login(auth, name).access_token for who, name in names.items()}

    def key(permissions: list[str]) -> str:
        request = auth_service_pb2.CreateApiKeyRequest(name="matrix", permissions=permissions)
        created = auth.CreateApiKey(request, metadata=(("authorization", f"Bearer {tokens['operator']}"),))
        return str(created.key)

    with_all = key(sorted(KEY_ABLE))
    with_tasks_only = key(["task:query"])
    bearer = {who: (("authorization", f"Bearer {token}"),) for who, token in tokens.items()}
    yield [
        Who("anonymous", None, ()),
        Who("viewer", VIEWER, bearer["viewer"], username=names["viewer"]),
        Who("operator", OPERATOR, bearer["operator"]),
        Who("tenant admin", TENANT_ADMIN, bearer["tenant-admin"]),
        Who("admin", OPERATOR | {"admin"}, bearer["admin"]),
        Who(
            "operator of another tenant",
            OPERATOR,
            bearer["other"],
            other_tenant=True,
            username=names["other"],
            tenant=f"matrix-elsewhere-{suffix}",
        ),
        Who("API key with the permissions", KEY_ABLE, (("x-api-key", with_all),), api_key=True),
        Who("API key with task:query only", {"task:query"}, (("x-api-key", with_tasks_only),), api_key=True),
    ]
    for name in names.values():
        accounts.unbind(kube, name)


@pytest.fixture(scope="module")
def other_tasks(doors: Doors, callers: list[Who], kube: kubernetes.client.ApiClient) -> Iterator[str]:
    """A real task of the other tenant's, ended: its operator stopped a VM in one of its namespaces."""
    other = next(who for who in callers if who.other_tenant)
    namespace = f"matrix-other-{uuid.uuid4().hex[:6]}"
    kube_helpers.create_namespace(kube, namespace, {"novasphere.dev/tenant": other.tenant})
    try:
        spec = {**kube_helpers.MINIMAL_SPEC, "startStrategy": {"autoStart": True}}
        kube_helpers.create_wukong(kube, namespace, "theirs", spec)
        wukongs, tasks = WukongServiceStub(doors.channel), TaskServiceStub(doors.channel)

        def stopped() -> task_pb2.Task | None:
            try:
                return wukongs.StopWukong(
                    wukong_service_pb2.StopWukongRequest(namespace=namespace, name="theirs", force=True),
                    metadata=other.metadata,
                )
            except grpc.RpcError as error:  # until the VM runs (and the replica has seen it)
                if error.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION):
                    return None
                raise

        task = kube_helpers.eventually(stopped, timeout=60, what="the other tenant's stop task")

        def ended() -> bool:
            found = tasks.GetTask(task_service_pb2.GetTaskRequest(id=task.id), metadata=other.metadata)
            return found.state in (task_pb2.SUCCEEDED, task_pb2.FAILED)

        kube_helpers.eventually(ended, timeout=60, what="the other tenant's task to end")
        yield task.id
    finally:
        kube_helpers.delete_namespace(kube, namespace)


def expected(who: Who, rpc: str) -> grpc.StatusCode:
    """The code this caller must get for this RPC."""
    needs = NEEDS[rpc]
    if needs == PUBLIC:
        return ALLOWED[rpc]
    if who.permissions is None:
        return grpc.StatusCode.UNAUTHENTICATED
    if needs != ANY_CALLER and needs not in who.permissions and "admin" not in who.permissions:
        return grpc.StatusCode.PERMISSION_DENIED
    if who.api_key and rpc in ONLY_LOGGED_IN:
        return grpc.StatusCode.PERMISSION_DENIED
    if who.other_tenant and rpc in ON_THE_VM:
        return grpc.StatusCode.NOT_FOUND
    if who.other_tenant and rpc in OTHER_TENANTS_TASK:
        return NOT_NOW if rpc == "TaskService/CancelTask" else OK
    return ALLOWED[rpc]


def requests(target: Target, *, refused: bool) -> dict[str, Message]:
    """One request per RPC. Mutations that will be refused are real; the others only validate, or are invalid."""
    at: dict[str, Any] = {"namespace": target.namespace, "name": target.vm}
    dry = not refused
    wukong = wukong_pb2.Wukong(name=target.vm, namespace=target.namespace, labels={"matrix": "touched"})
    new = wukong_pb2.Wukong(name=f"{target.vm}-new")
    new.spec.cpu, new.spec.memory = 1, "1Gi"
    new.spec.disks.add(name="root", size="1Gi", storage_class_name="local-path")
    w, t, a = wukong_service_pb2, task_service_pb2, access_service_pb2
    return {
        "WukongService/ListWukongs": w.ListWukongsRequest(namespace=target.namespace),
        "WukongService/GetWukong": w.GetWukongRequest(**at),
        "WukongService/WatchWukong": w.WatchWukongRequest(**at),
        "WukongService/CreateWukong": w.CreateWukongRequest(namespace=target.namespace, wukong=new, validate_only=dry),
        "WukongService/UpdateWukong": w.UpdateWukongRequest(
            wukong=wukong, update_mask=field_mask_pb2.FieldMask(paths=["labels"]), validate_only=dry
        ),
        "WukongService/StartWukong": w.StartWukongRequest(**at, validate_only=dry),
        "WukongService/StopWukong": w.StopWukongRequest(**at, validate_only=dry),
        "WukongService/RestartWukong": w.RestartWukongRequest(**at, validate_only=dry),
        "WukongService/PauseWukong": w.PauseWukongRequest(**at, validate_only=dry),
        "WukongService/ResumeWukong": w.ResumeWukongRequest(**at, validate_only=dry),
        "WukongService/DeleteWukong": w.DeleteWukongRequest(**at, validate_only=dry),
        "WukongService/BatchWukongOperation": w.BatchWukongOperationRequest(
            operation=task_pb2.Task.Operation.START, namespace=target.namespace, names=[target.vm], validate_only=dry
        ),
        "TaskService/GetTask": t.GetTaskRequest(id=target.other_task),
        "TaskService/ListTasks": t.ListTasksRequest(namespace=target.namespace),
        "TaskService/WatchTask": t.WatchTaskRequest(id=target.other_task),
        "TaskService/WatchTasks": t.WatchTasksRequest(namespace=target.namespace),
        "TaskService/CancelTask": t.CancelTaskRequest(id=target.other_task),
        "AccessService/CreateAccessService": a.CreateAccessServiceRequest(
            **at, service_type="NodePort" if refused else "Bogus", ports=[a.PortSpec(port=22)]
        ),
        "AccessService/ListAccessServices": a.ListAccessServicesRequest(**at),
        "AccessService/DeleteAccessService": a.DeleteAccessServiceRequest(**at, service_name="matrix-none"),
        "StatsService/GetStats": stats_service_pb2.GetStatsRequest(),
        "CatalogService/ListStorageClasses": catalog_service_pb2.ListStorageClassesRequest(namespace=target.namespace),
        "CatalogService/ListNetworkAttachments": catalog_service_pb2.ListNetworkAttachmentsRequest(
            namespace=target.namespace
        ),
        "SshKeyService/CreateSshKey": ssh_key_service_pb2.CreateSshKeyRequest(
            namespace=target.namespace, name=MATRIX_KEY, public_key=PUBLIC_KEY if refused else "not a key"
        ),
        "SshKeyService/ListSshKeys": ssh_key_service_pb2.ListSshKeysRequest(namespace=target.namespace),
        "SshKeyService/DeleteSshKey": ssh_key_service_pb2.DeleteSshKeyRequest(
            namespace=target.namespace, name="matrix-none"
        ),
        **notification_requests(refused=refused),
        "MetricsService/GetWukongMetrics": metrics_service_pb2.GetWukongMetricsRequest(**at),
        "MetricsService/WatchWukongMetrics": metrics_service_pb2.WatchWukongMetricsRequest(**at, interval_seconds=1),
        "AuthService/Login": auth_service_pb2.LoginRequest(),  # invalid: no username (the RPC is public)
        "AuthService/Refresh": auth_service_pb2.RefreshRequest(),  # invalid: no token (public)
        "AuthService/Logout": auth_service_pb2.LogoutRequest(),
        "AuthService/Me": auth_service_pb2.MeRequest(),
        "AuthService/CheckPermission": auth_service_pb2.CheckPermissionRequest(resource_type="vm", operation="query"),
        "AuthService/CreateApiKey": auth_service_pb2.CreateApiKeyRequest(name="matrix"),  # invalid: no permissions
        "AuthService/ListApiKeys": auth_service_pb2.ListApiKeysRequest(),
        "AuthService/RevokeApiKey": auth_service_pb2.RevokeApiKeyRequest(id="0000000000000000"),
        "AuthService/ChangePassword": auth_service_pb2.ChangePasswordRequest(
            current_password=PASSWORD, new_password="matrix password 456" if refused else "short"
        ),
        "AuthService/ListSessions": auth_service_pb2.ListSessionsRequest(),
        "AuthService/RevokeSession": auth_service_pb2.RevokeSessionRequest(id="0" * 32),
        "ConsoleService/CreateConsoleSession": console_service_pb2.CreateConsoleSessionRequest(
            **at,
            lifetime_seconds=3600 if refused else 5,  # invalid when it would be allowed: no session is made
        ),
        "ConsoleService/GetConsoleStatus": console_service_pb2.GetConsoleStatusRequest(**at),
        "ConsoleService/DisconnectConsole": console_service_pb2.DisconnectConsoleRequest(**at),
        "ConsoleService/ListConsoleSessions": console_service_pb2.ListConsoleSessionsRequest(**at),
        **admin_requests(target, refused=refused),
    }


def notification_requests(*, refused: bool) -> dict[str, Message]:
    """Refused ones are valid (and must change nothing); allowed ones are invalid or name nothing."""
    n = notification_service_pb2
    zone = "Asia/Shanghai" if refused else "Mars/Olympus"
    return {
        "NotificationService/RegisterDevice": n.RegisterDeviceRequest(
            platform=n.ANDROID if refused else n.DEVICE_PLATFORM_UNSPECIFIED, token="matrix-token"
        ),
        "NotificationService/ListDevices": n.ListDevicesRequest(),
        "NotificationService/DeleteDevice": n.DeleteDeviceRequest(id="matrix-none"),
        "NotificationService/GetNotificationPreferences": n.GetNotificationPreferencesRequest(),
        "NotificationService/UpdateNotificationPreferences": n.UpdateNotificationPreferencesRequest(
            preferences=n.NotificationPreferences(quiet_hours=n.QuietHours(start="22:00", end="07:00", time_zone=zone))
        ),
        "NotificationService/GetPushSettings": n.GetPushSettingsRequest(),
        "NotificationService/SendTestNotification": n.SendTestNotificationRequest(device_id="matrix-none"),
        "NotificationService/CreateWebhook": n.CreateWebhookRequest(
            kind=n.WECOM if refused else n.WEBHOOK_KIND_UNSPECIFIED,
            name="matrix",
            url="https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=matrix",
        ),
        "NotificationService/ListWebhooks": n.ListWebhooksRequest(),
        "NotificationService/DeleteWebhook": n.DeleteWebhookRequest(name="matrix-none"),
    }


def admin_requests(target: Target, *, refused: bool) -> dict[str, Message]:
    """Refused ones are real and valid (`test_...` checks afterwards that none took effect); allowed ones are
    invalid or name nothing, so they change nothing either."""
    real = target.probe
    ad = admin_service_pb2
    mask = field_mask_pb2.FieldMask(paths=["disabled"])
    if refused:
        return {
            "AdminService/ListTenants": ad.ListTenantsRequest(),
            "AdminService/CreateTenant": ad.CreateTenantRequest(tenant_id=real, namespaces=[real]),
            "AdminService/DeleteTenant": ad.DeleteTenantRequest(tenant_id=target.other_tenant),
            "AdminService/ListUsers": ad.ListUsersRequest(),
            "AdminService/CreateUser": ad.CreateUserRequest(username=real, password="matrix password 123"),
            "AdminService/UpdateUser": ad.UpdateUserRequest(username=target.viewer, disabled=True, update_mask=mask),
            "AdminService/DeleteUser": ad.DeleteUserRequest(username=target.viewer),
            "AdminService/ListRoles": ad.ListRolesRequest(),
            "AdminService/PutRole": ad.PutRoleRequest(name="viewer", permissions=["admin"]),
            "AdminService/DeleteRole": ad.DeleteRoleRequest(name="viewer"),
            "AdminService/ListRoleBindings": ad.ListRoleBindingsRequest(),
            "AdminService/CreateRoleBinding": ad.CreateRoleBindingRequest(username=target.viewer, role="admin"),
            "AdminService/DeleteRoleBinding": ad.DeleteRoleBindingRequest(username=target.viewer, role="viewer"),
        }
    return {
        "AdminService/ListTenants": ad.ListTenantsRequest(),
        "AdminService/CreateTenant": ad.CreateTenantRequest(tenant_id="Not A Tenant", namespaces=[real]),
        "AdminService/DeleteTenant": ad.DeleteTenantRequest(tenant_id="matrix-no-such-tenant"),
        "AdminService/ListUsers": ad.ListUsersRequest(),
        "AdminService/CreateUser": ad.CreateUserRequest(username=real, password="short"),
        "AdminService/UpdateUser": ad.UpdateUserRequest(username=target.viewer),  # no update_mask
        "AdminService/DeleteUser": ad.DeleteUserRequest(username="matrix-no-such-user"),
        "AdminService/ListRoles": ad.ListRolesRequest(),
        "AdminService/PutRole": ad.PutRoleRequest(name="viewer", permissions=["matrix:unknown"]),
        "AdminService/DeleteRole": ad.DeleteRoleRequest(name="matrix-no-such-role"),
        "AdminService/ListRoleBindings": ad.ListRoleBindingsRequest(),
        "AdminService/CreateRoleBinding": ad.CreateRoleBindingRequest(username="matrix-no-such-user", role="viewer"),
        "AdminService/DeleteRoleBinding": ad.DeleteRoleBindingRequest(username="matrix-no-such-user", role="viewer"),
    }


def test_the_matrix_covers_every_rpc_of_the_api() -> None:
    assert set(NEEDS) == {f"{service}/{method.name}" for service, method in _methods()}


@pytest.mark.parametrize("door", ["grpc", "rest"])
def test_every_rpc_for_every_kind_of_caller(
    door: str,
    doors: Doors,
    callers: list[Who],
    other_tasks: str,
    grpc_direct: Any,
    kube: kubernetes.client.ApiClient,
    namespace: str,
) -> None:
    running_wukong(grpc_direct, namespace, "matrix")
    vm_id = stored(kube, namespace, "matrix")["metadata"]["uid"]
    viewer = next(who for who in callers if who.name == "viewer")
    other = next(who for who in callers if who.other_tenant)
    probe = f"matrix-probe-{uuid.uuid4().hex[:6]}"
    target = Target(namespace, "matrix", vm_id, viewer.username, other.tenant, probe, other_tasks)
    before = kube_helpers.what_the_api_writes(stored(kube, namespace, "matrix"))
    authz_before, users_before = _authz(kube), _users(kube)
    methods = dict(_methods_by_name())
    wrong: list[str] = []
    for who in callers:
        for rpc in NEEDS:
            if rpc == "AuthService/Logout" and not who.api_key and who.permissions is not None:
                continue  # it would end the session the rest of the matrix uses; test_auth covers it
            wanted = expected(who, rpc)
            request = requests(target, refused=wanted in REFUSED)[rpc]
            if door == "grpc":
                got = _call_grpc(doors.channel, methods[rpc], rpc, request, who.metadata)
                ok, shown = got == wanted, got.name
            else:
                status = _call_rest(doors.http, methods[rpc], request, who.metadata)
                ok, shown = status == HTTP_OF[wanted], str(status)
            if not ok:
                wrong.append(f"{who.name} × {rpc}: got {shown}, expected {wanted.name}")
    assert not wrong, "\n".join(wrong)
    assert kube_helpers.what_the_api_writes(stored(kube, namespace, "matrix")) == before
    assert not any(w["metadata"]["name"] == "matrix-new" for w in _wukongs(kube, namespace))
    assert (_authz(kube), _users(kube)) == (authz_before, users_before)  # roles, bindings, users as they were
    assert not kube_helpers.namespace_exists(kube, target.probe)
    assert not kube_helpers.secret_exists(kube, namespace, MATRIX_KEY)


# -- calling an RPC by its descriptor, through either door


def _methods() -> Iterator[tuple[str, descriptor_pb2.MethodDescriptorProto]]:
    files = descriptor_pb2.FileDescriptorSet.FromString(devstack.DESCRIPTOR.read_bytes())
    for file in files.file:
        if file.package == "novasphere.v1":
            for service in file.service:
                for method in service.method:
                    yield service.name, method


def _methods_by_name() -> Iterator[tuple[str, descriptor_pb2.MethodDescriptorProto]]:
    for service, method in _methods():
        yield f"{service}/{method.name}", method


def _login(auth: AuthServiceStub, username: str) -> auth_service_pb2.LoginResponse:
    def attempt() -> auth_service_pb2.LoginResponse | None:
        try:
            return auth.Login(auth_service_pb2.LoginRequest(username=username, password=PASSWORD))
        except grpc.RpcError as error:
            if error.code() in REFUSED:
                return None
            raise

    return kube_helpers.eventually(attempt, timeout=20, what=f"login of {username}")


def _call_grpc(
    channel: grpc.Channel,
    method: descriptor_pb2.MethodDescriptorProto,
    rpc: str,
    request: Message,
    metadata: tuple[tuple[str, str], ...],
) -> grpc.StatusCode:
    path = f"/novasphere.v1.{rpc}"
    response_type = _message_class(method.output_type)

    def serialize(message: Message) -> bytes:
        return message.SerializeToString()

    try:
        if method.server_streaming:
            stream: Any = channel.unary_stream(path, serialize, response_type.FromString)
            responses = stream(request, metadata=metadata, timeout=5)
            next(iter(responses))
            responses.cancel()
        else:
            unary: Any = channel.unary_unary(path, serialize, response_type.FromString)
            unary(request, metadata=metadata, timeout=10)
    except grpc.RpcError as error:
        code: grpc.StatusCode = error.code()
        return code
    return grpc.StatusCode.OK


def _call_rest(
    http: httpx.Client,
    method: descriptor_pb2.MethodDescriptorProto,
    request: Message,
    metadata: tuple[tuple[str, str], ...],
) -> int:
    """Transcodes the request as a REST client would, from the method's `google.api.http` rule."""
    rule: http_pb2.HttpRule = method.options.Extensions[annotations_pb2.http]
    verb = rule.WhichOneof("pattern")
    assert verb is not None
    template = getattr(rule, verb)
    fields = json_format.MessageToDict(request, preserving_proto_field_name=True)
    used: set[str] = set()

    def substitute(match: re.Match[str]) -> str:
        path = match.group(1).split("=")[0]
        used.add(path.split(".")[0] if rule.body != path.split(".")[0] else path)
        value: Any = fields
        for part in path.split("."):
            value = value.get(part, "") if isinstance(value, dict) else ""
        return str(value)

    url = re.sub(r"\{([^}]+)\}", substitute, template)
    headers = dict(metadata)
    body: Any = None
    if rule.body == "*":
        body = {k: v for k, v in fields.items() if k not in used}
        query: dict[str, Any] = {}
    elif rule.body:
        body = fields.get(rule.body, {})
        query = {k: v for k, v in fields.items() if k != rule.body and k not in used}
    else:
        query = {k: v for k, v in fields.items() if k not in used and not isinstance(v, (dict, list))}
    query = {_camel(k): (json.dumps(v) if isinstance(v, bool) else v) for k, v in query.items()}
    if method.server_streaming:
        with http.stream(verb.upper(), url, params=query, headers=headers, timeout=5) as response:
            return response.status_code
    return http.request(verb.upper(), url, params=query, headers=headers, json=body).status_code


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _message_class(full_name: str) -> Any:
    return symbol_database.Default().GetSymbol(full_name.lstrip("."))


def _wukongs(kube: kubernetes.client.ApiClient, namespace: str) -> list[dict[str, Any]]:
    listed = kubernetes.client.CustomObjectsApi(kube).list_namespaced_custom_object(
        "vm.novasphere.dev", "v1alpha1", namespace, "wukongs"
    )
    assert isinstance(listed, dict)
    return list(listed["items"])


def _authz(kube: kubernetes.client.ApiClient) -> dict[str, str]:
    config_map: Any = kubernetes.client.CoreV1Api(kube).read_namespaced_config_map(
        accounts.AUTHZ, accounts.API_NAMESPACE
    )
    return dict(config_map.data or {})


def _users(kube: kubernetes.client.ApiClient) -> dict[str, tuple[str, str]]:
    """Each user Secret's name → (resourceVersion, disabled annotation)."""
    listed: Any = kubernetes.client.CoreV1Api(kube).list_namespaced_secret(
        accounts.API_NAMESPACE, label_selector="novasphere.dev/kind=user"
    )
    return {
        s.metadata.name: (
            s.metadata.resource_version,
            (s.metadata.annotations or {}).get("novasphere.dev/disabled", ""),
        )
        for s in listed.items
    }
