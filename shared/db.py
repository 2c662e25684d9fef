"""Postgres access that impersonates the caller, exactly as PostgREST does.

Every statement runs with the settings that make RLS see the caller: `role`,
`request.jwt.claims`, `request.method`, `request.path`, `request.headers`, and a statement
timeout, sent together with the statement (see `Transaction` for how reads and writes
differ), so a read costs one network round trip per query, a write route declared
`single_statement=True` one, and any other write one per statement plus the COMMIT.

psycopg and psycopg_pool are imported with this module, at load: every function reads
Postgres on its first real request, and gunicorn (as functions-framework runs it) loads the
function in its master process and forks the worker that serves. A module imported at load is
imported once, before the fork; imported on the first request it is imported in the freshly
forked worker, which measured 40-60 ms more CPU on that request here (`fnkit bench`, cold
start: `me`, which imported psycopg on its first request, against the same code importing it
at load). The pool itself is opened lazily, on the first query.

Server-side prepared statements follow `DB_PREPARED_STATEMENTS`
(shared.pooler): off (`prepare_threshold=None`) where DATABASE_URL may be a transaction-mode
pooler, as Supavisor's transaction mode requires; on a direct connection or Supavisor's session
mode, every statement is prepared on first use (`prepare_threshold=0`) and reads go as one
pipeline of the extended protocol instead of one simple-query message: still one round trip,
and Postgres parses and plans each query once per connection instead of on every request.
"""

from __future__ import annotations

import contextlib
import json
import select
import threading
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from shared import tracecontext
from shared.settings import Settings

if TYPE_CHECKING:
    from psycopg.sql import SQL, Composed

Params = Sequence[Any] | Mapping[str, Any] | None
# Text, or SQL composed with `psycopg.sql` (identifiers quoted by psycopg, never by hand).
Query: TypeAlias = "str | SQL | Composed"
Row = dict[str, Any]

_pools: dict[str, ConnectionPool[Any]] = {}
_pools_lock = threading.Lock()

_IMPERSONATE = (
    "select set_config('role', %s, true), set_config('request.jwt.claims', %s, true),"
    " set_config('request.jwt.claim.sub', %s, true),"
    " set_config('request.jwt.claim.role', %s, true),"
    " set_config('request.method', %s, true), set_config('request.path', %s, true),"
    " set_config('request.headers', %s, true), set_config('statement_timeout', %s, true)"
)
_DB_ROLES = {"anon", "authenticated", "service_role"}
# What `json.dumps(value, separators=(",", ":"))` builds on every call, built once: the same
# text (json.dumps is this encoder's `encode`), ~1.5 µs less per impersonation's claims.
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"))


def get_pool(settings: Settings) -> ConnectionPool[Any]:
    """The process's pool for DATABASE_URL, created on first use."""
    pool = _pools.get(settings.database_url)
    if pool is None:
        with _pools_lock:
            pool = _pools.get(settings.database_url)
            if pool is None:
                pool = _open_pool(settings)
                _pools[settings.database_url] = pool
    return pool


def _open_pool(settings: Settings) -> ConnectionPool[Any]:
    from shared.pooler import conninfo

    prepare = 0 if settings.db_prepared_statements else None  # 0: prepare on first use
    return ConnectionPool(
        conninfo(settings.database_url),
        min_size=1,
        max_size=settings.db_pool_max,
        # Autocommit: `Transaction` sends BEGIN/COMMIT itself, pipelined with the work.
        kwargs={"prepare_threshold": prepare, "autocommit": True, "row_factory": dict_row},
        timeout=settings.db_pool_timeout_s,
        max_idle=300,
        reconnect_timeout=30,
        open=True,
        name="fnkit",
    )


def close_pools() -> None:
    with _pools_lock:
        for pool in _pools.values():
            pool.close()
        _pools.clear()


