"""Who is calling: the bearer token, verified as Storage's jwt plugin verifies it.

Storage reads `Authorization: Bearer <jwt>` (a user's access token, the anon key or the service
role key) and runs every metadata query as the token's role with its claims, so the project's
policies decide. A missing or bad token is `AccessDenied` with the verifier's own words, except
on the few routes that allow it (download, HEAD, info): there the caller is an unauthenticated
anon, who may only read public buckets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import jwt

from fnkit.local.config import LocalConfig
from fnkit.local.storage.errors import StorageError
from fnkit.local.tokens import InvalidToken, role_of, verify

__all__ = ["Caller", "caller_of", "token_error_message"]

_BEARER_PREFIX = "bearer"


@dataclass(frozen=True)
class Caller:
    """The role and claims queries run with; `authenticated` is False for no or a bad token."""

    role: str
    claims: dict[str, Any] = field(default_factory=dict)
    authenticated: bool = True

    @property
    def sub(self) -> str | None:
        sub = self.claims.get("sub")
        return sub if isinstance(sub, str) and sub else None

    @property
    def is_service_role(self) -> bool:
        return self.role == "service_role"


ANONYMOUS = Caller(role="anon", claims={"role": "anon"}, authenticated=False)


def bearer(header: str | None) -> str:
    """The token of an `Authorization` header (Storage strips `Bearer ` case-insensitively)."""
    value = (header or "").strip()
    scheme, _, rest = value.partition(" ")
    return rest.strip() if scheme.lower() == _BEARER_PREFIX else value


def caller_of(config: LocalConfig, header: str | None, *, allow_invalid: bool) -> Caller:
    """The verified caller; with `allow_invalid`, the anonymous caller instead of an error."""
    token = bearer(header)
    if not token and allow_invalid:
        return ANONYMOUS
    try:
        claims = verify(config, token)
    except InvalidToken as exc:
        if allow_invalid:
            return ANONYMOUS
        raise StorageError.access_denied(token_error_message(exc)) from None
    return Caller(role=role_of(claims), claims=claims)


def token_error_message(exc: InvalidToken) -> str:
    """The words Storage's verifier (jose) uses for the same fault."""
    cause = exc.__cause__
    if isinstance(cause, jwt.ExpiredSignatureError):
        return '"exp" claim timestamp check failed'
    if isinstance(cause, jwt.InvalidSignatureError):
        return "signature verification failed"
    if isinstance(cause, jwt.MissingRequiredClaimError):
        return f'missing required "{cause.claim}" claim'
    if isinstance(cause, jwt.DecodeError) or str(exc) == "malformed token":
        return "Invalid Compact JWS"
    return str(exc)
