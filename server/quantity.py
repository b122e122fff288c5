"""Kubernetes resource quantities as users write them in a Wukong spec (`512Mi`, `20Gi`, `1.5Ti`).

The CRD's pattern is `^[0-9]+(\\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|K|M|G|T|P|E)?$`: its decimal kilo is `K`, Kubernetes' is
`k`, so both mean 1000. Arithmetic is exact (fractions), because `1.5Gi` must be 1610612736 bytes, not a float.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

_PATTERN = re.compile(r"([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|k|K|M|G|T|P|E)?")
_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}  # powers of 1024
_DECIMAL = {"k": 1, "K": 1, "M": 2, "G": 3, "T": 4, "P": 5, "E": 6}  # powers of 1000
_MAX = 2**63 - 1  # Kubernetes keeps quantities as int64 when it converts them to bytes


def parse_bytes(text: str) -> int:
    """Whole bytes, rounded up as Kubernetes' `Quantity.Value()` does (`0.5` is 1 byte)."""
    return math.ceil(_parse(text))


def parse_millis(text: str) -> int:
    """Thousandths (CPU millicores): `500m` is 500, `2` is 2000, `1.5` is 1500 (rounded up)."""
    if text.endswith("m"):
        return math.ceil(Fraction(text[:-1]))
    return math.ceil(_parse(text) * 1000)


def parse_cores(text: str) -> float:
    """CPU cores as a number, from the units metrics-server writes (`12345n` nanocores, `250u`, `500m`, `2`)."""
    for suffix, scale in (("n", 10**9), ("u", 10**6), ("m", 10**3)):
        if text.endswith(suffix):
            return float(Fraction(text[: -len(suffix)]) / scale)
    return float(_parse(text))


def to_mib(n_bytes: int) -> int:
    """Whole MiB, rounded down: the unit of the API's `memory_mb`."""
    return n_bytes // 2**20


def _parse(text: str) -> Fraction:
    """The exact value in bytes."""
    match = _PATTERN.fullmatch(text)
    if not match:
        raise ValueError(f"'{text}' is not a quantity: use a number with an optional unit such as 512Mi, 20Gi or 1.5Ti")
    number, suffix = Fraction(match[1]), match[2] or ""
    multiplier: int = 1024 ** _BINARY[suffix] if suffix in _BINARY else 1000 ** _DECIMAL.get(suffix, 0)
    value = number * multiplier
    if value > _MAX:
        raise ValueError(f"'{text}' is too large: Kubernetes quantities stop just short of 8Ei")
    return value
