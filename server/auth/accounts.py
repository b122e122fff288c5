"""Logging in and out, refreshing, one's own sessions and password, and telling who a request comes from.

A login creates a session (a Secret in the API's namespace, watched by every replica); the access token names the
session (`sid`), and every request checks that the session is still live, so a logout or revocation applies on every
replica within the watch latency. A user keeps at most `MAX_SESSIONS` sessions: a login beyond that ends the oldest
(a script logging in in a loop cannot fill etcd with Secrets).

Refresh tokens are single use and carry their session's generation under a MAC (`tokens`): a refresh moves the
session to the next generation under the Secret's resourceVersion, so two concurrent uses cannot both win, and a
token of an earlier generation, whichever, is a copy: presenting it revokes the whole session. A made-up token fails
its MAC before anything is read, so guessing costs the cluster nothing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import hmac
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from server import errors, logs, lookups, timestamps
from server.auth import Caller, lockout, passwords, store, tokens
from server.auth.api_keys import ApiKeys
from server.auth.store import AuthStore, RevokedBecause, Session
from server.kube import auth_objects
from server.kube import errors as kube_errors
from server.kube.client import JsonObject, KubeClient
from server.lookups import Lookups
from server.metrics import Metrics
from server.tally import Tally

log = logging.getLogger(__name__)

REFRESH_PREFIX = "nsr2"
MAX_USERNAME = 64
MAX_PASSWORD = 1024
MIN_PASSWORD = 12
MAX_SESSIONS = 20
"""Live login sessions a user keeps at most; the oldest go first."""
SESSION_ID_HEX = 32
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
        lookups: Lookups,
        tally: Tally,
        metrics: Metrics,
    ) -> None:
        """`anonymous`: who a request without credentials runs as (the development identity), or None to refuse."""
        self._kube = kube
        self._store = auth_store
        self._namespace = namespace
        self._lifetimes = lifetimes
        self._api_keys = api_keys
        self._anonymous = anonymous
        self._lookups = lookups
        self._lockout = lockout.Lockout(tally)
        self._metrics = metrics

    async def ensure_signing_key(self) -> None:
        """Creates the signing key Secret on a fresh install (the first replica wins; the others load its key), and
        the refresh MAC key in one that lacks it."""
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
            "data": auth_objects.encoded(
                {kid: tokens.new_private_key_pem(), tokens.REFRESH_KEY_ENTRY: tokens.new_refresh_key()}
            ),
        }
        try:
            created = await auth_objects.create_secret(self._kube, body)
        except kube_errors.Conflict:
            created = await auth_objects.get_secret(self._kube, namespace=self._namespace, name=store.KEYS_SECRET)
            if tokens.REFRESH_KEY_ENTRY not in (created.get("data") or {}):
                created = await self._add_refresh_key(created)
        annotations = created["metadata"].get("annotations") or {}
        self._store.keys.load(auth_objects.secret_data(created), annotations.get(store.ACTIVE_KID_ANNOTATION, ""))
        log.info("token signing keys: %s", ", ".join(self._store.keys.kids))

    async def _add_refresh_key(self, keys: JsonObject) -> JsonObject:
        """A keys Secret from before refresh tokens had a MAC: the first replica to get here adds the key."""
        patch = {"data": auth_objects.encoded({tokens.REFRESH_KEY_ENTRY: tokens.new_refresh_key()})}
        try:
            return await auth_objects.patch_secret(
                self._kube,
                namespace=self._namespace,
                name=store.KEYS_SECRET,
                patch=patch,
                resource_version=keys["metadata"]["resourceVersion"],
            )
        except kube_errors.Conflict:  # another replica added it first
            return await auth_objects.get_secret(self._kube, namespace=self._namespace, name=store.KEYS_SECRET)

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

    async def caller(self, metadata: Sequence[tuple[str, str | bytes]], *, address: str) -> Caller:
        """The caller of a request with this metadata: `authorization: Bearer <access token>` or `x-api-key`."""
        headers = {key.lower(): value for key, value in metadata if isinstance(value, str)}
        authorization = headers.get("authorization", "")
        if not authorization and "x-api-key" in headers:
            return await self._api_keys.caller(headers["x-api-key"], address=address)
        if not authorization:
            if self._anonymous is not None:
                return dataclasses.replace(self._anonymous, address=address)
            raise errors.Unauthenticated()
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != _BEARER or not token.strip():
            raise errors.Unauthenticated()
        try:
            claims = self._store.keys.verify(token.strip())
        except tokens.InvalidToken as error:
            log.debug("refused an access token: %s", error)
            raise errors.Unauthenticated() from None
        session = await self._session(claims.session, address)
        user = self._store.user(claims.user)
        if session is None or not session.live(timestamps.now()) or session.user != claims.user:
            log.info("refused an access token of %s: session %s is not live", claims.user, claims.session)
            raise errors.Unauthenticated(_ended(session))
        if user is None or user.disabled:
            log.info("refused an access token of %s: no such user, or disabled", claims.user)
            raise errors.Unauthenticated()
        return Caller(
            user=claims.user,
            tenant=claims.tenant,
            permissions=self._store.permissions(claims.user, claims.tenant),
            session=claims.session,
            client_type=claims.client_type,
            address=address,
        )

    async def _session(self, session_id: str, address: str) -> Session | None:
        """The session from the cache; one created on another replica a moment ago from kube-apiserver (bounded)."""
        found = self._store.session(session_id)
        if found is not None or not _is_session_id(session_id):
            return found

        async def fetch() -> Session | None:
            with contextlib.suppress(kube_errors.NotFound):
                return store.session_from(await self._get_session(session_id))
            return None

        return await self._lookups.unseen("session", session_id, client=address, fetch=fetch, minted=True)

    async def _get_session(self, session_id: str) -> JsonObject:
        return await auth_objects.get_secret(
            self._kube, namespace=self._namespace, name=store.session_secret_name(session_id)
        )

    # ---- login, refresh, logout -------------------------------------------------------------------------------

    async def login(self, *, username: str, password: str, tenant: str, client_type: str, address: str) -> Grant:
        violations = []
        if not username or len(username) > MAX_USERNAME:
            violations.append(errors.FieldViolation("username", f"give your username (1-{MAX_USERNAME} characters)"))
        if not password or len(password) > MAX_PASSWORD:
            violations.append(errors.FieldViolation("password", f"give your password (1-{MAX_PASSWORD} characters)"))
        if violations:
            raise errors.InvalidArgument(violations)
        await self._verify_password(username, password, address)
        tenants = self._store.tenants_of(username)
        tenant = self._tenant_for(username, tenant, tenants)
        now = timestamps.now()
        session_id = lookups.mint(SESSION_ID_HEX)
        session_expires = now + datetime.timedelta(seconds=self._lifetimes.session_seconds)
        created = await auth_objects.create_secret(
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
                        store.CLIENT_ADDRESS_ANNOTATION: address,
                        store.CREATED_ANNOTATION: timestamps.format_micro(now),
                        store.LAST_USED_ANNOTATION: timestamps.format_micro(now),
                    },
                },
                "data": auth_objects.encoded({"generation": "1"}),
            },
        )
        self._store.wrote_session(created)
        logs.event(
            log,
            "auth.login",
            f"login of {username} in tenant {tenant} ({client_type}), session {session_id}",
            outcome="succeeded",
            user=username,
            tenant=tenant,
            client_type=client_type,
            peer=address,
            session=session_id,
        )
        await self._keep_sessions_within_limit(username, keep=session_id)
        return self._grant(store.session_from(created), client_type, now)

    async def _verify_password(self, username: str, password: str, address: str) -> None:
        """Raises unless `password` is `username`'s; failures count towards the lockout of the name at the address."""
        user = self._store.user(username)
        # An unknown name may be a password typed into the wrong field: only a known one is logged.
        known = username if user is not None else ""
        wait = self._lockout.retry_after(username, address)
        if wait > 0:
            self._metrics.login_failed(reason="locked_out")
            logs.event(
                log,
                "auth.login",
                f"login for {known or 'an unknown user'} from {address} refused: locked out for {wait:.0f} s more",
                outcome="locked_out",
                user=known,
                peer=address,
                retry_after_seconds=round(wait, 1),
            )
            raise errors.TooManyAttempts(retry_after_seconds=wait)
        usable = user is not None and not user.disabled
        if not await passwords.verify(user.password_hash if user is not None and usable else None, password):
            self._lockout.failed(username, address)
            locked = self._lockout.retry_after(username, address)
            self._metrics.login_failed(reason="wrong_password", locked_now=locked > 0)
            logs.event(
                log,
                "auth.login",
                f"failed login for {known or 'an unknown user'} from {address}",
                outcome="failed",
                user=known,
                peer=address,
            )
            if locked > 0:
                logs.event(
                    log,
                    "auth.lockout",
                    f"{known or 'an unknown user'} locked out at {address} for {locked:.0f} s after "
                    f"{lockout.MAX_FAILURES} failed logins",
                    user=known,
                    peer=address,
                    retry_after_seconds=round(locked, 1),
                )
            raise errors.Unauthenticated("wrong username or password", reason=errors.Reason.LOGIN_FAILED)
        self._lockout.succeeded(username, address)

    async def _keep_sessions_within_limit(self, username: str, *, keep: str) -> None:
        now = timestamps.now()
        live = [s for s in self._store.sessions_of(username) if s.live(now)]
        for oldest in [s for s in live if s.id != keep][: max(0, len(live) - MAX_SESSIONS)]:
            await self.revoke_session(
                oldest.id, why=f"{username} has more than {MAX_SESSIONS} sessions", because=RevokedBecause.SESSION_LIMIT
            )

    async def refresh(self, *, refresh_token: str, client_type: str, address: str) -> Grant:
        if not refresh_token.strip():
            raise errors.InvalidArgument.field(
                "refresh_token", "is required: the refresh token Login returned (a browser's comes in its cookie)"
            )
        presented = _parse_refresh(refresh_token.strip())
        if presented is None:
            raise errors.Unauthenticated("the refresh token is not valid: log in again")
        session_id, generation, mac = presented
        try:
            expected = self._store.keys.refresh_mac(session_id, generation)
        except tokens.InvalidToken:
            raise errors.Unavailable("the token keys are not loaded yet; retry shortly") from None
        if not hmac.compare_digest(mac, expected):
            raise errors.Unauthenticated("the refresh token is not valid: log in again")
        # From here on the token is one this API issued (no one else can make the MAC): reading the cluster is bounded
        # by how many real tokens exist, not by what a client can make up.
        session = await self._session(session_id, address)
        for _attempt in range(2):
            now = timestamps.now()
            if session is None or not session.live(now):
                raise errors.Unauthenticated(_ended(session) or "the session has ended: log in again")
            if generation < session.generation:
                await self.revoke_session(
                    session_id, why="a used refresh token was presented again", because=RevokedBecause.REFRESH_REUSED
                )
                raise errors.Unauthenticated(
                    "this refresh token was already used, so it may have been copied: the session is revoked; log "
                    "in again",
                    reason=errors.Reason.REFRESH_TOKEN_REUSED,
                )
            user = self._store.user(session.user)
            if user is None or user.disabled:
                raise errors.Unauthenticated("the user no longer exists or is disabled")
            if generation == session.generation:
                try:
                    updated = await self._next_generation(session, now, address)
                except kube_errors.Conflict:
                    updated = None
                if updated is not None:
                    return self._grant(updated, client_type, now)
            # This replica's copy is behind (refreshed elsewhere a moment ago), or another use of this same token just
            # overtook this one (then the check above revokes the session on the next round): read the latest.
            session = store.session_from(await self._get_session(session_id))
        await self.revoke_session(
            session_id, why="the refresh token was used twice at once", because=RevokedBecause.REFRESH_REUSED
        )
        raise errors.Unauthenticated(
            "this refresh token was used twice at once: the session is revoked; log in again",
            reason=errors.Reason.REFRESH_TOKEN_REUSED,
        )

    async def _next_generation(self, session: Session, now: datetime.datetime, address: str) -> Session:
        """Moves the session to its next refresh token, only from the version read (else Conflict)."""
        patched = await auth_objects.patch_secret(
            self._kube,
            namespace=self._namespace,
            name=store.session_secret_name(session.id),
            patch={
                "metadata": {
                    "annotations": {
                        store.LAST_USED_ANNOTATION: timestamps.format_micro(now),
                        store.CLIENT_ADDRESS_ANNOTATION: address,
                    }
                },
                "data": auth_objects.encoded({"generation": str(session.generation + 1)}),
            },
            resource_version=session.resource_version,
        )
        self._store.wrote_session(patched)
        return store.session_from(patched)

    async def logout(self, caller: Caller) -> None:
        if caller.session:
            await self.revoke_session(caller.session, why="logout", because=RevokedBecause.LOGOUT)

    async def revoke_session(self, session_id: str, *, why: str, because: str) -> None:
        log.info("session %s revoked: %s", session_id, why)
        with contextlib.suppress(kube_errors.NotFound):
            revoked = await auth_objects.patch_secret(
                self._kube,
                namespace=self._namespace,
                name=store.session_secret_name(session_id),
                patch={
                    "metadata": {
                        "labels": {store.REVOKED_LABEL: "true"},
                        "annotations": {store.REVOKED_REASON_ANNOTATION: because},
                    }
                },
            )
            self._store.wrote_session(revoked)

    # ---- one's own sessions and password ----------------------------------------------------------------------

    def sessions(self, caller: Caller) -> list[Session]:
        """The caller's live sessions, newest first."""
        _only_logged_in(caller)
        now = timestamps.now()
        return [s for s in reversed(self._store.sessions_of(caller.user)) if s.live(now)]

    async def revoke_own_session(self, caller: Caller, session_id: str) -> None:
        _only_logged_in(caller)
        session = self._store.session(session_id)
        if session is None or session.user != caller.user or not session.live(timestamps.now()):
            raise errors.LoginSessionNotFound(session_id)
        await self.revoke_session(session_id, why=f"revoked by {caller.user}", because=RevokedBecause.REVOKED)

    async def change_password(self, caller: Caller, *, current: str, new: str) -> int:
        """The caller's own password; every other session of the user ends (this one goes on): how many did."""
        _only_logged_in(caller)
        if not current:
            raise errors.InvalidArgument.field("current_password", "is required: your password now")
        problems = password_violations("new_password", new)
        if not problems and new == current:
            problems.append(errors.FieldViolation("new_password", "must differ from the current password"))
        if problems:
            raise errors.InvalidArgument(problems)
        await self._verify_password(caller.user, current, caller.address)
        await auth_objects.patch_secret(
            self._kube,
            namespace=self._namespace,
            name=store.user_secret_name(caller.user),
            patch={"data": auth_objects.encoded({"passwordHash": await passwords.hash_async(new)})},
        )
        log.info("%s changed their password", caller.user)
        return await self.revoke_sessions_of(caller.user, because=RevokedBecause.PASSWORD_CHANGED, keep=caller.session)

    async def revoke_sessions_of(self, username: str, *, because: str, keep: str = "") -> int:
        """Ends every live session of the user but `keep`; returns how many."""
        now = timestamps.now()
        ending = [s for s in self._store.sessions_of(username) if s.id != keep and s.live(now)]
        for session in ending:
            await self.revoke_session(session.id, why=because, because=because)
        return len(ending)

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

    def _grant(self, session: Session, client_type: str, now: datetime.datetime) -> Grant:
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
        mac = self._store.keys.refresh_mac(session.id, session.generation)
        return Grant(
            access_token=self._store.keys.sign(claims, issued=now),
            expires=expires,
            refresh_token=f"{REFRESH_PREFIX}.{session.id}.{session.generation}.{mac}",
            session_expires=session.expires,
            caller=caller,
            tenants=self._store.tenants_of(session.user),
        )


