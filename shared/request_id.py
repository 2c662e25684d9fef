"""Request ids: accept a caller's well-formed `X-Request-Id`, otherwise mint one."""

from __future__ import annotations

import random
import re

_VALID = re.compile(r"[A-Za-z0-9._-]{1,128}")


def accept_or_mint(incoming: str | None) -> str:
    """Keep an incoming id only when it is safe to echo and log; never trust anything else.

    A minted id is 128 random bits as 32 hex digits. It names a request in logs; it guards
    nothing, so `random` serves (reseeded in every forked worker) at no system call."""
    if incoming and _VALID.fullmatch(incoming):
        return incoming
    return f"{random.getrandbits(128):032x}"
