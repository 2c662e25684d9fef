"""What every route of the local Storage works with, built once per app."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from werkzeug.wrappers import Request, Response

from fnkit.local.config import LocalConfig
from fnkit.local.storage.blobs import Blobs
from fnkit.local.storage.caller import Caller
from fnkit.local.storage.database import Database
from fnkit.local.storage.errors import StorageError

__all__ = ["MAX_JSON_BODY", "Context", "json_body", "json_response"]

MAX_JSON_BODY = 1 << 20


@dataclass
class Context:
    """The settings, the metadata database and the files; `caller` is set per request."""

    config: LocalConfig
    db: Database
    blobs: Blobs

    def size_limit(self, bucket_limit: int | None) -> int:
        """Storage's `getStandardMaxFileSizeLimit`: the bucket's limit, never above the global."""
        limit = self.config.file_size_limit
        return min(limit, bucket_limit) if bucket_limit is not None else limit


@dataclass(frozen=True)
class Call:
    """One request as a route sees it."""

    ctx: Context
    request: Request
    caller: Caller


def json_response(data: Any, status: int = 200) -> Response:
    return Response(json.dumps(data, default=_jsonable), status, content_type="application/json")


def _jsonable(value: Any) -> str:
    """Timestamps as Postgres renders them in JSON (ISO 8601 with offset)."""
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def json_body(request: Request, *, required: bool = True) -> dict[str, Any]:
    """The JSON object body; fastify's words when it is missing or not an object.

    At most fastify's default `bodyLimit` (1 MiB) is read: a larger declared body is refused
    with 413 before any of it is, so no client makes the service hold an unbounded body."""
    request.max_content_length = MAX_JSON_BODY
    raw = request.get_data(cache=True)
    if not raw.strip():
        if required:
            raise StorageError.validation("body must be object")
        return {}
    _check_json_type(request.mimetype)
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
        raise StorageError(
            400, "InvalidRequest", "Body is not valid JSON", "Bad Request", 400
        ) from None
    if not isinstance(value, dict):
        raise StorageError.validation("body must be object")
    return value


def _check_json_type(mimetype: str) -> None:
    """fastify's content-type parsers: JSON is parsed, `text/plain` arrives as a string (not
    the object the schema wants), anything else has no parser (415). So a form or an XML
    body is never read as JSON, whatever it holds."""
    if mimetype == "application/json" or mimetype.endswith("+json"):
        return
    if mimetype == "text/plain":
        raise StorageError.validation("body must be object")
    raise StorageError(
        415,
        "FST_ERR_CTP_INVALID_MEDIA_TYPE",
        f"Unsupported Media Type: {mimetype or 'undefined'}",
        "Unsupported Media Type",
        415,
    )


def required_string(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if value is None:
        raise StorageError.validation(f"body must have required property '{name}'")
    if not isinstance(value, str):
        raise StorageError.validation(f"body/{name} must be string")
    return value
