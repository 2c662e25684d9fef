"""State an Upstash database keeps per database, which a shared Redis would not.

- Scripts: Redis's script cache is server-wide, so one user's `SCRIPT FLUSH` (upstash-redis's
  own tests run it) would drop every other database's scripts, and `SCRIPT EXISTS` would
  answer for scripts another database loaded. Each bridge keeps its own registry: the
  client's digest -> the text Redis can run (a `#!lua` flag line blanked, as Redis 7.0
  rejects flags it does not know). The bridge runs a registered script as EVAL of that text,
  answers SCRIPT EXISTS/FLUSH itself and never flushes Redis's cache.
- Read-your-writes: Upstash answers every request with an `upstash-sync-token` header, and a
  request that sends one back is served only once the database has caught up with it. One
  Redis has no replicas to wait for, but the bridge still keeps the contract: tokens grow
  with every answered request, and a request carrying a token waits until this bridge has
  answered up to it (tokens of another bridge, or an earlier run, are already satisfied).

Dev tooling only: `shared/` never imports this module.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from typing import Final

SYNC_TOKEN_HEADER: Final = "upstash-sync-token"


def digest(text: bytes) -> bytes:
    """SHA1 hex of a script, as bytes (what EVALSHA and SCRIPT LOAD speak)."""
    return hashlib.sha1(text, usedforsecurity=False).hexdigest().encode()


def runnable(text: bytes) -> bytes:
    """Blank a `#!lua ...` first line; the newline stays so error line numbers match."""
    if not text.startswith(b"#!"):
        return text
    newline = text.find(b"\n")
    return b"" if newline < 0 else text[newline:]


class ScriptRegistry:
    """One database's script cache, in the client's digests."""

    def __init__(self) -> None:
        self._scripts: dict[bytes, bytes] = {}

    def add(self, text: bytes) -> tuple[bytes, bytes]:
        """Register a script; its digest (of the client's text) and the text Redis runs."""
        sha = digest(text)
        code = runnable(text)
        self._scripts[sha] = code
        return sha, code

    def get(self, sha: bytes) -> bytes | None:
        return self._scripts.get(sha.lower())

    def exists(self, shas: list[bytes]) -> list[int]:
        return [int(sha.lower() in self._scripts) for sha in shas]

    def flush(self) -> None:
        self._scripts.clear()


class SyncClock:
    """Issues `upstash-sync-token`s, growing with every answered request.

    Honouring a token means serving the request only once the database has applied every
    write the token covers. Upstash waits for a replica; here every write went to the one
    Redis before its token was issued, so a token of this bridge is satisfied on arrival, and
    a foreign one (another bridge, an earlier run, an empty first request) has nothing to wait
    for. `covers` says so, and the bridge checks it before serving."""

    def __init__(self) -> None:
        self._epoch = secrets.token_hex(4)
        self._answered = 0
        self._lock = threading.Lock()

    def issue(self) -> str:
        """After a request is answered: a token no earlier than everything answered so far."""
        with self._lock:
            self._answered += 1
            return f"{self._epoch}-{self._answered}"

    def covers(self, token: str) -> bool:
        """Whether every write the token was issued after has been applied."""
        epoch, _, number = token.strip().partition("-")
        if epoch != self._epoch or not number.isdigit():
            return True
        return int(number) <= self._answered
