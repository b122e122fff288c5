"""Console sessions: issuing a console link (a one-time ticket bound to user, tenant, VM and protocol), the one
session per VM and protocol that may hold the console, status, listing and disconnect.

State lives in the cluster: a `ConsoleSession` object per link (mirrored here by an informer), and per VM and protocol
a Lease whose holder is the session allowed to use the console. Taking the Lease under its resourceVersion makes
"one session per VM and protocol" hold across replicas; a Lease pointing at an ended (or never written) session is
free. A disconnect is a request written into the session's status; the replica holding the socket acts on it.
"""

from __future__ import annotations

import builtins
import contextlib
import datetime
import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from server import errors, lookups, timestamps
from server.auth import Caller
from server.kube import console_sessions as objects
from server.kube import errors as kube_errors
from server.kube import leases
from server.kube.client import KubeClient
from server.kube.informer import Kind
from server.kube.kubevirt import vm_name
from server.lookups import Lookups
from server.wukongs.cache import WukongState
from server.wukongs.queries import WukongQueries

log = logging.getLogger(__name__)

Protocol = Literal["vnc", "serial"]
PROTOCOLS: tuple[Protocol, ...] = ("vnc", "serial")
ISSUED, CONNECTED, CLOSED = "Issued", "Connected", "Closed"
MANAGE = "vm:console:manage"
"""Disconnecting, or taking over, another user's console session."""
ACCESS = "vm:console:access"
LIFETIME_DEFAULT, LIFETIME_MIN, LIFETIME_MAX = 3600, 60, 8 * 3600
MAX_REASON = 60
LOCK_ATTEMPTS = 5
LOCK_LABEL = "novasphere.dev/console-lock"
VM_UID_LABEL = "novasphere.dev/vm-uid"
OPENING_GRACE_SECONDS = 10.0
"""How long a console Lease naming a session not written yet counts as taken (the writer may still be at it)."""
WEBSOCKET_PATH = "/ws/v1/consoles/"
SESSION_PREFIX = "console-"
SESSION_ID_HEX = 20


class CloseCode:
    """WebSocket close codes a console socket ends with (4000-4999: the application's own)."""

    DISCONNECTED = 4000
    TAKEN_OVER = 4001
    EXPIRED = 4002
    VM_STOPPED = 4003
    BACKEND_CLOSED = 4004
    SHUTDOWN = 4005
    SIGNED_OUT = 4006
    """The login session it was opened with ended (logout, revoked, expired), or the API key was revoked."""
    ACCESS_REVOKED = 4007
    """The user may no longer open it: disabled or deleted, vm:console:access withdrawn, or the VM's namespace left
    the user's tenant."""
    SESSION_LIMIT = 4008
    """Its login session was ended because the user logged in more than 20 times since."""
    INTERNAL = 1011


@dataclass(frozen=True)
class Disconnect:
    by: str
    reason: str
    code: int


@dataclass(frozen=True)
class ConsoleRecord:
    id: str
    namespace: str
    name: str
    uid: str
    vmi: str
    protocol: Protocol
    user: str
    tenant: str
    login_session: str
    """The login session the link was asked for with ("" for an API key or the development identity)."""
    api_key: str
    """The API key the link was asked for with, if any."""
    ticket_digest: str
    ticket_expires: datetime.datetime
    expires: datetime.datetime
    takes_over: str
    created: datetime.datetime | None
    phase: str
    connect_time: datetime.datetime | None
    client_ip: str
    replica: str
    disconnect: Disconnect | None
    close_time: datetime.datetime | None
    close_code: int
    close_reason: str
    bytes_to_client: int
    bytes_from_client: int
    resource_version: str

    def active(self, now: datetime.datetime) -> bool:
        """Holds the console: connected, or issued with a ticket still usable, and not asked to disconnect."""
        if self.phase == CONNECTED:
            return True
        return self.phase == ISSUED and self.disconnect is None and now < self.ticket_expires


@dataclass(frozen=True)
class Issued:
    record: ConsoleRecord
    ticket: str
    console_url: str


def ticket_digest(ticket: str) -> str:
    return hashlib.sha256(ticket.encode()).hexdigest()


