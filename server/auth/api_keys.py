"""API keys for services and scripts: `x-api-key: nsk_<id>_<secret>`.

The key is shown once, at creation; the API keeps the SHA-256 of its 256-bit secret (enough for a random secret,
unlike a password) in a Secret `apikey-<id>` that every replica watches, so a revocation applies everywhere within
the watch latency. A key acts in its owner's tenant with its own permissions, but never beyond what the owner holds
at the time of each call: demoting or deleting the owner disarms their keys too. Keys never hold `apikey:manage`
(nor `admin`), so a leaked key cannot mint a longer-lived one.
"""

from __future__ import annotations

import contextlib
import datetime
import hmac
import json
import logging
import re
import secrets

from server import errors, lookups, timestamps
from server.auth import ADMIN, NOT_FOR_API_KEYS, Caller, store, tokens
from server.auth.store import ApiKeyRecord, AuthStore
from server.kube import auth_objects
from server.kube import errors as kube_errors
from server.kube.client import KubeClient
from server.lookups import Lookups

log = logging.getLogger(__name__)

PREFIX = "nsk"
KEY_ID_HEX = 16
MAX_NAME = 63
MAX_KEYS_PER_USER = 50
"""Never held by a key, whatever it was created with: keys cannot manage keys."""
_KEY = re.compile(r"^nsk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")


class ApiKeys:
    def __init__(self, *, kube: KubeClient, auth_store: AuthStore, namespace: str, lookups: Lookups) -> None:
        self._kube = kube
        self._store = auth_store
        self._namespace = namespace
        self._lookups = lookups

    async def create(
        self, caller: Caller, *, name: str, permissions: list[str], expires: datetime.datetime | None
    ) -> tuple[ApiKeyRecord, str]:
        """The new key's record and the key itself (never stored, never shown again)."""
        _only_logged_in(caller)
        violations = []
        if not name.strip() or len(name) > MAX_NAME:
            violations.append(errors.FieldViolation("name", f"give a name of 1-{MAX_NAME} characters"))
        wanted = sorted({p.strip() for p in permissions if p.strip()})
        if not wanted:
            violations.append(errors.FieldViolation("permissions", "list at least one permission, e.g. vm:query"))
        if administrative := sorted(NOT_FOR_API_KEYS.intersection(wanted)):
            violations.append(
                errors.FieldViolation(
                    "permissions", f"API keys cannot hold {', '.join(administrative)}: administration needs a login"
                )
            )
        now = timestamps.now()
        if expires is not None and expires <= now:
            violations.append(errors.FieldViolation("expire_time", "must be in the future (or unset: no expiry)"))
        if violations:
            raise errors.InvalidArgument(violations)
        beyond = [p for p in wanted if not caller.may(p)]
        if beyond:
            raise errors.PermissionDenied(
                beyond[0], message=f"an API key cannot hold permissions you do not hold: {', '.join(beyond)}"
            )
        if len(self._store.api_keys_of(caller.user, caller.tenant)) >= MAX_KEYS_PER_USER:
            raise errors.FailedPrecondition(
                f"{caller.user} already has {MAX_KEYS_PER_USER} API keys in this tenant; revoke unused ones first",
                reason=errors.Reason.TOO_MANY_API_KEYS,
            )
        key_id, secret = lookups.mint(KEY_ID_HEX), secrets.token_urlsafe(32)
        annotations = {
            store.NAME_ANNOTATION: name.strip(),
            store.PERMISSIONS_ANNOTATION: json.dumps(wanted),
            store.CREATED_ANNOTATION: timestamps.format_micro(now),
        }
        if expires is not None:
            annotations[store.EXPIRES_ANNOTATION] = timestamps.format_micro(expires)
        created = await auth_objects.create_secret(
            self._kube,
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": "novasphere.dev/api-key",
                "metadata": {
                    "name": store.api_key_secret_name(key_id),
                    "namespace": self._namespace,
                    "labels": {
                        auth_objects.KIND_LABEL: store.API_KEY_KIND,
                        store.USER_LABEL: caller.user,
                        store.TENANT_LABEL: caller.tenant,
                    },
                    "annotations": annotations,
                },
                "data": auth_objects.encoded({"digest": tokens.secret_digest(secret)}),
            },
        )
        log.info("API key %s (%s) created by %s in %s", key_id, name.strip(), caller.user, caller.tenant)
        return store.api_key_from(created), f"{PREFIX}_{key_id}_{secret}"

    def list(self, caller: Caller) -> list[ApiKeyRecord]:
        return self._store.api_keys_of(caller.user, caller.tenant)

    async def revoke(self, caller: Caller, key_id: str) -> None:
        _only_logged_in(caller)
        record = self._store.api_key(key_id)
        mine = record is not None and record.tenant == caller.tenant
        if not mine or (record is not None and record.user != caller.user and not caller.may(ADMIN)):
            raise errors.ApiKeyNotFound(key_id)
        try:
            await auth_objects.delete_secret(
                self._kube, namespace=self._namespace, name=store.api_key_secret_name(key_id)
            )
        except kube_errors.NotFound:
            raise errors.ApiKeyNotFound(key_id) from None
        log.info("API key %s revoked by %s", key_id, caller.user)

    async def caller(self, key: str, *, address: str) -> Caller:
        """The caller an API key stands for; `errors.Unauthenticated` if it is not a live key."""
        match = _KEY.match(key.strip())
        if match is None:
            raise errors.Unauthenticated()
        key_id, secret = match.groups()
        record = self._store.api_key(key_id) or await self._not_seen_yet(key_id, address)
        if record is None or not hmac.compare_digest(record.digest, tokens.secret_digest(secret)):
            log.debug("refused API key %s: unknown or wrong secret", key_id)
            raise errors.Unauthenticated()
        if not record.live(timestamps.now()):
            log.info("refused API key %s: expired", key_id)
            raise errors.Unauthenticated()
        owner = self._store.user(record.user)
        if owner is None or owner.disabled:
            log.info("refused API key %s: its owner %s is gone or disabled", key_id, record.user)
            raise errors.Unauthenticated()
        held = self._store.permissions(record.user, record.tenant)
        granted = (record.permissions if ADMIN in held else record.permissions & held) - NOT_FOR_API_KEYS
        return Caller(
            user=record.user,
            tenant=record.tenant,
            permissions=granted,
            client_type="service",
            api_key=record.id,
            address=address,
        )

    async def _not_seen_yet(self, key_id: str, address: str) -> ApiKeyRecord | None:
        """A key created on another replica a moment ago may not have reached this one's informer yet."""

        async def fetch() -> ApiKeyRecord | None:
            with contextlib.suppress(kube_errors.NotFound):
                return store.api_key_from(
                    await auth_objects.get_secret(
                        self._kube, namespace=self._namespace, name=store.api_key_secret_name(key_id)
                    )
                )
            return None

        return await self._lookups.unseen("api-key", key_id, client=address, fetch=fetch, minted=True)


def _only_logged_in(caller: Caller) -> None:
    if not caller.session:
        raise errors.PermissionDenied(
            "apikey:manage", message="API keys cannot manage API keys: log in as the user to create or revoke them"
        )
