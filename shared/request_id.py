"""Request ids: accept a caller's well-formed `X-Request-Id`, otherwise mint one."""

from __future__ import annotations

import os
import re

_VALID = re.compile(r"[A-Za-z0-9._-]{1,128}")


def accept_or_mint(incoming: str | None) -> str:
    """Keep an incoming id only when it is safe to echo and log; never trust anything else."""
    if incoming and _VALID.fullmatch(incoming):
        return incoming
    return os.urandom(16).hex()
