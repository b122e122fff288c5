"""SSH public keys for VMs: upload, list and delete the Secrets a Wukong's `spec.sshKeySecret` names.

vmoperator reads the key `ssh-publickey` first (reference/wukong.md, `spec.sshKeySecret`) and puts each line that is
not a comment into cloud-init's `ssh_authorized_keys`. Only public keys are accepted, each checked as OpenSSH wire
format (its type, and a blob that names the same type), so a pasted private key or a typo fails here, at upload,
rather than as a VM nobody can log in to. The API never reads a Secret: it lists its records of the keys it made
(server/kube/ssh_keys.py), and deletes only the Secret a record names, by UID.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime
import hashlib
import re
import struct
from dataclasses import dataclass

from server import errors, timestamps
from server.auth import Caller
from server.kube import errors as kube_errors
from server.kube import ssh_keys
from server.kube.auth_objects import KIND_LABEL
from server.kube.client import JsonObject, KubeClient
from server.kube.services import MANAGED_BY, MANAGED_BY_LABEL
from server.tenancy import Tenancy

DATA_KEY = "ssh-publickey"
MAX_BYTES = 16 * 1024
MAX_KEYS = 20
NAME_MAX = 63
KEY_TYPES = frozenset(
    {
        "ssh-ed25519",
        "ssh-rsa",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "sk-ssh-ed25519@openssh.com",
        "sk-ecdsa-sha2-nistp256@openssh.com",
    }
)
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


@dataclass(frozen=True)
class SshKey:
    name: str
    namespace: str
    public_key: str
    fingerprints: list[str]
    created_by: str
    created: datetime.datetime | None


class SshKeys:
    def __init__(self, *, kube: KubeClient, tenancy: Tenancy, home: str) -> None:
        self._kube = kube
        self._tenancy = tenancy
        self._home = home
        """The API's own namespace, where the records are."""

    async def list(self, caller: Caller, *, namespace: str) -> list[SshKey]:
        namespace = await self._tenancy.namespace_for(caller, namespace)
        found = await ssh_keys.records(self._kube, home=self._home, namespace=namespace)
        return sorted((_key(record) for record in found), key=lambda k: k.name)

    async def create(self, caller: Caller, *, namespace: str, name: str, public_key: str) -> SshKey:
        violations = _check_name(name)
        text, _, key_violations = parse_public_keys(public_key)
        violations += key_violations
        if violations:
            raise errors.InvalidArgument(violations)
        namespace = await self._tenancy.namespace_for(caller, namespace)
        labels = {KIND_LABEL: ssh_keys.SSH_KEY, MANAGED_BY_LABEL: MANAGED_BY}
        secret: JsonObject = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "stringData": {DATA_KEY: text},
        }
        try:
            created = await ssh_keys.create_secret(self._kube, secret)
        except kube_errors.Conflict as error:
            raise errors.SshKeyAlreadyExists(namespace=namespace, name=name) from error
        record = _record(self._home, created, text, caller.user)
        try:
            try:
                written = await ssh_keys.create_record(self._kube, record)
            except kube_errors.Conflict:  # a record outlived its Secret (deleted with kubectl): this one replaces it
                await ssh_keys.delete_record(self._kube, home=self._home, name=record["metadata"]["name"])
                written = await ssh_keys.create_record(self._kube, record)
        except Exception:
            with contextlib.suppress(kube_errors.KubeError):  # no Secret the API has no record of
                await ssh_keys.delete_secret(self._kube, namespace=namespace, name=name, uid=created["metadata"]["uid"])
            raise
        return _key(written)

    async def delete(self, caller: Caller, *, namespace: str, name: str) -> None:
        namespace = await self._tenancy.namespace_for(caller, namespace)
        if _check_name(name):  # no key can have such a name
            raise errors.SshKeyNotFound(namespace=namespace, name=name[:NAME_MAX])
        found = await ssh_keys.records(self._kube, home=self._home, namespace=namespace, name=name)
        if not found:
            raise errors.SshKeyNotFound(namespace=namespace, name=name)
        for record in found:
            # Gone meanwhile, or replaced by a Secret the API did not make (another UID, which stays): either way
            # the key the API made is no more.
            with contextlib.suppress(kube_errors.NotFound, kube_errors.Conflict):
                await ssh_keys.delete_secret(
                    self._kube, namespace=namespace, name=name, uid=record["data"]["secretUid"]
                )
            with contextlib.suppress(kube_errors.NotFound):
                await ssh_keys.delete_record(self._kube, home=self._home, name=record["metadata"]["name"])


