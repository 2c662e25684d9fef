"""Upstash REST commands, from the JSON a client sends to what Redis is sent and back.

A command arrives as a JSON array; `parse_command` turns it into Redis arguments, `prepare`
adapts it (commands with connection state refused, scripts kept per bridge, FLUSHALL kept to
one keyspace, the gaps where Upstash answers differently closed by `compat`), and `outcome`,
`json_result` and `entry` turn Redis's reply into the JSON Upstash would answer. The WSGI app
(`rest_app`) does the HTTP around it.
"""

from __future__ import annotations

import base64
from typing import Any, Final, NamedTuple

import redis

from fnkit.local.upstash import compat
from fnkit.local.upstash.state import ScriptRegistry, redis_cursor


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


def parse_command(value: object) -> list[bytes]:
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


def prepare(args: list[bytes], scripts: ScriptRegistry) -> Prepared:
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


def error_text(exc: BaseException) -> str:
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
        return _encode(error_text(value).encode(), b64)
    return _encode(str(value).encode(), b64)


def json_result(value: object, b64: bool) -> Any:
    """A command's result. A top-level "OK" stays verbatim: the Python client base64-decodes
    every string but exactly "OK" (a status reply and a stored "OK" read the same to it)."""
    return "OK" if value == b"OK" else _encode(value, b64)


def outcome(reply: object, command: Prepared, redis_version: str) -> object:
    """What to report for a command: the bridge's own answer, a clearer error for a command
    the local Redis is too old for, or Redis's reply. An error is an exception value."""
    if command.override is not None and not isinstance(reply, BaseException):
        return command.override
    if isinstance(reply, BaseException):
        if compat.is_missing_group_listing(command.asked, error_text(reply)):
            return []
        text = compat.missing_command_error(command.asked, redis_version)
        if text is not None:
            return redis.ResponseError(text)
    return reply


def entry(value: object, b64: bool) -> dict[str, Any]:
    """One pipeline/transaction entry in Upstash's shape."""
    if isinstance(value, BaseException):
        return {"error": error_text(value)}
    return {"result": json_result(value, b64)}


def prepare_all(
    commands: list[list[bytes]], scripts: ScriptRegistry
) -> list[Prepared | CommandError]:
    """Prepare each command, keeping a refusal in its slot rather than failing the batch."""
    prepared: list[Prepared | CommandError] = []
    for args in commands:
        try:
            prepared.append(prepare(args, scripts))
        except CommandError as exc:
            prepared.append(exc)
    return prepared


def aborted(errors: list[str | None], fallback: str = "") -> list[dict[str, str]]:
    """Every entry of an aborted transaction is an error, so the client raises; the others
    name the first reason, as the client reports only the first entry."""
    reason = next((error for error in errors if error), fallback)
    return [{"error": error or f"{_ABORTED}: {reason}"} for error in errors]
