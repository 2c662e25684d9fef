"""The fixed parts of every function's OpenAPI document: the envelope's components and the
headers a route may read. Named so generated clients get readable types that shadow nothing
(`ErrorEnvelope`, not `Error`), with `details` items typed (`loc`, `type`, `message`).
"""

from __future__ import annotations

from typing import Any

REF_TEMPLATE = "#/components/schemas/{model}"


def ref(name: str) -> dict[str, str]:
    return {"$ref": REF_TEMPLATE.format(model=name)}


_ERROR_DETAIL: dict[str, Any] = {
    "type": "object",
    "description": "One problem: where (`loc`, e.g. body.title), what kind, and a message.",
    "required": ["loc", "type", "message"],
    "properties": {
        "loc": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
        "type": {"type": "string"},
        "message": {"type": "string"},
    },
}
_ERROR_INFO: dict[str, Any] = {
    "type": "object",
    "required": ["code", "message"],
    "properties": {
        "code": {"type": "string", "description": "Stable, UPPER_SNAKE (VALIDATION_FAILED)"},
        "message": {"type": "string"},
        "details": {"type": "array", "items": ref("ErrorDetail")},
    },
}
_ERROR_ENVELOPE: dict[str, Any] = {
    "type": "object",
    "required": ["success", "error", "meta"],
    "properties": {
        "success": {"const": False},
        "error": ref("ErrorInfo"),
        "meta": ref("Meta"),
    },
}
_PAGINATION: dict[str, Any] = {
    "type": "object",
    "description": "Pass `next_cursor` as `cursor` for the next page; null on the last one.",
    "properties": {
        "next_cursor": {"type": ["string", "null"]},
        "limit": {"type": "integer"},
    },
}
_META: dict[str, Any] = {
    "type": "object",
    "required": ["request_id"],
    "properties": {
        "request_id": {"type": "string"},
        "pagination": ref("Pagination"),
        "cache": {"type": "string", "enum": ["hit", "miss"]},
    },
    "additionalProperties": True,
}
BASE_COMPONENTS = {
    "Meta": _META,
    "Pagination": _PAGINATION,
    "ErrorEnvelope": _ERROR_ENVELOPE,
    "ErrorInfo": _ERROR_INFO,
    "ErrorDetail": _ERROR_DETAIL,
}
# The headers a route may read, declared where they apply (shared.idempotency for POST, PUT
# and PATCH that allow it; shared.conditional for routes marked `@conditional`).
IDEMPOTENCY_KEY: dict[str, Any] = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Send the same key to retry safely: the first answer is replayed.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x21-\\x7e]+$"},
}
IF_MATCH: dict[str, Any] = {
    "name": "If-Match",
    "in": "header",
    "required": False,
    "description": 'The version you read, as its ETag: "3". A stale one is 412.',
    "schema": {"type": "string", "pattern": '^(W/)?("[0-9]{1,10}"|[0-9]{1,10})$'},
}
