"""Writing Wukongs: create and update, validated in full before anything is written.

- A plain-text password becomes a SHA-512 crypt `passwordHash` before it leaves the process; neither is returned.
- `request_id` is recorded on the created Wukong (annotation), with a digest of the request, so a retry on any
  replica returns the same Wukong, and the same key with a different request is refused.
- An update is a read-modify-write guarded by the `etag`: a stale one is a conflict, never an overwrite. The etag
  covers what clients write (spec and labels: `metadata.generation` and a digest of the labels), not the
  resourceVersion, which vmoperator's status writes move every few seconds while a VM provisions. The write is a
  JSON Patch whose `test` operations require the generation and labels that were read, so vmoperator's status
  writes in between cannot make it fail, and nothing else can slip in between.
- vmoperator never resizes a disk (reference/wukong.md §9), so a grown disk is applied by the API to the claim itself,
  where its StorageClass allows expansion; anything else is refused up front with the reason.
- Every write returns the state it produced, with its cursor, once this replica's cache has it (read-your-writes).
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from server import errors, names, quantity
from server.auth import Caller
from server.kube import errors as kube_errors
from server.kube import storage, wukongs
from server.kube.client import JsonObject, KubeClient
from server.tenancy import Tenancy
from server.wukongs import passwords, validation
from server.wukongs.cache import WukongCache, WukongState
from server.wukongs.detail import claim_name
from server.wukongs.status import derive

REQUEST_ID_ANNOTATION = wukongs.API_ANNOTATIONS + "request-id"
REQUEST_DIGEST_ANNOTATION = wukongs.API_ANNOTATIONS + "request-digest"
# How kube-apiserver 1.32 reports a JSON Patch `test` operation that did not hold (422, reason Invalid, no details).
_TEST_FAILED = re.compile(r"rejected our request due to an error in our request")
_ETAG = re.compile(r"^\d+-[0-9a-f]{12}$")
UPDATE_ATTEMPTS = 3
# update_mask path → the JSON path in the Wukong object.
UPDATABLE: dict[str, tuple[str, ...]] = {
    "labels": ("metadata", "labels"),
    "spec": ("spec",),
    "spec.cpu": ("spec", "cpu"),
    "spec.memory": ("spec", "memory"),
    "spec.os_image": ("spec", "osImage"),
    "spec.ssh_key_secret": ("spec", "sshKeySecret"),
    "spec.cloud_init_user": ("spec", "cloudInitUser"),
    "spec.networks": ("spec", "networks"),
    "spec.disks": ("spec", "disks"),
    "spec.high_availability": ("spec", "highAvailability"),
    "spec.start_strategy": ("spec", "startStrategy"),
    "spec.start_strategy.auto_start": ("spec", "startStrategy", "autoStart"),
}


@dataclass(frozen=True)
class WukongInput:
    """The writable part of a Wukong as a client sent it; `spec` is the CRD's JSON (camelCase), `password` included."""

    name: str
    labels: Mapping[str, str]
    spec: Mapping[str, Any]


@dataclass(frozen=True)
class _Growth:
    claim: str
    size: str


