"""Users' passwords as argon2id hashes (PHC strings), verified off the event loop and at most two at a time.

argon2id costs ~50-100 ms of CPU and 64 MiB per verification by design; unbounded, a burst of logins would starve
every other request, so verifications queue behind a semaphore (and Envoy limits login attempts per client IP
before any of this). An unknown user is verified against a dummy hash of the same cost, so a wrong username and a
wrong password take the same time and give the same answer.
"""

from __future__ import annotations

import asyncio
import functools
import secrets

import argon2

CONCURRENT_VERIFICATIONS = 2
_HASHER = argon2.PasswordHasher()  # argon2id, RFC 9106's second recommended parameters (t=3, m=64 MiB, p=4)
_SLOTS = asyncio.Semaphore(CONCURRENT_VERIFICATIONS)


def hash_password(password: str) -> str:
    """A PHC string (`$argon2id$v=19$m=65536,t=3,p=4$…`) to store; blocking, ~50-100 ms."""
    return _HASHER.hash(password)


async def hash_async(password: str) -> str:
    """`hash_password` off the event loop, queued like verifications."""
    async with _SLOTS:
        return await asyncio.to_thread(hash_password, password)


@functools.cache
def _dummy_hash() -> str:
    return _HASHER.hash(secrets.token_urlsafe(16))


async def verify(stored_hash: str | None, password: str) -> bool:
    """Whether `password` matches `stored_hash`; with no hash (unknown user), the same work and False."""
    async with _SLOTS:
        return await asyncio.to_thread(_verify_blocking, stored_hash, password)


def _verify_blocking(stored_hash: str | None, password: str) -> bool:
    try:
        matched = _HASHER.verify(stored_hash or _dummy_hash(), password)
    except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
        return False
    return bool(matched) and stored_hash is not None
