"""Checks of Kubernetes names in requests, so a malformed name is a clear INVALID_ARGUMENT, not a kube error."""

from __future__ import annotations

import re

from server import errors

DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
_DNS_LABEL = re.compile(DNS_LABEL_PATTERN)
DNS_LABEL_MAX = 63
# A Wukong's VirtualMachine is `<name>-vm`, and KubeVirt's launcher pod `virt-launcher-<name>-vm-xxxxx` must stay a
# valid 63-character label too; KubeVirt truncates, but distinct Wukongs must not collide, so keep the name short.
WUKONG_NAME_MAX = 40
_REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")


def request_id_violation(request_id: str) -> errors.FieldViolation | None:
    """What is wrong with an idempotency key, if anything (empty means none was sent)."""
    if request_id and not _REQUEST_ID.match(request_id):
        return errors.FieldViolation("request_id", "use 1-64 letters, digits, '.', '_', ':' or '-' (e.g. a UUID)")
    return None


def check_request_id(request_id: str) -> None:
    violation = request_id_violation(request_id)
    if violation is not None:
        raise errors.InvalidArgument([violation])


def is_dns_label(value: str) -> bool:
    return bool(_DNS_LABEL.match(value))


def is_dns_1035_label(value: str, *, max_length: int = DNS_LABEL_MAX) -> bool:
    """A Service or port name: a DNS label that starts with a letter."""
    return 0 < len(value) <= max_length and value[0].isalpha() and is_dns_label(value)


def check_namespace(field: str, value: str) -> None:
    if len(value) > DNS_LABEL_MAX or not _DNS_LABEL.match(value):
        raise errors.InvalidArgument.field(
            field,
            f"'{value}' is not a namespace name: use at most {DNS_LABEL_MAX} lowercase letters, digits and '-', "
            "starting and ending with a letter or digit",
        )


def check_wukong_name(field: str, value: str) -> None:
    if not value:
        raise errors.InvalidArgument.field(field, "is required")
    if len(value) > WUKONG_NAME_MAX or not _DNS_LABEL.match(value):
        raise errors.InvalidArgument.field(
            field,
            f"'{value}' is not a Wukong name: use at most {WUKONG_NAME_MAX} lowercase letters, digits and '-', "
            "starting and ending with a letter or digit",
        )
