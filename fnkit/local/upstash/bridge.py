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
import base64
import contextlib
import hmac
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Final, Literal, NamedTuple, cast, get_args
from urllib.parse import parse_qs, unquote_to_bytes

import redis
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from fnkit.local.upstash import compat
from fnkit.local.upstash.state import (
    SYNC_TOKEN_HEADER,
    ScanPages,
    ScriptRegistry,
    SyncClock,
    redis_cursor,
)

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

DEV_UPSTASH_TOKEN: Final = "fnkit-local-dev-token"
"""Documented local-development token; never a production secret."""
DEFAULT_REDIS_URL: Final = "redis://127.0.0.1:6379"

FailureMode = Literal["down", "drop", "slow"]
"""`down`: 503 + JSON error. `drop`: connection closed, no reply. `slow`: answer after a delay."""


class Prepared(NamedTuple):
    """One command ready for Redis: what to send, what to report instead of Redis's reply
    (a value, or a redis.ResponseError; None: Redis's reply), and the command as asked."""

    send: list[bytes]
    override: object
    asked: list[bytes]


# Commands that would change or hijack the state of a pooled connection, or reach beyond
# the one keyspace an Upstash database is. Upstash has no connection state over REST either.
_NOT_AVAILABLE: Final = frozenset(
    b"MULTI EXEC DISCARD WATCH UNWATCH SELECT SWAPDB SUBSCRIBE PSUBSCRIBE SSUBSCRIBE "
    b"UNSUBSCRIBE PUNSUBSCRIBE SUNSUBSCRIBE MONITOR SYNC PSYNC REPLICAOF SLAVEOF QUIT "
    b"RESET HELLO AUTH CLIENT SHUTDOWN".split()
)
_METHODS: Final = frozenset(("HEAD", "GET", "POST", "PUT"))
"""The methods Upstash's REST API answers; any other is 405."""
_ABORTED: Final = "EXECABORT Transaction discarded because of previous errors"


class CommandError(Exception):
    """A problem with the request itself, reported as Upstash does: `{"error": "ERR ..."}`."""


# --- JSON in, Redis arguments out ------------------------------------------------------------


def _to_arg(value: object) -> bytes:
    """One JSON array element as a Redis argument; integral floats print like JSON numbers."""
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    if isinstance(value, bool):
        return b"true" if value else b"false"
    if isinstance(value, int):
        return str(value).encode()
    if isinstance(value, float):
        return str(int(value)).encode() if value.is_integer() else repr(value).encode()
    raise CommandError("ERR command arguments must be strings or numbers")


def _parse_command(value: object) -> list[bytes]:
    """Validate one command array; Upstash rejects anything else with a 400."""
    if not isinstance(value, list) or not value:
        raise CommandError("ERR a command must be a non-empty JSON array")
    return [_to_arg(item) for item in value]


_PLACEHOLDER: Final = [b"PING"]
"""Sent where the bridge answers itself, so pipelines and MULTI keep one reply per command."""
_NOSCRIPT: Final = "No matching script. Please use EVAL."


def _prepare_script(args: list[bytes], scripts: ScriptRegistry) -> Prepared:
    """SCRIPT LOAD/EXISTS/FLUSH against this bridge's registry (Redis's cache is shared)."""
    sub = args[1].upper() if len(args) > 1 else b""
    if sub == b"LOAD" and len(args) == 3:
        sha, code = scripts.add(args[2])
        return Prepared([*args[:2], code], sha, args)
    if sub == b"EXISTS" and len(args) > 2:
        return Prepared(_PLACEHOLDER, scripts.exists(args[2:]), args)
    if sub == b"FLUSH" and len(args) <= 3:
        scripts.flush()
        return Prepared(_PLACEHOLDER, b"OK", args)
    return Prepared(args, None, args)


