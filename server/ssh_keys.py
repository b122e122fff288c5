"""SSH public keys for VMs: upload, list and delete the Secrets a Wukong's `spec.sshKeySecret` names.

vmoperator reads the key `ssh-publickey` first (reference/wukong.md, `spec.sshKeySecret`) and puts each line that is
not a comment into cloud-init's `ssh_authorized_keys`. Only public keys are accepted, each checked as OpenSSH wire
format (its type, and a blob that names the same type), so a pasted private key or a typo fails here, at upload,
rather than as a VM nobody can log in to. Secrets are NovaSphere's own by label; no other Secret is read or touched.
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
from server.kube.client import JsonObject, KubeClient
from server.kube.services import MANAGED_BY, MANAGED_BY_LABEL
from server.tenancy import Tenancy

DATA_KEY = "ssh-publickey"
CREATED_BY_ANNOTATION = "novasphere.dev/created-by"
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
    def __init__(self, *, kube: KubeClient, tenancy: Tenancy) -> None:
        self._kube = kube
        self._tenancy = tenancy

    async def list(self, caller: Caller, *, namespace: str) -> list[SshKey]:
        namespace = await self._tenancy.namespace_for(caller, namespace)
        found = [_key(item) for item in await ssh_keys.in_namespace(self._kube, namespace)]
        return sorted(found, key=lambda k: k.name)

    async def create(self, caller: Caller, *, namespace: str, name: str, public_key: str) -> SshKey:
        violations = _check_name(name)
        text, fingerprints, key_violations = parse_public_keys(public_key)
        violations += key_violations
        if violations:
            raise errors.InvalidArgument(violations)
        namespace = await self._tenancy.namespace_for(caller, namespace)
        body: JsonObject = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": {ssh_keys.KIND_LABEL: ssh_keys.SSH_KEY, MANAGED_BY_LABEL: MANAGED_BY},
                "annotations": {CREATED_BY_ANNOTATION: caller.user},
            },
            "stringData": {DATA_KEY: text},
        }
        try:
            created = await ssh_keys.create(self._kube, body)
        except kube_errors.Conflict as error:
            raise errors.SshKeyAlreadyExists(namespace=namespace, name=name) from error
        return _key(created, fingerprints=fingerprints, text=text)

    async def delete(self, caller: Caller, *, namespace: str, name: str) -> None:
        namespace = await self._tenancy.namespace_for(caller, namespace)
        if not name or len(name) > NAME_MAX or not _NAME.match(name):
            raise errors.SshKeyNotFound(namespace=namespace, name=name[:NAME_MAX])
        try:
            found = await ssh_keys.get(self._kube, namespace=namespace, name=name)
        except kube_errors.NotFound as error:
            raise errors.SshKeyNotFound(namespace=namespace, name=name) from error
        if (found["metadata"].get("labels") or {}).get(ssh_keys.KIND_LABEL) != ssh_keys.SSH_KEY:
            raise errors.SshKeyNotFound(namespace=namespace, name=name)  # another Secret: not ours to delete
        # Gone meanwhile (or replaced by a new one, not the one read, which stays): what was asked is done.
        with contextlib.suppress(kube_errors.NotFound, kube_errors.Conflict):
            await ssh_keys.delete(self._kube, namespace=namespace, name=name, uid=found["metadata"]["uid"])


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


def _key(item: JsonObject, *, fingerprints: list[str] | None = None, text: str | None = None) -> SshKey:
    metadata = item["metadata"]
    if text is None:
        encoded = (item.get("data") or {}).get(DATA_KEY) or ""
        text = base64.b64decode(encoded).decode(errors="replace") if encoded else ""
    if fingerprints is None:
        fingerprints = parse_public_keys(text)[1] if text.strip() else []
    return SshKey(
        name=metadata["name"],
        namespace=metadata["namespace"],
        public_key=text,
        fingerprints=fingerprints,
        created_by=(metadata.get("annotations") or {}).get(CREATED_BY_ANNOTATION, ""),
        created=timestamps.parse(metadata.get("creationTimestamp")),
    )
