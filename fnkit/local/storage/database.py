"""Transactions as the caller, and as Storage's own superuser, on one pooled connection.

Storage runs its metadata queries in a transaction that impersonates the caller exactly as
PostgREST does (`set_config('role', ...)`, `set_config('request.jwt.claims', ...)`), so the
policies on `storage.objects` and `storage.buckets` decide; a few steps it runs "as superuser"
(finding a bucket's limits, completing an upload) inside the same transaction. `Tx` offers
both: it starts as the caller and `superuser()` switches to the connection's own (superuser)
role for a block, with `set local role none`, then back.

The pool is opened lazily (no connection until the first request) and is small: this is a
development service.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool

from fnkit.local.storage.caller import Caller
from fnkit.local.storage.errors import from_database, invalid_text

__all__ = ["Database", "Tx"]

Row = dict[str, Any]
Params = Sequence[Any] | Mapping[str, Any]

_IMPERSONATE = (
    "select set_config('role', %s, true), set_config('request.jwt.claims', %s, true),"
    " set_config('request.jwt.claim.sub', %s, true), set_config('request.jwt.claim.role', %s, true)"
)


class Rollback(Exception):
    """Raised inside `Tx.probe` to undo a permission probe."""


class Tx:
    """One transaction: queries run as the caller unless inside `superuser()`."""

    def __init__(self, conn: psycopg.Connection[DictRow], caller: Caller) -> None:
        self._conn = conn
        self._caller = caller
        self._privileged = 0

    def _impersonate(self) -> None:
        caller = self._caller
        self._conn.execute(
            _IMPERSONATE,
            (caller.role, json.dumps(caller.claims), caller.sub or "", caller.role),
        )

    def _execute(self, query: str, params: Params) -> psycopg.Cursor[DictRow]:
        """Run one statement; a database error becomes Storage's error for its SQLSTATE."""
        try:
            return self._conn.execute(query.encode(), params)
        except psycopg.Error as exc:
            raise from_database(exc) from exc
        except UnicodeEncodeError:  # a lone surrogate from a JSON escape: no UTF-8 for it
            raise invalid_text() from None

    def one(self, query: str, params: Params = ()) -> Row | None:
        return self._execute(query, params).fetchone()

    def all(self, query: str, params: Params = ()) -> list[Row]:
        return self._execute(query, params).fetchall()

    def run(self, query: str, params: Params = ()) -> int:
        return self._execute(query, params).rowcount

    @contextmanager
    def superuser(self) -> Iterator[Tx]:
        """Storage's `asSuperUser()`: the block bypasses the policies, then the caller is back.

        Blocks nest (a signed upload runs wholly as superuser, its row write too)."""
        if self._privileged == 0:
            self._conn.execute("set local role none")
        self._privileged += 1
        try:
            yield self
        finally:
            self._privileged -= 1
            failed = self._conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR
            if self._privileged == 0 and not failed:
                self._impersonate()

    @contextmanager
    def probe(self) -> Iterator[Tx]:
        """Storage's `testPermission`: run the block as the caller, then undo it, keep errors."""
        try:
            with self._conn.transaction():
                yield self
                raise Rollback
        except Rollback:
            pass


class Database:
    """A lazily opened pool over the superuser URL of `LocalConfig`."""

    def __init__(self, url: str, max_size: int = 4) -> None:
        self._url = url
        self._max_size = max_size
        self._pool: ConnectionPool[psycopg.Connection[DictRow]] | None = None
        self._lock = threading.Lock()

    def _get_pool(self) -> ConnectionPool[psycopg.Connection[DictRow]]:
        if self._pool is None:
            with self._lock:
                if self._pool is None:
                    self._pool = ConnectionPool(
                        self._url,
                        connection_class=psycopg.Connection[DictRow],
                        min_size=0,
                        max_size=self._max_size,
                        kwargs={
                            "prepare_threshold": None,
                            "autocommit": True,
                            "row_factory": dict_row,
                        },
                        max_idle=60,
                        timeout=10,
                        # A connection the server ended (a restart, pg_terminate_backend) is
                        # replaced on checkout instead of failing the next request with a 500.
                        check=ConnectionPool.check_connection,
                        open=True,
                        name="fnkit-local-storage",
                    )
        return self._pool

    @contextmanager
    def transaction(self, caller: Caller) -> Iterator[Tx]:
        """A transaction impersonating `caller`; committed when the block ends without error."""
        with self._get_pool().connection() as conn, conn.transaction():
            tx = Tx(conn, caller)
            tx._impersonate()
            yield tx

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None