def ticket_matches(record: ConsoleRecord, ticket: str) -> bool:
    return hmac.compare_digest(record.ticket_digest, ticket_digest(ticket))


def record_from(item: Mapping[str, Any]) -> ConsoleRecord:
    metadata, spec = item["metadata"], item.get("spec") or {}
    status = item.get("status") or {}
    target, requested = spec.get("target") or {}, spec.get("requestedBy") or {}
    asked = status.get("disconnect")
    epoch = datetime.datetime.fromtimestamp(0, datetime.UTC)
    return ConsoleRecord(
        id=str(metadata["name"]),
        namespace=str(target.get("namespace", "")),
        name=str(target.get("name", "")),
        uid=str(target.get("uid", "")),
        vmi=str(target.get("vmi", "")),
        protocol="serial" if spec.get("protocol") == "serial" else "vnc",
        user=str(requested.get("user", "")),
        tenant=str(requested.get("tenant", "")),
        login_session=str(requested.get("session", "")),
        api_key=str(requested.get("apiKey", "")),
        ticket_digest=str(spec.get("ticketDigest", "")),
        ticket_expires=timestamps.parse(spec.get("ticketExpireTime")) or epoch,
        expires=timestamps.parse(spec.get("expireTime")) or epoch,
        takes_over=str(spec.get("takesOver", "")),
        created=timestamps.parse(metadata.get("creationTimestamp")),
        phase=str(status.get("phase") or ISSUED),
        connect_time=timestamps.parse(status.get("connectTime")),
        client_ip=str(status.get("clientIp", "")),
        replica=str(status.get("replica", "")),
        disconnect=Disconnect(str(asked.get("by", "")), str(asked.get("reason", "")), int(asked.get("code", 0)))
        if asked
        else None,
        close_time=timestamps.parse(status.get("closeTime")),
        close_code=int(status.get("closeCode", 0)),
        close_reason=str(status.get("closeReason", "")),
        bytes_to_client=int(status.get("bytesToClient", 0)),
        bytes_from_client=int(status.get("bytesFromClient", 0)),
        resource_version=str(metadata.get("resourceVersion", "")),
    )


class ConsoleCache:
    """Every console session, mirrored by an informer (an `informer.Handler`); tells a listener of each change, so
    the replica holding a socket hears of a disconnect request made anywhere."""

    def __init__(self) -> None:
        self._records: dict[str, ConsoleRecord] = {}
        self.listeners: list[Callable[[ConsoleRecord | None, str], None]] = []
        """Told `(record, session_id)` of every session listed or changed; record None for a deleted one."""
        self.synced = False

    def get(self, session_id: str) -> ConsoleRecord | None:
        return self._records.get(session_id)

    def of_vm(self, namespace: str, name: str) -> list[ConsoleRecord]:
        """Newest first."""
        found = [r for r in self._records.values() if r.namespace == namespace and r.name == name]
        # creationTimestamp has whole seconds; the ticket's expiry (issue time + a fixed validity) orders within one
        return sorted(found, key=lambda r: (r.created or timestamps.now(), r.ticket_expires, r.id), reverse=True)

    def ended_before(self, moment: datetime.datetime) -> list[str]:
        """Sessions over before `moment`: closed, or issued with a ticket nobody used."""
        return sorted(
            r.id
            for r in self._records.values()
            if (r.phase == CLOSED and (r.close_time or moment) < moment)
            or (r.phase == ISSUED and r.ticket_expires < moment)
        )

    def put(self, record: ConsoleRecord) -> None:
        """A write this replica made, ahead of its watch event."""
        current = self._records.get(record.id)
        if current is None or int(current.resource_version or 0) <= int(record.resource_version or 0):
            self._records[record.id] = record

    # informer.Handler
    def replace(self, kind: Kind, items: list[dict[str, Any]], resource_version: int) -> None:
        self._records = {r.id: r for r in map(record_from, items)}
        self.synced = True
        for record in list(self._records.values()):
            self._tell(record, record.id)

    def apply(self, kind: Kind, event_type: str, item: dict[str, Any], resource_version: int) -> None:
        record = record_from(item)
        if event_type == "DELETED":
            self._records.pop(record.id, None)
            self._tell(None, record.id)
        else:
            self._records[record.id] = record
            self._tell(record, record.id)

    def _tell(self, record: ConsoleRecord | None, session_id: str) -> None:
        for listener in self.listeners:
            listener(record, session_id)

    def progress(self, kind: Kind, resource_version: int) -> None:
        pass


