"""The steps every request passes, as `(request, next)` middleware composed once per route.

Order (outer to inner): body → auth → rate limit → validation → the app's own middleware →
transaction → idempotency → handler. The transaction wraps idempotency so that the key's
record commits or rolls back with the handler's work. `shared.app` composes each route's
chain at its first request, leaving out the steps that would do nothing on it, and checks
the body (`read_body`) before the chain only for the methods that carry one. Routing (with
CORS preflights), request ids, error mapping, the response and the log line wrap the chain
in `shared.app`, because they must also cover requests that match no route.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from shared.auth import TokenVerifier, require_level
from shared.envelope import Result
from shared.errors import ApiError, PayloadTooLarge, UnsupportedMediaType, ValidationFailed
from shared.ratelimit import RateLimiter
from shared.request import Request
from shared.validation import parse_json, query_data, validate

Next = Callable[[Request], Result]
Middleware = Callable[[Request, Next], Result]


def compose(middleware: Sequence[Middleware], endpoint: Next) -> Next:
    """Fold middleware around the endpoint once, so a request pays no composition cost."""
    chain = endpoint
    for step in reversed(middleware):
        chain = _bind(step, chain)
    return chain


def _bind(step: Middleware, nxt: Next) -> Next:
    return lambda request: step(request, nxt)


BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def read_body(request: Request, read: Callable[[int], bytes], max_bytes: int) -> None:
    """Size (413), content type (415) and JSON (400) before anything costly runs.

    The outermost step of a request whose method carries a body (`BODY_METHODS`); the app
    calls it before the chain, so other requests pay nothing for it."""
    declared = request.header("Content-Length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLarge(f"The body may be at most {max_bytes} bytes")
    raw = read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise PayloadTooLarge(f"The body may be at most {max_bytes} bytes")
    if raw.strip():
        if not _is_json(request.header("Content-Type")):
            raise UnsupportedMediaType()
        request.raw_body = raw
        route = request.route
        if route is None or isinstance(route.auth, str):
            request.json = parse_json(raw)
        # else a machine caller verifies these exact bytes first (auth_step parses)


def auth_step(verifier: TokenVerifier) -> Middleware:
    def step(request: Request, nxt: Next) -> Result:
        assert request.route is not None
        level = request.route.auth
        if isinstance(level, str):
            request.claims = verifier.claims_for(
                request.header("Authorization"), request.header("apikey")
            )
            require_level(request.claims, level)
        else:  # a machine caller: verify the raw bytes, then parse them
            request.claims = level.authenticate(request)
            if request.raw_body.strip():
                request.json = parse_json(request.raw_body)
        return nxt(request)

    return step


def rate_limit_step(limiter: RateLimiter) -> Middleware:
    def step(request: Request, nxt: Next) -> Result:
        assert request.route is not None
        if request.route.rate is None:  # declared unlimited (internal or bench routes)
            return nxt(request)
        claims = request.claims
        who = (
            f"user:{claims.sub}" if claims is not None and claims.sub else f"ip:{request.client_ip}"
        )
        headers = limiter.check(request.route.rate, who, request.request_id)
        request.response_headers.update(headers)
        return nxt(request)

    return step


def _required_body(request: Request) -> Any:
    if request.json is None:
        raise ValidationFailed(
            details=[{"loc": ["body"], "type": "missing", "message": "A JSON body is required"}]
        )
    return request.json


def validation_step(request: Request, nxt: Next) -> Result:
    """Path, query and body models, all problems reported together.

    Each model's data is read only when it is validated, and whether that data can hold a
    NUL character at all is judged from the raw text (see `validate`)."""
    route = request.route
    assert route is not None
    problems: list[dict[str, Any]] = []
    models = request.models
    if route.path_model is not None:
        try:
            models["path"] = validate(route.path_model, request.path_params, "path", True)
        except ValidationFailed as exc:
            problems.extend(exc.details or [])
    if route.query is not None:
        raw = request.query_string
        nul = b"%00" in raw or b"\x00" in raw
        try:
            data = query_data(route.query, request.args)
            models["query"] = validate(route.query, data, "query", nul)
        except ValidationFailed as exc:
            problems.extend(exc.details or [])
    if route.body is not None:
        # Strict JSON has no raw control characters in strings: a NUL is only `\u0000`.
        nul = b"\\u0000" in request.raw_body
        try:
            models["body"] = validate(route.body, _required_body(request), "body", nul)
        except ValidationFailed as exc:
            problems.extend(exc.details or [])
    if problems:
        raise ValidationFailed(details=problems)
    return nxt(request)


def transaction_step(request: Request, nxt: Next) -> Result:
    """Commit the caller's transaction when the handler succeeds, roll back otherwise."""
    try:
        result = nxt(request)
    except BaseException:
        tx = request.transaction
        if tx is not None:
            tx.finish(commit=False)
        raise
    tx = request.transaction
    committed = result.status < 400
    if tx is not None:
        tx.finish(commit=committed)
    if committed:
        for callback in request.after_commit:
            callback()
    return result


def call_endpoint(request: Request) -> Result:
    route = request.route
    assert route is not None
    try:
        out = route.endpoint(request, **request.models)
    except ApiError as error:
        if route.answer == "auth_hook" and error.status < 500:
            error.hook_refusal = True  # answered 200, see ApiError.hook_refusal
        raise
    result = out if isinstance(out, Result) else Result(data=out, status=route.status)
    result.answer = route.answer
    return result
