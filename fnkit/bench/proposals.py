"""Prototypes of the changes the benchmark proposes for shared/, measured side by side.

Nothing here changes shared/ on disk: `apply()` patches the runtime inside one bench process
(the gunicorn app sets it up when FNKIT_BENCH_PROPOSALS=1), so the table can show "ours" and
"ours with the proposals" from the same run. Each patch is the smallest form of a change the
report describes for shared/:

An EVALSHA rate limiter: the same sliding-window Lua script as upstash-ratelimit, sent as
   EVALSHA (EVAL once on NOSCRIPT) instead of the whole script on every call, with no
   upstash-redis or upstash-ratelimit import.

(The earlier prototypes are now part of shared/ itself: orjson for the envelope, BEGIN in
the write pipeline, and the keep-alive `http.client` transport under upstash-redis.)
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

from shared.redis_client import KeepAliveTransport

# upstash-ratelimit 1.x's sliding window (SlidingWindow.SCRIPT), its comments left out.
SLIDING_WINDOW = """
local key          = KEYS[1]
local prev_key     = KEYS[2]
local tokens       = tonumber(ARGV[1])
local now          = ARGV[2]
local window       = ARGV[3]
local increment_by = tonumber(ARGV[4])
local current = redis.call("GET", key)
if current == false then current = 0 end
local previous = redis.call("GET", prev_key)
if previous == false then previous = 0 end
local percentage_in_current = (now % window) / window
previous = math.floor((1 - percentage_in_current) * previous)
if previous + current >= tokens then return -1 end
local new_value = redis.call("INCRBY", key, increment_by)
if new_value == increment_by then redis.call("PEXPIRE", key, window * 2 + 1000) end
return tokens - (new_value + previous)
"""


@dataclass
class Outcome:
    allowed: bool
    limit: int
    remaining: int
    reset: float


class LeanSlidingWindow:
    """`limit(identifier)` like upstash_ratelimit.Ratelimit, one EVALSHA per call, over
    shared/'s keep-alive transport (the one upstash-redis runs on in shared/ too)."""

    def __init__(
        self, url: str, token: str, timeout: float, prefix: str, limit: int, window: int
    ) -> None:
        self._url = url
        self._headers = {"Authorization": f"Bearer {token}"}
        self._transport = KeepAliveTransport(timeout)
        self._prefix, self._limit, self._window = prefix, limit, window * 1000
        self._script = SLIDING_WINDOW
        self._sha = hashlib.sha1(SLIDING_WINDOW.encode(), usedforsecurity=False).hexdigest()

    def _post(self, command: list[Any]) -> Any:
        payload = self._transport.post(self._url, headers=self._headers, json=command).json()
        if "error" in payload:
            raise RuntimeError(payload["error"])
        return payload["result"]

    def limit(self, identifier: str) -> Outcome:
        now = int(time.time() * 1000)
        current = now // self._window
        key = f"{self._prefix}:{identifier}"
        keys_args = [
            2,
            f"{key}:{current}",
            f"{key}:{current - 1}",
            self._limit,
            now,
            self._window,
            1,
        ]
        try:
            remaining = self._post(["EVALSHA", self._sha, *keys_args])
        except RuntimeError as exc:
            if "NOSCRIPT" not in str(exc):
                raise
            remaining = self._post(["EVAL", self._script, *keys_args])
        return Outcome(
            allowed=remaining >= 0,
            limit=self._limit,
            remaining=max(0, remaining),
            reset=(current + 1) * self._window / 1000,
        )


def apply() -> list[str]:
    """Patch this process's runtime; returns what was applied."""
    applied = []
    from shared.ratelimit import RateLimiter, RatePolicy

    def _limiter(self: RateLimiter, policy: RatePolicy) -> Any:
        limiter: Any = self._limiters.get(policy)
        if limiter is None:
            with self._lock:
                limiter = LeanSlidingWindow(
                    self.settings.upstash_url,
                    self.settings.upstash_token,
                    self.settings.redis_timeout_s,
                    f"rl:{self.function}:{policy.name}",
                    policy.limit,
                    policy.window,
                )
                self._limiters[policy] = limiter
        return limiter

    RateLimiter._limiter = _limiter  # type: ignore[method-assign]
    applied.append("EVALSHA rate limiter")
    return applied
