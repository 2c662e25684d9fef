"""upstash-ratelimit's sliding window, run by the runtime itself.

The algorithm, the Lua script and the key layout are upstash-ratelimit 1.x's `SlidingWindow`
exactly: a counter per fixed window under `<prefix>:<identifier>:<window index>`, and the
previous window's count weighted by how much of it still overlaps the sliding window. So a
deployment can mix this limiter and upstash-ratelimit on the same keys, and a function's own
code may call upstash-ratelimit on a runtime policy's keys. What differs is the cost: one
EVALSHA over the keep-alive transport instead of upstash-ratelimit's EVAL of the whole script
through upstash-redis, and no import of either (tests/test_ratelimit_parity.py drives both
through the same requests and clock against real Redis and compares every answer).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import NamedTuple

from shared.upstash_rest import Script, UpstashRest

# upstash-ratelimit 1.x's script, statement for statement (comments left out, two names
# shortened). The first line is Upstash's script flag; the local bridge strips it for
# Redis 7.0 and keeps the digest.
SLIDING_WINDOW = Script(
    """#!lua flags=allow-key-locking
local current_key  = KEYS[1]
local previous_key = KEYS[2]
local tokens       = tonumber(ARGV[1])
local now          = ARGV[2]
local window       = ARGV[3]
local increment_by = ARGV[4]

local current = redis.call("GET", current_key)
if current == false then
    current = 0
end

local previous = redis.call("GET", previous_key)
if previous == false then
    previous = 0
end
local percentage_in_current = ( now % window ) / window
previous = math.floor(( 1 - percentage_in_current ) * previous)
if previous + current >= tokens then
    return -1
end

local new_value = redis.call("INCRBY", current_key, increment_by)
if new_value == tonumber(increment_by) then
    redis.call("PEXPIRE", current_key, window * 2 + 1000)
end
return tokens - ( new_value + previous )
"""
)


class Outcome(NamedTuple):
    """upstash-ratelimit's `Response`: the decision, the limit, what is left, the reset time."""

    allowed: bool
    limit: int
    remaining: int
    reset: float  # epoch seconds when the current fixed window ends


class SlidingWindow:
    """`limit(identifier)` as `Ratelimit(redis, SlidingWindow(limit, window), prefix)` does."""

    def __init__(
        self,
        upstash: UpstashRest,
        prefix: str,
        limit: int,
        window_s: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if limit <= 0 or window_s <= 0:
            raise ValueError("a sliding window needs a positive limit and window")
        self.upstash = upstash
        self.prefix = prefix
        self.limit_ = limit
        self.window_ms = window_s * 1000
        self.clock = clock

    def limit(self, identifier: str, rate: int = 1) -> Outcome:
        now = int(self.clock() * 1000)
        current = now // self.window_ms
        key = f"{self.prefix}:{identifier}"
        remaining = self.upstash.run(
            SLIDING_WINDOW,
            [f"{key}:{current}", f"{key}:{current - 1}"],
            [self.limit_, now, self.window_ms, rate],
        )
        return Outcome(
            allowed=remaining >= 0,
            limit=self.limit_,
            remaining=max(0, remaining),
            reset=(current + 1) * self.window_ms / 1000,
        )
