"""Idempotency-Key on POST, PUT and PATCH, recorded in the same transaction as the change.

Scope is caller, function, route and key; the fingerprint is the method, path, query,
canonical body and `If-Match`. The same key with another request is 422 IDEMPOTENCY_KEY_REUSED. A
concurrent duplicate waits on the key's row until the first transaction ends (at most
`lock_timeout`, then 409 IDEMPOTENCY_KEY_IN_USE with `Retry-After`) and then replays.
Only successful outcomes are recorded: a 4xx changed nothing and a 5xx rolled back, so a
retry of either simply runs again.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from shared import tracecontext
from shared.envelope import Answer, Result, dumps
from shared.errors import BadRequest, IdempotencyKeyInUse, IdempotencyKeyReused
from shared.pipeline import Next
from shared.request import Request

_REPLAYED_HEADERS = ("ETag", "Location")


def fingerprint(request: Request) -> str:
    body = json.dumps(request.json, sort_keys=True, separators=(",", ":"))
    query = sorted((k, v) for k, values in request.args.items() for v in values)
    # If-Match changes what the request means (which version it may overwrite).
    condition = request.headers.get("If-Match")
    material = json.dumps(
        [request.method, request.path, query, body, condition], separators=(",", ":")
    )
    return hashlib.sha256(material.encode()).hexdigest()


def idempotency_step(request: Request, nxt: Next) -> Result:
    route = request.route
    if route is None or not route.idempotent:
        return nxt(request)
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return nxt(request)
    if request.claims is None or not request.claims.sub:
        # Keys are scoped to a verified caller. Without one, all that tells callers apart is
        # an IP address, which NAT and proxies share: a stranger could replay your answer.
        return nxt(request)
    # Visible ASCII (0x21-0x7e): printable ASCII but the space; checked without a regex, which
    # a cold start would compile.
    if not (0 < len(key) <= 255 and key.isascii() and key.isprintable() and " " not in key):
        raise BadRequest("Idempotency-Key must be 1 to 255 visible ASCII characters")
    scope = (request.client_ip, request.function, f"{route.method} {route.path}", key)
    fp = fingerprint(request)
    request.db.atomic()  # the record must commit or roll back with the work
    try:
        claim = request.db.one(
            "select * from private.idempotency_claim(%s, %s, %s, %s, %s)", (*scope, fp)
        )
    except Exception as exc:
        if getattr(exc, "sqlstate", None) == "55P03":  # lock_timeout: the first is still running
            raise IdempotencyKeyInUse(headers={"Retry-After": "1"}) from None
        raise
    assert claim is not None
    if not claim["claimed"]:
        if claim["fingerprint"] != fp:
            raise IdempotencyKeyReused()
        if claim["status_code"] is None:
            raise IdempotencyKeyInUse(headers={"Retry-After": "1"})
        telemetry = tracecontext.active
        if telemetry is not None:
            telemetry.idempotent_replay(request.function, f"{route.method} {route.path}")
        return _replay(claim["status_code"], claim["response"])
    result = nxt(request)
    if result.status < 400:
        request.db.execute_with_commit(
            "select private.idempotency_complete(%s, %s, %s, %s, %s, %s::jsonb)",
            (*scope, result.status, dumps(_stored(result))),
        )
    return result


def _stored(result: Result) -> dict[str, Any]:
    headers = {k: v for k, v in result.headers.items() if k in _REPLAYED_HEADERS}
    return {
        "data": result.data,
        "pagination": result.pagination,
        "meta": result.meta,
        "headers": headers,
        "answer": result.answer,
    }


def _replay(status: int, stored: dict[str, Any]) -> Result:
    stored_answer = stored.get("answer") or ("raw" if stored.get("raw") else "envelope")
    answer: Answer = "envelope"
    if stored_answer == "raw":
        answer = "raw"
    elif stored_answer == "auth_hook":
        answer = "auth_hook"
    return Result(
        data=stored.get("data"),
        status=status,
        headers={**stored.get("headers", {}), "Idempotent-Replayed": "true"},
        pagination=stored.get("pagination"),
        meta=stored.get("meta") or {},
        answer=answer,
    )