class WukongCommands:
    def __init__(
        self,
        *,
        kube: KubeClient,
        cache: WukongCache,
        tenancy: Tenancy,
        cursor_wait_seconds: float,
        image_sources: frozenset[str] = frozenset(validation.DEFAULT_IMAGE_SOURCES),
    ) -> None:
        self._kube = kube
        self._cache = cache
        self._tenancy = tenancy
        self._cursor_wait = cursor_wait_seconds
        self._image_sources = image_sources

    async def create(
        self, caller: Caller, *, namespace: str, wukong: WukongInput, request_id: str, validate_only: bool
    ) -> WukongState:
        namespace = await self._tenancy.namespace_for(caller, namespace)
        spec = dict(copy.deepcopy(wukong.spec))
        violations = validation.check_name(wukong.name, "wukong.name")
        violations += validation.check_labels(wukong.labels, "wukong.labels")
        violations += validation.check_reserved_labels(wukong.labels, "wukong.labels", kept={})
        violations += _take_password(spec, "wukong.spec.cloud_init_user")
        violations += validation.check_spec(spec, "wukong.spec")
        violations += validation.check_image_sources(spec, "wukong.spec", self._image_sources, kept=frozenset())
        request_id_violation = names.request_id_violation(request_id)
        violations += [request_id_violation] if request_id_violation else []
        _raise_if(violations)
        _raise_if(await self._check_storage_classes(spec, "wukong.spec"))
        strategy = spec.setdefault("startStrategy", {})
        strategy.setdefault("autoStart", True)  # explicit, so vmoperator's odd defaults never apply (wukong.md §8)
        digest = _digest(namespace, wukong.name, wukong.labels, spec)
        if request_id:
            earlier = self._created_by(namespace, request_id)
            if earlier is not None:
                return _same_request(earlier, digest)
        await _hash_password(spec)
        annotations = {REQUEST_ID_ANNOTATION: request_id, REQUEST_DIGEST_ANNOTATION: digest} if request_id else {}
        body: JsonObject = {
            "apiVersion": wukongs.API_VERSION,
            "kind": "Wukong",
            "metadata": {
                "name": wukong.name,
                "namespace": namespace,
                "labels": dict(wukong.labels),
                **({"annotations": annotations} if annotations else {}),
            },
            "spec": spec,
        }
        try:
            written = await wukongs.create(self._kube, body, dry_run=validate_only)
        except kube_errors.Conflict as error:
            if request_id:
                current = await wukongs.get(self._kube, namespace=namespace, name=wukong.name)
                if (current["metadata"].get("annotations") or {}).get(REQUEST_ID_ANNOTATION) == request_id:
                    return _same_request(_unjoined(current), digest)
            raise errors.AlreadyExists(namespace=namespace, name=wukong.name) from error
        except kube_errors.Invalid as error:
            raise errors.InvalidArgument.field("wukong", f"Kubernetes refused the Wukong: {error.detail}") from error
        return _unjoined(_unwritten(written)) if validate_only else await self._settled(written)

    async def update(
        self,
        caller: Caller,
        *,
        namespace: str,
        wukong: WukongInput,
        etag: str,
        update_mask: Sequence[str],
        validate_only: bool,
    ) -> WukongState:
        names.check_wukong_name("wukong.name", wukong.name)
        namespace = await self._tenancy.namespace_for(caller, namespace, field="wukong.namespace")
        paths = _mask(update_mask)
        if etag and not _ETAG.match(etag):
            raise errors.InvalidArgument.field("wukong.etag", "pass the etag of a Wukong the API returned, unchanged")
        for attempt in range(UPDATE_ATTEMPTS):
            try:
                current = await wukongs.get(self._kube, namespace=namespace, name=wukong.name)
            except kube_errors.NotFound as error:
                raise errors.WukongNotFound(namespace=namespace, name=wukong.name) from error
            current_etag = etag_of(current)
            if etag and etag != current_etag:
                raise errors.Conflict(name=wukong.name, etag=etag, current=current_etag)
            changed, growths = await self._changed(current, wukong, paths)
            operations = _guarded_patch(current, changed)
            try:
                # Everything checked first, nothing written: the patch as a dry run, each claim's growth as one
                # (`_disk_changes`). Then the claims grow, then the Wukong: should the Wukong's patch still fail, the
                # grown disks are merely larger than its spec says, and a retry of the update makes them agree.
                written = await wukongs.patch(self._kube, namespace, wukong.name, operations, dry_run=True)
                if not validate_only:
                    await self._grow(namespace, wukong.name, growths)
                    written = await wukongs.patch(self._kube, namespace, wukong.name, operations, dry_run=False)
            except kube_errors.NotFound as error:  # deleted since it was read
                raise errors.WukongNotFound(namespace=namespace, name=wukong.name) from error
            except kube_errors.Invalid as error:
                if not _TEST_FAILED.search(error.detail):
                    raise errors.InvalidArgument.field(
                        "wukong", f"Kubernetes refused the change: {error.detail}"
                    ) from error
                if attempt == UPDATE_ATTEMPTS - 1:
                    raise errors.Conflict(name=wukong.name, etag=etag or current_etag, current="newer") from error
                continue  # the spec or labels changed since the read: read again, the etag check decides
            break
        if validate_only:
            return _unjoined(written)
        return await self._settled(written)

    async def _grow(self, namespace: str, name: str, growths: list[_Growth]) -> None:
        """The claims of the disks that grow, before the Wukong is patched. Each passed a dry run already, so a
        refusal here is a race: the answer then says which grew, and that the Wukong was left as it was."""
        for done, growth in enumerate(growths):
            try:
                await storage.grow_claim(self._kube, namespace=namespace, name=growth.claim, size=growth.size)
            except kube_errors.KubeError as error:
                grown = ", ".join(g.claim for g in growths[:done]) or "none"
                raise errors.FailedPrecondition(
                    f"growing claim {growth.claim} of Wukong '{name}' to {growth.size} was refused "
                    f"({_claim_refusal(error)}); Wukong '{name}' was not changed (claims grown already: {grown}, "
                    "which a retry finds done)",
                    reason=errors.Reason.PARTIALLY_APPLIED,
                ) from error

    async def _changed(
        self, current: JsonObject, wukong: WukongInput, paths: list[str]
    ) -> tuple[JsonObject, list[_Growth]]:
        """The Wukong with the masked fields replaced, validated, and the claims to grow."""
        changed = copy.deepcopy(current)
        given: JsonObject = {"metadata": {"labels": dict(wukong.labels)}, "spec": copy.deepcopy(dict(wukong.spec))}
        violations = _take_password(given["spec"], "wukong.spec.cloud_init_user")
        for path in paths:
            _put(changed, UPDATABLE[path], _get(given, UPDATABLE[path]))
        spec = changed.setdefault("spec", {})
        _keep_password_hash(spec, current.get("spec") or {})
        labels = changed["metadata"].get("labels") or {}
        violations += validation.check_labels(labels, "wukong.labels")
        kept_labels = current["metadata"].get("labels") or {}
        violations += validation.check_reserved_labels(labels, "wukong.labels", kept=kept_labels)
        violations += validation.check_spec(spec, "wukong.spec")
        kept = validation.images_of(current.get("spec") or {})
        violations += validation.check_image_sources(spec, "wukong.spec", self._image_sources, kept=kept)
        _raise_if(violations)
        growths, disk_violations = await self._disk_changes(current, spec)
        disk_violations += await self._check_storage_classes(spec, "wukong.spec")
        _raise_if(disk_violations)
        await _hash_password(spec)
        return changed, growths

    async def _disk_changes(self, current: JsonObject, spec: JsonObject) -> tuple[list[_Growth], validation.Violations]:
        namespace, name = current["metadata"]["namespace"], current["metadata"]["name"]
        before = {d["name"]: d for d in (current.get("spec") or {}).get("disks") or []}
        growths: list[_Growth] = []
        violations: validation.Violations = []
        for index, disk in enumerate(spec.get("disks") or []):
            old = before.get(disk["name"])
            if old is None:
                continue
            field = f"wukong.spec.disks[{index}]"
            for key, proto_name in (("storageClassName", "storage_class_name"), ("image", "image")):
                if (disk.get(key) or "") != (old.get(key) or ""):
                    violations.append(
                        errors.FieldViolation(
                            f"{field}.{proto_name}",
                            f"cannot change on an existing disk (was '{old.get(key) or ''}'); add a new disk instead",
                        )
                    )
            old_size, new_size = quantity.parse_bytes(old["size"]), quantity.parse_bytes(disk["size"])
            if new_size < old_size:
                violations.append(errors.FieldViolation(f"{field}.size", f"disks cannot shrink (now {old['size']})"))
            elif new_size > old_size:
                problem = await self._growable(namespace, claim_name(name, disk["name"]), disk["size"], new_size)
                if problem:
                    violations.append(errors.FieldViolation(f"{field}.size", problem))
                else:
                    growths.append(_Growth(claim_name(name, disk["name"]), disk["size"]))
        return growths, violations

    async def _growable(self, namespace: str, claim: str, size: str, size_bytes: int) -> str | None:
        """Why the claim cannot grow to `size`, or None: its class, its binding, and a dry run of the resize itself
        (admission and quota), so that nothing is written when it would be refused. No claim yet is fine: vmoperator
        creates it at the new size."""
        found = await storage.claim(self._kube, namespace=namespace, name=claim)
        if found is None:
            return None
        class_name = (found.get("spec") or {}).get("storageClassName") or ""
        storage_class = await storage.storage_class(self._kube, class_name) if class_name else None
        if not (storage_class or {}).get("allowVolumeExpansion"):
            return f"StorageClass '{class_name}' does not allow volume expansion, so this disk cannot grow"
        if (found.get("status") or {}).get("phase") != "Bound":
            return "the disk's claim is not bound yet (it binds when the VM first starts); grow it after that"
        try:
            await storage.grow_claim(self._kube, namespace=namespace, name=claim, size=size, dry_run=True)
        except (kube_errors.Invalid, kube_errors.Forbidden, kube_errors.Conflict) as error:
            return f"Kubernetes would refuse to grow the disk's claim: {_claim_refusal(error)}"
        return None

    async def _check_storage_classes(self, spec: Mapping[str, Any], field: str) -> validation.Violations:
        disks = [d for d in spec.get("disks") or [] if d.get("storageClassName")]
        wanted = sorted({d["storageClassName"] for d in disks})
        found = dict(
            zip(wanted, await asyncio.gather(*(storage.storage_class(self._kube, n) for n in wanted)), strict=True)
        )
        return [
            errors.FieldViolation(
                f"{field}.disks[{index}].storage_class_name",
                f"StorageClass '{disk['storageClassName']}' does not exist in the cluster",
            )
            for index, disk in enumerate(spec.get("disks") or [])
            if disk.get("storageClassName") and found.get(disk["storageClassName"]) is None
        ]

    def _created_by(self, namespace: str, request_id: str) -> WukongState | None:
        for state in self._cache.states():
            if state.namespace == namespace and state.annotations.get(REQUEST_ID_ANNOTATION) == request_id:
                return state
        return None

    async def _settled(self, written: JsonObject) -> WukongState:
        """The cache's state for what was written, once it has it; else the written object as is."""
        metadata = written["metadata"]
        key = (metadata["namespace"], metadata["name"])
        cursor = int(metadata["resourceVersion"])
        if await self._cache.wait_for(cursor, key=key, within=self._cursor_wait):
            state = self._cache.get(key)
            if state is not None:
                return state
        return _unjoined(written)