def _prepare(args: list[bytes], scripts: ScriptRegistry) -> Prepared:
    """Adapt one command for Redis: refuse stateful ones, fix up scripts and FLUSHALL, and
    close the gaps where Upstash answers differently (`fnkit.local.upstash.compat`)."""
    name = args[0].upper()
    if name in _NOT_AVAILABLE:
        raise CommandError(f"ERR Command is not available: '{name.decode('latin-1')}'")
    if name in (b"EVAL", b"EVAL_RO") and len(args) > 1:
        return Prepared([args[0], scripts.add(args[1])[1], *args[2:]], None, args)
    if name in (b"EVALSHA", b"EVALSHA_RO") and len(args) > 1:
        # The registry is this database's script cache: unknown here is NOSCRIPT, as Upstash.
        code = scripts.get(args[1])
        if code is None:
            return Prepared(_PLACEHOLDER, redis.exceptions.NoScriptError(_NOSCRIPT), args)
        return Prepared(
            [b"EVAL" if name == b"EVALSHA" else b"EVAL_RO", code, *args[2:]], None, args
        )
    if name == b"SCRIPT":
        return _prepare_script(args, scripts)
    if name == b"FLUSHALL":
        # An Upstash database is one keyspace; never wipe the machine Redis's other DBs.
        return Prepared([b"FLUSHDB", *args[1:]], None, args)
    if (index := compat.scan_cursor_index(args)) is not None:
        # A bridge cursor in a pipeline: its page is read again (held elements are per call).
        return Prepared([*args[:index], redis_cursor(args[index]), *args[index + 1 :]], None, args)
    return Prepared(compat.rank_limit(args) or compat.approximate_trim(args) or args, None, args)


# --- Redis replies out, JSON in ------------------------------------------------------------


def _error_text(exc: BaseException) -> str:
    """Redis's error line as sent: redis-py strips known prefixes (ERR, NOSCRIPT) into
    `status_code`, and Upstash shows them."""
    code = getattr(exc, "status_code", None)
    if code is None and isinstance(exc, redis.exceptions.NoScriptError):
        code = "NOSCRIPT"
    text = str(exc)
    return f"{code} {text}" if code and not text.startswith(code) else text


def _encode(value: object, b64: bool) -> Any:
    """A RESP2 reply as JSON: strings base64 when asked (binary-safe), else UTF-8 text."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii") if b64 else value.decode("utf-8", "replace")
    if value is None or isinstance(value, int):
        return value
    if isinstance(value, list):
        return [_encode(item, b64) for item in value]
    if isinstance(value, BaseException):  # an error nested in a script's reply
        return _encode(_error_text(value).encode(), b64)
    return _encode(str(value).encode(), b64)


def _result(value: object, b64: bool) -> Any:
    """A command's result. A top-level "OK" stays verbatim: the Python client base64-decodes
    every string but exactly "OK" (a status reply and a stored "OK" read the same to it)."""
    return "OK" if value == b"OK" else _encode(value, b64)


def _outcome(reply: object, command: Prepared, redis_version: str) -> object:
    """What to report for a command: the bridge's own answer, a clearer error for a command
    the local Redis is too old for, or Redis's reply. An error is an exception value."""
    if command.override is not None and not isinstance(reply, BaseException):
        return command.override
    if isinstance(reply, BaseException):
        if compat.is_missing_group_listing(command.asked, _error_text(reply)):
            return []
        text = compat.missing_command_error(command.asked, redis_version)
        if text is not None:
            return redis.ResponseError(text)
    return reply


def _entry(value: object, b64: bool) -> dict[str, Any]:
    """One pipeline/transaction entry in Upstash's shape."""
    if isinstance(value, BaseException):
        return {"error": _error_text(value)}
    return {"result": _result(value, b64)}


# --- Backend --------------------------------------------------------------------------------


class _Backend:
    """Raw RESP2 round trips on redis-py connections, bypassing redis-py's reply callbacks
    (which turn SET into True and HGETALL into a dict; Upstash returns the wire reply)."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._idle: list[Any] = []  # list.pop/append are atomic: no lock on the hot path

    def run(self, commands: list[list[bytes]]) -> list[object]:
        """Send every command in one write and read one reply each; errors become values."""
        conn = self._idle.pop() if self._idle else self.client.connection_pool.make_connection()
        try:
            conn.send_packed_command(conn.pack_commands(commands), check_health=False)
            replies: list[object] = []
            for _ in commands:
                try:
                    replies.append(conn.read_response())
                except redis.ResponseError as exc:
                    replies.append(exc)
        except BaseException:
            conn.disconnect()
            raise
        self._idle.append(conn)
        return replies

    def close(self) -> None:
        """Close idle connections so a stopped bridge leaves nothing open on Redis."""
        while self._idle:
            self._idle.pop().disconnect()


# --- WSGI app -------------------------------------------------------------------------------


def _respond(
    start_response: StartResponse, status: int, payload: object, sync_token: str | None = None
) -> list[bytes]:
    """JSON with Content-Length (the client reads `.json()` whatever the status)."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    if sync_token is not None:
        headers.append((SYNC_TOKEN_HEADER, sync_token))
    start_response(f"{status} {HTTPStatus(status).phrase}", headers)
    return [body]


