"""Read-through cache in Upstash with per-workspace versions: invalidation is one INCR.

An entry stores the workspace version it was computed under. A read fetches the current
version and the entry in one round trip (MGET) and trusts the entry only when the versions
match; a write bumps the version after its transaction commits, so no reader can cache
pre-commit data under the new version. Keys never need scanning.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any, TypeVar

from shared.envelope import dumps
from shared.logs import log
from shared.redis_client import get_redis
from shared.request import Request

T = TypeVar("T")


def _version_key(scope: str) -> str:
    return f"cache:v:{scope}"


def _entry_key(request: Request, namespace: str, scope: str, params: Any) -> str:
    digest = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[
        :32
    ]
    return f"cache:e:{request.function}:{namespace}:{scope}:{digest}"


def cached(
    request: Request,
    namespace: str,
    scope: str,
    params: Any,
    compute: Callable[[], Any],
    ttl: int = 60,
) -> tuple[Any, bool]:
    """Return (value, hit). `params` must hold everything that changes the answer,
    including what the caller may see; `scope` is the unit that writes invalidate."""
    redis = get_redis(request.settings)
    entry_key = _entry_key(request, namespace, scope, params)
    try:
        version, entry = redis.mget(_version_key(scope), entry_key)
    except Exception as exc:  # a cache outage costs speed, never correctness
        log("WARNING", "cache unavailable", request_id=request.request_id, error=type(exc).__name__)
        return compute(), False
    version = version or "0"
    if entry:
        stored = json.loads(entry)
        if stored.get("v") == version:
            return stored["data"], True
    value = compute()
    try:
        redis.set(entry_key, dumps({"v": version, "data": value}), ex=ttl)
    except Exception as exc:
        log(
            "WARNING", "cache write failed", request_id=request.request_id, error=type(exc).__name__
        )
    return value, False


def invalidate_after_commit(request: Request, scope: str) -> None:
    """Bump the scope's version once this request's transaction commits."""

    def bump() -> None:
        try:
            get_redis(request.settings).incr(_version_key(scope))
        except Exception as exc:
            log(
                "ERROR",
                "cache invalidation failed",
                request_id=request.request_id,
                scope=scope,
                error=type(exc).__name__,
            )

    if bump not in request.after_commit:
        request.after_commit.append(bump)
