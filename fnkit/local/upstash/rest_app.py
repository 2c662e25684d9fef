"""The Upstash REST bridge's WSGI app: fault switch, auth, read-your-writes, dispatch by path.

What each path answers is described in `bridge`'s docstring; the commands themselves are
prepared and their replies shaped in `commands`. `RedisBackend` sends them to Redis as raw
RESP2 round trips.
"""

from __future__ import annotations

import hmac
import json
import socket
import time
from collections.abc import Iterable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Final, Literal, cast
from urllib.parse import parse_qs, unquote_to_bytes

import redis

from fnkit.local.upstash import compat
from fnkit.local.upstash.commands import (
    CommandError,
    Prepared,
    aborted,
    entry,
    error_text,
    json_result,
    outcome,
    parse_command,
    prepare,
    prepare_all,
)
from fnkit.local.upstash.state import SYNC_TOKEN_HEADER, ScanPages, ScriptRegistry, SyncClock

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

FailureMode = Literal["down", "drop", "slow"]
"""`down`: 503 + JSON error. `drop`: connection closed, no reply. `slow`: answer after a delay."""
_METHODS: Final = frozenset(("HEAD", "GET", "POST", "PUT"))
"""The methods Upstash's REST API answers; any other is 405."""

# --- Backend --------------------------------------------------------------------------------


class RedisBackend:
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

    def __init__(self, backend: RedisBackend, token: str, redis_version: str = "") -> None:
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
            status, payload = 500, {"error": f"ERR Redis backend: {error_text(exc)}"}
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
            return self._single(parse_command(_json_body(body)), b64)
        if path in ("/pipeline", "/multi-exec") and posted:
            batch = _json_body(body)
            if not isinstance(batch, list):
                raise CommandError("ERR the body must be a JSON array of command arrays")
            commands = [parse_command(command) for command in batch]
            if path == "/pipeline":
                return self._pipeline(commands, b64)
            return self._transaction(commands, b64)
        return self._single(_path_command(environ, body), b64)

    def _single(self, args: list[bytes], b64: bool) -> tuple[int, Any]:
        """One command, one round trip to Redis (a SCAN page may take more)."""
        command = prepare(args, self.scripts)
        if (index := compat.scan_cursor_index(command.asked)) is not None:
            reply: object = self.scans.page(command.asked, index, self._run_one)
        else:
            reply = self.backend.run([command.send])[0]
        value = outcome(reply, command, self.redis_version)
        if isinstance(value, BaseException):
            return 400, {"error": error_text(value)}
        return 200, {"result": json_result(value, b64)}

    def _run_one(self, command: list[bytes]) -> object:
        return self.backend.run([command])[0]

    def _pipeline(self, commands: list[list[bytes]], b64: bool) -> tuple[int, Any]:
        """All commands in one round trip; a failed command fails alone, as in Redis."""
        prepared = prepare_all(commands, self.scripts)
        to_send = [item.send for item in prepared if not isinstance(item, CommandError)]
        replies = iter(self.backend.run(to_send) if to_send else [])
        return 200, [
            {"error": str(item)}
            if isinstance(item, CommandError)
            else entry(outcome(next(replies), item, self.redis_version), b64)
            for item in prepared
        ]

    def _transaction(self, commands: list[list[bytes]], b64: bool) -> tuple[int, Any]:
        """MULTI/EXEC on one connection; a command refused before EXEC aborts them all."""
        prepared = prepare_all(commands, self.scripts)
        refused = [str(item) if isinstance(item, CommandError) else None for item in prepared]
        if any(refused):
            return 400, aborted(refused)
        if not prepared:
            return 200, []
        ready = cast(list[Prepared], prepared)
        replies = self.backend.run([[b"MULTI"], *(command.send for command in ready), [b"EXEC"]])
        result = replies[-1]
        if isinstance(result, list):
            return 200, [
                entry(outcome(reply, command, self.redis_version), b64)
                for reply, command in zip(result, ready, strict=True)
            ]
        queued = [
            outcome(reply, command, self.redis_version)
            for reply, command in zip(replies[1:-1], ready, strict=True)
        ]
        errors = [error_text(q) if isinstance(q, BaseException) else None for q in queued]
        return 400, aborted(errors, error_text(cast(BaseException, result)))


def _drop_connection(environ: WSGIEnvironment) -> None:
    """Simulate a network failure: close the socket, answer nothing."""
    sock = environ.get("werkzeug.socket")
    if isinstance(sock, socket.socket):
        sock.shutdown(socket.SHUT_RDWR)
    raise ConnectionAbortedError("simulated connection drop")
