"""Serve the Upstash Redis REST protocol in front of a real Redis (or an embedded one).

Upstash speaks HTTP and Redis does not, so dev, tests and benchmarks put this bridge between
the runtime's unmodified `upstash-redis` / `upstash-ratelimit` clients and Redis. It answers
the way Upstash does, as far as those clients can tell:

- `POST /` with a JSON command array gives `{"result": ...}`, or HTTP 400 `{"error": "ERR ..."}`.
- `POST /pipeline` with an array of command arrays gives one `{"result"}`/`{"error"}` per
  command (HTTP 200; a failed command does not stop the others).
- `POST /multi-exec` runs the commands inside MULTI/EXEC. When Redis refuses to queue one,
  nothing runs and every entry is an error (HTTP 400), so the client raises.
- `GET|POST /set/key/value`: the REST path form; a POST body becomes the last argument.
- `Authorization: Bearer <token>` (or `?_token=`), otherwise 401 `{"error": "Unauthorized"}`.
- `Upstash-Encoding: base64`: every string in the result, nested ones included, is base64,
  except a top-level "OK" (which the Python client expects verbatim).

- Every answer carries an `upstash-sync-token` header (read-your-writes); methods other than
  HEAD, GET, POST and PUT are 405. Errors are 400 `{"error": "..."}` with Redis's text, like
  Upstash's; a command the local Redis is too old for names the Redis version it needs.

Scripts are per bridge, as they are per Upstash database (`state`); where plain Redis answers
a command differently from Upstash the bridge adapts it (`compat`).

Dev tooling only: `shared/` never imports this module.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import sys
import threading
from collections.abc import Callable
from typing import Any, Final, cast, get_args

import redis
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from fnkit.local.upstash.rest_app import FailureMode, RedisBackend, UpstashRestApp

DEV_UPSTASH_TOKEN: Final = "fnkit-local-dev-token"
"""Documented local-development token; never a production secret."""
DEFAULT_REDIS_URL: Final = "redis://127.0.0.1:6379"

__all__ = ["DEV_UPSTASH_TOKEN", "BridgeHandle", "FailureMode", "resolve_redis_url", "start_bridge"]


class _Handler(WSGIRequestHandler):
    """werkzeug's handler minus what costs on every request. werkzeug answers
    `Connection: close` (a new TCP connection and thread per request, 2-3x the latency)
    because a generic app may leave body bytes unread; this app always reads the whole
    body and returns one bytes body with Content-Length, so HTTP/1.1 keep-alive is safe.
    Also: no access log line, TCP_NODELAY, and open sockets tracked so stop() can cut them."""

    disable_nagle_algorithm = True
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        cast(UpstashRestApp, self.server.app).connections.add(self.connection)

    def finish(self) -> None:
        cast(UpstashRestApp, self.server.app).connections.discard(self.connection)
        super().finish()

    def run_wsgi(self) -> None:
        if self.headers.get("Expect", "").lower() == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        answer: list[Any] = []

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Callable[[bytes], object]:
            answer[:] = [status, headers]
            return self.wfile.write

        try:
            body = b"".join(self.server.app(self.make_environ(), start_response))
        except ConnectionError:  # simulated drop
            self.close_connection = True
            return
        status, headers = answer
        code, _, reason = status.partition(" ")
        self.send_response(int(code), reason)
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return


# --- Running it -----------------------------------------------------------------------------

_embedded_lock = threading.Lock()
_embedded_server: Any = None


def _embedded_client() -> redis.Redis:
    """fakeredis (Lua through lupa), one server per process: like a real Redis, its data
    outlives a bridge that is stopped and started again."""
    global _embedded_server
    import fakeredis  # dev dependency, needed only when no Redis runs

    with _embedded_lock:
        if _embedded_server is None:
            _embedded_server = fakeredis.FakeServer()
    return fakeredis.FakeRedis(server=_embedded_server, protocol=2)


def resolve_redis_url() -> str | None:
    """`REDIS_URL` when set; else the machine Redis when its port answers; else None
    (embedded)."""
    if url := os.environ.get("REDIS_URL"):
        return url
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.25):
            return DEFAULT_REDIS_URL
    except OSError:
        return None


class BridgeHandle:
    """A running bridge: where it listens, the token it wants, and switches for fault tests."""

    def __init__(
        self,
        server: BaseWSGIServer,
        thread: threading.Thread,
        app: UpstashRestApp,
        token: str,
        redis_url: str | None,
    ) -> None:
        # A wildcard bind address is not one a client can connect to.
        host = "127.0.0.1" if server.host in ("", "0.0.0.0", "::") else server.host  # noqa: S104
        self.host = host
        self.port: int = server.port
        self.url = f"http://{f'[{host}]' if ':' in host else host}:{self.port}"
        self.token = token
        self.redis_url = redis_url
        self.embedded = redis_url is None
        self.redis_version = app.redis_version
        """The Redis behind the bridge ("" for fakeredis)."""
        self.redis: redis.Redis = app.backend.client
        """Direct redis-py client on the same data (fixtures flush through it)."""
        self._server = server
        self._thread = thread
        self._app = app

    def set_failure(self, mode: FailureMode | None, *, delay_ms: int = 1000) -> None:
        """Simulate Upstash trouble until called again with None: see `FailureMode`."""
        if mode is not None and mode not in get_args(FailureMode):
            raise ValueError(f"unknown failure mode {mode!r}")
        self._app.failure = (mode, delay_ms / 1000)

    def stop(self) -> None:
        """Stop listening (clients then get connection refused) and close Redis connections."""
        self._server.shutdown()
        self._server.server_close()
        for sock in list(self._app.connections):  # idle keep-alive and in-flight requests
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=5)
        self._app.backend.close()

    def __enter__(self) -> BridgeHandle:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def start_bridge(
    host: str = "127.0.0.1",
    port: int = 0,
    redis_url: str | None = None,
    token: str = DEV_UPSTASH_TOKEN,
    embedded: bool | None = None,
) -> BridgeHandle:
    """Serve the bridge from a daemon thread. `redis_url=None` resolves one
    (`resolve_redis_url`); `embedded=True` forces fakeredis, `False` forbids it.
    Fails fast (before listening) when Redis does not answer."""
    if not token:
        raise ValueError("token must not be empty")
    url = None if embedded else (redis_url or resolve_redis_url())
    if url is None and embedded is False:
        raise RuntimeError("no Redis answers: set REDIS_URL or allow the embedded one")
    client = _embedded_client() if url is None else _real_client(url)
    backend = RedisBackend(client)
    app = UpstashRestApp(backend, token, _server_version(backend))
    try:
        server = make_server(host, port, app, threaded=True, request_handler=_Handler)
    except SystemExit as exc:  # werkzeug exits on bind errors; a library must raise
        raise OSError(f"cannot listen on {host}:{port}") from exc
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},  # stop() returns within 50 ms
        name=f"upstash-bridge:{server.port}",
        daemon=True,
    )
    thread.start()
    return BridgeHandle(server, thread, app, token, url)


def _server_version(backend: RedisBackend) -> str:
    """The Redis version behind the bridge (also the fail-fast check that Redis answers)."""
    ping, info = backend.run([[b"PING"], [b"INFO", b"server"]])
    if isinstance(ping, BaseException):
        raise ping
    if isinstance(info, BaseException):  # fakeredis has no INFO
        return ""
    for line in cast(bytes, info).splitlines():
        if line.startswith(b"redis_version:"):
            return line.partition(b":")[2].strip().decode("ascii", "replace")
    return ""


def _real_client(url: str) -> redis.Redis:
    """RESP2 (redis-py 8 defaults to RESP3, whose maps Upstash never returns), bytes out."""
    return redis.Redis.from_url(url, protocol=2, socket_connect_timeout=2)


def main(argv: list[str] | None = None) -> None:
    """`python -m fnkit.local.upstash.bridge --port 8079`: serve in the foreground until Ctrl-C."""
    parser = argparse.ArgumentParser(
        prog="python -m fnkit.local.upstash.bridge", description="Upstash REST protocol over Redis."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8079)
    parser.add_argument("--redis-url", default=None, help="default: REDIS_URL, local, embedded")
    parser.add_argument("--embedded", action="store_true", help="use fakeredis in memory")
    parser.add_argument(
        "--token", default=os.environ.get("UPSTASH_REDIS_REST_TOKEN") or DEV_UPSTASH_TOKEN
    )
    args = parser.parse_args(argv)
    handle = start_bridge(
        args.host, args.port, args.redis_url, args.token, True if args.embedded else None
    )
    if args.host not in ("127.0.0.1", "localhost", "::1") and args.token == DEV_UPSTASH_TOKEN:
        print("warning: listening beyond loopback with the public dev token", file=sys.stderr)
    print(f"Upstash REST bridge on {handle.url} -> {handle.redis_url or 'embedded fakeredis'}")
    print(f"UPSTASH_REDIS_REST_URL={handle.url} UPSTASH_REDIS_REST_TOKEN={handle.token}")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        handle.stop()


if __name__ == "__main__":
    main()
