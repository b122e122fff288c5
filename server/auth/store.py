"""What authentication reads, mirrored from the cluster on every replica (an `informer.Handler` for the auth Secrets
and ConfigMaps of the API's namespace): users, login sessions, the token signing keys, roles and bindings.

A change made through any replica, or by an administrator with kubectl, is here within the watch latency: a logout
or a revoked session stops being accepted everywhere, a new role binding applies to the next request.
"""

from __future__ import annotations

import datetime
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from server import timestamps
from server.auth.tokens import KeyRing
from server.kube.auth_objects import KIND_LABEL, encoded, secret_data
from server.kube.informer import Kind

log = logging.getLogger(__name__)

_EPOCH = datetime.datetime.fromtimestamp(0, datetime.UTC)
USER_LABEL = "novasphere.dev/user"
TENANT_LABEL = "novasphere.dev/tenant"
REVOKED_LABEL = "novasphere.dev/revoked"
REVOKED_REASON_ANNOTATION = "novasphere.dev/revoked-reason"
CLIENT_ADDRESS_ANNOTATION = "novasphere.dev/client-address"
LAST_USED_ANNOTATION = "novasphere.dev/last-used"
EXPIRES_ANNOTATION = "novasphere.dev/expires"
DISABLED_ANNOTATION = "novasphere.dev/disabled"
ACTIVE_KID_ANNOTATION = "novasphere.dev/active-kid"
CLIENT_TYPE_ANNOTATION = "novasphere.dev/client-type"
NAME_ANNOTATION = "novasphere.dev/name"
PERMISSIONS_ANNOTATION = "novasphere.dev/permissions"
CREATED_ANNOTATION = "novasphere.dev/created"
USER_KIND, SESSION_KIND, KEYS_KIND, AUTHZ_KIND, API_KEY_KIND = "user", "session", "token-keys", "authz", "api-key"
KEYS_SECRET = "novasphere-token-keys"  # noqa: S105 (a Secret's name)
INITIAL_ADMIN_SECRET = "novasphere-initial-admin"  # noqa: S105 (a Secret's name)
BOOTSTRAP_ADMIN = "admin"
AUTHZ_CONFIG_MAP = "novasphere-authz"


def user_secret_name(username: str) -> str:
    return f"user-{username}"


