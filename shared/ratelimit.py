"""Rate limits per route: upstash-ratelimit's sliding window, one Upstash round trip per check.

The window runs in `shared.sliding_window` (upstash-ratelimit's algorithm and keys, without
importing it), so a cold start does not pay for upstash-ratelimit, upstash-redis and httpx.

Headers follow the IETF RateLimit draft (`RateLimit-Policy` and `RateLimit`); a refused
request gets 429 with `Retry-After`. When Upstash is unreachable the route's policy decides:
fail open (reads: serve, log a warning) or fail closed (sensitive writes: 503).
"""

from __future__ import annotations

import math
import threading
import time
from typing import NamedTuple

from shared import tracecontext
from shared.errors import RateLimited, Unavailable
from shared.logs import log
from shared.settings import Settings
from shared.sliding_window import SlidingWindow
from shared.upstash_rest import get_upstash


class RatePolicy(NamedTuple):
    """`limit` requests per `window` seconds (sliding window) for one caller.

    Immutable records in shared/ are NamedTuples, not frozen dataclasses: defining one costs
    a cold start ~0.1 ms of CPU instead of ~0.4 ms (shared/settings.py says more)."""

    name: str = "default"
    limit: int = 60
    window: int = 60
    fail_open: bool = True

    @property
    def policy_header(self) -> str:
        return f'"{self.name}";q={self.limit};w={self.window}'


DEFAULT = RatePolicy()
READ = RatePolicy("read", 120, 60, fail_open=True)
WRITE = RatePolicy("write", 30, 60, fail_open=False)
SENSITIVE = RatePolicy("sensitive", 10, 60, fail_open=False)


class RateLimiter:
    """Checks a caller against a policy; one sliding window per (function, policy).

    Keys are `rl:<function>:<policy>:<caller>:<window index>`, as
    `Ratelimit(prefix=f"rl:{function}:{policy}")` of upstash-ratelimit names them.
    """

    def __init__(self, settings: Settings, function: str) -> None:
        self.settings = settings
        self.function = function
        self._limiters: dict[RatePolicy, SlidingWindow] = {}
        self._lock = threading.Lock()

    def _limiter(self, policy: RatePolicy) -> SlidingWindow:
        limiter = self._limiters.get(policy)
        if limiter is None:
            with self._lock:
                limiter = self._limiters.setdefault(
                    policy,
                    SlidingWindow(
                        get_upstash(self.settings),
                        f"rl:{self.function}:{policy.name}",
                        policy.limit,
                        policy.window,
                    ),
                )
        return limiter

    def check(self, policy: RatePolicy, identifier: str, request_id: str) -> dict[str, str]:
        """Return the RateLimit headers, or raise RateLimited / Unavailable."""
        try:
            outcome = self._limiter(policy).limit(identifier)
        except Exception as exc:  # any transport or protocol failure of Upstash
            self._count(policy, "fail_open" if policy.fail_open else "fail_closed")
            log(
                "WARNING" if policy.fail_open else "ERROR",
                "rate limiter unavailable",
                request_id=request_id,
                policy=policy.name,
                fail_open=policy.fail_open,
                error=type(exc).__name__,
            )
            if policy.fail_open:
                return {}
            raise Unavailable("The rate limiter is unavailable") from exc
        if tracecontext.active is not None:
            self._count(policy, "allowed" if outcome.allowed else "limited")
        reset_in = max(0, math.ceil(outcome.reset - time.time()))
        headers = {
            "RateLimit-Policy": policy.policy_header,
            "RateLimit": f'"{policy.name}";r={max(0, outcome.remaining)};t={reset_in}',
        }
        if not outcome.allowed:
            raise RateLimited(headers={**headers, "Retry-After": str(max(1, reset_in))})
        return headers

    def _count(self, policy: RatePolicy, decision: str) -> None:
        """`fnkit.rate_limit.decisions` (telemetry on)."""
        telemetry = tracecontext.active
        if telemetry is not None:
            telemetry.rate_limit(self.function, policy.name, decision)