def parse_public_keys(text: str, field: str = "public_key") -> tuple[str, list[str], list[errors.FieldViolation]]:
    """The keys as stored (trimmed lines, comments kept), each key's SHA-256 fingerprint, and what is wrong."""
    if not text.strip():
        return "", [], [errors.FieldViolation(field, "is required: paste the contents of a .pub file")]
    if len(text.encode()) > MAX_BYTES:
        return "", [], [errors.FieldViolation(field, f"is {len(text.encode())} bytes; at most {MAX_BYTES} are allowed")]
    if "PRIVATE KEY" in text:
        return (
            "",
            [],
            [
                errors.FieldViolation(
                    field,
                    "this is a private key: upload only the public one (the .pub file); keep the private one secret",
                )
            ],
        )
    lines = [line.strip() for line in text.strip().splitlines()]
    fingerprints: list[str] = []
    violations: list[errors.FieldViolation] = []
    for number, line in enumerate(lines, start=1):
        if not line or line.startswith("#"):
            continue
        fingerprint, problem = _fingerprint(line)
        if problem:
            violations.append(errors.FieldViolation(field, f"line {number} {problem}"))
        else:
            fingerprints.append(fingerprint)
    if not violations and not fingerprints:
        violations.append(errors.FieldViolation(field, "has only comments: add at least one public key line"))
    if len(fingerprints) > MAX_KEYS:
        violations.append(errors.FieldViolation(field, f"has {len(fingerprints)} keys; at most {MAX_KEYS} are allowed"))
    return "\n".join(lines) + "\n", fingerprints, violations


def _fingerprint(line: str) -> tuple[str, str]:
    """(`SHA256:...`, "") for an OpenSSH public key line `<type> <base64> [comment]`, else ("", what is wrong)."""
    parts = line.split(maxsplit=2)
    if parts[0] not in KEY_TYPES:
        known = ", ".join(sorted(KEY_TYPES))
        return "", f"does not start with a key type ({known}); options before the key are not accepted"
    if len(parts) < 2:
        return "", f"has the type '{parts[0]}' but no key after it"
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        return "", "has a key that is not valid base64 (was it cut short or wrapped?)"
    if len(blob) < 4 or blob[4 : 4 + struct.unpack(">I", blob[:4])[0]] != parts[0].encode():
        return "", f"has a key whose contents are not a '{parts[0]}' key"
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("="), ""


def _check_name(name: str) -> list[errors.FieldViolation]:
    if not name:
        return [errors.FieldViolation("name", "is required, e.g. 'ada-laptop'")]
    if len(name) > NAME_MAX or not _NAME.match(name):
        return [
            errors.FieldViolation(
                "name",
                f"'{name[:NAME_MAX]}' is not a Secret name: use at most {NAME_MAX} lowercase letters, digits, '-' and "
                "'.', starting and ending with a letter or digit",
            )
        ]
    return []


def _record(home: str, secret: JsonObject, text: str, user: str) -> JsonObject:
    """The API's record of a key Secret: where it is, which Secret (its UID), the keys and who uploaded them."""
    namespace, name = secret["metadata"]["namespace"], secret["metadata"]["name"]
    digest = hashlib.sha256(f"{namespace}/{name}".encode()).hexdigest()[:24]
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": f"ssh-key-{digest}",
            "namespace": home,
            "labels": {
                KIND_LABEL: ssh_keys.SSH_KEY,
                ssh_keys.NAMESPACE_LABEL: namespace,
                ssh_keys.NAME_LABEL: name,
            },
        },
        "data": {
            "namespace": namespace,
            "name": name,
            "secretUid": secret["metadata"]["uid"],
            "publicKey": text,
            "createdBy": user,
        },
    }


def _key(record: JsonObject) -> SshKey:
    data = record.get("data") or {}
    text = data.get("publicKey") or ""
    return SshKey(
        name=data.get("name") or "",
        namespace=data.get("namespace") or "",
        public_key=text,
        fingerprints=parse_public_keys(text)[1] if text.strip() else [],
        created_by=data.get("createdBy") or "",
        created=timestamps.parse(record["metadata"].get("creationTimestamp")),
    )
