"""The error vocabulary every function speaks: one class per stable code.

Handlers raise these; the pipeline turns any of them into the envelope with the right status
and headers. Anything else that escapes is mapped once, by the function's `ErrorMap`
(`shared.error_map`), so a caller never sees a traceback.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error with a stable code, an HTTP status and a message safe to show a caller."""

    status: int = 500
    code: str = "INTERNAL"
    default_message: str = "Internal error"
    #: Seconds a caller should wait before trying again, sent as `Retry-After` (503, 504).
    retry_after_s: int | None = None
    #: Set by the pipeline when an Auth hook's handler refused (a 4xx it raised): Supabase Auth
    #: reads a hook's refusal only from a 2xx answer (any other status becomes its own 500,
    #: "Unexpected status code returned from hook"), so the refusal is sent with 200 and the
    #: status the user should get in the body's `error.http_code`.
    hook_refusal: bool = False

    def __init__(
        self,
        message: str | None = None,
        *,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.details = details
        self.headers = headers or {}
        if self.retry_after_s is not None:
            self.headers.setdefault("Retry-After", str(self.retry_after_s))
        super().__init__(self.message)


def detail(loc: list[str | int], kind: str, message: str) -> dict[str, Any]:
    """One entry of an error's `details`: where, what kind, and a message."""
    return {"loc": loc, "type": kind, "message": message}


class BadRequest(ApiError):
    status, code, default_message = 400, "BAD_REQUEST", "Bad request"


class InvalidJson(ApiError):
    status, code, default_message = 400, "INVALID_JSON", "The body is not valid JSON"


class Unauthenticated(ApiError):
    status, code, default_message = 401, "UNAUTHENTICATED", "A valid bearer token is required"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


class MfaRequired(ApiError):
    status, code, default_message = 403, "MFA_REQUIRED", "This action needs a session with aal2"


class Forbidden(ApiError):
    status, code, default_message = 403, "FORBIDDEN", "You may not do this"


class NotFound(ApiError):
    status, code, default_message = 404, "NOT_FOUND", "Not found"


class MethodNotAllowed(ApiError):
    status, code, default_message = 405, "METHOD_NOT_ALLOWED", "Method not allowed"

    def __init__(self, allowed: list[str]) -> None:
        super().__init__(headers={"Allow": ", ".join(allowed)})


class Conflict(ApiError):
    status, code, default_message = 409, "CONFLICT", "The request conflicts with existing data"


class VersionConflict(ApiError):
    status, code = 409, "VERSION_CONFLICT"
    default_message = "The resource changed since you read it"


class PreconditionFailed(ApiError):
    """A stale `If-Match` (RFC 9110 §13.1.1); a stale `version` in a body is VersionConflict."""

    status, code = 412, "PRECONDITION_FAILED"
    default_message = "The If-Match version is no longer current"


class IdempotencyKeyInUse(ApiError):
    status, code = 409, "IDEMPOTENCY_KEY_IN_USE"
    default_message = "A request with this Idempotency-Key is still in progress"


class PayloadTooLarge(ApiError):
    status, code, default_message = 413, "PAYLOAD_TOO_LARGE", "The body is too large"


class UnsupportedMediaType(ApiError):
    status, code = 415, "UNSUPPORTED_MEDIA_TYPE"
    default_message = "The body must be application/json"


class ValidationFailed(ApiError):
    status, code, default_message = 422, "VALIDATION_FAILED", "The request is not valid"


class IdempotencyKeyReused(ApiError):
    status, code = 422, "IDEMPOTENCY_KEY_REUSED"
    default_message = "This Idempotency-Key was used with a different request"


class RateLimited(ApiError):
    status, code, default_message = 429, "RATE_LIMITED", "Too many requests"


class Internal(ApiError):
    status, code, default_message = 500, "INTERNAL", "Internal error"


class Unavailable(ApiError):
    """A dependency is down or was lost mid-request (a pooled connection, Upstash, Auth).

    Nothing was committed, so the same request may be sent again; a few seconds is what a
    pool needs to reconnect after a database restart or a pooler's failover.
    """

    status, code, default_message = 503, "UNAVAILABLE", "A service this needs is unavailable"
    retry_after_s = 5


class Timeout(ApiError):
    status, code, default_message = 504, "TIMEOUT", "The request took too long"
    retry_after_s = 5
