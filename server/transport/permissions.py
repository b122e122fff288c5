"""The permission each RPC requires: one table, checked by `AuthorizeInterceptor` before any servicer runs. A test
fails when a served RPC is missing from it, and a method not in it is refused (fail closed).

Some RPCs need more than the table can say, because it depends on the request; the domain checks that part:
`BatchWukongOperation` also needs the permission of the operation it applies, `CancelTask` that of the task's
operation, and the role-binding RPCs the permissions of the role (no escalation) and, for a tenant other than the
caller's, `tenant:manage`.
"""

from __future__ import annotations

from typing import Final

PUBLIC: Final = ""
"""Needs no caller: health checks, login and refresh, and reflection (served only when a setting enables it)."""
AUTHENTICATED: Final = "authenticated"
"""Needs a caller (a valid token), but no permission: the caller asking about itself."""

_WUKONGS = "/novasphere.v1.WukongService/"
_TASKS = "/novasphere.v1.TaskService/"
_ACCESS = "/novasphere.v1.AccessService/"
_STATS = "/novasphere.v1.StatsService/"
_METRICS = "/novasphere.v1.MetricsService/"
_AUTH = "/novasphere.v1.AuthService/"
_ADMIN = "/novasphere.v1.AdminService/"
_CONSOLE = "/novasphere.v1.ConsoleService/"
_CATALOG = "/novasphere.v1.CatalogService/"
_SSH_KEYS = "/novasphere.v1.SshKeyService/"
_NOTIFICATIONS = "/novasphere.v1.NotificationService/"

REQUIRED: Final[dict[str, str]] = {
    _WUKONGS + "ListWukongs": "vm:query",
    _WUKONGS + "GetWukong": "vm:query",
    _WUKONGS + "WatchWukong": "vm:query",
    _WUKONGS + "CreateWukong": "vm:create",
    _WUKONGS + "UpdateWukong": "vm:update",
    _WUKONGS + "StartWukong": "vm:start",
    _WUKONGS + "StopWukong": "vm:stop",
    _WUKONGS + "RestartWukong": "vm:restart",
    _WUKONGS + "PauseWukong": "vm:pause",
    _WUKONGS + "ResumeWukong": "vm:pause",
    _WUKONGS + "DeleteWukong": "vm:delete",
    _WUKONGS + "BatchWukongOperation": "vm:query",  # + the operation's permission (domain)
    _TASKS + "GetTask": "task:query",
    _TASKS + "ListTasks": "task:query",
    _TASKS + "WatchTask": "task:query",
    _TASKS + "WatchTasks": "task:query",
    _TASKS + "CancelTask": "task:query",  # + the task operation's permission (domain)
    _ACCESS + "CreateAccessService": "vm:access-service:manage",
    _ACCESS + "ListAccessServices": "vm:query",
    _ACCESS + "DeleteAccessService": "vm:access-service:manage",
    _STATS + "GetStats": "vm:query",
    _CATALOG + "ListStorageClasses": "vm:query",
    _CATALOG + "ListNetworkAttachments": "vm:query",
    _SSH_KEYS + "CreateSshKey": "vm:ssh-key:manage",
    _SSH_KEYS + "ListSshKeys": "vm:query",
    _SSH_KEYS + "DeleteSshKey": "vm:ssh-key:manage",
    _NOTIFICATIONS + "RegisterDevice": "notification:subscribe",
    _NOTIFICATIONS + "ListDevices": "notification:subscribe",
    _NOTIFICATIONS + "DeleteDevice": "notification:subscribe",
    _NOTIFICATIONS + "GetNotificationPreferences": "notification:subscribe",
    _NOTIFICATIONS + "UpdateNotificationPreferences": "notification:subscribe",
    _NOTIFICATIONS + "GetPushSettings": "notification:subscribe",
    _NOTIFICATIONS + "SendTestNotification": "notification:subscribe",
    _NOTIFICATIONS + "CreateWebhook": "notification:webhook:manage",
    _NOTIFICATIONS + "ListWebhooks": "notification:webhook:manage",
    _NOTIFICATIONS + "DeleteWebhook": "notification:webhook:manage",
    _METRICS + "GetWukongMetrics": "vm:query",
    _METRICS + "WatchWukongMetrics": "vm:query",
    _AUTH + "Login": PUBLIC,
    _AUTH + "Refresh": PUBLIC,  # it must work with an expired access token
    _AUTH + "Logout": AUTHENTICATED,
    _AUTH + "Me": AUTHENTICATED,
    _AUTH + "CheckPermission": AUTHENTICATED,
    _AUTH + "CreateApiKey": "apikey:manage",
    _AUTH + "ListApiKeys": "apikey:manage",
    _AUTH + "RevokeApiKey": "apikey:manage",
    _AUTH + "ChangePassword": AUTHENTICATED,  # a login session's own user (not an API key; domain)
    _AUTH + "ListSessions": AUTHENTICATED,  # the caller's own
    _AUTH + "RevokeSession": AUTHENTICATED,  # one of the caller's own
    _CONSOLE + "CreateConsoleSession": "vm:console:access",
    _CONSOLE + "GetConsoleStatus": "vm:console:access",
    _CONSOLE + "DisconnectConsole": "vm:console:access",  # another user's session also needs vm:console:manage
    _CONSOLE + "ListConsoleSessions": "vm:console:access",
    _ADMIN + "ListTenants": "tenant:manage",
    _ADMIN + "CreateTenant": "tenant:manage",
    _ADMIN + "DeleteTenant": "tenant:manage",
    _ADMIN + "ListUsers": "user:manage",
    _ADMIN + "CreateUser": "user:manage",
    _ADMIN + "UpdateUser": "user:manage",
    _ADMIN + "DeleteUser": "user:manage",
    _ADMIN + "ListRoles": "binding:manage",
    _ADMIN + "PutRole": "role:manage",
    _ADMIN + "DeleteRole": "role:manage",
    _ADMIN + "ListRoleBindings": "binding:manage",  # another tenant's also needs tenant:manage (domain)
    _ADMIN + "CreateRoleBinding": "binding:manage",  # + the role's permissions, and tenant:manage elsewhere (domain)
    _ADMIN + "DeleteRoleBinding": "binding:manage",  # as CreateRoleBinding
    "/grpc.health.v1.Health/Check": PUBLIC,
    "/grpc.health.v1.Health/Watch": PUBLIC,
    "/grpc.health.v1.Health/List": PUBLIC,
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": PUBLIC,
}

ANSWERED_WHILE_STARTING: Final = frozenset(
    {
        "/grpc.health.v1.Health/Check",
        "/grpc.health.v1.Health/List",
    }
)
"""Public unary calls that need none of the replica's caches: they report its phase (the other public ones, Login and
Refresh, need its sessions; public streams are the health service's Watch and reflection)."""