def _live_connection(pool: ConnectionPool[Any]) -> psycopg.Connection[Row]:
    """A pooled connection the server has not already hung up on.

    An idle connection has nothing to read; when it does, the server sent its goodbye (a
    FATAL on restart or termination, or EOF when a pooler dropped it). One `select` call
    finds that before a statement is sent, at no round trip, so even a write that cannot be
    retried never lands on a connection known to be dead.
    """
    for _ in range(pool.max_size + 1):
        conn: psycopg.Connection[Row] = pool.getconn()
        if not select.select([conn.fileno()], [], [], 0)[0]:
            return conn
        conn.close()
        pool.putconn(conn)  # the pool discards a closed connection
    last: psycopg.Connection[Row] = pool.getconn()
    return last


class Transaction:
    """One request's database work as the caller. Opened on first use, closed by the pipeline.

    Writes (POST, PUT, PATCH, DELETE) run in one explicit transaction: BEGIN, the
    impersonation and the first statement go out in one pipeline (one round trip), COMMIT at
    the end (a second). Reads (GET, HEAD) need no COMMIT: each query is sent as one simple-query
    message `impersonation; query`, which Postgres runs as one implicit transaction, so a
    read costs exactly one round trip per query. Under READ COMMITTED that is the same
    isolation a read transaction would give (each statement sees a fresh snapshot). With
    prepared statements on, the message is a pipeline instead (Parse/Bind/Execute of both,
    one Sync), which Postgres runs as one implicit transaction too.

    A write whose work is one statement (`single_statement=True` on the route) goes the way
    reads go: `impersonation; statement` in one message, committed by Postgres when it
    succeeds, one round trip in all. Every later statement is its own transaction, so such a
    handler may only read after its write. `atomic()` (the idempotency step calls it, as its
    record must commit with the work) switches back to one explicit transaction.

    A pooled connection found dead on first use (Postgres restarted, a pooler dropped it) is
    discarded, the pool's idle connections are checked, and the first statement is retried
    once when that cannot write twice: a read, or an explicit transaction (nothing commits
    before COMMIT). A single-statement write is not retried (it may have committed before the
    connection dropped); its caller gets 503 and may retry with an `Idempotency-Key`.
    """

    def __init__(
        self,
        settings: Settings,
        claims: Mapping[str, Any],
        role: str,
        method: str,
        path: str,
        headers: Mapping[str, str],
        single_statement: bool = False,
    ) -> None:
        if role not in _DB_ROLES:
            role = "anon"
        self._settings = settings
        self.read_only = method in ("GET", "HEAD")
        # Each statement its own implicit transaction, sent with the impersonation.
        self.implicit = self.read_only or single_statement
        self._impersonation: tuple[str, ...] = (
            role,
            _COMPACT_JSON.encode(claims),
            str(claims.get("sub") or ""),
            role,
            method,
            path,
            _COMPACT_JSON.encode(headers if type(headers) is dict else dict(headers)),
            f"{settings.db_statement_timeout_ms}ms",
        )
        self._pool: ConnectionPool[Any] | None = None
        self._conn: psycopg.Connection[Row] | None = None
        self._prefix: str | None = None
        self._with_commit: list[tuple[Query, Params]] = []
        self.elapsed = 0.0

    def atomic(self) -> None:
        """Run this request's statements in one explicit transaction (before the first one)."""
        if self.read_only:
            return
        if self.implicit and self._conn is not None:
            raise RuntimeError("atomic() must come before the first statement")
        self.implicit = False

    def _run(self, sql: Query, params: Params) -> psycopg.Cursor[Row]:
        telemetry = tracecontext.active
        if telemetry is not None:  # a CLIENT span per round trip; off, this one check
            return telemetry.db_call(self, sql, params, self._timed)
        return self._timed(sql, params)

    def _timed(self, sql: Query, params: Params) -> psycopg.Cursor[Row]:
        started = time.perf_counter()
        try:
            if self._conn is None:
                return self._first(sql, params)
            return self._send(self._conn, sql, params)
        finally:
            self.elapsed += time.perf_counter() - started

    def _first(self, sql: Query, params: Params) -> psycopg.Cursor[Row]:
        pool = self._pool = get_pool(self._settings)
        retry_safe = self.read_only or not self.implicit  # nothing can commit twice
        for attempt in (1, 2):
            conn: psycopg.Connection[Row] = _live_connection(pool)
            try:
                self._conn = conn
                return self._send(conn, sql, params, first=True)
            except psycopg.OperationalError:
                self._conn = None
                if not conn.closed and not conn.broken:
                    pool.putconn(conn)
                    raise  # the server answered: a real error, not a dead connection
                pool.putconn(conn)  # the pool discards a closed connection
                pool.check()  # its idle siblings likely died too (a restart): replace them
                if attempt == 2 or not retry_safe:
                    raise
        raise AssertionError("unreachable")

    def _send(
        self, conn: psycopg.Connection[Row], sql: Query, params: Params, first: bool = False
    ) -> psycopg.Cursor[Row]:
        if self.implicit and self._settings.db_prepared_statements:
            # Extended protocol, both statements prepared once per connection, one Sync: one
            # round trip and one implicit transaction, as the simple-query message below.
            with conn.pipeline():
                conn.execute(_IMPERSONATE, self._impersonation)
                prepared = conn.execute(sql, params)
            return prepared
        if self.implicit:
            cursor = psycopg.ClientCursor(conn)
            if self._prefix is None:
                self._prefix = cursor.mogrify(_IMPERSONATE, self._impersonation)
            cursor.execute(self._prefix + ";\n" + cursor.mogrify(sql, params))
            cursor.nextset()
            return cursor
        if first:
            # BEGIN travels with the impersonation and the statement: one round trip. (Left
            # to psycopg, BEGIN would be sent and awaited on its own first.)
            with conn.pipeline():
                conn.execute("begin")
                conn.execute(_IMPERSONATE, self._impersonation)
                cursor_ = conn.execute(sql, params)
            return cursor_
        return conn.execute(sql, params)

    def all(self, sql: Query, params: Params = None) -> list[Row]:
        """All rows of a query, as dicts."""
        return self._run(sql, params).fetchall()

    def one(self, sql: Query, params: Params = None) -> Row | None:
        """The first row of a query, or None."""
        return self._run(sql, params).fetchone()

    def value(self, sql: Query, params: Params = None) -> Any:
        """The first column of the first row, or None."""
        row = self.one(sql, params)
        return None if row is None else next(iter(row.values()))

    def execute(self, sql: Query, params: Params = None) -> int:
        """Run a statement; return the number of rows it touched."""
        return self._run(sql, params).rowcount

    def execute_with_commit(self, sql: Query, params: Params = None) -> None:
        """Run a statement whose result nobody reads together with COMMIT: one round trip
        for both (the idempotency record rides with the commit of the work it records).
        Dropped if the transaction rolls back; if it fails, nothing commits and it raises."""
        if self.implicit:
            self.execute(sql, params)
        else:
            self._with_commit.append((sql, params))

    def _commit(self, conn: psycopg.Connection[Row]) -> None:
        if not self._with_commit:
            conn.execute("commit")
            return
        try:
            with conn.pipeline():
                for sql, params in self._with_commit:
                    conn.execute(sql, params)
                conn.execute("commit")
        except Exception:
            if not conn.closed:
                with contextlib.suppress(Exception):
                    conn.execute("rollback")
            raise

    def finish(self, commit: bool) -> None:
        """Commit or roll back and give the connection back; safe to call when never opened."""
        if commit and self._conn is None and self._with_commit and not self.implicit:
            # Work queued for COMMIT (an emitted event) but no statement ran: the first queued
            # statement opens the transaction, the rest ride with COMMIT as usual.
            sql, params = self._with_commit.pop(0)
            self._run(sql, params)
        conn, pool = self._conn, self._pool
        self._conn = None
        if conn is None or pool is None:
            return
        started = time.perf_counter()
        try:
            if self.implicit:
                pass  # every message was its own implicit transaction
            elif commit:
                telemetry = tracecontext.active
                if telemetry is not None:
                    telemetry.db_commit(self, self._commit, conn)
                else:
                    self._commit(conn)
            elif not conn.closed:
                # A broken connection cannot roll back; the pool discards it on putconn.
                with contextlib.suppress(Exception):
                    conn.execute("rollback")
        finally:
            pool.putconn(conn)
            self.elapsed += time.perf_counter() - started
