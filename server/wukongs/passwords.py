"""Guest passwords as SHA-512 crypt (`$6$`) hashes, which cloud-init writes to /etc/shadow, so the API never stores a
password in plain text (the CRD would store it as given).

Written from Ulrich Drepper's specification "Unix crypt using SHA-256 and SHA-512" (glibc's algorithm) with hashlib:
the stdlib `crypt` module is deprecated and leaves Python in 3.13. The unit tests compare it with the system's crypt(3).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import unicodedata

ROUNDS_DEFAULT = 5000
ROUNDS_MIN = 1000
ROUNDS_MAX = 999_999_999
SALT_MAX = 16
PASSWORD_MIN = 8
PASSWORD_MAX = 128
_ALPHABET = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SALT = re.compile(r"[./0-9A-Za-z]+")
_CRYPT_HASH = re.compile(
    r"\$6\$(rounds=[1-9][0-9]{3,8}\$)?[./0-9A-Za-z]{1,16}\$[./0-9A-Za-z]{86}"  # SHA-512 crypt
    r"|\$5\$(rounds=[1-9][0-9]{3,8}\$)?[./0-9A-Za-z]{1,16}\$[./0-9A-Za-z]{43}"  # SHA-256 crypt
    r"|\$y\$[./0-9A-Za-z]+\$[./0-9A-Za-z]+\$[./0-9A-Za-z]{43}"  # yescrypt (Debian's and Fedora's default)
    r"|\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./0-9A-Za-z]{53}"  # bcrypt, cost 4 to 31
    r"|\$1\$[./0-9A-Za-z]{1,8}\$[./0-9A-Za-z]{22}"  # MD5 crypt
)
# Step 22: which digest bytes go, as one 24-bit group (most significant first), into each 4 characters.
_GROUPS = (
    (0, 21, 42), (22, 43, 1), (44, 2, 23), (3, 24, 45), (25, 46, 4), (47, 5, 26), (6, 27, 48),
    (28, 49, 7), (50, 8, 29), (9, 30, 51), (31, 52, 10), (53, 11, 32), (12, 33, 54), (34, 55, 13),
    (56, 14, 35), (15, 36, 57), (37, 58, 16), (59, 17, 38), (18, 39, 60), (40, 61, 19), (62, 20, 41),
)  # fmt: skip


def hash_password(password: str, *, salt: str | None = None, rounds: int = ROUNDS_DEFAULT) -> str:
    """What `mkpasswd -m sha-512` prints. As in glibc, a salt is cut to 16 characters, rounds are clamped to
    1000..999999999, and the default 5000 is left out of the hash."""
    if salt is None:
        salt = "".join(secrets.choice(_ALPHABET) for _ in range(SALT_MAX))
    if not _SALT.fullmatch(salt):
        raise ValueError(f"a crypt salt is one or more of the characters {_ALPHABET}; got '{salt}'")
    salt = salt[:SALT_MAX]
    rounds = min(max(rounds, ROUNDS_MIN), ROUNDS_MAX)
    digest = _sha512_crypt(password.encode(), salt.encode(), rounds)
    text = "".join(_b64((digest[a] << 16) | (digest[b] << 8) | digest[c], 4) for a, b, c in _GROUPS)
    text += _b64(digest[63], 2)
    setting = "" if rounds == ROUNDS_DEFAULT else f"rounds={rounds}$"
    return f"$6${setting}{salt}${text}"


def looks_like_crypt_hash(value: str) -> bool:
    """Whether a client's own `password_hash` has the shape of a crypt(3) hash that Linux guests accept."""
    return _CRYPT_HASH.fullmatch(value) is not None


def check_password_strength(password: str) -> str | None:
    """What is wrong with a plain-text password, or None."""
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        return f"must be {PASSWORD_MIN} to {PASSWORD_MAX} characters long; got {len(password)}"
    if any(unicodedata.category(char) == "Cc" for char in password):
        return "must not contain control characters such as tabs or line breaks"
    return None


def _sha512_crypt(password: bytes, salt: bytes, rounds: int) -> bytes:
    """Steps 1 to 21 of the specification: the final digest."""
    b = hashlib.sha512(password + salt + password).digest()
    a = hashlib.sha512(password + salt + _repeat(b, len(password)))
    length = len(password)
    while length:
        a.update(b if length & 1 else password)
        length >>= 1
    a_digest = a.digest()
    p = _repeat(hashlib.sha512(password * len(password)).digest(), len(password))
    s = _repeat(hashlib.sha512(salt * (16 + a_digest[0])).digest(), len(salt))
    c = a_digest
    for i in range(rounds):
        step = hashlib.sha512(p if i & 1 else c)
        if i % 3:
            step.update(s)
        if i % 7:
            step.update(p)
        step.update(c if i & 1 else p)
        c = step.digest()
    return c


def _repeat(block: bytes, length: int) -> bytes:
    """`length` bytes of `block` over and over (the specification's sequences)."""
    return (block * (length // len(block) + 1))[:length]


def _b64(value: int, count: int) -> str:
    """`count` characters of crypt's base-64, least significant 6 bits first."""
    return "".join(_ALPHABET[(value >> (6 * i)) & 0x3F] for i in range(count))