def user_secret(name: str, password_hash: str, *, disabled: bool = False) -> dict[str, Any]:
    """A user as stored: a Secret `user-<name>` with the argon2id PHC string (namespace left to the caller)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "novasphere.dev/user",
        "metadata": {
            "name": user_secret_name(name),
            "labels": {KIND_LABEL: USER_KIND, USER_LABEL: name},
            "annotations": {DISABLED_ANNOTATION: "true" if disabled else "false"},
        },
        "data": encoded({"passwordHash": password_hash}),
    }


def session_secret_name(session_id: str) -> str:
    return f"session-{session_id}"


def api_key_secret_name(key_id: str) -> str:
    return f"apikey-{key_id}"


@dataclass(frozen=True)
class User:
    name: str
    password_hash: str
    disabled: bool


class RevokedBecause:
    """Why a login session was revoked (its `revoked-reason` annotation): clients are told in words, and consoles the
    session opened close with a code of their own for `SESSION_LIMIT`."""

    LOGOUT = "logout"
    REVOKED = "revoked"
    """By its user (from another session) or an administrator."""
    PASSWORD_CHANGED = "password-changed"  # noqa: S105 (a reason, not a secret)
    USER_DISABLED = "user-disabled"
    REFRESH_REUSED = "refresh-reused"
    SESSION_LIMIT = "session-limit"
    """Its user logged in once too often: the oldest sessions go."""


@dataclass(frozen=True)
class Session:
    id: str
    user: str
    tenant: str
    expires: datetime.datetime | None
    revoked: bool
    revoked_reason: str = ""
    generation: int = 0
    """The generation of the one refresh token that works now (see `tokens`)."""
    client_type: str = ""
    client_address: str = ""
    created: datetime.datetime | None = None
    last_used: datetime.datetime | None = None
    """The last login or refresh (access tokens are not tracked per request)."""
    resource_version: str = ""

    def live(self, now: datetime.datetime) -> bool:
        return not self.revoked and self.expires is not None and now < self.expires


@dataclass(frozen=True)
class ApiKeyRecord:
    id: str
    name: str
    user: str
    tenant: str
    permissions: frozenset[str]
    digest: str
    created: datetime.datetime | None
    expires: datetime.datetime | None

    def live(self, now: datetime.datetime) -> bool:
        return self.expires is None or now < self.expires


def api_key_from(secret: Mapping[str, Any]) -> ApiKeyRecord:
    metadata = secret["metadata"]
    labels = metadata.get("labels") or {}
    annotations = metadata.get("annotations") or {}
    permissions = json.loads(annotations.get(PERMISSIONS_ANNOTATION) or "[]")
    return ApiKeyRecord(
        id=str(metadata["name"]).removeprefix("apikey-"),
        name=annotations.get(NAME_ANNOTATION, ""),
        user=labels.get(USER_LABEL, ""),
        tenant=labels.get(TENANT_LABEL, ""),
        permissions=frozenset(str(p) for p in permissions),
        digest=secret_data(secret).get("digest", ""),
        created=timestamps.parse(annotations.get(CREATED_ANNOTATION, "")),
        expires=timestamps.parse(annotations.get(EXPIRES_ANNOTATION, "")),
    )


def session_from(secret: Mapping[str, Any]) -> Session:
    metadata = secret["metadata"]
    labels = metadata.get("labels") or {}
    annotations = metadata.get("annotations") or {}
    generation = secret_data(secret).get("generation", "")
    return Session(
        id=str(metadata["name"]).removeprefix("session-"),
        user=labels.get(USER_LABEL, ""),
        tenant=labels.get(TENANT_LABEL, ""),
        expires=timestamps.parse(annotations.get(EXPIRES_ANNOTATION, "")),
        revoked=labels.get(REVOKED_LABEL) == "true",
        revoked_reason=annotations.get(REVOKED_REASON_ANNOTATION, ""),
        generation=int(generation) if generation.isdigit() else 0,
        client_type=annotations.get(CLIENT_TYPE_ANNOTATION, ""),
        client_address=annotations.get(CLIENT_ADDRESS_ANNOTATION, ""),
        # to the microsecond, which creationTimestamp is not: the order of a user's logins decides which go first
        created=timestamps.parse(annotations.get(CREATED_ANNOTATION) or metadata.get("creationTimestamp")),
        last_used=timestamps.parse(annotations.get(LAST_USED_ANNOTATION, "")),
        resource_version=str(metadata.get("resourceVersion", "")),
    )


@dataclass(frozen=True)
class Binding:
    user: str
    tenant: str
    role: str


class AuthStore:
    def __init__(self) -> None:
        self.keys = KeyRing()
        self._users: dict[str, User] = {}
        self._sessions: dict[str, Session] = {}
        self._api_keys: dict[str, ApiKeyRecord] = {}
        self._roles: dict[str, frozenset[str]] = {}
        self._bindings: tuple[Binding, ...] = ()
        self._authz_version = 0
        self._synced: set[str] = set()
        self.listeners: list[Callable[[], None]] = []
        """Told after every change (the console proxy re-checks the consoles it holds)."""

    @property
    def synced(self) -> bool:
        return len(self._synced) == 2

    def user(self, name: str) -> User | None:
        return self._users.get(name)

    def has_users(self) -> bool:
        return bool(self._users)

    def session(self, session_id: str) -> Session | None:
        return self._sessions.get(session_id)

    def api_key(self, key_id: str) -> ApiKeyRecord | None:
        return self._api_keys.get(key_id)

    def api_keys_of(self, user: str, tenant: str) -> list[ApiKeyRecord]:
        return sorted(
            (k for k in self._api_keys.values() if k.user == user and k.tenant == tenant),
            key=lambda k: (k.created or datetime.datetime.min.replace(tzinfo=datetime.UTC), k.id),
        )

    def expired(self, now: datetime.datetime) -> list[str]:
        """The Secrets of sessions and API keys past their expiry: nothing can use them any more."""
        sessions = [session_secret_name(s.id) for s in self._sessions.values() if s.expires and s.expires <= now]
        keys = [api_key_secret_name(k.id) for k in self._api_keys.values() if not k.live(now)]
        return sorted(sessions + keys)

    def users(self) -> list[User]:
        return sorted(self._users.values(), key=lambda u: u.name)

    def sessions_of(self, user: str) -> list[Session]:
        """Revoked ones included (their Secrets stay until they expire), oldest first."""
        return sorted((s for s in self._sessions.values() if s.user == user), key=lambda s: (s.created or _EPOCH, s.id))

    def wrote_session(self, secret: Mapping[str, Any]) -> None:
        """A session as written (by this replica, ahead of its watch event, or from the informer): an older version
        arriving later does not replace a newer one."""
        session = session_from(secret)
        current = self._sessions.get(session.id)
        if current is None or int(current.resource_version or 0) <= int(session.resource_version or 0):
            self._sessions[session.id] = session
            self._tell()

    def api_key_ids_of(self, user: str) -> list[str]:
        """In every tenant."""
        return sorted(k.id for k in self._api_keys.values() if k.user == user)

    def roles(self) -> dict[str, frozenset[str]]:
        return dict(self._roles)

    def bindings(self) -> tuple[Binding, ...]:
        return self._bindings

    def tenants_of(self, user: str) -> list[str]:
        return sorted({b.tenant for b in self._bindings if b.user == user})

    def permissions(self, user: str, tenant: str) -> frozenset[str]:
        """The union of the user's roles in the tenant; a role nobody defined grants nothing (and is logged)."""
        granted: set[str] = set()
        for binding in self._bindings:
            if binding.user == user and binding.tenant == tenant:
                role = self._roles.get(binding.role)
                if role is None:
                    log.warning("binding of %s in %s names an undefined role %r", user, tenant, binding.role)
                granted |= role or frozenset()
        return frozenset(granted)

    def wrote_authz(self, config_map: Mapping[str, Any]) -> None:
        """A roles ConfigMap this replica just wrote: in force here at once, ahead of its watch event, so the next
        read on this replica sees it (an older event arriving later does not undo it)."""
        self._put(config_map)
        self._tell()

    # informer.Handler
    def replace(self, kind: Kind, items: list[dict[str, Any]], resource_version: int) -> None:
        if kind.name == "auth-secrets":
            self._users, self._sessions, self._api_keys = {}, {}, {}
        else:  # no authz ConfigMap: no roles, so nobody may do anything (fail closed)
            self._roles, self._bindings, self._authz_version = {}, (), 0
        for item in items:
            self._put(item)
        self._synced.add(kind.name)
        self._tell()

    def apply(self, kind: Kind, event_type: str, item: dict[str, Any], resource_version: int) -> None:
        if event_type == "DELETED":
            self._remove(item)
        else:
            self._put(item)
        self._tell()

    def _tell(self) -> None:
        for listener in self.listeners:
            listener()

    def progress(self, kind: Kind, resource_version: int) -> None:
        """Bookmarks carry nothing authentication needs."""

    def _put(self, item: Mapping[str, Any]) -> None:
        metadata = item["metadata"]
        labels = metadata.get("labels") or {}
        annotations = metadata.get("annotations") or {}
        try:
            kind_label = labels.get(KIND_LABEL)
            if kind_label == USER_KIND:
                name = labels.get(USER_LABEL, "")
                disabled = annotations.get(DISABLED_ANNOTATION, "") == "true"
                self._users[name] = User(name, secret_data(item).get("passwordHash", ""), disabled)
            elif kind_label == SESSION_KIND:
                self.wrote_session(item)
            elif kind_label == API_KEY_KIND:
                record = api_key_from(item)
                self._api_keys[record.id] = record
            elif kind_label == KEYS_KIND:
                self.keys.load(secret_data(item), annotations.get(ACTIVE_KID_ANNOTATION, ""))
            elif kind_label == AUTHZ_KIND:
                version = int(metadata.get("resourceVersion") or 0)
                if version >= self._authz_version:
                    self._load_authz(item.get("data") or {})
                    self._authz_version = version
        except (ValueError, KeyError, yaml.YAMLError) as error:
            # A bad edit must not take the replica down; the last good state stays in force.
            log.error("ignoring %s/%s: %s", labels.get(KIND_LABEL), metadata.get("name"), error)

    def _remove(self, item: Mapping[str, Any]) -> None:
        metadata = item["metadata"]
        labels = metadata.get("labels") or {}
        kind = labels.get(KIND_LABEL)
        if kind == USER_KIND:
            self._users.pop(labels.get(USER_LABEL, ""), None)
        elif kind == SESSION_KIND:
            self._sessions.pop(str(metadata["name"]).removeprefix("session-"), None)
        elif kind == API_KEY_KIND:
            self._api_keys.pop(str(metadata["name"]).removeprefix("apikey-"), None)
        elif kind == KEYS_KIND:
            self.keys.unload()
            log.warning("the token keys Secret %s was deleted: no token is accepted now", metadata.get("name"))
        elif kind == AUTHZ_KIND:
            self._roles, self._bindings, self._authz_version = {}, (), 0
            log.warning("the roles ConfigMap %s was deleted: no role grants anything now", metadata.get("name"))

    def _load_authz(self, data: Mapping[str, str]) -> None:
        self._roles, self._bindings = parse_authz(data)
        log.info("roles %s and %d bindings loaded", sorted(self._roles), len(self._bindings))


