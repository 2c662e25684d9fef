"""The error vocabulary every function speaks: one class per stable code.

Handlers raise these; the pipeline turns any of them into the envelope with the right status
and headers. Anything else that escapes is mapped once, in `map_exception`, so a caller never
sees a traceback and Postgres errors keep stable codes keyed by SQLSTATE.
"""

from __future__ import annotations

import re
from typing import Any


class ApiError(Exception):
    """An error with a stable code, an HTTP status and a message safe to show a caller."""

    status: int = 500
    code: str = "INTERNAL"
    default_message: str = "Internal error"
    #: Seconds a caller should wait before trying again, sent as `Retry-After` (503, 504).
    retry_after_s: int | None = None

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


# SQLSTATE → (error class, message). Classes of SQLSTATE (first two characters) as fallback.
_SQLSTATE: dict[str, tuple[type[ApiError], str]] = {
    "23505": (Conflict, "A row with these values already exists"),
    "23503": (Conflict, "The row is still referenced"),
    "23514": (ValidationFailed, "A value breaks a rule of the data"),
    "23502": (ValidationFailed, "A required value is missing"),
    "22P02": (ValidationFailed, "A value has the wrong format"),
    "22001": (ValidationFailed, "A value is too long"),
    "22003": (ValidationFailed, "A number is out of range"),
    "22007": (ValidationFailed, "A date or time has the wrong format"),
    "22008": (ValidationFailed, "A date or time is out of range"),
    "42501": (Forbidden, "You may not do this"),
    "57014": (Timeout, "The database took too long"),
    "40001": (Conflict, "The change collided with another; retry"),
    "40P01": (Conflict, "The change collided with another; retry"),
    "P0002": (NotFound, "Not found"),
}
_SQLSTATE_CLASS: dict[str, type[ApiError]] = {
    "22": ValidationFailed,  # data exception: a value Postgres cannot take (e.g. a forged cursor)
    "08": Unavailable,  # connection exception
    "53": Unavailable,  # insufficient resources
    "57": Unavailable,  # operator intervention (admin shutdown, crash shutdown)
}


# Named constraints whose violation means something more precise than their SQLSTATE.
CONSTRAINT_ERRORS: dict[str, tuple[type[ApiError], str]] = {
    "workspace_keeps_an_owner": (Conflict, "A workspace must keep at least one owner"),
    "workspaces_slug_key": (Conflict, "That slug is taken"),
    "workspace_members_pkey": (Conflict, "That user is already a member"),
    "tasks_assignee_is_member": (ValidationFailed, "The assignee is not a member of the workspace"),
}


_PARENT_MESSAGE = re.compile(
    r"[a-z_ ]{1,40} [0-9a-f-]{36} (does not exist|belongs to another workspace)"
)


def _constraint(exc: BaseException) -> str | None:
    diag = getattr(exc, "diag", None)
    name = getattr(diag, "constraint_name", None)
    return name if isinstance(name, str) else None


def _detail_text(exc: BaseException) -> str:
    diag = getattr(exc, "diag", None)
    text = getattr(diag, "message_detail", None)
    return text if isinstance(text, str) else ""


def loggable(exc: BaseException) -> str:
    """An exception's message for the log, without what Postgres quotes from the statement
    (reads inline their parameters, so a "LINE 1: ..." context could hold a caller's input)."""
    sqlstate = getattr(exc, "sqlstate", None)
    if isinstance(sqlstate, str):
        return f"{sqlstate} {type(exc).__name__}: {_message(exc)}"[:500]
    return str(exc)[:500]


def _message(exc: BaseException) -> str:
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None)
    return primary if isinstance(primary, str) else ""


def map_exception(exc: BaseException) -> ApiError:
    """Map any exception to the ApiError a caller sees; unknown ones become INTERNAL."""
    if isinstance(exc, ApiError):
        return exc
    sqlstate = getattr(exc, "sqlstate", None)
    if isinstance(sqlstate, str):
        constraint = _constraint(exc)
        if constraint in CONSTRAINT_ERRORS:
            cls, message = CONSTRAINT_ERRORS[constraint]
            return cls(message)
        if sqlstate == "23503" and "still referenced" not in _message(exc) + _detail_text(exc):
            # The referenced row does not exist, or RLS hides it: the input is wrong. Our own
            # parent checks say which row, in words that only repeat the caller's input.
            message = _message(exc)
            if not _PARENT_MESSAGE.fullmatch(message):
                message = "A referenced row does not exist"
            return ValidationFailed(message[:1].upper() + message[1:])
        if sqlstate in _SQLSTATE:
            cls, message = _SQLSTATE[sqlstate]
            return cls(message)
        if sqlstate[:2] == "22":
            return ValidationFailed("A value is not valid")
        if sqlstate[:2] in _SQLSTATE_CLASS:
            return _SQLSTATE_CLASS[sqlstate[:2]]("The database is unavailable")
    name = type(exc).__name__
    module = type(exc).__module__
    if module.startswith(("psycopg", "psycopg_pool")) and name in {
        "OperationalError",
        "PoolTimeout",
        "PoolClosed",
        "InterfaceError",
        "ConnectionTimeout",
    }:
        return Unavailable("The database is unavailable")
    return Internal()
