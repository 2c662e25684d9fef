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
- SCAN pages: Upstash answers COUNT elements a page, and a Redis page can bring more (every
  element of the slots it visited). The bridge answers COUNT and holds the rest for the next
  call, under a cursor of its own (`ScanPages`).

Dev tooling only: `shared/` never imports this module.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Final, NamedTuple

from fnkit.local.upstash import compat

SYNC_TOKEN_HEADER: Final = "upstash-sync-token"
CURSOR_SPAN: Final = 1 << 64
"""Redis's cursors are below 2**64; the bridge's own are `token * 2**64 + restart`."""


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


def redis_cursor(cursor: bytes) -> bytes:
    """The Redis cursor a SCAN cursor reads from: itself, or the page a bridge cursor's held
    elements came from (reading that page again repeats elements, which SCAN allows)."""
    if not cursor.isdigit() or int(cursor) < CURSOR_SPAN:
        return cursor
    return str(int(cursor) % CURSOR_SPAN).encode()


class _Held(NamedTuple):
    shape: tuple[bytes, ...]
    """The command without its cursor: a cursor continues the scan it was issued for."""
    elements: list[object]
    restart: bytes
    """The Redis cursor the elements were read from."""
    cursor: bytes
    """The Redis cursor after them."""


class ScanPages:
    """SCAN pages of COUNT elements, as Upstash answers them.

    Redis visits COUNT slots and answers every element they hold: two keys in one slot make a
    page of two for COUNT 1, and a small hash comes whole. The bridge answers COUNT elements
    (reading on while a page has fewer, as with MATCH most do) and holds what is left for the
    call that brings back the cursor it issued for them: `token * 2**64 + restart`. A cursor
    whose elements are no longer held (the `LIMIT` oldest are dropped, a restarted bridge has
    none) reads its `restart` page again: repeated elements, never a missed one."""

    LIMIT: Final = 1024

    def __init__(self) -> None:
        self._held: OrderedDict[int, _Held] = OrderedDict()
        self._next_token = secrets.randbits(32) + 1  # another bridge's tokens do not match
        self._lock = threading.Lock()

    def page(self, args: list[bytes], index: int, run: Callable[[list[bytes]], object]) -> object:
        """Answer `args` (a SCAN-family command, its cursor at `index`), sending each Redis
        SCAN through `run`; an error reply is answered as it is."""
        wanted = compat.scan_count(args, index) * compat.scan_width(args)
        shape = (*args[:index], *args[index + 1 :])
        found, restart, cursor = self._resume(shape, args[index])
        at_end = bool(found) and cursor == b"0"
        for _ in range(compat.SCAN_PAGE_LIMIT):
            if at_end or len(found) >= wanted:
                break
            reply = run([*args[:index], cursor, *args[index + 1 :]])
            if not isinstance(reply, list) or len(reply) != 2:
                return reply
            restart, (cursor, elements) = cursor, reply
            found.extend(elements)
            at_end = cursor == b"0"
        if len(found) > wanted:  # the rest came from the last page read
            cursor = self._hold(_Held(shape, found[wanted:], restart, cursor))
            del found[wanted:]
        return [cursor, found]

    def _resume(self, shape: tuple[bytes, ...], cursor: bytes) -> tuple[list[object], bytes, bytes]:
        """Held elements, the cursor they were read from, and the cursor after them."""
        start = redis_cursor(cursor)
        if start == cursor:
            return [], start, start
        token = int(cursor) // CURSOR_SPAN
        with self._lock:
            held = self._held.get(token)
            if held is None or held.shape != shape:  # not this scan's: leave it to its own
                return [], start, start
            del self._held[token]
        return list(held.elements), held.restart, held.cursor

    def _hold(self, held: _Held) -> bytes:
        with self._lock:
            token = self._next_token
            self._next_token += 1
            self._held[token] = held
            while len(self._held) > self.LIMIT:
                self._held.popitem(last=False)
        return str(token * CURSOR_SPAN + int(held.restart)).encode()
