"""The notifier: turns what the informers show into notifications people receive. Runs on every replica, acts on the
leader only.

Every replica hears the same Wukong and task changes and gathers the same batches (events, audience, coalescing are
pure functions of the caches), but only the leader sends. A follower keeps each batch it gathered for `HOLD` after it
was due, so if the leader dies before writing its outbox entry, the replica that takes over still has the batch and
sends it: the same events make the same event id and collapse key, so a copy the old leader did send is dropped by
the provider or receiver.

Sending a batch: its outbox entry is written first (`outbox.py`), then every destination is tried, each outcome
recorded on the destination's Secret (a gone device is deleted), and the entry deleted once no destination is left
to retry. Retries back off exponentially (honouring Retry-After) up to `MAX_ATTEMPTS`; a new leader re-sends every
entry it finds at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from server import timestamps
from server.auth.store import AuthStore
from server.console.sessions import ConsoleCache, ConsoleRecord
from server.failpoints import Failpoints
from server.kube import errors as kube_errors
from server.kube import notification_objects as objects
from server.kube.auth_objects import KIND_LABEL
from server.kube.client import KubeClient
from server.kube.services import MANAGED_BY, MANAGED_BY_LABEL
from server.leader import LeaderElection
from server.notifications import outbox, texts
from server.notifications.audience import Recipient, recipients
from server.notifications.coalesce import Batch, Coalescer
from server.notifications.delivery import Delivery
from server.notifications.events import (
    FRESH_FOR,
    VM_KINDS,
    Event,
    console_taken_over,
    quota_nearly_used,
    task_events,
    wukong_events,
)
from server.notifications.outbox import Destination, Entry
from server.notifications.preferences import Preferences, quiet_until
from server.notifications.providers import Providers
from server.notifications.store import DeviceRecord, NotificationStore, WebhookRecord
from server.notifications.subscriptions import Recorder
from server.stats import QuotaCache
from server.tasks.cache import TaskCache
from server.tasks.model import Operation, Task
from server.wukongs.cache import Change, WukongCache

log = logging.getLogger(__name__)

HOLD = datetime.timedelta(seconds=30)
EXPLAINED_FOR = datetime.timedelta(minutes=1)
"""A VM that stops within this long of a stop, restart or delete of anyone's ended is not stopping unexpectedly."""
EXPLAINING = frozenset({Operation.STOP, Operation.RESTART, Operation.DELETE})
REPEAT_QUIET = datetime.timedelta(minutes=10)
"""A VM's later failures or stops within this long of one it was told of are not told again: a VM in a crash loop
fails every few seconds, and one notification says what its owners need to know."""
MAX_ATTEMPTS = 8
FIRST_RETRY_SECONDS = 5.0
LONGEST_RETRY_SECONDS = 600.0
USER_PREFIX = "user:"
TENANT_PREFIX = "tenant:"


@dataclass(frozen=True)
class NotifierSettings:
    namespace: str
    window: datetime.timedelta = datetime.timedelta(seconds=10)
    longest: datetime.timedelta = datetime.timedelta(minutes=1)


