"""The request object a handler receives: the HTTP request plus who is calling and their data."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from shared.auth import Claims
from shared.db import Transaction
from shared.errors import Unauthenticated
from shared.settings import Settings

if TYPE_CHECKING:
    from werkzeug.datastructures import Headers

    from shared.routing import Route


class Request:
    """Explicit, small: what a handler may read, and the caller's database transaction."""

    def __init__(
        self,
        *,
        function: str,
        method: str,
        path: str,
        headers: Headers,
        query_string: bytes,
        request_id: str,
        client_ip: str,
        settings: Settings,
        environ: Mapping[str, Any] | None = None,
    ) -> None:
        self.function = function
        self.method = method
        self.path = path
        self.headers = headers
        self._environ = environ
        self._query_string = query_string
        self._args: dict[str, list[str]] | None = None
        self.request_id = request_id
        self.client_ip = client_ip
        self.settings = settings
        self.claims: Claims | None = None
        self.route: Route | None = None
        self.path_params: dict[str, str] = {}
        self.raw_body: bytes = b""
        self.json: Any = None
        self.response_headers: dict[str, str] = {}
        self.models: dict[str, Any] = {}
        # Run after the transaction commits (notifications, calls to other services).
        self.after_commit: list[Callable[[], None]] = []
        self._tx: Transaction | None = None
        self._emitted: list[str] = []

    def header(self, name: str) -> str | None:
        """One request header, as `headers.get(name)` gives it.

        Read straight from the WSGI environ when the request has one: werkzeug's
        `EnvironHeaders.get` converts the name and raises and catches a KeyError for every
        absent header (~0.5 µs), and the pipeline reads five of them on every request.
        tests/unit/test_request_header.py holds the two ways to each other."""
        environ = self._environ
        if environ is None:
            return self.headers.get(name)
        key = _WSGI_KEYS.get(name)
        if key is None:
            key = _wsgi_key(name)
            if len(_WSGI_KEYS) < 256:  # the names code asks for; bounded all the same
                _WSGI_KEYS[name] = key
        value = environ.get(key)
        return value if isinstance(value, str) else None

    @property
    def query_string(self) -> bytes:
        """The raw query string, as the request line had it."""
        return self._query_string

    @property
    def args(self) -> dict[str, list[str]]:
        """The query's parameters, each name with all its values in order, parsed on first use.

        Parsed as werkzeug parses `request.args` (blank values kept, invalid bytes left
        percent-encoded), into a plain dict: routes without a query model never pay for it.
        """
        if self._args is None:
            self._args = _parse_query(self._query_string)
        return self._args

    @property
    def user_id(self) -> str:
        """The caller's user id (`sub`); routes at level `user` always have one."""
        if self.claims is None or not self.claims.sub:
            raise Unauthenticated()
        return self.claims.sub

    @property
    def db(self) -> Transaction:
        """This request's transaction as the caller; opened on first query."""
        if self._tx is None:
            claims = self.claims.jwt if self.claims is not None else {"role": "anon"}
            role = self.claims.role if self.claims is not None else "anon"
            self._tx = Transaction(
                self.settings,
                claims,
                role,
                self.method,
                self.path,
                _safe_headers(self.headers)
                if self._environ is None
                else _environ_headers(self._environ),
                single_statement=self.route is not None and self.route.single_statement,
            )
        return self._tx

    def emit(self, topic: str, payload: Any, *, key: str | None = None) -> str | None:
        """Send `payload` to `topic`'s sinks if and only if this request's transaction commits.

        Delivered after commit, at least once, under a stable message id (returned; None when
        no sink is configured); messages with the same `key` are delivered in order per sink.
        See `shared.outbox` (the enqueue) and `shared.dispatch` (the delivery).
        """
        from shared.outbox import enqueue

        message_id = enqueue(self.db, self.settings, topic, payload, key)
        if message_id is not None and self.settings.outbox_after_response:
            if not self._emitted:
                self.after_commit.append(self._dispatch_soon)
            self._emitted.append(message_id)
        return message_id

    def _dispatch_soon(self) -> None:
        from shared.dispatch import dispatch_in_background

        dispatch_in_background(self.settings, list(self._emitted))

    @property
    def transaction(self) -> Transaction | None:
        """The transaction if one was opened (the pipeline commits or rolls it back)."""
        return self._tx


