"""Opaque keyset cursors: the last row's sort values, bound to the query that made them.

A cursor is base64url JSON of `[fingerprint, values]`. The fingerprint is a short hash of the
sort and filters, so a cursor replayed against a different query is refused instead of
silently skipping rows. It is not a signature: anyone can build a cursor, which is harmless,
because it only says where a page starts, its values are type-checked (a malformed one is a
422, never a 500), they reach SQL only as parameters, and RLS still decides what is seen.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from psycopg import sql

from shared.errors import ValidationFailed

_MAX_CURSOR = 1024
# The encoders `json.dumps(..., sort_keys=True, default=str)` and
# `json.dumps(..., default=str, separators=(",", ":"))` build on every call, built once (the
# same text: json.dumps is the encoder's `encode`); a list page with a next page uses both.
_SCOPE_JSON = json.JSONEncoder(sort_keys=True, default=str)
_CURSOR_JSON = json.JSONEncoder(default=str, separators=(",", ":"))


def _fingerprint(scope: Any) -> str:
    return hashlib.sha256(_SCOPE_JSON.encode(scope).encode()).hexdigest()[:16]


def encode_cursor(scope: Any, values: list[Any]) -> str:
    """Cursor for the page after the row whose sort values are `values`."""
    raw = _CURSOR_JSON.encode([_fingerprint(scope), values])
    return base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode()


def decode_cursor(cursor: str, scope: Any, types: tuple[type, ...]) -> list[Any]:
    """The sort values in a cursor made for this `scope`; 422 when it is not one of ours."""
    try:
        if len(cursor) > _MAX_CURSOR:
            raise ValueError("too long")
        padded = cursor + "=" * (-len(cursor) % 4)
        fingerprint, values = json.loads(base64.urlsafe_b64decode(padded.encode()).decode())
        if fingerprint != _fingerprint(scope):
            raise ValueError("made for another query")
        if not isinstance(values, list) or len(values) != len(types):
            raise ValueError("wrong shape")
        for value, expected in zip(values, types, strict=True):
            if value is not None and not isinstance(value, expected):
                raise ValueError("wrong type")
            if isinstance(value, str):
                # Text Postgres cannot take as a parameter: NUL, or a lone surrogate (not
                # encodable as UTF-8). Refused here so that no caller has to remember.
                value.encode("utf-8")
                if "\x00" in value:
                    raise ValueError("NUL")
        return values
    except (ValueError, TypeError, binascii.Error, UnicodeError):
        raise _invalid_cursor() from None


def page(
    rows: list[dict[str, Any]], limit: int, scope: Any, sort_values: Any
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Trim a `limit + 1` fetch to a page and build `meta.pagination`."""
    has_more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(scope, sort_values(rows[-1])) if has_more and rows else None
    return rows, {"next_cursor": next_cursor, "limit": limit}


@dataclass(frozen=True)
class KeysetSort:
    """A sort a list accepts: a column with a `(scope, column, id)` index, and a direction.

    Keyset conditions are row comparisons, which Postgres turns into index conditions, so a
    page costs the same at row 50 and at row 100,000. The SQL is composed with `psycopg.sql`
    from the column and alias given here by the function, as identifiers; input only ever
    travels as parameters.
    """

    column: str
    descending: bool
    parse: Callable[[Any], Any]
    json_type: type
    nullable: bool = False
    alias: str = "t"

    def _column(self, name: str) -> sql.Identifier:
        return sql.Identifier(self.alias, name)

    def order_by(self) -> sql.Composed:
        way = sql.SQL(" desc" if self.descending else "")
        return sql.SQL(" order by {}{}, {}{}").format(
            self._column(self.column), way, self._column("id"), way
        )

    def after(self) -> sql.Composed:
        op = sql.SQL("<" if self.descending else ">")
        return sql.SQL("({}, {}) {} (%s, %s)").format(
            self._column(self.column), self._column("id"), op
        )

    def ranges(self, after: tuple[Any, str] | None) -> list[tuple[list[sql.Composable], list[Any]]]:
        """The index ranges a page reads, in order: (conditions, parameters) for each.

        A nullable column has two: the rows with a value in order, then the rows without
        (nulls last in both directions) by id. A cursor in the second skips the first.
        """
        if not self.nullable:
            return [([self.after()], list(after)) if after else ([], [])]
        column = self._column(self.column)
        valued = sql.SQL("{} is not null").format(column)
        empty = sql.SQL("{} is null").format(column)
        if after is None:
            return [([valued], []), ([empty], [])]
        if after[0] is None:
            op = sql.SQL("<" if self.descending else ">")
            return [([empty, sql.SQL("{} {} %s").format(self._column("id"), op)], [after[1]])]
        return [([valued, self.after()], list(after)), ([empty], [])]

    def cursor_values(self, row: dict[str, Any]) -> list[Any]:
        value = row[self.column]
        return [value.isoformat() if isinstance(value, dt.date) else value, str(row["id"])]

    def decode(self, cursor: str, scope: Any) -> tuple[Any, str]:
        """The (sort value, id) a cursor holds, type-checked: a forged one is a 422."""
        value, last_id = decode_cursor(cursor, scope, (self.json_type, str))
        try:
            if last_id is None or (value is None and not self.nullable):
                raise ValueError("missing value")
            return (None if value is None else self.parse(value)), str(UUID(last_id))
        except (ValueError, TypeError):
            raise _invalid_cursor() from None


def _invalid_cursor() -> ValidationFailed:
    return ValidationFailed(
        "The cursor is not valid for this query",
        details=[
            {
                "loc": ["query", "cursor"],
                "type": "cursor_invalid",
                "message": "Use next_cursor from the previous page of the same query",
            }
        ],
    )