def parse_authz(data: Mapping[str, str]) -> tuple[dict[str, frozenset[str]], tuple[Binding, ...]]:
    """Roles and bindings from the authz ConfigMap's `data` (`roles.yaml`, `bindings.yaml`)."""
    roles_raw = yaml.safe_load(data.get("roles.yaml") or "{}") or {}
    bindings_raw = yaml.safe_load(data.get("bindings.yaml") or "[]") or []
    if not isinstance(roles_raw, dict) or not isinstance(bindings_raw, list):
        raise ValueError("roles.yaml must map role names to lists; bindings.yaml must be a list")
    roles = {str(name): frozenset(str(p) for p in permissions or ()) for name, permissions in roles_raw.items()}
    bindings = tuple(Binding(str(b["user"]), str(b["tenant"]), str(b["role"])) for b in bindings_raw)
    return roles, bindings


def authz_data(roles: Mapping[str, frozenset[str]], bindings: tuple[Binding, ...]) -> dict[str, str]:
    """The authz ConfigMap's `data` for these roles and bindings (sorted, so an unchanged set writes no change)."""
    roles_yaml = {name: sorted(permissions) for name, permissions in sorted(roles.items())}
    bindings_yaml = [
        {"user": b.user, "tenant": b.tenant, "role": b.role}
        for b in sorted(set(bindings), key=lambda b: (b.tenant, b.user, b.role))
    ]
    return {
        "roles.yaml": yaml.safe_dump(roles_yaml, default_flow_style=None, sort_keys=True),
        "bindings.yaml": yaml.safe_dump(bindings_yaml, default_flow_style=None, sort_keys=False),
    }