def _read_body(environ: WSGIEnvironment) -> bytes:
    """The whole request body, chunked or with Content-Length."""
    stream = environ["wsgi.input"]
    if environ.get("wsgi.input_terminated"):
        return bytes(stream.read())
    length = int(environ.get("CONTENT_LENGTH") or 0)
    return bytes(stream.read(length)) if length > 0 else b""


def _json_body(body: bytes) -> object:
    """Parse the body as JSON, with Upstash's style of error."""
    try:
        return json.loads(body)
    except ValueError:
        raise CommandError("ERR failed to parse the request body as JSON") from None


def _path_command(environ: WSGIEnvironment, body: bytes) -> list[bytes]:
    """`/set/key/value` form: segments percent-decoded from the raw path (so %2F stays in a
    segment); a POST body is appended as the last argument."""
    raw = str(environ.get("RAW_URI") or "")
    if not raw.startswith("/"):
        raw = str(environ.get("PATH_INFO") or "/")
    path = raw.split("?", 1)[0].encode("latin-1")
    args = [unquote_to_bytes(part) for part in path[1:].split(b"/")]
    if environ["REQUEST_METHOD"] in ("POST", "PUT") and body:
        args.append(body)
    if not args[0]:
        raise CommandError("ERR a command must be a non-empty JSON array")
    return args


