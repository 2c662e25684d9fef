"""The one response shape every function returns, and the JSON encoding behind it.

Success: {"success": true, "data": ..., "meta": {...}}.
Failure: {"success": false, "error": {"code", "message", "details"?}, "meta": {...}}.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
from pydantic import BaseModel

from shared.errors import ApiError

#: How a route answers. "envelope": the envelope above. "raw": a success is the handler's
#: document as is (errors stay in the envelope). "auth_hook": a success is the handler's
#: document (Supabase Auth hooks read `{"claims": ...}` or `{}`), and an error is the
#: envelope whose `error` also carries the hook contract's `http_code`, so one body is both
#: `{"error": {"http_code": ..., "message": ...}}` for Supabase Auth and our envelope for
#: everything else (logs, tests, clients).
Answer = Literal["envelope", "raw", "auth_hook"]


def _default(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def dumpb(payload: Any) -> bytes:
    """Compact UTF-8 JSON that understands UUIDs, datetimes, decimals and pydantic models.

    orjson does the work (encoding is most of a list response's CPU with the standard
    library); the standard library takes over for what orjson refuses, such as integers
    beyond 64 bits. Keys that are not text (`OPT_NON_STR_KEYS`) are allowed on a second try
    only: the option costs every dict ~25% more (9 µs of a 50-task page), and text keys come
    out the same with it or without (tests/unit/test_envelope_json.py).
    """
    try:
        return orjson.dumps(payload, default=_default)
    except (orjson.JSONEncodeError, TypeError):
        pass
    try:
        return orjson.dumps(payload, default=_default, option=orjson.OPT_NON_STR_KEYS)
    except (orjson.JSONEncodeError, TypeError):
        text = json.dumps(payload, default=_default, separators=(",", ":"), ensure_ascii=False)
        return text.encode()


def dumps(payload: Any) -> str:
    """`dumpb` as text."""
    return dumpb(payload).decode()


@dataclass(slots=True)
class Result:
    """A response before it becomes HTTP; what a handler returns when it needs more than 200.

    `pagination` lands in `meta.pagination`; `headers` are added to the response; `answer`
    is the route's format (the pipeline sets it), kept so an idempotent replay answers alike.
    """

    data: Any = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    pagination: dict[str, Any] | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    answer: Answer = "envelope"


def success_body(result: Result, request_id: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"request_id": request_id, **result.meta}
    if result.pagination is not None:
        meta["pagination"] = result.pagination
    return {"success": True, "data": result.data, "meta": meta}


def error_body(error: ApiError, request_id: str, answer: Answer = "envelope") -> dict[str, Any]:
    body: dict[str, Any] = {"code": error.code, "message": error.message}
    if error.details:
        body["details"] = error.details
    if answer == "auth_hook":
        body["http_code"] = error.status
    return {"success": False, "error": body, "meta": {"request_id": request_id}}
