"""Logging in and out, refreshing, and telling who a request comes from.

A login creates a session (a Secret in the API's namespace, watched by every replica) holding the SHA-256 of its
current refresh token; the access token names the session (`sid`), and every request checks that the session is
still live, so a logout or revocation applies on every replica within the watch latency. Refresh tokens are single
use: each refresh replaces the hash (guarded by the Secret's resourceVersion, so two concurrent uses cannot both
win), and presenting an already used one revokes the whole session, since only a copy could do that.
"""

from __future__ import annotations

import contextlib
import datetime
import hmac
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from server import errors, timestamps
from server.auth import Caller, lockout, passwords, store, tokens
from server.auth.api_keys import ApiKeys
from server.auth.store import AuthStore, Session
from server.kube import auth_objects
from server.kube import errors as kube_errors
from server.kube.client import KubeClient

log = logging.getLogger(__name__)

REFRESH_PREFIX = "nsr1"
USED_TOKENS_KEPT = 20
MAX_USERNAME = 64
MAX_PASSWORD = 1024
_BEARER = "bearer"


@dataclass(frozen=True)
class Lifetimes:
    access_seconds: float
    session_seconds: float


@dataclass(frozen=True)
class Grant:
    access_token: str
    expires: datetime.datetime
    refresh_token: str
    session_expires: datetime.datetime
    caller: Caller
    tenants: list[str]


