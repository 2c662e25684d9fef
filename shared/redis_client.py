"""One Upstash REST client per process: upstash-redis over a lean keep-alive transport.

upstash-redis builds commands and reads replies; upstash-ratelimit runs its algorithms through
it. Both stay. What is swapped is the HTTP client under them: upstash-redis makes an httpx
client with no timeout and retries after 3 s by default, and httpx spends ~0.7 ms of CPU per
call (measured: `http.client` does the same exchange in ~0.2 ms), paid on every rate-limited
request. `KeepAliveTransport` offers the one method upstash-redis calls (`post(url, headers=,
json=)`), over one persistent `http.client` connection per thread, with the configured
timeout and no retries, reading replies with `LeanResponse` (shared/http_response.py).

No retries, on purpose: a rate-limit script that reached Upstash must not run twice. A
connection the server already closed (an idle keep-alive timeout) is found before sending, by
one `select` call, and replaced; any failure after sending is raised to the caller (the rate
limiter fails open or closed by policy).
"""

from __future__ import annotations

import http.client
import select
import threading
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

import orjson

from shared import tracecontext
from shared.http_response import LeanResponse, ResponseHeaders
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
    """The client upstash-redis's constructor would make, without the httpx client.

    `Redis()` builds an httpx client, whose SSL context loads certifi's bundle (50-110 ms of
    every cold start), only for `KeepAliveTransport` to replace it. So the two objects are set
    up here field by field as their constructors do (upstash-redis 1.x, pinned below 2), with
    no retries, no telemetry and no read-your-writes token. tests/test_redis_transport.py
    checks the result against what upstash-redis's own constructor makes.
    """
    from upstash_redis import Redis
    from upstash_redis.commands import JsonCommands, SearchCommands
    from upstash_redis.http import SyncHttpClient, make_headers

    client = Redis.__new__(Redis)
    client._url = settings.upstash_url
    client._read_your_writes = False
    client._sync_token = ""
    client._allow_telemetry = False
    client._headers = make_headers(settings.upstash_token, "base64", False)
    client._json = JsonCommands(client)
    client._search = SearchCommands(client)
    http = SyncHttpClient.__new__(SyncHttpClient)
    http._encoding = "base64"
    http._retries = 0
    http._retry_interval = 0
    http._sync_token_cb = client._update_sync_token
    http._client = KeepAliveTransport(settings.redis_timeout_s)  # type: ignore[assignment]
    client._http = http
    return client


class HttpReply:
    """What upstash-redis reads from a response: `headers.get(name)` and `json()`."""

    __slots__ = ("body", "headers", "status_code")

    def __init__(self, status_code: int, headers: ResponseHeaders, body: bytes) -> None:
        self.status_code = status_code
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        return orjson.loads(self.body)


class ThreadTransport:
    """What the Upstash transports share: `post(url, headers=, json=)`, the one method
    upstash-redis calls, over one connection per thread with `timeout`, and a CLIENT span per
    call when telemetry is on. Subclasses write and read the HTTP (`_post`)."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._local = threading.local()

    def post(self, url: str, *, headers: dict[str, str], json: Any) -> HttpReply:
        telemetry = tracecontext.active
        if telemetry is not None:  # a CLIENT span per call; off, this one check
            return telemetry.upstash_call(self._post, url, headers, json)
        return self._post(url, headers, json)

    def _post(self, url: str, headers: dict[str, str], json: Any) -> HttpReply:
        raise NotImplementedError


class KeepAliveTransport(ThreadTransport):
    """`post()` over one keep-alive connection per thread (http.client is not thread-safe)."""

    def _post(self, url: str, headers: dict[str, str], json: Any) -> HttpReply:
        parts = urlsplit(url)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn = self._connection(parts.scheme, parts.netloc)
        body = orjson.dumps(json)
        try:
            conn.request("POST", path, body, {**headers, "Content-Type": "application/json"})
            response = conn.getresponse()
            replied = cast(ResponseHeaders, response.headers)  # what LeanResponse reads
            reply = HttpReply(response.status, replied, response.read())
        except BaseException:
            self._drop()
            raise
        if response.will_close:
            self._drop()
        return reply

    def _connection(self, scheme: str, netloc: str) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is not None and (
            getattr(self._local, "origin", None) != (scheme, netloc) or _closed_by_peer(conn)
        ):
            self._drop()
            conn = None
        if conn is None:
            cls = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
            conn = cls(netloc, timeout=self.timeout)
            conn.response_class = LeanResponse  # headers without the email parser
            self._local.conn, self._local.origin = conn, (scheme, netloc)
        return conn

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            conn.close()

    def close(self) -> None:
        self._drop()


def _closed_by_peer(conn: http.client.HTTPConnection) -> bool:
    """An idle keep-alive connection has nothing to read unless the server hung up."""
    sock = conn.sock
    if sock is None:
        return False  # not connected yet: http.client connects on the next request
    try:
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return True