@dataclass(frozen=True)
class ConsoleSettings:
    namespace: str
    """The API's namespace, where sessions and their Leases live."""
    public_url: str
    """ws:// or wss:// base of console URLs; empty: the origin the request reached (see `console_base`)."""
    ticket_seconds: float


def console_base(public_url: str, request_origin: str, direct_url: str) -> str:
    """Where a client opens its console: the configured public URL, else the origin its request reached through
    Envoy (https becomes wss), else (a call that bypassed Envoy) the API server's own console listener."""
    if public_url:
        return public_url
    scheme, separator, authority = request_origin.partition("://")
    if separator:
        return f"{'wss' if scheme == 'https' else 'ws'}://{authority}"
    return direct_url


class ConsoleSessions:
    def __init__(
        self,
        *,
        kube: KubeClient,
        cache: ConsoleCache,
        wukongs: WukongQueries,
        settings: ConsoleSettings,
        direct_url: Callable[[], str],
        lookups: Lookups,
    ) -> None:
        """`direct_url`: the console listener's own ws:// base, for calls that did not come through Envoy."""
        self._lookups = lookups
        self._kube = kube
        self._cache = cache
        self._wukongs = wukongs
        self._settings = settings
        self._direct_url = direct_url

    async def create(
        self,
        caller: Caller,
        *,
        namespace: str,
        name: str,
        protocol: Protocol,
        lifetime_seconds: int,
        take_over: bool,
        request_origin: str = "",
    ) -> Issued:
        """`request_origin`: the origin the request reached (Envoy's report), for the console URL."""
        lifetime = lifetime_seconds or LIFETIME_DEFAULT
        if not LIFETIME_MIN <= lifetime <= LIFETIME_MAX:
            raise errors.InvalidArgument.field(
                "lifetime_seconds", f"must be {LIFETIME_MIN}-{LIFETIME_MAX} seconds (0: {LIFETIME_DEFAULT})"
            )
        state = await self._wukongs.get(caller, namespace=namespace, name=name, vm_id="")
        if not _running(state):
            raise errors.FailedPrecondition(
                f"Wukong '{state.name}' is not running, so it has no console; start it first",
                reason=errors.Reason.VM_NOT_RUNNING,
            )
        session_id = f"{SESSION_PREFIX}{lookups.mint(SESSION_ID_HEX)}"
        now = timestamps.now()
        previous = await self._lock(caller, state, protocol, session_id, take_over=take_over, now=now)
        ticket = secrets.token_urlsafe(32)
        body = {
            "apiVersion": objects.API_VERSION,
            "kind": "ConsoleSession",
            "metadata": {
                "name": session_id,
                "namespace": self._settings.namespace,
                "labels": {
                    "novasphere.dev/tenant": caller.tenant,
                    "novasphere.dev/namespace": state.namespace,
                    "novasphere.dev/wukong": state.name,
                    "novasphere.dev/protocol": protocol,
                },
            },
            "spec": {
                "protocol": protocol,
                "target": {
                    "namespace": state.namespace,
                    "name": state.name,
                    "uid": state.uid,
                    "vmi": vm_name(state.name),
                },
                "requestedBy": {
                    "user": caller.user,
                    "tenant": caller.tenant,
                    "clientType": caller.client_type,
                    **({"session": caller.session} if caller.session else {}),
                    **({"apiKey": caller.api_key} if caller.api_key else {}),
                },
                "ticketDigest": ticket_digest(ticket),
                "ticketExpireTime": timestamps.format_micro(
                    now + datetime.timedelta(seconds=self._settings.ticket_seconds)
                ),
                "expireTime": timestamps.format_micro(now + datetime.timedelta(seconds=lifetime)),
                **({"takesOver": previous.id} if previous else {}),
            },
        }
        record = record_from(await objects.create(self._kube, body))
        self._cache.put(record)
        if previous is not None:
            await self.request_disconnect(
                previous, Disconnect(caller.user, f"taken over by {caller.user}", CloseCode.TAKEN_OVER)
            )
        log.info(
            "console %s (%s of %s/%s) issued to %s%s",
            session_id,
            protocol,
            state.namespace,
            state.name,
            caller.user,
            f", taking over {previous.id}" if previous else "",
        )
        base = console_base(self._settings.public_url, request_origin, self._direct_url())
        return Issued(record, ticket, f"{base}{WEBSOCKET_PATH}{session_id}")

    async def status(self, caller: Caller, *, namespace: str, name: str, protocol: Protocol) -> ConsoleRecord | None:
        """The VM's current session of the protocol, else its newest one; None if it never had one."""
        sessions = [r for r in await self.list(caller, namespace=namespace, name=name) if r.protocol == protocol]
        now = timestamps.now()
        return next((r for r in sessions if r.active(now)), sessions[0] if sessions else None)

    async def list(self, caller: Caller, *, namespace: str, name: str) -> list[ConsoleRecord]:
        state = await self._wukongs.get(caller, namespace=namespace, name=name, vm_id="")
        return [r for r in self._cache.of_vm(state.namespace, state.name) if r.tenant == caller.tenant]

    async def disconnect(
        self, caller: Caller, *, namespace: str, name: str, protocol: Protocol, session_id: str, reason: str
    ) -> ConsoleRecord:
        if len(reason) > MAX_REASON:
            raise errors.InvalidArgument.field("reason", f"at most {MAX_REASON} characters")
        sessions = await self.list(caller, namespace=namespace, name=name)
        now = timestamps.now()
        if session_id:
            record = next((r for r in sessions if r.id == session_id), None)
        else:
            record = next((r for r in sessions if r.protocol == protocol and r.active(now)), None)
        if record is None:
            raise errors.ConsoleSessionNotFound(session_id or f"the {protocol} console of {name}")
        if record.user != caller.user and not caller.may(MANAGE):
            raise errors.PermissionDenied(
                MANAGE, message=f"this console session is {record.user}'s: disconnecting it needs {MANAGE}"
            )
        if record.phase == CLOSED:
            return record
        why = reason.strip() or f"disconnected by {caller.user}"
        return await self.request_disconnect(record, Disconnect(caller.user, why, CloseCode.DISCONNECTED))

    async def request_disconnect(self, record: ConsoleRecord, disconnect: Disconnect) -> ConsoleRecord:
        """Asks whoever holds the socket to close it; a session not connected yet is closed right here."""
        status: dict[str, Any] = {
            "disconnect": {
                "by": disconnect.by,
                "reason": disconnect.reason[:120],
                "code": disconnect.code,
                "time": timestamps.format_micro(timestamps.now()),
            }
        }
        if record.phase == ISSUED:
            status.update(_closed(disconnect.code, disconnect.reason))
        try:
            updated = record_from(
                await objects.patch_status(
                    self._kube,
                    namespace=self._settings.namespace,
                    name=record.id,
                    status=status,
                    resource_version=record.resource_version if record.phase == ISSUED else None,
                )
            )
        except kube_errors.Conflict:  # claimed meanwhile: now the socket's holder must close it
            current = record_from(await objects.get(self._kube, namespace=self._settings.namespace, name=record.id))
            return await self.request_disconnect(current, disconnect)
        except kube_errors.NotFound:
            return record
        self._cache.put(updated)
        log.info("console %s: disconnect asked by %s (%s)", record.id, disconnect.by, disconnect.reason)
        return updated

    async def _lock(
        self,
        caller: Caller,
        state: WukongState,
        protocol: Protocol,
        session_id: str,
        *,
        take_over: bool,
        now: datetime.datetime,
    ) -> ConsoleRecord | None:
        """Makes `session_id` the one allowed to hold the VM's console; returns the session it took over, if any."""
        name = f"console-{state.uid}-{protocol}"
        for _ in range(LOCK_ATTEMPTS):
            try:
                lease = await leases.get(self._kube, namespace=self._settings.namespace, name=name)
            except kube_errors.NotFound:
                try:
                    await leases.create(
                        self._kube,
                        namespace=self._settings.namespace,
                        name=name,
                        spec=_lease_spec(session_id, now),
                        labels={LOCK_LABEL: "true", VM_UID_LABEL: state.uid},
                    )
                    return None
                except kube_errors.Conflict:
                    continue
            spec = lease.get("spec") or {}
            holder_id = str(spec.get("holderIdentity") or "")
            holder = await self.session(holder_id, client=caller.address)
            acquired = timestamps.parse(spec.get("acquireTime")) or now
            if holder is None and holder_id and now - acquired < datetime.timedelta(seconds=OPENING_GRACE_SECONDS):
                # taken a moment ago by a request that is still writing its session
                raise errors.Unavailable("someone is opening this console right now; retry in a few seconds")
            taken = None
            if holder is not None and holder.active(now):
                if not take_over:
                    raise errors.ConsoleInUse(
                        protocol=protocol,
                        name=state.name,
                        user=holder.user,
                        since=holder.connect_time or holder.created or now,
                        connected=holder.phase == CONNECTED,
                    )
                if holder.user != caller.user and not caller.may(MANAGE):
                    raise errors.PermissionDenied(
                        MANAGE,
                        message=f"the {protocol} console of {state.name} is {holder.user}'s now: taking it over "
                        f"needs {MANAGE} (taking over your own does not)",
                    )
                taken = holder
            lease["spec"] = _lease_spec(session_id, now)
            try:
                await leases.replace(self._kube, lease)
                return taken
            except kube_errors.Conflict:
                continue
        raise errors.Unavailable("the console is being requested by someone else right now; retry")

    async def session(self, session_id: str, *, client: str) -> ConsoleRecord | None:
        """The session from the cache; one written on another replica a moment ago from kube-apiserver (bounded)."""
        if not session_id.startswith(SESSION_PREFIX):
            return None
        record = self._cache.get(session_id)
        if record is not None:
            return record

        async def fetch() -> ConsoleRecord | None:
            with contextlib.suppress(kube_errors.NotFound):
                return record_from(await objects.get(self._kube, namespace=self._settings.namespace, name=session_id))
            return None

        identifier = session_id.removeprefix(SESSION_PREFIX)
        return await self._lookups.unseen("console-session", identifier, client=client, fetch=fetch, minted=True)

    async def holds_lock(self, record: ConsoleRecord) -> bool:
        try:
            lease = await leases.get(
                self._kube, namespace=self._settings.namespace, name=f"console-{record.uid}-{record.protocol}"
            )
        except kube_errors.NotFound:
            return False
        return bool((lease.get("spec") or {}).get("holderIdentity") == record.id)

    async def locks_of_gone_vms(self, vm_exists: Callable[[str], bool]) -> builtins.list[str]:
        """The console Leases of VMs that no longer exist (a Wukong deleted, or re-created with a new UID)."""
        found = await leases.labelled(self._kube, namespace=self._settings.namespace, selector=LOCK_LABEL)
        labels = [(lease["metadata"]["name"], lease["metadata"].get("labels") or {}) for lease in found]
        return sorted(name for name, label in labels if not vm_exists(str(label.get(VM_UID_LABEL, ""))))


def _running(state: WukongState) -> bool:
    return bool(state.vmi and (state.vmi.get("status") or {}).get("phase") == "Running")


def _lease_spec(holder: str, now: datetime.datetime) -> dict[str, Any]:
    return {
        "holderIdentity": holder,
        "acquireTime": timestamps.format_micro(now),
        "renewTime": timestamps.format_micro(now),
    }


def _closed(code: int, reason: str) -> dict[str, Any]:
    return {
        "phase": CLOSED,
        "closeTime": timestamps.format_micro(timestamps.now()),
        "closeCode": code,
        "closeReason": reason[:120],
    }


def closed_status(code: int, reason: str, *, bytes_to_client: int, bytes_from_client: int) -> dict[str, Any]:
    return {**_closed(code, reason), "bytesToClient": bytes_to_client, "bytesFromClient": bytes_from_client}