class Accounts:
    def __init__(
        self,
        *,
        kube: KubeClient,
        auth_store: AuthStore,
        namespace: str,
        lifetimes: Lifetimes,
        api_keys: ApiKeys,
        anonymous: Caller | None,
    ) -> None:
        """`anonymous`: who a request without credentials runs as (the development identity), or None to refuse."""
        self._kube = kube
        self._store = auth_store
        self._namespace = namespace
        self._lifetimes = lifetimes
        self._api_keys = api_keys
        self._anonymous = anonymous
        self._lockout = lockout.Lockout()

    async def ensure_signing_key(self) -> None:
        """Creates the signing key Secret on a fresh install (the first replica wins; the others load its key)."""
        if self._store.keys.ready:
            return
        kid = tokens.new_kid()
        body = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": store.KEYS_SECRET,
                "namespace": self._namespace,
                "labels": {auth_objects.KIND_LABEL: store.KEYS_KIND},
                "annotations": {store.ACTIVE_KID_ANNOTATION: kid},
            },
            "data": auth_objects.encoded({kid: tokens.new_private_key_pem()}),
        }
        try:
            created = await auth_objects.create_secret(self._kube, body)
        except kube_errors.Conflict:
            created = await auth_objects.get_secret(self._kube, namespace=self._namespace, name=store.KEYS_SECRET)
        annotations = created["metadata"].get("annotations") or {}
        self._store.keys.load(auth_objects.secret_data(created), annotations.get(store.ACTIVE_KID_ANNOTATION, ""))
        log.info("token signing keys: %s", ", ".join(self._store.keys.kids))

    async def ensure_bootstrap_admin(self) -> None:
        """On a fresh install (no user at all), creates the user `admin` with a random password, kept in the Secret
        `novasphere-initial-admin` for the installer to read (and delete after the first login). `deploy/authz.yaml`
        binds `admin` as administrator of tenant `default`. The password is never logged."""
        if self._store.has_users():
            return
        password = secrets.token_urlsafe(18)
        initial = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": store.INITIAL_ADMIN_SECRET, "namespace": self._namespace},
            "data": auth_objects.encoded({"username": store.BOOTSTRAP_ADMIN, "password": password}),
        }
        try:
            await auth_objects.create_secret(self._kube, initial)
        except kube_errors.Conflict:  # another replica got here first, or a crash came between the two writes
            existing = await auth_objects.get_secret(
                self._kube, namespace=self._namespace, name=store.INITIAL_ADMIN_SECRET
            )
            password = auth_objects.secret_data(existing).get("password", "")
            if not password:
                return
        user = store.user_secret(store.BOOTSTRAP_ADMIN, await passwords.hash_async(password))
        user["metadata"]["namespace"] = self._namespace
        with contextlib.suppress(kube_errors.Conflict):
            await auth_objects.create_secret(self._kube, user)
        log.info(
            "fresh install: created user %s; its password is in Secret %s/%s",
            store.BOOTSTRAP_ADMIN,
            self._namespace,
            store.INITIAL_ADMIN_SECRET,
        )

    # ---- who is calling ---------------------------------------------------------------------------------------

    async def caller(self, metadata: Sequence[tuple[str, str | bytes]]) -> Caller:
        """The caller of a request with this metadata: `authorization: Bearer <access token>` or `x-api-key`."""
        headers = {key.lower(): value for key, value in metadata if isinstance(value, str)}
        authorization = headers.get("authorization", "")
        if not authorization and "x-api-key" in headers:
            return await self._api_keys.caller(headers["x-api-key"])
        if not authorization:
            if self._anonymous is not None:
                return self._anonymous
            raise errors.Unauthenticated()
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != _BEARER or not token.strip():
            raise errors.Unauthenticated()
        try:
            claims = self._store.keys.verify(token.strip())
        except tokens.InvalidToken as error:
            log.info("refused an access token: %s", error)
            raise errors.Unauthenticated() from None
        session = self._store.session(claims.session) or await self._session_not_seen_yet(claims.session)
        user = self._store.user(claims.user)
        if session is None or not session.live(timestamps.now()) or session.user != claims.user:
            log.info("refused an access token of %s: session %s is not live", claims.user, claims.session)
            raise errors.Unauthenticated()
        if user is None or user.disabled:
            log.info("refused an access token of %s: no such user, or disabled", claims.user)
            raise errors.Unauthenticated()
        return Caller(
            user=claims.user,
            tenant=claims.tenant,
            permissions=self._store.permissions(claims.user, claims.tenant),
            session=claims.session,
            client_type=claims.client_type,
        )

    async def _session_not_seen_yet(self, session_id: str) -> Session | None:
        """A session created on another replica a moment ago may not have reached this one's informer yet."""
        if not _is_session_id(session_id):
            return None
        try:
            secret = await auth_objects.get_secret(
                self._kube, namespace=self._namespace, name=store.session_secret_name(session_id)
            )
        except kube_errors.NotFound:
            return None
        return store.session_from(secret)

    # ---- login, refresh, logout -------------------------------------------------------------------------------

    async def login(self, *, username: str, password: str, tenant: str, client_type: str) -> Grant:
        violations = []
        if not username or len(username) > MAX_USERNAME:
            violations.append(errors.FieldViolation("username", f"give your username (1-{MAX_USERNAME} characters)"))
        if not password or len(password) > MAX_PASSWORD:
            violations.append(errors.FieldViolation("password", f"give your password (1-{MAX_PASSWORD} characters)"))
        if violations:
            raise errors.InvalidArgument(violations)
        wait = self._lockout.retry_after(username)
        if wait > 0:
            raise errors.TooManyAttempts(retry_after_seconds=wait)
        user = self._store.user(username)
        usable = user is not None and not user.disabled
        if not await passwords.verify(user.password_hash if user is not None and usable else None, password):
            self._lockout.failed(username)
            log.info("failed login for %r", username[:MAX_USERNAME])
            raise errors.Unauthenticated("wrong username or password", reason=errors.Reason.LOGIN_FAILED)
        self._lockout.succeeded(username)
        tenants = self._store.tenants_of(username)
        tenant = self._tenant_for(username, tenant, tenants)
        now = timestamps.now()
        session_id = secrets.token_hex(16)
        refresh_secret = secrets.token_urlsafe(32)
        session_expires = now + datetime.timedelta(seconds=self._lifetimes.session_seconds)
        await auth_objects.create_secret(
            self._kube,
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": "novasphere.dev/login-session",
                "metadata": {
                    "name": store.session_secret_name(session_id),
                    "namespace": self._namespace,
                    "labels": {
                        auth_objects.KIND_LABEL: store.SESSION_KIND,
                        store.USER_LABEL: username,
                        store.TENANT_LABEL: tenant,
                    },
                    "annotations": {
                        store.EXPIRES_ANNOTATION: timestamps.format_micro(session_expires),
                        store.CLIENT_TYPE_ANNOTATION: client_type,
                    },
                },
                "data": auth_objects.encoded({"refresh": tokens.secret_digest(refresh_secret), "used": ""}),
            },
        )
        log.info("login of %s in tenant %s (%s), session %s", username, tenant, client_type, session_id)
        session = Session(session_id, username, tenant, session_expires, revoked=False)
        return self._grant(session, refresh_secret, client_type, now)

    async def refresh(self, *, refresh_token: str, client_type: str) -> Grant:
        if not refresh_token.strip():
            raise errors.InvalidArgument.field("refresh_token", "is required: the refresh token Login returned")
        prefix, _, rest = refresh_token.strip().partition(".")
        session_id, _, presented = rest.partition(".")
        if prefix != REFRESH_PREFIX or not _is_session_id(session_id) or not presented:
            raise errors.Unauthenticated("the refresh token is not valid: log in again")
        name = store.session_secret_name(session_id)
        try:
            secret = await auth_objects.get_secret(self._kube, namespace=self._namespace, name=name)
        except kube_errors.NotFound:
            raise errors.Unauthenticated("the session has ended: log in again") from None
        session = store.session_from(secret)
        now = timestamps.now()
        if session is None or not session.live(now):
            raise errors.Unauthenticated("the session has ended: log in again")
        data = auth_objects.secret_data(secret)
        digest = tokens.secret_digest(presented)
        used = [h for h in data.get("used", "").split("\n") if h]
        if not hmac.compare_digest(digest, data.get("refresh", "")):
            if any(hmac.compare_digest(digest, h) for h in used):
                await self.revoke_session(session_id, why="a used refresh token was presented again")
                raise errors.Unauthenticated(
                    "this refresh token was already used, so it may have been copied: the session is revoked; log "
                    "in again",
                    reason=errors.Reason.REFRESH_TOKEN_REUSED,
                )
            raise errors.Unauthenticated("the refresh token is not valid: log in again")
        user = self._store.user(session.user)
        if user is None or user.disabled:
            raise errors.Unauthenticated("the user no longer exists or is disabled")
        new_secret = secrets.token_urlsafe(32)
        patch = {
            "data": auth_objects.encoded(
                {"refresh": tokens.secret_digest(new_secret), "used": "\n".join([*used, digest][-USED_TOKENS_KEPT:])}
            )
        }
        try:
            await auth_objects.patch_secret(
                self._kube,
                namespace=self._namespace,
                name=name,
                patch=patch,
                resource_version=secret["metadata"]["resourceVersion"],
            )
        except kube_errors.Conflict:  # used at the same moment elsewhere: one of the two is a copy
            await self.revoke_session(session_id, why="the refresh token was used twice at once")
            raise errors.Unauthenticated(
                "this refresh token was used twice at once: the session is revoked; log in again",
                reason=errors.Reason.REFRESH_TOKEN_REUSED,
            ) from None
        return self._grant(session, new_secret, client_type, now)

    async def logout(self, caller: Caller) -> None:
        if caller.session:
            await self.revoke_session(caller.session, why="logout")

    async def revoke_session(self, session_id: str, *, why: str) -> None:
        log.info("session %s revoked: %s", session_id, why)
        with contextlib.suppress(kube_errors.NotFound):
            await auth_objects.patch_secret(
                self._kube,
                namespace=self._namespace,
                name=store.session_secret_name(session_id),
                patch={"metadata": {"labels": {store.REVOKED_LABEL: "true"}}},
            )

    # ---- what the caller may do -------------------------------------------------------------------------------

    def tenants_of(self, caller: Caller) -> list[str]:
        return self._store.tenants_of(caller.user) or [caller.tenant]

    @staticmethod
    def check(caller: Caller, *, resource_type: str, operation: str) -> tuple[str, bool]:
        if not resource_type or not operation:
            field = "resource_type" if not resource_type else "operation"
            raise errors.InvalidArgument.field(field, "is required, e.g. resource_type=vm, operation=console:access")
        permission = f"{resource_type}:{operation}"
        return permission, caller.may(permission)

    # ---- helpers ----------------------------------------------------------------------------------------------

    def _tenant_for(self, username: str, wanted: str, tenants: list[str]) -> str:
        if wanted:
            if wanted not in tenants:
                raise errors.PermissionDenied(
                    "", message=f"{username} has no role in tenant '{wanted}'; ask its administrator for one"
                )
            return wanted
        if len(tenants) == 1:
            return tenants[0]
        if not tenants:
            raise errors.PermissionDenied("", message=f"{username} has no role in any tenant; ask an administrator")
        raise errors.InvalidArgument.field(
            "tenant_id", f"is required: {username} belongs to several tenants ({', '.join(tenants)})"
        )

    def _grant(self, session: Session, refresh_secret: str, client_type: str, now: datetime.datetime) -> Grant:
        assert session.expires is not None
        expires = min(now + datetime.timedelta(seconds=self._lifetimes.access_seconds), session.expires)
        claims = tokens.Claims(session.user, session.tenant, session.id, client_type, expires)
        caller = Caller(
            user=session.user,
            tenant=session.tenant,
            permissions=self._store.permissions(session.user, session.tenant),
            session=session.id,
            client_type=client_type,
        )
        return Grant(
            access_token=self._store.keys.sign(claims, issued=now),
            expires=expires,
            refresh_token=f"{REFRESH_PREFIX}.{session.id}.{refresh_secret}",
            session_expires=session.expires,
            caller=caller,
            tenants=self._store.tenants_of(session.user),
        )


def _is_session_id(text: str) -> bool:
    return len(text) == 32 and all(c in "0123456789abcdef" for c in text)