def _guarded_patch(current: JsonObject, changed: JsonObject) -> list[JsonObject]:
    """A JSON Patch that applies only to the Wukong as it was read (same object, spec and labels)."""
    metadata = current["metadata"]
    operations: list[JsonObject] = [
        {"op": "test", "path": "/metadata/uid", "value": metadata["uid"]},
        {"op": "test", "path": "/metadata/generation", "value": metadata.get("generation", 0)},
    ]
    if "labels" in metadata:
        operations.append({"op": "test", "path": "/metadata/labels", "value": metadata["labels"]})
    operations.append({"op": "add", "path": "/metadata/labels", "value": changed["metadata"].get("labels") or {}})
    operations.append({"op": "replace", "path": "/spec", "value": changed["spec"]})
    return operations


def etag_of(wukong: Mapping[str, Any]) -> str:
    """Changes exactly when what clients write changes: the spec (`generation`) or the labels. Empty for a Wukong
    that was never written (a dry run's)."""
    metadata = wukong["metadata"]
    if "generation" not in metadata:
        return ""
    labels = json.dumps(metadata.get("labels") or {}, sort_keys=True, separators=(",", ":"))
    return f"{metadata.get('generation', 0)}-{hashlib.sha256(labels.encode()).hexdigest()[:12]}"