def _is_session_id(text: str) -> bool:
    return len(text) == SESSION_ID_HEX and all(c in "0123456789abcdef" for c in text)


def _parse_refresh(token: str) -> tuple[str, int, str] | None:
    """(session, generation, MAC) of a well-formed refresh token, else None."""
    prefix, session_id, generation, mac = [*token.split("."), "", "", "", ""][:4]
    if prefix != REFRESH_PREFIX or not _is_session_id(session_id) or not generation.isdigit() or not mac:
        return None
    if len(generation) > 9 or token.count(".") != 3:
        return None
    return session_id, int(generation), mac


def _ended(session: Session | None) -> str:
    """Why a session no longer works, in words for the client ("" when there is nothing particular to say)."""
    if session is None:
        return ""
    return {
        RevokedBecause.LOGOUT: "you logged out of this session: log in again",
        RevokedBecause.PASSWORD_CHANGED: "the password was changed: log in again",
        RevokedBecause.USER_DISABLED: "the user was disabled",
        RevokedBecause.REFRESH_REUSED: "the session was revoked because a refresh token was used twice: log in again",
        RevokedBecause.SESSION_LIMIT: f"the session ended: you logged in more than {MAX_SESSIONS} times since; log "
        "in again",
        RevokedBecause.REVOKED: "the session was revoked: log in again",
    }.get(session.revoked_reason, "" if session.revoked else "the session has expired: log in again")


def _only_logged_in(caller: Caller) -> None:
    if not caller.session:
        raise errors.PermissionDenied(
            "", message="only a logged-in user manages their own sessions and password (not an API key)"
        )


def password_violations(field: str, password: str) -> list[errors.FieldViolation]:
    if len(password) < MIN_PASSWORD or len(password) > MAX_PASSWORD:
        return [errors.FieldViolation(field, f"use {MIN_PASSWORD}-{MAX_PASSWORD} characters")]
    return []