class UpstashRestApp:
    """The WSGI callable: fault switch, auth, then dispatch by path."""

    def __init__(self, backend: _Backend, token: str, redis_version: str = "") -> None:
        self.backend = backend
        self.redis_version = redis_version
        """The local Redis's version, named when a command needs a newer one."""
        self.scripts = ScriptRegistry()
        self.scans = ScanPages()
        self.sync = SyncClock()
        self._token = token.encode()
        self.failure: tuple[FailureMode | None, float] = (None, 0.0)
        self.connections: set[socket.socket] = set()  # open client sockets, for stop()

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        mode, delay = self.failure
        if mode == "drop":
            _drop_connection(environ)
        # Read the body first, always: a kept-alive connection must stay in sync.
        body = _read_body(environ)
        if mode == "slow":
            time.sleep(delay)
        elif mode == "down":
            return _respond(start_response, 503, {"error": "Service Unavailable (simulated)"})
        if environ["REQUEST_METHOD"] not in _METHODS:
            return _respond(start_response, 405, {"error": "Method Not Allowed"})
        if not self._authorized(environ):
            return _respond(start_response, 401, {"error": "Unauthorized"})
        # Read-your-writes: every write a token covers is applied (one primary: always).
        if not self.sync.covers(str(environ.get("HTTP_UPSTASH_SYNC_TOKEN", ""))):
            return _respond(start_response, 400, {"error": "ERR sync token not reached"})
        try:
            status, payload = self._dispatch(environ, body)
        except CommandError as exc:
            status, payload = 400, {"error": str(exc)}
        except redis.RedisError as exc:
            status, payload = 500, {"error": f"ERR Redis backend: {_error_text(exc)}"}
        except Exception as exc:  # a bridge bug must still answer in Upstash's shape
            status, payload = 500, {"error": f"ERR bridge: {exc!r}"}
        return _respond(start_response, status, payload, self.sync.issue())

    def _authorized(self, environ: WSGIEnvironment) -> bool:
        """Bearer token, or Upstash's `_token` query parameter; constant-time compare."""
        header = str(environ.get("HTTP_AUTHORIZATION", ""))
        if header[:7].lower() == "bearer ":
            given = header[7:].strip().encode("latin-1")
        elif query := environ.get("QUERY_STRING"):
            given = parse_qs(str(query)).get("_token", [""])[0].encode()
        else:
            return False
        return hmac.compare_digest(given, self._token)

    def _dispatch(self, environ: WSGIEnvironment, body: bytes) -> tuple[int, Any]:
        """Route by path; the Upstash endpoints answer POST, the path form also GET."""
        b64 = str(environ.get("HTTP_UPSTASH_ENCODING", "")).lower() == "base64"
        path = environ.get("PATH_INFO") or "/"
        posted = environ["REQUEST_METHOD"] in ("POST", "PUT")
        if path == "/" and posted:
            return self._single(_parse_command(_json_body(body)), b64)
        if path in ("/pipeline", "/multi-exec") and posted:
            batch = _json_body(body)
            if not isinstance(batch, list):
                raise CommandError("ERR the body must be a JSON array of command arrays")
            commands = [_parse_command(command) for command in batch]
            if path == "/pipeline":
                return self._pipeline(commands, b64)
            return self._transaction(commands, b64)
        return self._single(_path_command(environ, body), b64)

    def _single(self, args: list[bytes], b64: bool) -> tuple[int, Any]:
        """One command, one round trip to Redis (a SCAN page may take more)."""
        command = _prepare(args, self.scripts)
        if (index := compat.scan_cursor_index(command.asked)) is not None:
            reply: object = self.scans.page(command.asked, index, self._run_one)
        else:
            reply = self.backend.run([command.send])[0]
        value = _outcome(reply, command, self.redis_version)
        if isinstance(value, BaseException):
            return 400, {"error": _error_text(value)}
        return 200, {"result": _result(value, b64)}

    def _run_one(self, command: list[bytes]) -> object:
        return self.backend.run([command])[0]

    def _pipeline(self, commands: list[list[bytes]], b64: bool) -> tuple[int, Any]:
        """All commands in one round trip; a failed command fails alone, as in Redis."""
        prepared = _prepare_all(commands, self.scripts)
        to_send = [item.send for item in prepared if not isinstance(item, CommandError)]
        replies = iter(self.backend.run(to_send) if to_send else [])
        return 200, [
            {"error": str(item)}
            if isinstance(item, CommandError)
            else _entry(_outcome(next(replies), item, self.redis_version), b64)
            for item in prepared
        ]

    def _transaction(self, commands: list[list[bytes]], b64: bool) -> tuple[int, Any]:
        """MULTI/EXEC on one connection; a command refused before EXEC aborts them all."""
        prepared = _prepare_all(commands, self.scripts)
        refused = [str(item) if isinstance(item, CommandError) else None for item in prepared]
        if any(refused):
            return 400, _aborted(refused)
        if not prepared:
            return 200, []
        ready = cast(list[Prepared], prepared)
        replies = self.backend.run([[b"MULTI"], *(command.send for command in ready), [b"EXEC"]])
        result = replies[-1]
        if isinstance(result, list):
            return 200, [
                _entry(_outcome(reply, command, self.redis_version), b64)
                for reply, command in zip(result, ready, strict=True)
            ]
        queued = [
            _outcome(reply, command, self.redis_version)
            for reply, command in zip(replies[1:-1], ready, strict=True)
        ]
        errors = [_error_text(q) if isinstance(q, BaseException) else None for q in queued]
        return 400, _aborted(errors, _error_text(cast(BaseException, result)))


def _prepare_all(
    commands: list[list[bytes]], scripts: ScriptRegistry
) -> list[Prepared | CommandError]:
    """Prepare each command, keeping a refusal in its slot rather than failing the batch."""
    prepared: list[Prepared | CommandError] = []
    for args in commands:
        try:
            prepared.append(_prepare(args, scripts))
        except CommandError as exc:
            prepared.append(exc)
    return prepared


def _aborted(errors: list[str | None], fallback: str = "") -> list[dict[str, str]]:
    """Every entry of an aborted transaction is an error, so the client raises; the others
    name the first reason, as the client reports only the first entry."""
    reason = next((error for error in errors if error), fallback)
    return [{"error": error or f"{_ABORTED}: {reason}"} for error in errors]


def _drop_connection(environ: WSGIEnvironment) -> None:
    """Simulate a network failure: close the socket, answer nothing."""
    sock = environ.get("werkzeug.socket")
    if isinstance(sock, socket.socket):
        sock.shutdown(socket.SHUT_RDWR)
    raise ConnectionAbortedError("simulated connection drop")


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
    backend = _Backend(client)
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


def _server_version(backend: _Backend) -> str:
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