def _raise_if(violations: validation.Violations) -> None:
    if violations:
        raise errors.InvalidArgument(violations)


def _claim_refusal(error: kube_errors.KubeError) -> str:
    """What to tell a client about a refused claim resize: a quota is theirs to raise; anything else in short."""
    if "exceeded quota" in error.detail:
        return "the namespace's storage quota would be exceeded; ask for a larger quota or free some storage"
    return f"{type(error).__name__.lower()} ({error.status})"


def _unjoined(raw: JsonObject) -> WukongState:
    """A Wukong not (yet) in the cache: no VM joined, its status what a new Wukong shows."""
    cursor = int(raw["metadata"].get("resourceVersion") or 0)
    return WukongState(raw, None, None, None, derive(raw, None, None, None), cursor, cursor)


def _unwritten(raw: JsonObject) -> JsonObject:
    """A dry run's Wukong without what Kubernetes made up for it (uid, creation time, generation): nothing by that
    uid exists, so a validate-only answer has none, and no etag either."""
    metadata = raw["metadata"]
    for key in ("uid", "creationTimestamp", "generation", "resourceVersion", "managedFields"):
        metadata.pop(key, None)
    return raw


def _same_request(state: WukongState, digest: str) -> WukongState:
    if state.annotations.get(REQUEST_DIGEST_ANNOTATION) != digest:
        raise errors.InvalidArgument.field(
            "request_id", "was already used for a different request; use a new request_id for a new Wukong"
        )
    return state


