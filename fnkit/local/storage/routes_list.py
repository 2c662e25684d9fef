"""Listing: `POST /object/list/{bucket}` (v1, `storage.search`) and `POST /object/list-v2/{bucket}`.

Both run as the caller, so the select policies on `storage.objects` decide what is listed.
v1 answers entries relative to the prefix, folders with every column null but `name`, with
limit/offset paging. v2 answers `{hasNext, nextCursor, folders, objects}` with full names, a
`key` (the path segment at the prefix's depth) and Storage's continuation token: base64 of
`l:<last name>`, `o:<order>`, `c:<column>`, `a:<column value>` lines.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from werkzeug.wrappers import Response

from fnkit.local.storage.context import Call, json_body, json_response
from fnkit.local.storage.errors import StorageError

__all__ = ["list_objects", "list_objects_v2"]

SORT_COLUMNS = ("name", "updated_at", "created_at", "last_accessed_at")
ORDERS = ("asc", "desc")
MAX_KEYS = 1000
_CURSOR_PARTS = {"l": "startAfter", "o": "sortOrder", "c": "sortColumn", "a": "sortColumnAfter"}


def list_objects(call: Call, bucket: str) -> Response:
    """`POST /object/list/{bucket}`: `storage.search` as the caller (the policies filter)."""
    body = json_body(call.request)
    prefix = body.get("prefix")
    if not isinstance(prefix, str):
        raise StorageError.validation("body must have required property 'prefix'")
    limit = _integer(body, "limit", minimum=1, default=100)
    offset = _integer(body, "offset", minimum=0, default=0)
    search = body.get("search") or ""
    if not isinstance(search, str):
        raise StorageError.validation("body/search must be string")
    sort_by = body.get("sortBy") or {}
    column = sort_by.get("column", "name") if isinstance(sort_by, dict) else "name"
    order = sort_by.get("order", "asc") if isinstance(sort_by, dict) else "asc"
    if column not in SORT_COLUMNS:
        raise StorageError.validation(
            "body/sortBy/column must be equal to one of the allowed values"
        )
    if order not in ("asc", "desc"):
        raise StorageError.validation(
            "body/sortBy/order must be equal to one of the allowed values"
        )
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    levels = len((prefix + search).split("/"))
    with call.ctx.db.transaction(call.caller) as tx:
        rows = tx.all(
            "select name, id::text as id, updated_at, created_at, last_accessed_at, metadata"
            " from storage.search(%s, %s, %s, %s, %s, %s, %s, %s)",
            (
                prefix,
                bucket,
                limit,
                levels,
                offset,
                search,
                column,
                order,
            ),
        )
    return json_response(rows)


def _integer(body: dict[str, Any], name: str, *, minimum: int, default: int) -> int:
    value = body.get(name, default)
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise StorageError.validation(f"body/{name} must be integer")
    if value < minimum:
        raise StorageError.validation(f"body/{name} must be >= {minimum}")
    return value


def _cursor_decode(token: str) -> dict[str, str]:
    try:
        text = base64.b64decode(token).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise StorageError(
            400, "InvalidParameter", "Invalid Parameter continuation token"
        ) from None
    result = {"startAfter": "", "sortOrder": "asc"}
    for part in text.split("\n"):
        tag, sep, value = part.partition(":")
        if not sep or tag not in _CURSOR_PARTS or len(tag) != 1:
            raise StorageError(400, "InvalidParameter", "Invalid Parameter continuation token")
        result[_CURSOR_PARTS[tag]] = value
    return result


def _cursor_encode(fields: dict[str, str | None]) -> str:
    lines = [f"{tag}:{fields[name]}" for tag, name in _CURSOR_PARTS.items() if fields.get(name)]
    return base64.b64encode("\n".join(lines).encode()).decode()


def _v2_rows(
    call: Call, bucket: str, prefix: str, delimited: bool, limit: int, cursor: dict[str, Any]
) -> list[dict[str, Any]]:
    """Entries after the cursor: with the delimiter, a deeper name shows once as its folder."""
    order = "desc" if cursor.get("sortOrder") == "desc" else "asc"
    column = (
        cursor.get("sortColumn")
        if cursor.get("sortColumn") in ("updated_at", "created_at")
        else None
    )
    after = cursor.get("startAfter") or ""
    levels = len(prefix.split("/")) if prefix else 1
    cut = "pg_catalog.strpos(pg_catalog.substr(o.name, pg_catalog.length(%(prefix)s) + 1), '/')"
    cut_sql = cut if delimited else "0"
    compare = ">" if order == "asc" else "<"
    if column:
        position = (
            f"(date_trunc('milliseconds', e.{column}), e.name collate \"C\") {compare}"
            " (coalesce(nullif(%(column_after)s, '')::timestamptz, 'epoch'), %(after)s)"
        )
        ordering = (
            f"coalesce(date_trunc('milliseconds', e.{column}), 'epoch') {order},"
            f' e.name collate "C" {order}'
        )
    else:
        position = f'e.name collate "C" {compare} %(after)s'
        ordering = f'e.name collate "C" {order}'
    query = f"""
        with matched as (
          select o.*, {cut_sql} as cut from storage.objects o
          where o.bucket_id = %(bucket)s
            and pg_catalog.left(o.name, pg_catalog.length(%(prefix)s)) = %(prefix)s
        ), entries as (
          select pg_catalog.left(m.name, pg_catalog.length(%(prefix)s) + m.cut - 1) as name,
            null::text as id, min(m.created_at) as updated_at, min(m.created_at) as created_at,
            null::timestamptz as last_accessed_at, null::jsonb as metadata
          from matched m where m.cut > 0 group by 1
          union all
          select m.name, m.id::text, m.updated_at, m.created_at, m.last_accessed_at, m.metadata
          from matched m where m.cut = 0
        )
        select pg_catalog.split_part(e.name, '/', %(levels)s) as key, e.*
        from entries e
        where %(after)s = '' or {position}
        order by {ordering}
        limit %(limit)s
    """
    params = {
        "bucket": bucket,
        "prefix": prefix,
        "after": after,
        "column_after": cursor.get("sortColumnAfter") or "",
        "levels": levels,
        "limit": limit,
    }
    with call.ctx.db.transaction(call.caller) as tx:
        return tx.all(query, params)


def list_objects_v2(call: Call, bucket: str) -> Response:
    """`POST /object/list-v2/{bucket}`: Storage's `listObjectsV2`."""
    body = json_body(call.request, required=False)
    prefix = body.get("prefix") or ""
    if not isinstance(prefix, str):
        raise StorageError.validation("body/prefix must be string")
    limit = min(_integer(body, "limit", minimum=1, default=MAX_KEYS), MAX_KEYS)
    sort_by = body.get("sortBy")
    if not isinstance(sort_by, dict):
        sort_by = {}
    token = body.get("cursor")
    cursor: dict[str, Any] = (
        _cursor_decode(token)
        if isinstance(token, str) and token
        else {
            "sortOrder": sort_by.get("order"),
            "sortColumn": sort_by.get("column"),
        }
    )
    delimited = bool(body.get("with_delimiter"))
    rows = _v2_rows(call, bucket, prefix, delimited, limit + 1, cursor)
    has_next = len(rows) > limit
    rows = rows[:limit]
    folders = [
        {**r, "name": r["name"] if r["name"].endswith("/") else r["name"] + "/"}
        for r in rows
        if r["id"] is None
    ]
    objects = [r for r in rows if r["id"] is not None]
    result: dict[str, Any] = {"hasNext": has_next, "folders": folders, "objects": objects}
    if has_next and rows:
        last = rows[-1]
        column = cursor.get("sortColumn")
        result["nextCursor"] = _cursor_encode(
            {
                "startAfter": last["name"],
                "sortOrder": cursor.get("sortOrder"),
                "sortColumn": column,
                "sortColumnAfter": last[column].isoformat()
                if column in ("updated_at", "created_at") and last.get(column)
                else None,
            }
        )
        result["nextCursorKey"] = last["name"]
    return json_response(result)
