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
import hashlib
import json
from typing import Any

from shared.errors import ValidationFailed

_MAX_CURSOR = 1024


def _fingerprint(scope: Any) -> str:
    return hashlib.sha256(json.dumps(scope, sort_keys=True, default=str).encode()).hexdigest()[:16]


def encode_cursor(scope: Any, values: list[Any]) -> str:
    """Cursor for the page after the row whose sort values are `values`."""
    raw = json.dumps([_fingerprint(scope), values], default=str, separators=(",", ":"))
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
        return values
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise ValidationFailed(
            "The cursor is not valid for this query",
            details=[
                {
                    "loc": ["query", "cursor"],
                    "type": "cursor_invalid",
                    "message": "Use next_cursor from the previous page of the same query",
                }
            ],
        ) from None


def page(
    rows: list[dict[str, Any]], limit: int, scope: Any, sort_values: Any
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Trim a `limit + 1` fetch to a page and build `meta.pagination`."""
    has_more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(scope, sort_values(rows[-1])) if has_more and rows else None
    return rows, {"next_cursor": next_cursor, "limit": limit}