def _digest(namespace: str, name: str, labels: Mapping[str, str], spec: Mapping[str, Any]) -> str:
    """Identifies the request; secrets are left out, so the digest reveals nothing about them."""
    public = copy.deepcopy(dict(spec))
    user = public.get("cloudInitUser")
    if isinstance(user, dict):
        user["password"] = bool(user.pop("password", None) or user.pop("passwordHash", None))
    text = json.dumps([namespace, name, dict(labels), public], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _take_password(spec: JsonObject, field: str) -> validation.Violations:
    user = spec.get("cloudInitUser")
    if not isinstance(user, dict) or not user.get("password"):
        return []
    if user.get("passwordHash"):
        return [errors.FieldViolation(f"{field}.password", "give either password or password_hash, not both")]
    return validation.check_password(str(user["password"]), f"{field}.password")


async def _hash_password(spec: JsonObject) -> None:
    """Replaces a plain-text password by its SHA-512 crypt hash (the CRD would store `password` as is); off the event
    loop, as 5,000 rounds of SHA-512 take milliseconds."""
    user = spec.get("cloudInitUser")
    if isinstance(user, dict) and user.get("password"):
        user["passwordHash"] = await asyncio.to_thread(passwords.hash_password, str(user.pop("password")))


def _keep_password_hash(spec: JsonObject, current_spec: Mapping[str, Any]) -> None:
    """Responses never carry the hash, so a client that sends the user back without a password keeps it."""
    user, current_user = spec.get("cloudInitUser"), current_spec.get("cloudInitUser") or {}
    if isinstance(user, dict) and not user.get("password") and not user.get("passwordHash"):
        for key in ("passwordHash", "password"):
            if current_user.get(key):
                user[key] = current_user[key]


def _mask(update_mask: Sequence[str]) -> list[str]:
    if not update_mask:
        raise errors.InvalidArgument.field(
            "update_mask",
            f"is required: name the fields to change, e.g. spec.cpu,labels (any of {', '.join(UPDATABLE)})",
        )
    paths = [_snake(path.strip()) for path in update_mask]
    unknown = [path for path in paths if path not in UPDATABLE]
    if unknown:
        raise errors.InvalidArgument.field(
            "update_mask",
            f"cannot update {', '.join(unknown)}; updatable fields: {', '.join(UPDATABLE)}",
        )
    return paths


def _snake(path: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", lambda m: "_" + m.group(1).lower(), path)


def _get(document: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    for part in path:
        if not isinstance(document, Mapping) or part not in document:
            return None
        document = document[part]
    return document


def _put(document: JsonObject, path: tuple[str, ...], value: Any) -> None:
    """Sets the value at `path`; None (a field the client left at its default) removes it."""
    for part in path[:-1]:
        document = document.setdefault(part, {})
    if value is None:
        document.pop(path[-1], None)
    else:
        document[path[-1]] = value
