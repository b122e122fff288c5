"""Checks of a Wukong's name, labels and spec before anything is written: every problem at once, each naming its field
(proto field paths, e.g. `wukong.spec.disks[1].size`) and what to do.

The rules are the CRD's and vmoperator's (reference/wukong.md §2), plus what would otherwise fail later and silently
(a spec vmoperator rejects with a bare `Error` phase, a StorageClass that does not exist).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator, Mapping
from typing import Any

from server import errors, names, quantity
from server.wukongs import passwords, selectors

Raw = Mapping[str, Any]
Violations = list[errors.FieldViolation]

CPU_MAX = 64
MEMORY_MIN = 64 << 20
MEMORY_MAX = 1 << 40
DISK_MAX = 64 << 40
MAX_DISKS = 16
MAX_NETWORKS = 8
MAX_LABELS = 64
_USER_NAME = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
_SECRET_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
_NETWORK_TYPES = ("bridge", "macvlan", "sriov", "ovs")
_IP_MODES = ("static", "dhcp")
_RUN_STRATEGIES = ("Always", "RerunOnFailure", "Manual")
_RESTART_POLICIES = ("Always", "OnFailure", "Never")
_TOLERATION_OPERATORS = ("Exists", "Equal")
_TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
_IMAGE_SCHEMES = ("http://", "https://", "docker://", "registry://")
DEFAULT_IMAGE_SOURCES = (
    "docker://quay.io/",
    "docker://docker.io/",
    "docker://ghcr.io/",
    "docker://registry.k8s.io/",
    "https://cloud-images.ubuntu.com/",
    "https://cloud.debian.org/",
    "https://download.fedoraproject.org/",
)
"""Where disk images may come from unless NOVASPHERE_IMAGE_SOURCES says otherwise (server/config.py)."""


def check_name(name: str, field: str) -> Violations:
    try:
        names.check_wukong_name(field, name)
    except errors.InvalidArgument as error:
        return list(error.violations)
    return []


def check_labels(labels: Mapping[str, str], field: str) -> Violations:
    violations: Violations = []
    if len(labels) > MAX_LABELS:
        violations.append(errors.FieldViolation(field, f"at most {MAX_LABELS} labels"))
    for key, value in labels.items():
        problem = selectors.check_label_key(key) or selectors.check_label_value(value)
        if problem:
            violations.append(errors.FieldViolation(f"{field}[{key}]", problem))
    return violations


RESERVED_LABEL_DOMAINS = ("novasphere.dev", "kubevirt.io", "kubernetes.io", "k8s.io")
"""Label prefixes the platform and Kubernetes act on (tenancy, tasks, KubeVirt's pods): not a client's to set."""


def check_reserved_labels(labels: Mapping[str, str], field: str, *, kept: Mapping[str, str]) -> Violations:
    """Labels under a reserved domain are refused unless the Wukong already has them (set by an administrator)."""
    v: Violations = []
    for key, value in labels.items():
        domain = key.rpartition("/")[0]
        reserved = any(domain == d or domain.endswith("." + d) for d in RESERVED_LABEL_DOMAINS)
        if reserved and kept.get(key) != value:
            v.append(
                errors.FieldViolation(
                    f"{field}[{key}]", f"the prefix '{domain}/' is reserved for the platform; choose another"
                )
            )
    return v


def check_spec(spec: Raw, field: str) -> Violations:
    """The spec as the CRD stores it (camelCase JSON); paths in the violations are the proto's."""
    v: Violations = []
    cpu = spec.get("cpu")
    if not isinstance(cpu, int) or not 1 <= cpu <= CPU_MAX:
        v.append(errors.FieldViolation(f"{field}.cpu", f"must be between 1 and {CPU_MAX} cores; got {cpu or 0}"))
    _check_size(v, f"{field}.memory", spec.get("memory"), MEMORY_MIN, MEMORY_MAX, "e.g. 2Gi or 1536Mi")
    secret = str(spec.get("sshKeySecret") or "")
    if secret and (len(secret) > 253 or not _SECRET_NAME.match(secret)):
        v.append(errors.FieldViolation(f"{field}.ssh_key_secret", f"'{secret}' is not a Secret name"))
    user = spec.get("cloudInitUser")
    if user is not None:
        _check_user(v, user, f"{field}.cloud_init_user")
    _check_disks(v, spec.get("disks") or [], f"{field}.disks")
    _check_networks(v, spec.get("networks") or [], f"{field}.networks")
    _check_high_availability(v, spec.get("highAvailability") or {}, f"{field}.high_availability")
    strategy = spec.get("startStrategy") or {}
    run_strategy = strategy.get("runStrategy")
    if run_strategy and run_strategy not in _RUN_STRATEGIES:
        v.append(_one_of(f"{field}.start_strategy.run_strategy", run_strategy, _RUN_STRATEGIES))
    return v


def check_image_sources(spec: Raw, field: str, sources: frozenset[str], *, kept: frozenset[str]) -> Violations:
    """Each disk's `image` starts with one of `sources` (CDI imports it: the cluster fetches what a caller names, so
    the names are kept to an operator's list). Images in `kept` (a Wukong's current ones, on update) pass: a VM
    created before the list changed stays editable."""
    v: Violations = []
    for index, disk in enumerate(spec.get("disks") or []):
        image = str(disk.get("image") or "") if isinstance(disk, Mapping) else ""
        if image and image not in kept and not image.startswith(tuple(sources)):
            allowed = ", ".join(sorted(sources)) or "none (NOVASPHERE_IMAGE_SOURCES is empty)"
            v.append(
                errors.FieldViolation(
                    f"{field}.disks[{index}].image",
                    f"'{image[:200]}' is not from an allowed image source; images must start with one of: {allowed}",
                )
            )
    return v


def images_of(spec: Raw) -> frozenset[str]:
    return frozenset(str(d.get("image")) for d in spec.get("disks") or [] if isinstance(d, Mapping) and d.get("image"))


def check_image_source_prefix(prefix: str) -> str:
    """What is wrong with an allow-list entry, "" if nothing: a scheme, a host, and the `/` that ends the host (else
    `https://images.example.com` would also allow `https://images.example.com.attacker.net/`)."""
    scheme = next((s for s in _IMAGE_SCHEMES if prefix.startswith(s)), None)
    if scheme is None:
        return f"{prefix!r} must start with one of {', '.join(_IMAGE_SCHEMES)}"
    host, slash, _ = prefix[len(scheme) :].partition("/")
    if not host or not slash or "@" in host:
        return f"{prefix!r} must name a host and end it with '/', e.g. {scheme}images.example.com/"
    return ""


def _check_size(v: Violations, field: str, text: object, low: int, high: int, example: str) -> int | None:
    if not isinstance(text, str) or not text:
        v.append(errors.FieldViolation(field, f"is required: a size such as {example}"))
        return None
    try:
        size = quantity.parse_bytes(text)
    except ValueError as error:
        v.append(errors.FieldViolation(field, str(error)))
        return None
    if not low <= size <= high:
        v.append(
            errors.FieldViolation(field, f"'{text}' is out of range: use {_human(low)} to {_human(high)} ({example})")
        )
        return None
    return size


def _check_user(v: Violations, user: Raw, field: str) -> None:
    name = str(user.get("name") or "")
    if not _USER_NAME.match(name):
        v.append(
            errors.FieldViolation(
                f"{field}.name", f"'{name}' is not a user name: 1-32 lowercase letters, digits, '_' or '-'"
            )
        )
    password_hash = str(user.get("passwordHash") or "")
    if password_hash and not passwords.looks_like_crypt_hash(password_hash):
        v.append(
            errors.FieldViolation(
                f"{field}.password_hash", "is not a crypt(3) hash such as $6$...; send `password` to have it hashed"
            )
        )
    shell = str(user.get("shell") or "")
    if shell and not shell.startswith("/"):
        v.append(errors.FieldViolation(f"{field}.shell", f"'{shell}' must be an absolute path such as /bin/bash"))


def check_password(password: str, field: str) -> Violations:
    problem = passwords.check_password_strength(password)
    return [errors.FieldViolation(field, problem)] if problem else []


def _check_disks(v: Violations, disks: list[Raw], field: str) -> None:
    if not disks:
        v.append(errors.FieldViolation(field, "at least one disk is required: the VM boots from the first"))
    if len(disks) > MAX_DISKS:
        v.append(errors.FieldViolation(field, f"at most {MAX_DISKS} disks"))
    for at, disk in _named(v, disks, field, "disk"):
        _check_size(v, f"{at}.size", disk.get("size"), 1 << 20, DISK_MAX, "e.g. 20Gi")
        if not disk.get("storageClassName"):
            v.append(errors.FieldViolation(f"{at}.storage_class_name", "is required (e.g. local-path)"))
        image = str(disk.get("image") or "")
        if image and not image.startswith(_IMAGE_SCHEMES):
            v.append(
                errors.FieldViolation(
                    f"{at}.image",
                    f"'{image}' is not an image source: use an http(s):// URL or docker://<registry image>",
                )
            )


def _check_networks(v: Violations, networks: list[Raw], field: str) -> None:
    if len(networks) > MAX_NETWORKS:
        v.append(errors.FieldViolation(field, f"at most {MAX_NETWORKS} networks"))
    for at, network in _named(v, networks, field, "network"):
        if network.get("name") == "default":
            v.append(errors.FieldViolation(f"{at}.name", "'default' is the pod network's name; choose another"))
        if network.get("type") not in _NETWORK_TYPES:
            v.append(_one_of(f"{at}.type", network.get("type"), _NETWORK_TYPES))
        vlan = network.get("vlanId") or 0
        if not 0 <= vlan <= 4094:
            v.append(errors.FieldViolation(f"{at}.vlan_id", f"must be 1 to 4094 (0 for untagged); got {vlan}"))
        ip_config = network.get("ipConfig")
        if ip_config:
            _check_ip_config(v, ip_config, f"{at}.ip_config")


def _check_ip_config(v: Violations, config: Raw, field: str) -> None:
    mode = config.get("mode")
    if mode not in _IP_MODES:
        v.append(_one_of(f"{field}.mode", mode, _IP_MODES))
    address = str(config.get("address") or "")
    if mode == "static" and not address:
        v.append(errors.FieldViolation(f"{field}.address", "is required for mode static, e.g. 192.168.1.10/24"))
    if address:
        try:
            ipaddress.ip_interface(address)
            if "/" not in address:
                raise ValueError(address)
        except ValueError:
            v.append(
                errors.FieldViolation(f"{field}.address", f"'{address}' is not an address/prefix like 10.0.0.5/24")
            )
    for name, values in (("gateway", [config.get("gateway")]), ("dns_servers", config.get("dnsServers") or [])):
        for value in values:
            if value:
                try:
                    ipaddress.ip_address(value)
                except ValueError:
                    v.append(errors.FieldViolation(f"{field}.{name}", f"'{value}' is not an IP address"))


def _check_high_availability(v: Violations, ha: Raw, field: str) -> None:
    policy = ha.get("restartPolicy")
    if policy and policy not in _RESTART_POLICIES:
        v.append(_one_of(f"{field}.restart_policy", policy, _RESTART_POLICIES))
    for key, value in (ha.get("nodeSelector") or {}).items():
        problem = selectors.check_label_key(key) or selectors.check_label_value(value)
        if problem:
            v.append(errors.FieldViolation(f"{field}.node_selector[{key}]", problem))
    for index, toleration in enumerate(ha.get("tolerations") or []):
        at = f"{field}.tolerations[{index}]"
        operator = toleration.get("operator") or "Equal"
        if operator not in _TOLERATION_OPERATORS:
            v.append(_one_of(f"{at}.operator", operator, _TOLERATION_OPERATORS))
        effect = toleration.get("effect")
        if effect and effect not in _TAINT_EFFECTS:
            v.append(_one_of(f"{at}.effect", effect, _TAINT_EFFECTS))
        if operator == "Exists" and toleration.get("value"):
            v.append(errors.FieldViolation(f"{at}.value", "must be empty with operator Exists"))
        if not toleration.get("key") and operator != "Exists":
            v.append(errors.FieldViolation(f"{at}.key", "is required unless operator is Exists"))


def _named(v: Violations, items: list[Raw], field: str, what: str) -> Iterator[tuple[str, Raw]]:
    """Each item with its field path, after checking that its name is a DNS label unique in the list."""
    seen: set[str] = set()
    for index, item in enumerate(items):
        at = f"{field}[{index}]"
        name = str(item.get("name") or "")
        v += _dns_label(name, f"{at}.name", what)
        if name in seen:
            v.append(errors.FieldViolation(f"{at}.name", f"'{name}' is used by another {what}"))
        seen.add(name)
        yield at, item


def _dns_label(value: str, field: str, what: str) -> Violations:
    if not value or len(value) > names.DNS_LABEL_MAX or not names.is_dns_label(value):
        return [
            errors.FieldViolation(
                field, f"'{value}' is not a {what} name: lowercase letters, digits and '-', at most 63 characters"
            )
        ]
    return []


def _one_of(field: str, value: object, allowed: tuple[str, ...]) -> errors.FieldViolation:
    return errors.FieldViolation(field, f"'{value or ''}' is not allowed; use one of {', '.join(allowed)}")


def _human(size: int) -> str:
    for unit, shift in (("Ti", 40), ("Gi", 30), ("Mi", 20)):
        if size >= 1 << shift and size % (1 << shift) == 0:
            return f"{size >> shift}{unit}"
    return str(size)
