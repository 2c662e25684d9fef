"""Request ids: accept a caller's well-formed `X-Request-Id`, otherwise mint one."""

from __future__ import annotations

import random

# What an id may hold (a set, not a regex: nothing to compile at a cold start).
_VALID = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")


def accept_or_mint(incoming: str | None) -> str:
    """Keep an incoming id only when it is safe to echo and log; never trust anything else.

    A minted id is 128 random bits as 32 hex digits. It names a request in logs; it guards
    nothing, so `random` serves (reseeded in every forked worker) at no system call."""
    if incoming and len(incoming) <= 128 and _VALID.issuperset(incoming):
        return incoming
    return f"{random.getrandbits(128):032x}"
