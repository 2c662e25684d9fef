"""Upstash's REST protocol on the hot path, without upstash-redis.

The rate limit and the cache GET run on nearly every request. Through upstash-redis they
cost its import (with httpx: ~80-110 ms of a cold start) and its command layer; here they are
one JSON array POSTed over `WireTransport` (shared/upstash_wire.py: the bytes `http.client`
would send and read, without its per-call objects, ~70 µs of CPU less per call). Scripts go
as EVALSHA and fall back to EVAL once when the server answers NOSCRIPT, so a warm Upstash
never receives the script's text.

upstash-redis stays the client for code that uses Redis directly (`shared.redis_client`); this
module offers only what the runtime's own steps need. Replies are read without
`Upstash-Encoding: base64`, so values must be text (the runtime stores JSON).
"""

from __future__ import annotations

import hashlib
import threading
from typing import Any

from shared.settings import Settings
from shared.upstash_wire import WireTransport


class UpstashError(RuntimeError):
    """Upstash answered with an error (`{"error": ...}`), or not with a result at all."""


class Script:
    """A Lua script and its SHA1 digest, the name EVALSHA knows it by."""

    __slots__ = ("sha", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.sha = hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()


class UpstashRest:
    """Commands as JSON arrays to one Upstash database's REST endpoint."""

    def __init__(self, url: str, token: str, timeout_s: float) -> None:
        self.url = url
        self._headers = {"Authorization": f"Bearer {token}"}
        self._transport = WireTransport(timeout_s)

    def command(self, *args: str | int | float) -> Any:
        reply = self._transport.post(self.url, headers=self._headers, json=list(args))
        try:
            payload = reply.json()
        except ValueError:
            raise UpstashError(f"Upstash answered HTTP {reply.status_code} without JSON") from None
        if not isinstance(payload, dict) or "result" not in payload:
            error = payload.get("error") if isinstance(payload, dict) else None
            raise UpstashError(str(error or f"Upstash answered HTTP {reply.status_code}"))
        return payload["result"]

    def run(self, script: Script, keys: list[str], args: list[str | int | float]) -> Any:
        """EVALSHA, and EVAL once if this Upstash database does not know the script yet."""
        tail = [len(keys), *keys, *args]
        try:
            return self.command("EVALSHA", script.sha, *tail)
        except UpstashError as exc:
            if "NOSCRIPT" not in str(exc):
                raise
        return self.command("EVAL", script.text, *tail)

    def close(self) -> None:
        self._transport.close()


_lock = threading.Lock()
_clients: dict[tuple[str, str, float], UpstashRest] = {}


def get_upstash(settings: Settings) -> UpstashRest:
    """The process's client for these settings (one keep-alive connection per thread)."""
    key = (settings.upstash_url, settings.upstash_token, settings.redis_timeout_s)
    client = _clients.get(key)
    if client is None:
        with _lock:
            client = _clients.setdefault(key, UpstashRest(*key))
    return client
