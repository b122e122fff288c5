"""Whether a console may stay open: the right to it lasts only as long as everything that granted it.

A console closes (on whichever replica holds its socket, within moments of the change) when the login session it
was opened with ends (logout, revocation, expiry, or the user's 21st login), the API key it was opened with is
revoked or expires, the user is disabled or deleted, the user no longer holds `vm:console:access` in the tenant (a
role binding removed, a role narrowed), or the VM's namespace leaves the user's tenant.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from server.auth import ADMIN, NOT_FOR_API_KEYS
from server.auth.store import AuthStore, RevokedBecause, Session
from server.console.sessions import ACCESS, CloseCode, ConsoleRecord
from server.tenancy import Tenancy

UNSEEN_GRACE = datetime.timedelta(seconds=10)
"""How long after a link was issued a missing session or key counts as not seen here yet, rather than gone."""


@dataclass(frozen=True)
class Ended:
    code: int
    reason: str


def credential_present(record: ConsoleRecord, store: AuthStore) -> bool:
    """Whether this replica holds the login session or API key the console was opened with (once seen, its absence
    means it ended, however recently the link was issued)."""
    if record.api_key:
        return store.api_key(record.api_key) is not None
    if record.login_session:
        return store.session(record.login_session) is not None
    return True


def right_ended(
    record: ConsoleRecord,
    *,
    store: AuthStore,
    tenancy: Tenancy,
    development_user: str,
    now: datetime.datetime,
    credential_seen: bool = False,
) -> Ended | None:
    """Why the console of `record` must close now, or None while the right to it holds."""
    if tenancy.owner(record.namespace) != record.tenant:
        return Ended(CloseCode.ACCESS_REVOKED, f"namespace {record.namespace} left tenant {record.tenant}")
    if record.user == development_user and not record.login_session and not record.api_key:
        return None  # the development identity: no stored user, session or role to lose
    user = store.user(record.user)
    if user is None:
        return Ended(CloseCode.ACCESS_REVOKED, f"user {record.user} was deleted")
    if user.disabled:
        return Ended(CloseCode.ACCESS_REVOKED, f"user {record.user} was disabled")
    held = store.permissions(record.user, record.tenant)
    unseen_yet = not credential_seen and record.created is not None and now - record.created < UNSEEN_GRACE
    if record.api_key:
        key = store.api_key(record.api_key)
        if key is None and unseen_yet:
            return None  # created on another replica a moment ago: this one has not seen it yet
        if key is None or not key.live(now):
            return Ended(CloseCode.SIGNED_OUT, "the API key it was opened with was revoked or expired")
        held = (key.permissions if ADMIN in held else key.permissions & held) - NOT_FOR_API_KEYS
    elif record.login_session:
        session = store.session(record.login_session)
        if session is None and unseen_yet:
            return None
        if session is None or not session.live(now):
            return _signed_out(session)
    if ACCESS not in held and ADMIN not in held:
        return Ended(CloseCode.ACCESS_REVOKED, f"{record.user} no longer holds {ACCESS} in tenant {record.tenant}")
    return None


def _signed_out(session: Session | None) -> Ended:
    if session is None:
        return Ended(CloseCode.SIGNED_OUT, "its login session ended")
    if session.revoked_reason == RevokedBecause.SESSION_LIMIT:
        return Ended(CloseCode.SESSION_LIMIT, "its login session ended: the user logged in more than 20 times since")
    if session.revoked_reason == RevokedBecause.LOGOUT:
        return Ended(CloseCode.SIGNED_OUT, "the user logged out")
    if not session.revoked:
        return Ended(CloseCode.SIGNED_OUT, "its login session expired")
    return Ended(CloseCode.SIGNED_OUT, "its login session was revoked")
