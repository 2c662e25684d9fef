"""Prototypes of the changes the benchmark proposes for shared/, measured side by side.

Nothing here changes shared/ on disk: `apply()` patches the runtime inside one bench process
(the gunicorn app sets it up when FNKIT_BENCH_PROPOSALS=1), so the table can show "ours" and
"ours with the proposals" from the same run. Each patch is the smallest form of a change the
report describes for shared/:

A lean Upstash client: the same sliding-window Lua script as upstash-ratelimit, sent as
   EVALSHA (EVAL once on NOSCRIPT), and the cache's INCR/MGET/SET, over one keep-alive
   `http.client` connection per thread. No httpx, no upstash-redis or upstash-ratelimit
   import, no script text per call, no pool lock shared by the worker's threads.

(The earlier prototypes, orjson for the envelope and BEGIN in the write pipeline, are now
part of shared/ itself.)
"""

from __future__ import annotations

import hashlib
import http.client
import json
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

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


class LeanRest:
    """Upstash's REST protocol over one keep-alive `http.client` connection per thread."""

    def __init__(self, url: str, token: str, timeout: float) -> None:
        parts = urlsplit(url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or (443 if self._https else 80)
        self._headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self._timeout = timeout
        self._local = threading.local()

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            conn = cls(self._host, self._port, timeout=self._timeout)
            self._local.conn = conn
        return conn

    def _post(self, command: list[Any]) -> Any:
        body = json.dumps(command, separators=(",", ":"))
        for attempt in (1, 2):  # a keep-alive connection the server closed: reconnect once
            conn = self._connection()
            try:
                conn.request("POST", "/", body, self._headers)
                response = conn.getresponse()
                payload = json.loads(response.read())
                break
            except (http.client.HTTPException, OSError):
                conn.close()
                self._local.conn = None
                if attempt == 2:
                    raise
        if "error" in payload:
            raise RuntimeError(payload["error"])
        return payload["result"]

    # What shared/cache.py uses of upstash_redis.Redis:
    def incr(self, key: str) -> int:
        return int(self._post(["INCR", key]))

    def mget(self, *keys: str) -> list[str | None]:
        return list(self._post(["MGET", *keys]))

    def set(self, key: str, value: str, ex: int | None = None) -> Any:
        return self._post(["SET", key, value, *(["EX", ex] if ex else [])])


class LeanSlidingWindow(LeanRest):
    """`limit(identifier)` like upstash_ratelimit.Ratelimit, one EVALSHA per call."""

    def __init__(
        self, url: str, token: str, timeout: float, prefix: str, limit: int, window: int
    ) -> None:
        super().__init__(url, token, timeout)
        self._prefix, self._limit, self._window = prefix, limit, window * 1000
        self._script = SLIDING_WINDOW
        self._sha = hashlib.sha1(SLIDING_WINDOW.encode(), usedforsecurity=False).hexdigest()

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

    import shared.cache

    clients: dict[tuple[str, str], LeanRest] = {}

    def get_redis(settings: Any) -> Any:
        key = (settings.upstash_url, settings.upstash_token)
        if key not in clients:
            clients[key] = LeanRest(*key, settings.redis_timeout_s)
        return clients[key]

    shared.cache.get_redis = get_redis  # type: ignore[attr-defined,assignment]
    applied.append("lean REST client for the cache")

    return applied
