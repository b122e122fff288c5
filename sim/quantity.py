"""Kubernetes resource quantities: parse, and write in canonical form (as `resource.Quantity.String()` does), because
vmoperator writes `spec.memory` to the VM canonicalised (`1.5Gi` becomes `1536Mi`; shared/reference/wukong.md §2)."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_PATTERN = re.compile(r"^([+-]?[0-9.]+)([eE][+-]?[0-9]+|Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E)?$")
_BINARY: dict[str, int] = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL: dict[str, Decimal] = {
    "m": Decimal("0.001"),
    "k": Decimal(10**3),
    "M": Decimal(10**6),
    "G": Decimal(10**9),
    "T": Decimal(10**12),
    "P": Decimal(10**15),
    "E": Decimal(10**18),
}


def parse(text: str) -> tuple[Decimal, bool]:
    """(value in base units, whether the suffix was binary). Raises ValueError on a malformed quantity."""
    match = _PATTERN.match(text.strip())
    if not match:
        raise ValueError(f"quantities must match the regular expression: {text!r}")
    try:
        number = Decimal(match.group(1))
    except InvalidOperation as error:
        raise ValueError(f"bad number in quantity {text!r}") from error
    suffix = match.group(2) or ""
    if suffix in _BINARY:
        return number * _BINARY[suffix], True
    if suffix in _DECIMAL:
        return number * _DECIMAL[suffix], False
    if suffix:
        return number * Decimal(10) ** int(suffix[1:]), False
    return number, False


def canonical(text: str) -> str:
    """The canonical form: the largest suffix of the same family that keeps the number whole."""
    value, binary = parse(text)
    if binary:
        if value != value.to_integral_value():
            return f"{value.quantize(Decimal(1))}"
        integer = int(value)
        for suffix in ("Ei", "Pi", "Ti", "Gi", "Mi", "Ki"):
            if integer and integer % _BINARY[suffix] == 0:
                return f"{integer // _BINARY[suffix]}{suffix}"
        return str(integer)
    for suffix in ("E", "P", "T", "G", "M", "k"):
        scaled = value / _DECIMAL[suffix]
        if value and scaled == scaled.to_integral_value():
            return f"{int(scaled)}{suffix}"
    if value == value.to_integral_value():
        return str(int(value))
    milli = value * 1000
    return f"{int(milli.to_integral_value())}m"


def to_bytes(text: str) -> int:
    value, _ = parse(text)
    return int(value)
