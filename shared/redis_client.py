"""One Upstash REST client per process, with a bounded timeout.

upstash-redis builds its httpx client with no timeout and retries after 3 s by default; a
function must not hang on a slow Redis, so the client is built with no retries and its
transport gets the configured timeout.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from shared.settings import Settings

if TYPE_CHECKING:
    from upstash_redis import Redis

_lock = threading.Lock()
_clients: dict[tuple[str, str, float], Redis] = {}


def get_redis(settings: Settings) -> Redis:
    key = (settings.upstash_url, settings.upstash_token, settings.redis_timeout_s)
    client = _clients.get(key)
    if client is None:
        with _lock:
            client = _clients.get(key)
            if client is None:
                client = _build(settings)
                _clients[key] = client
    return client


def _build(settings: Settings) -> Redis:
    import httpx
    from upstash_redis import Redis

    client = Redis(
        settings.upstash_url,
        settings.upstash_token,
        rest_retries=0,
        rest_retry_interval=0,
        allow_telemetry=False,
        read_your_writes=False,
    )
    timeout = httpx.Timeout(settings.redis_timeout_s, connect=settings.redis_timeout_s)
    client._http._client = httpx.Client(timeout=timeout)
    return client
