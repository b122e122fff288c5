"""Login lockout, keyed by username and client address: 5 failed logins for a username from one address within 5
minutes refuse that username from that address until the oldest of them is 5 minutes old, whether or not the user
exists (the answer must not tell).

Why both: keyed by username alone, anyone could lock a known user (the administrator included) out by failing five
times from their own machine; keyed this way they lock only themselves out of that name. Guessing one name from many
addresses is bounded by Envoy's per-address and overall login limits, which act before any password hashing. The
failures are counted over every replica (`tally.py`), so N replicas do not allow N times the attempts.
"""

from __future__ import annotations

from server.tally import Tally, key_of

MAX_FAILURES = 5
WINDOW_SECONDS = 300.0


class Lockout:
    def __init__(self, tally: Tally) -> None:
        self._tally = tally

    def retry_after(self, username: str, address: str) -> float:
        """Seconds until `username` may try again from `address`; 0 if it may now."""
        return self._tally.retry_after(_key(username, address), within=WINDOW_SECONDS, limit=MAX_FAILURES)

    def failed(self, username: str, address: str) -> None:
        self._tally.add(_key(username, address))

    def succeeded(self, username: str, address: str) -> None:
        self._tally.reset(_key(username, address))


def _key(username: str, address: str) -> str:
    return key_of("login-failures", username, address)
