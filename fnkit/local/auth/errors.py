"""GoTrue's error answers: one exception for every refusal, rendered as GoTrue renders it.

GoTrue has two error shapes, chosen by the `X-Supabase-Api-Version` request header: clients
that send `2024-01-01` (supabase-js, supabase-py) get `{"code": "<error_code>", "message"}`;
everything else gets the original `{"code": <status>, "error_code", "msg"}`. supabase-py
raises its typed exceptions (AuthWeakPasswordError, AuthApiError with `.code`) from either,
so both are served, as `internal/api/errors.go` does.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from werkzeug.wrappers import Request, Response

__all__ = ["AuthError", "OAuthError", "json_response", "render_error"]

API_VERSION_HEADER = "X-Supabase-Api-Version"
API_VERSION_2024 = "2024-01-01"


@dataclass
class AuthError(Exception):
    """A refusal with GoTrue's HTTP status, error code and message."""

    status: int
    code: str
    message: str
    reasons: list[str] = field(default_factory=list)
    """Only for `weak_password`: why (`length`, `characters`, `pwned`)."""

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.message}"


@dataclass
class OAuthError(Exception):
    """The OAuth2-style error GoTrue answers for a malformed token request."""

    error: str
    description: str


def bad_request(code: str, message: str) -> AuthError:
    return AuthError(400, code, message)


def unprocessable(code: str, message: str) -> AuthError:
    return AuthError(422, code, message)


def forbidden(code: str, message: str) -> AuthError:
    return AuthError(403, code, message)


def not_found(code: str, message: str) -> AuthError:
    return AuthError(404, code, message)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """JSON as GoTrue sends it (compact, `application/json`)."""
    return Response(
        json.dumps(body, separators=(",", ":"), default=str),
        status=status,
        headers=headers,
        content_type="application/json",
    )


def _wants_2024(request: Request) -> bool:
    value = (request.headers.get(API_VERSION_HEADER) or "").strip()
    return value >= API_VERSION_2024 and len(value) == len(API_VERSION_2024)


def render_error(request: Request, error: AuthError | OAuthError) -> Response:
    """The error response for this request's API version."""
    if isinstance(error, OAuthError):
        return json_response({"error": error.error, "error_description": error.description}, 400)
    headers = {"x-sb-error-code": error.code} if error.code else {}
    # A hook's refusal carries no code: GoTrue fills in one by status.
    code = error.code or ("unexpected_failure" if error.status >= 500 else "unknown")
    if _wants_2024(request):
        headers[API_VERSION_HEADER] = API_VERSION_2024
        body: dict[str, Any] = {"code": code, "message": error.message}
    else:
        body = {"code": error.status, "error_code": code, "msg": error.message}
        if error.status >= 500:
            body["error_id"] = str(uuid.uuid4())
    if error.code == "weak_password":
        body["weak_password"] = {"reasons": error.reasons}
    return json_response(body, error.status, headers)
