"""Read-through cache in Upstash, keyed by the version of the data it was computed from.

The caller supplies the version, read from the source of truth in a query it makes anyway
(for example a per-tenant counter that statement triggers bump in every transaction that
changes the data, read in the same query as the caller's membership check). An entry keeps
the version it was computed under and is trusted only while that is still the version: a
read is one GET, a write costs the cache nothing, and no write path can forget to
invalidate. An entry is never stored under a version newer than its data, because the
version is read before the data is computed. GET and SET go through `shared.upstash_rest`
(no upstash-redis import on this path).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import orjson

from shared import tracecontext
from shared.envelope import dumpb
from shared.logs import log
from shared.request import Request
from shared.upstash_rest import get_upstash


def _entry_key(request: Request, namespace: str, params: Any) -> str:
    canonical = orjson.dumps(params, option=orjson.OPT_SORT_KEYS, default=str)
    return f"cache:{request.function}:{namespace}:{hashlib.sha256(canonical).hexdigest()[:32]}"


def cached(
    request: Request,
    namespace: str,
    version: int | str,
    params: Any,
    compute: Callable[[], Any],
    ttl: int = 60,
) -> tuple[Any, bool]:
    """Return (value, hit). `params` must hold everything that changes the answer,
    including what the caller may see; `version` is where the data stands now."""
    upstash = get_upstash(request.settings)
    key = _entry_key(request, namespace, params)
    version = str(version)
    try:
        entry = upstash.command("GET", key)
    except Exception as exc:  # a cache outage costs speed, never correctness
        log("WARNING", "cache unavailable", request_id=request.request_id, error=type(exc).__name__)
        return compute(), False
    hit = False
    if entry:
        stored = orjson.loads(entry)
        hit = stored.get("v") == version
    telemetry = tracecontext.active
    if telemetry is not None:
        telemetry.cache_lookup(request.function, namespace, hit)
    if hit:
        return stored["data"], True
    value = compute()
    try:
        upstash.command("SET", key, dumpb({"v": version, "data": value}).decode(), "EX", ttl)
    except Exception as exc:
        log(
            "WARNING", "cache write failed", request_id=request.request_id, error=type(exc).__name__
        )
    return value, False
