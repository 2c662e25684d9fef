"""Verify the JWTs the local services receive, as Supabase's services verify them.

Two kinds arrive: user access tokens the local Auth signed with the key ring (ES256, with a
`kid`), and HS256 tokens signed with the legacy JWT secret (the anon and service role keys,
and tokens minted by `fnkit token`). Both are checked locally against `LocalConfig`; `none`
and an HS token checked with a public key are never accepted. Audience is not checked here:
the anon and service role keys carry none, and Auth and Storage accept them.
"""

from __future__ import annotations

from typing import Any

import jwt

from fnkit.local.config import LocalConfig

__all__ = ["InvalidToken", "role_of", "verify"]

LEEWAY_S = 10


class InvalidToken(Exception):
    """The token is malformed, forged, expired or signed with a key we do not know."""


def verify(config: LocalConfig, token: str) -> dict[str, Any]:
    """The verified claims of `token`; InvalidToken when anything about it is wrong."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise InvalidToken("malformed token") from exc
    alg = header.get("alg")
    try:
        if alg == "HS256":
            key: Any = config.jwt_secret
        elif alg == "ES256":
            kid = header.get("kid")
            match = next((k for k in config.keys.keys if k.kid == kid), None)
            if match is None:
                raise InvalidToken("unknown signing key")
            key = match.private.public_key()
        else:
            raise InvalidToken(f"algorithm {alg!r} is not accepted")
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[alg],
            leeway=LEEWAY_S,
            options={"verify_aud": False, "require": ["exp"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise InvalidToken("token is expired") from exc
    except jwt.PyJWTError as exc:
        raise InvalidToken("invalid token") from exc
    return claims


def role_of(claims: dict[str, Any]) -> str:
    """The Postgres role a request with these claims runs as (anon when unnamed)."""
    role = claims.get("role")
    return role if role in ("anon", "authenticated", "service_role") else "anon"
