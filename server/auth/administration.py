"""Administration of tenants, users, roles and role bindings, all kept in the cluster: tenants are labelled
namespaces, users Secrets, roles and bindings the `novasphere-authz` ConfigMap. Every replica's informers see a change
within the watch latency, so it applies to the next request everywhere.

Two levels: `tenant:manage`, `user:manage` and `role:manage` act on the whole installation; `binding:manage` acts on
the caller's own tenant and grants only roles whose permissions the caller holds itself (no escalation, as in
Kubernetes RBAC). Bindings in another tenant need `tenant:manage` (the platform administrator who just created it).

Roles and bindings are edited read-modify-write with the ConfigMap's resourceVersion as a precondition, retried on a
conflict, so two administrators editing at once both land and neither overwrites the other.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from server import errors, logs, names
from server.auth import (
    BINDING_MANAGE,
    KNOWN_PERMISSIONS,
    TENANT_MANAGE,
    Caller,
    passwords,
    store,
)
from server.auth.accounts import Accounts, password_violations
from server.auth.store import AuthStore, Binding
from server.kube import auth_objects, namespaces
from server.kube import errors as kube_errors
from server.kube.client import JsonObject, KubeClient
from server.kube.namespaces import TENANT_LABEL
from server.lookups import Lookups
from server.tenancy import DEFAULT_NAMESPACE_LABEL, Tenancy

log = logging.getLogger(__name__)

_USERNAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?$")
SYSTEM_NAMESPACES = frozenset({"default", "kube-system", "kube-public", "kube-node-lease"})
EDIT_ATTEMPTS = 20
USER_FIELDS = ("password", "disabled")

Roles = dict[str, frozenset[str]]


@dataclass(frozen=True)
class TenantInfo:
    id: str
    namespaces: tuple[str, ...]
    default_namespace: str
    members: int


@dataclass(frozen=True)
class UserInfo:
    name: str
    disabled: bool
    bindings: tuple[Binding, ...]


class Administration:
    def __init__(
        self,
        *,
        kube: KubeClient,
        auth_store: AuthStore,
        tenancy: Tenancy,
        accounts: Accounts,
        namespace: str,
        lookups: Lookups,
    ) -> None:
        self._kube = kube
        self._store = auth_store
        self._tenancy = tenancy
        self._accounts = accounts
        self._namespace = namespace
        self._lookups = lookups

    # ---- tenants ----------------------------------------------------------------------------------------------

    def tenants(self) -> list[TenantInfo]:
        members: dict[str, int] = {}
        for binding in self._store.bindings():
            members[binding.tenant] = members.get(binding.tenant, 0) + 1
        known = self._tenancy.tenants()
        listed = []
        for tenant in sorted(set(known) | set(members)):  # a tenant with bindings but no namespace is listed too
            spaces, default = known.get(tenant, (frozenset(), ""))
            listed.append(TenantInfo(tenant, tuple(sorted(spaces)), default, members.get(tenant, 0)))
        return listed

    async def create_tenant(self, tenant: str, wanted: list[str]) -> TenantInfo:
        violations = []
        if not tenant or len(tenant) > names.DNS_LABEL_MAX or not names.is_dns_label(tenant):
            violations.append(errors.FieldViolation("tenant_id", "give a DNS label (lowercase letters, digits, '-')"))
        if not wanted:
            violations.append(
                errors.FieldViolation("namespaces", "list at least one namespace; the first is the default")
            )
        for index, namespace in enumerate(wanted):
            if len(namespace) > names.DNS_LABEL_MAX or not names.is_dns_label(namespace):
                violations.append(errors.FieldViolation(f"namespaces[{index}]", f"'{namespace}' is not a DNS label"))
            elif namespace in SYSTEM_NAMESPACES or namespace.startswith("kube-") or namespace == self._namespace:
                violations.append(errors.FieldViolation(f"namespaces[{index}]", f"'{namespace}' is a system namespace"))
        if len(set(wanted)) != len(wanted):
            violations.append(errors.FieldViolation("namespaces", "lists a namespace twice"))
        if violations:
            raise errors.InvalidArgument(violations)
        if tenant in self._tenancy.tenants() or await namespaces.names_labelled(self._kube, f"{TENANT_LABEL}={tenant}"):
            raise errors.AdminObjectExists("tenant", tenant, hint="ListTenants shows it")
        found = {namespace: await namespaces.get(self._kube, namespace) for namespace in wanted}
        for namespace, existing in found.items():  # check all before changing any: a refusal changes nothing
            owner = ((existing or {}).get("metadata", {}).get("labels") or {}).get(TENANT_LABEL)
            if owner:
                raise errors.FailedPrecondition(
                    f"namespace '{namespace}' already belongs to tenant '{owner}'; release it with DeleteTenant "
                    "or choose another",
                    reason=errors.Reason.NAMESPACE_NOT_AVAILABLE,
                )
        for index, namespace in enumerate(wanted):
            labels: dict[str, str | None] = {TENANT_LABEL: tenant}
            if index == 0:
                labels[DEFAULT_NAMESPACE_LABEL] = "true"
            existing = found[namespace]
            if existing is None:
                with contextlib.suppress(kube_errors.Conflict):  # created meanwhile: labelled below
                    await namespaces.create(self._kube, namespace, {k: v for k, v in labels.items() if v})
                    continue
                existing = await namespaces.get(self._kube, namespace)
            version = str(((existing or {}).get("metadata") or {}).get("resourceVersion", ""))
            try:  # only the version checked above: a tenant labelling it meanwhile is not overwritten
                await namespaces.set_labels(self._kube, namespace, labels, resource_version=version)
            except kube_errors.Conflict as conflict:
                raise errors.FailedPrecondition(
                    f"namespace '{namespace}' changed while the tenant was being created; retry",
                    reason=errors.Reason.NAMESPACE_NOT_AVAILABLE,
                ) from conflict
        _changed("tenant.created", f"tenant {tenant} created with namespaces {', '.join(wanted)}", target_tenant=tenant)
        return TenantInfo(tenant, tuple(sorted(wanted)), wanted[0], 0)

    async def delete_tenant(self, caller: Caller, tenant: str) -> list[str]:
        """Releases the tenant's namespaces (they and their VMs stay) and removes its bindings."""
        if not names.is_dns_label(tenant) or len(tenant) > names.DNS_LABEL_MAX:
            raise errors.InvalidArgument.field("tenant_id", f"'{tenant}' is not a tenant id (a DNS label)")
        if tenant == caller.tenant:
            raise errors.FailedPrecondition(
                f"you are logged in to tenant '{tenant}': deleting it would lock you out; log in to another tenant "
                "to delete this one",
                reason=errors.Reason.SELF_LOCKOUT,
            )
        owned = await namespaces.names_labelled(self._kube, f"{TENANT_LABEL}={tenant}")
        bound = any(b.tenant == tenant for b in self._store.bindings())
        if not owned and not bound:
            raise errors.AdminObjectNotFound("tenant", tenant, hint="ListTenants shows the tenants")
        for namespace in owned:
            with contextlib.suppress(kube_errors.NotFound):
                await namespaces.set_labels(self._kube, namespace, {TENANT_LABEL: None, DEFAULT_NAMESPACE_LABEL: None})
        await self._edit_authz(lambda roles, bindings: (roles, tuple(b for b in bindings if b.tenant != tenant)))
        released = ", ".join(owned) or "none"
        _changed(
            "tenant.deleted",
            f"tenant {tenant} deleted by {caller.user}; namespaces released: {released}",
            target_tenant=tenant,
        )
        return owned

    # ---- users ------------------------------------------------------------------------------------------------

    def users(self) -> list[UserInfo]:
        bindings = self._store.bindings()
        return [self._user_info(user.name, user.disabled, bindings) for user in self._store.users()]

    async def create_user(self, username: str, password: str, *, disabled: bool) -> UserInfo:
        violations = []
        if not _USERNAME.match(username):
            violations.append(
                errors.FieldViolation(
                    "username",
                    "give 1-63 lowercase letters, digits, '-' or '.', starting and ending with one of the first two",
                )
            )
        violations += password_violations("password", password)
        if violations:
            raise errors.InvalidArgument(violations)
        secret = store.user_secret(username, await passwords.hash_async(password), disabled=disabled)
        secret["metadata"]["namespace"] = self._namespace
        try:
            await auth_objects.create_secret(self._kube, secret)
        except kube_errors.Conflict as conflict:
            raise errors.AdminObjectExists("user", username, hint="ListUsers shows the users") from conflict
        _changed("user.created", f"user {username} created", target_user=username)
        return self._user_info(username, disabled, self._store.bindings())

    async def update_user(
        self, caller: Caller, username: str, fields: list[str], *, password: str, disabled: bool
    ) -> UserInfo:
        unknown = [f for f in fields if f not in USER_FIELDS]
        if not fields or unknown:
            raise errors.InvalidArgument.field(
                "update_mask",
                f"list what to change among {', '.join(USER_FIELDS)}"
                + (f" (unknown: {', '.join(unknown)})" if unknown else ""),
            )
        if "password" in fields and (violations := password_violations("password", password)):
            raise errors.InvalidArgument(violations)
        if disabled and "disabled" in fields and username == caller.user:
            raise errors.FailedPrecondition("you cannot disable yourself", reason=errors.Reason.SELF_LOCKOUT)
        await self._existing_user(username, caller)
        patch: dict[str, object] = {}
        if "password" in fields:
            patch["data"] = auth_objects.encoded({"passwordHash": await passwords.hash_async(password)})
        if "disabled" in fields:
            patch["metadata"] = {"annotations": {store.DISABLED_ANNOTATION: "true" if disabled else "false"}}
        try:
            await auth_objects.patch_secret(
                self._kube, namespace=self._namespace, name=store.user_secret_name(username), patch=patch
            )
        except kube_errors.NotFound as gone:
            raise _no_user(username) from gone
        because = store.RevokedBecause.USER_DISABLED if disabled and "disabled" in fields else ""
        await self._accounts.revoke_sessions_of(username, because=because or store.RevokedBecause.PASSWORD_CHANGED)
        _changed(
            "user.updated",
            f"user {username}: {', '.join(fields)} changed by {caller.user}",
            target_user=username,
            fields=list(fields),
        )
        user = self._store.user(username)
        return self._user_info(
            username, disabled if "disabled" in fields else bool(user and user.disabled), self._store.bindings()
        )

    async def delete_user(self, caller: Caller, username: str) -> None:
        """Disabled first (no new login or key use anywhere, at once), then every credential and binding is removed
        (sessions and keys listed from the cluster, not this replica's cache), the user last: a user created again
        under the name inherits nothing."""
        if username == caller.user:
            raise errors.FailedPrecondition("you cannot delete yourself", reason=errors.Reason.SELF_LOCKOUT)
        await self._existing_user(username, caller)
        name = store.user_secret_name(username)
        try:
            await auth_objects.patch_secret(
                self._kube,
                namespace=self._namespace,
                name=name,
                patch={"metadata": {"annotations": {store.DISABLED_ANNOTATION: "true"}}},
            )
        except kube_errors.NotFound as gone:
            raise _no_user(username) from gone
        credentials = await auth_objects.labelled_secrets(
            self._kube, namespace=self._namespace, selector=f"{store.USER_LABEL}={username}"
        )
        for credential in credentials:
            if credential["metadata"]["name"] != name:
                with contextlib.suppress(kube_errors.NotFound):
                    await auth_objects.delete_secret(
                        self._kube, namespace=self._namespace, name=credential["metadata"]["name"]
                    )
        await self._edit_authz(lambda roles, bindings: (roles, tuple(b for b in bindings if b.user != username)))
        with contextlib.suppress(kube_errors.NotFound):
            await auth_objects.delete_secret(self._kube, namespace=self._namespace, name=name)
        _changed("user.deleted", f"user {username} deleted by {caller.user}", target_user=username)

    # ---- roles ------------------------------------------------------------------------------------------------

    def roles(self) -> Roles:
        return self._store.roles()

    async def put_role(self, name: str, permissions: list[str]) -> frozenset[str]:
        wanted = frozenset(p.strip() for p in permissions if p.strip())
        violations = []
        if not name or len(name) > names.DNS_LABEL_MAX or not names.is_dns_label(name):
            violations.append(errors.FieldViolation("name", "give a DNS label (lowercase letters, digits, '-')"))
        if not wanted:
            violations.append(errors.FieldViolation("permissions", "list at least one permission, e.g. vm:query"))
        if unknown := sorted(wanted - KNOWN_PERMISSIONS):
            violations.append(
                errors.FieldViolation(
                    "permissions", f"unknown: {', '.join(unknown)} (ListRoles lists the known permissions)"
                )
            )
        if violations:
            raise errors.InvalidArgument(violations)
        await self._edit_authz(lambda roles, bindings: ({**roles, name: wanted}, bindings))
        _changed("role.set", f"role {name} set to {', '.join(sorted(wanted))}", role=name, permissions=sorted(wanted))
        return wanted

    async def delete_role(self, name: str) -> None:
        def without(roles: Roles, bindings: tuple[Binding, ...]) -> tuple[Roles, tuple[Binding, ...]]:
            if name not in roles:
                raise errors.AdminObjectNotFound("role", name, hint="ListRoles shows the roles")
            if holders := [f"{b.user} in {b.tenant}" for b in bindings if b.role == name]:
                raise errors.FailedPrecondition(
                    f"role '{name}' is still bound ({', '.join(holders[:5])}{', …' if len(holders) > 5 else ''}); "
                    "delete those role bindings first",
                    reason=errors.Reason.ROLE_IN_USE,
                )
            return {k: v for k, v in roles.items() if k != name}, bindings

        await self._edit_authz(without)
        _changed("role.deleted", f"role {name} deleted", role=name)

    # ---- role bindings ----------------------------------------------------------------------------------------

    def bindings(self, caller: Caller, tenant: str) -> list[Binding]:
        tenant = self._binding_tenant(caller, tenant)
        return sorted((b for b in self._store.bindings() if b.tenant == tenant), key=lambda b: (b.user, b.role))

    async def create_binding(self, caller: Caller, *, tenant: str, username: str, role: str) -> Binding:
        tenant = self._binding_tenant(caller, tenant)
        self._grantable(caller, role)
        await self._existing_user(username, caller)
        binding = Binding(username, tenant, role)
        await self._edit_authz(
            lambda roles, bindings: (roles, (*bindings, binding) if binding not in bindings else bindings)
        )
        _changed(
            "binding.created",
            f"{username} given role {role} in tenant {tenant} by {caller.user}",
            target_user=username,
            role=role,
            target_tenant=tenant,
        )
        return binding

    async def delete_binding(self, caller: Caller, *, tenant: str, username: str, role: str) -> None:
        tenant = self._binding_tenant(caller, tenant)
        self._grantable(caller, role)  # taking a role away needs the same standing as giving it
        binding = Binding(username, tenant, role)

        def without(roles: Roles, bindings: tuple[Binding, ...]) -> tuple[Roles, tuple[Binding, ...]]:
            if binding not in bindings:
                raise errors.AdminObjectNotFound(
                    "role binding",
                    f"{username}/{role}",
                    hint=f"ListRoleBindings shows who holds which role in {tenant}",
                )
            return roles, tuple(b for b in bindings if b != binding)

        await self._edit_authz(without)
        _changed(
            "binding.deleted",
            f"{username} lost role {role} in tenant {tenant} (by {caller.user})",
            target_user=username,
            role=role,
            target_tenant=tenant,
        )

    # ---- helpers ----------------------------------------------------------------------------------------------

    def _binding_tenant(self, caller: Caller, tenant: str) -> str:
        if not tenant or tenant == caller.tenant:
            return caller.tenant
        if not caller.may(TENANT_MANAGE):
            raise errors.PermissionDenied(
                TENANT_MANAGE,
                message=f"{BINDING_MANAGE} covers your own tenant ('{caller.tenant}'); role bindings in tenant "
                f"'{tenant}' need {TENANT_MANAGE}",
            )
        if not names.is_dns_label(tenant) or len(tenant) > names.DNS_LABEL_MAX:
            raise errors.InvalidArgument.field("tenant_id", f"'{tenant}' is not a tenant id (a DNS label)")
        if tenant not in self._tenancy.tenants() and all(b.tenant != tenant for b in self._store.bindings()):
            raise errors.AdminObjectNotFound("tenant", tenant, hint="CreateTenant creates it; ListTenants lists them")
        return tenant

    def _grantable(self, caller: Caller, role: str) -> None:
        permissions = self._store.roles().get(role)
        if permissions is None:
            raise errors.AdminObjectNotFound("role", role, hint="ListRoles shows the roles")
        if beyond := sorted(p for p in permissions if not caller.may(p)):
            raise errors.PermissionDenied(
                beyond[0],
                message=f"role '{role}' holds permissions you do not ({', '.join(beyond)}); you can only grant or "
                "revoke roles within your own permissions",
            )

    async def _existing_user(self, username: str, caller: Caller) -> None:
        """The informer knows; for a user it has not seen yet (created on another replica a moment ago), the
        cluster does."""
        if self._store.user(username) is not None:
            return
        if not _USERNAME.match(username):
            raise _no_user(username)

        async def fetch() -> JsonObject | None:
            with contextlib.suppress(kube_errors.NotFound):
                return await auth_objects.get_secret(
                    self._kube, namespace=self._namespace, name=store.user_secret_name(username)
                )
            return None

        if await self._lookups.unseen("user", username, client=caller.address, fetch=fetch) is None:
            raise _no_user(username)

    @staticmethod
    def _user_info(name: str, disabled: bool, bindings: Iterable[Binding]) -> UserInfo:
        mine = sorted((b for b in bindings if b.user == name), key=lambda b: (b.tenant, b.role))
        return UserInfo(name, disabled, tuple(mine))

    async def _edit_authz(
        self, change: Callable[[Roles, tuple[Binding, ...]], tuple[Roles, tuple[Binding, ...]]]
    ) -> None:
        """Applies `change` to the roles and bindings as stored now, under the ConfigMap's resourceVersion."""
        for attempt in range(EDIT_ATTEMPTS):
            try:
                config_map = await auth_objects.get_config_map(
                    self._kube, namespace=self._namespace, name=store.AUTHZ_CONFIG_MAP
                )
            except kube_errors.NotFound as missing:
                raise errors.FailedPrecondition(
                    f"the roles ConfigMap {self._namespace}/{store.AUTHZ_CONFIG_MAP} is missing: "
                    "apply deploy/authz.yaml",
                    reason=errors.Reason.AUTHZ_NOT_INSTALLED,
                ) from missing
            roles, bindings = store.parse_authz(config_map.get("data") or {})
            new_roles, new_bindings = change(roles, bindings)
            data = store.authz_data(new_roles, new_bindings)
            if data == store.authz_data(roles, bindings):
                return
            config_map["data"] = {**(config_map.get("data") or {}), **data}
            try:
                self._store.wrote_authz(await auth_objects.replace_config_map(self._kube, config_map))
                return
            except kube_errors.Conflict:  # another edit landed first: redo this one on top of it
                await asyncio.sleep(random.uniform(0, 0.02 * (attempt + 1)))  # noqa: S311 (jitter, not security)
        raise errors.Unavailable("the roles ConfigMap kept changing under this edit; retry")


def _no_user(username: str) -> errors.AdminObjectNotFound:
    return errors.AdminObjectNotFound("user", username[:63], hint="ListUsers shows the users")


def _changed(action: str, message: str, **fields: Any) -> None:
    """The `admin.change` event; who asked is the `user` of the access event with the same `request_id`."""
    logs.event(log, "admin.change", message, action=action, **fields)