def client_address(forwarded_for: str | None, remote_addr: str | None, trusted_hops: int) -> str:
    """The caller's address: the `X-Forwarded-For` entry `trusted_hops` from the right (the
    one the nearest trusted proxy saw), else the socket's peer. Entries further left are the
    caller's own words and are never trusted."""
    if trusted_hops:
        forwarded = [part.strip() for part in (forwarded_for or "").split(",") if part.strip()]
        if len(forwarded) >= trusted_hops:
            return forwarded[-trusted_hops]
    return remote_addr or "unknown"


_WSGI_KEYS: dict[str, str] = {}


def _wsgi_key(name: str) -> str:
    """The environ key of a header, as werkzeug's `EnvironHeaders` looks it up."""
    key = name.upper().replace("-", "_")
    return key if key in {"CONTENT_TYPE", "CONTENT_LENGTH"} else f"HTTP_{key}"


_HIDDEN_HEADERS = {"authorization", "apikey", "cookie"}


def _safe_headers(headers: Headers | Mapping[str, str]) -> dict[str, str]:
    """Headers as PostgREST passes them to SQL, minus credentials that policies never need."""
    return {k.lower(): v for k, v in headers.items() if k.lower() not in _HIDDEN_HEADERS}


_HEADER_NAMES: dict[str, str] = {}  # environ key -> `_safe_headers` name, "" when left out


def _header_name(key: str) -> str:
    """The name `_safe_headers` gives the environ's `key`, as werkzeug's EnvironHeaders lists
    it ("" for a key that is not a header, or a hidden one)."""
    if key.startswith("HTTP_") and key not in {"HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"}:
        name = key[5:].replace("_", "-").title().lower()
    elif key in {"CONTENT_TYPE", "CONTENT_LENGTH"}:
        name = key.replace("_", "-").title().lower()
    else:
        return ""
    return "" if name in _HIDDEN_HEADERS else name


def _environ_headers(environ: Mapping[str, Any]) -> dict[str, str]:
    """`_safe_headers(EnvironHeaders(environ))` in one pass over the environ, each key's name
    worked out once per process (a bounded cache: header names are the caller's choice).
    Every request that queries pays for it; werkzeug's iteration title-cases each name and
    `_safe_headers` lowers it again (~4 µs). tests/unit/test_request_header.py holds the two
    to each other."""
    names = _HEADER_NAMES
    headers: dict[str, str] = {}
    for key, value in environ.items():
        name = names.get(key)
        if name is None:
            name = _header_name(key)
            if len(names) < 1024:
                names[key] = name
        # CONTENT_TYPE and CONTENT_LENGTH are listed only when set (empty is unset).
        if name and (value or not key.startswith("CONTENT_")):
            headers[name] = value
    return headers


def _parse_query(raw: bytes) -> dict[str, list[str]]:
    """`parse_qs` as werkzeug calls it, with a short way for the common query.

    Text without `%` or `+` needs no unquoting, so splitting on `&` and the first `=` gives
    what `parse_qs(..., keep_blank_values=True)` gives (empty pieces skipped, a name without
    `=` has the value ""), for a third of its cost on every list request.
    tests/unit/test_request_args.py holds both ways to werkzeug's `request.args`."""
    text = raw.decode(errors="werkzeug.url_quote")
    if "%" in text or "+" in text:
        from urllib.parse import parse_qs

        return parse_qs(text, keep_blank_values=True, errors="werkzeug.url_quote")
    args: dict[str, list[str]] = {}
    for piece in text.split("&"):
        if piece:
            name, _, value = piece.partition("=")
            if name in args:
                args[name].append(value)
            else:
                args[name] = [value]
    return args
