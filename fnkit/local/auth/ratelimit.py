"""Supabase Auth's per-IP rate limits, in memory (`internal/api/apilimiter`).

GoTrue limits with token buckets (tollbooth) keyed by the client address its proxy puts in a
header (`GOTRUE_RATE_LIMIT_HEADER`; a request without it is not limited, as on the Supabase
CLI, whose GoTrue has no such header): each limit has a rate (requests per second refilled)
and a burst (the bucket's size). The defaults are
GoTrue's: `/token` 150 per 5 minutes with a burst of 30 (so 30 quick failed sign-ins, then
429 `over_request_rate_limit`), sign-ups, recovery, OTP and `PUT /user` 30 per 5 minutes,
`/verify` 30 per 5 minutes, MFA challenge and verify 15 a minute with a burst of 30.

Tests and `make dev` override a limit through `LocalConfig.extra["auth_rate_limit_<name>"]`
= `"<count>/<seconds>"` (a burst of count, refilled at count per seconds). Counters live in
the app, so a restart resets them, as a GoTrue restart does.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping

from fnkit.local.auth.errors import AuthError

__all__ = ["DEFAULT_LIMITS", "RateLimiter"]

# name → (requests refilled per second, burst)
DEFAULT_LIMITS: dict[str, tuple[float, float]] = {
    "token": (150 / 300, 30),
    "signup": (30 / 300, 30),
    "recover": (30 / 300, 30),
    "otp": (30 / 300, 30),
    "user": (30 / 300, 30),
    "verify": (30 / 300, 30),
    "factor": (15 / 60, 30),
}


def _parse(value: str) -> tuple[float, float]:
    count, _, seconds = value.partition("/")
    burst = float(count)
    return burst / float(seconds or 1), burst


class RateLimiter:
    """Token buckets per (limit, client address)."""

    def __init__(self, overrides: Mapping[str, str] | None = None) -> None:
        self.limits = dict(DEFAULT_LIMITS)
        for key, value in (overrides or {}).items():
            if key.startswith("auth_rate_limit_"):
                self.limits[key.removeprefix("auth_rate_limit_")] = _parse(value)
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}
        self._lock = threading.Lock()

    def check(self, name: str, address: str) -> None:
        """Take one token, or 429 `over_request_rate_limit` as GoTrue answers."""
        rate, burst = self.limits[name]
        moment = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get((name, address), (burst, moment))
            tokens = min(burst, tokens + (moment - last) * rate)
            if tokens < 1:
                self._buckets[(name, address)] = (tokens, moment)
                raise AuthError(429, "over_request_rate_limit", "Request rate limit reached")
            self._buckets[(name, address)] = (tokens - 1, moment)