class Notifier:
    def __init__(
        self,
        *,
        kube: KubeClient,
        settings: NotifierSettings,
        store: NotificationStore,
        auth_store: AuthStore,
        tenant_of: Callable[[str], str],
        wukongs: WukongCache,
        tasks: TaskCache,
        consoles: ConsoleCache,
        quotas: QuotaCache,
        leader: LeaderElection,
        providers: Providers,
        recorder: Recorder,
        failpoints: Failpoints,
    ) -> None:
        self._kube = kube
        self._settings = settings
        self._store = store
        self._auth = auth_store
        self._tenant_of = tenant_of
        self._wukongs = wukongs
        self._tasks = tasks
        self._leader = leader
        self._providers = providers
        self._recorder = recorder
        self._failpoints = failpoints
        self._coalescer = Coalescer(window=settings.window, longest=settings.longest)
        self._held: list[tuple[datetime.datetime, Batch]] = []
        self._retries: dict[str, datetime.datetime] = {}  # outbox entry name -> when to try again
        self._consoles = consoles
        self._told_takeovers: dict[str, datetime.datetime] = {}  # console session id -> when seen
        self._told_vms: dict[str, datetime.datetime] = {}  # Wukong uid -> when its last VM event was heard
        self._wake = asyncio.Event()
        wukongs.subscribe(self._on_wukong)
        tasks.subscribe(self._on_task)
        consoles.listeners.append(self._on_console)
        quotas.listeners.append(self._on_quota)

    # -- hearing (every replica)

    def _on_wukong(self, change: Change) -> None:
        if not (self._wukongs.synced and self._tasks.synced):
            return  # the first list: nothing changed
        after = change.after
        tenant = self._tenant_of((after or change.state).namespace)
        now = timestamps.now()
        explained = frozenset({after.uid}) if after is not None and self._explained(after.key, now) else frozenset()
        for event in wukong_events(change.before, after, tenant=tenant, explained=explained, at=now):
            self._hear(event, now)

    def _on_task(self, before: Task | None, after: Task | None) -> None:
        if after is None or not self._tasks.synced:
            return
        vm = self._wukongs.get(after.wukong_key)
        now = timestamps.now()
        for event in task_events(before, after, at=now, labels=vm.labels if vm is not None else None):
            self._hear(event, now)

    def _on_console(self, record: ConsoleRecord | None, session_id: str) -> None:
        """A session that takes over another's console: its holder is told (once per session; a relist within
        FRESH_FOR of it would tell again under the same event id, which providers collapse)."""
        now = timestamps.now()
        self._told_takeovers = {k: at for k, at in self._told_takeovers.items() if now - at < 2 * FRESH_FOR}
        if record is None or not record.takes_over or session_id in self._told_takeovers:
            return
        if record.created is None or now - record.created > FRESH_FOR:
            return
        self._told_takeovers[session_id] = now
        taken = self._consoles.get(record.takes_over)
        vm = self._wukongs.get((record.namespace, record.name))
        if taken is None or vm is None:
            return
        event = console_taken_over(
            vm,
            tenant=taken.tenant,
            session_id=record.takes_over,
            protocol=record.protocol,
            holder=taken.user,
            taken_by=record.user,
            at=now,
        )
        if event is not None:
            self._hear(event, now)

    def _on_quota(self, before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> None:
        metadata, status = after["metadata"], after.get("status") or {}
        namespace = str(metadata["namespace"])
        tenant = self._tenant_of(namespace)
        if not tenant:
            return
        used_before = ((before or {}).get("status") or {}).get("used") or {}
        now = timestamps.now()
        for resource, hard in sorted((status.get("hard") or {}).items()):
            event = quota_nearly_used(
                tenant=tenant,
                namespace=namespace,
                resource=str(resource),
                used=str((status.get("used") or {}).get(resource, "0")),
                hard=str(hard),
                used_before=None if before is None else str(used_before.get(resource, "0")),
                quota_uid=str(metadata.get("uid", "")),
                resource_version=str(metadata.get("resourceVersion", "")),
                at=now,
            )
            if event is not None:
                self._hear(event, now)

    def _explained(self, key: tuple[str, str], now: datetime.datetime) -> bool:
        for task in self._tasks.of_wukong(key):
            if task.operation in EXPLAINING and (
                task.open or (task.completion_time is not None and now - task.completion_time < EXPLAINED_FOR)
            ):
                return True
        return False

    def _hear(self, event: Event, now: datetime.datetime) -> None:
        if event.kind in VM_KINDS:
            self._told_vms = {uid: at for uid, at in self._told_vms.items() if now - at < REPEAT_QUIET}
            if event.wukong_uid in self._told_vms:
                return
            self._told_vms[event.wukong_uid] = now
        for recipient in recipients(event, self._candidates(event.tenant)):
            not_before = quiet_until(recipient.preferences, now)
            self._coalescer.add(USER_PREFIX + recipient.user, event, now=now, not_before=not_before)
        if any(event.kind in webhook.events for webhook in self._store.webhooks_of(event.tenant)):
            self._coalescer.add(TENANT_PREFIX + event.tenant, event, now=now)
        self._wake.set()

    def _candidates(self, tenant: str) -> list[Recipient]:
        users = sorted({binding.user for binding in self._auth.bindings() if binding.tenant == tenant})
        found = []
        for user in users:
            account = self._auth.user(user)
            if account is not None and account.disabled:
                continue
            preferences = self._store.preferences_of(user) or Preferences()
            found.append(Recipient(user, tenant, self._auth.permissions(user, tenant), preferences))
        return found

    # -- sending (the leader)

    async def run(self, stop: asyncio.Event) -> None:
        resumed = False
        while not stop.is_set():
            now = timestamps.now()
            due = self._coalescer.flush(now)
            if not self._leader.leading:
                resumed = False
                self._held = [(until, b) for until, b in self._held if until > now] + [(now + HOLD, b) for b in due]
                self._retries.clear()
            else:
                if not resumed:
                    due = [batch for _, batch in self._held] + due
                    self._held = []
                    await self._resume()
                    resumed = True
                for batch in due:
                    await self._send_batch(batch)
                await self._send_retries(now)
            await self._sleep(stop)

    async def _sleep(self, stop: asyncio.Event) -> None:
        moments = [moment for moment in (self._coalescer.next_due(), *self._retries.values()) if moment is not None]
        seconds = 1.0
        if moments:
            seconds = min(seconds, max(0.05, (min(moments) - timestamps.now()).total_seconds()))
        self._wake.clear()
        waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
        try:
            await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()

    async def _resume(self) -> None:
        """A new leader finishes what the old one began: every entry left in the outbox, now."""
        for entry in self._store.outbox():
            log.info("notifier: resuming %s (%d destinations)", entry.name, len(entry.destinations))
            await self._send_entry(entry)

    async def _send_retries(self, now: datetime.datetime) -> None:
        for name, when in sorted(self._retries.items(), key=lambda item: item[1]):
            if when > now:
                continue
            del self._retries[name]
            entry = next((e for e in self._store.outbox() if e.name == name), None)
            if entry is not None:
                await self._send_entry(entry)

    def _destinations(self, batch: Batch) -> tuple[Destination, ...]:
        if batch.user.startswith(TENANT_PREFIX):
            tenant = batch.user.removeprefix(TENANT_PREFIX)
            return tuple(Destination("webhook", w.id) for w in self._store.webhooks_of(tenant))
        user = batch.user.removeprefix(USER_PREFIX)
        return tuple(Destination("device", d.id) for d in sorted(self._store.devices_of(user), key=lambda d: d.id))

    async def _send_batch(self, batch: Batch) -> None:
        destinations = self._destinations(batch)
        if not destinations:
            return
        entry = Entry(batch, destinations, written=timestamps.now())
        try:
            await self._write(entry)
        except kube_errors.KubeError as error:
            log.warning("notifier: could not write %s (%s); sending without it", entry.name, error)
        self._failpoints.hit("notification-outbox-written")
        await self._send_entry(entry)

    async def _write(self, entry: Entry) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": entry.name,
                "namespace": self._settings.namespace,
                "labels": {KIND_LABEL: objects.OUTBOX, MANAGED_BY_LABEL: MANAGED_BY},
            },
            "data": {outbox.DATA_KEY: outbox.dumps(entry)},
        }
        self._store.wrote(await objects.apply(self._kube, body))

    async def _send_entry(self, entry: Entry) -> None:
        outcomes = await asyncio.gather(*(self._send_one(entry, destination) for destination in entry.destinations))
        again = [(d, delivery) for d, delivery in zip(entry.destinations, outcomes, strict=True) if delivery]
        attempts = entry.attempts + 1
        if again and attempts < MAX_ATTEMPTS:
            later = replace(entry, destinations=tuple(d for d, _ in again), attempts=attempts)
            waits = [delivery.retry_after_seconds or 0.0 for _, delivery in again if delivery is not None]
            seconds = max(min(FIRST_RETRY_SECONDS * 2 ** (attempts - 1), LONGEST_RETRY_SECONDS), *waits)
            with contextlib.suppress(kube_errors.KubeError):
                await self._write(later)
            self._retries[later.name] = timestamps.now() + datetime.timedelta(seconds=seconds)
            return
        for destination, _ in again:  # out of attempts
            target = self._target(destination)
            if target is not None:
                failed = Delivery("failed", f"gave up after {attempts} attempts")
                await self._recorder.record(target, failed, timestamps.now())
        self._store.forgot(objects.OUTBOX, entry.name)
        try:
            await objects.delete_config_map(self._kube, namespace=self._settings.namespace, name=entry.name)
        except kube_errors.NotFound:
            pass  # a replica that took over meanwhile finished it
        except kube_errors.KubeError as error:
            log.warning("notifier: could not delete %s: %s", entry.name, error)

    async def _send_one(self, entry: Entry, destination: Destination) -> Delivery | None:
        """None when done with this destination; the Delivery when it should be tried again."""
        target = self._target(destination)
        if target is None:
            return None  # deleted meanwhile
        if isinstance(target, WebhookRecord):
            events = tuple(event for event in entry.batch.events if event.kind in target.events)
            if not events:
                return None
            notification = texts.notification(Batch(entry.batch.user, events), target.locale)
            delivery = await self._providers.to_webhook(target, notification)
        else:
            user = entry.batch.user.removeprefix(USER_PREFIX)
            locale = target.locale or (self._store.preferences_of(user) or Preferences()).locale
            delivery = await self._providers.to_device(target, texts.notification(entry.batch, locale))
        self._failpoints.hit("notification-sent")
        await self._recorder.record(target, delivery, timestamps.now())
        return delivery if delivery.outcome == "retry" else None

    def _target(self, destination: Destination) -> DeviceRecord | WebhookRecord | None:
        if destination.kind == "webhook":
            return self._store.webhook(destination.id)
        return self._store.device(destination.id)
