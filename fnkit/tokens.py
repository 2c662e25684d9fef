"""Mint JWTs shaped like Supabase Auth's, for local development and tests."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt

from fnkit.devenv import DEV_JWT_SECRET, DEV_SUPABASE_URL


def claims(
    sub: str,
    *,
    role: str = "authenticated",
    aal: str = "aal1",
    expires_in: int = 3600,
    email: str | None = None,
    issuer: str | None = None,
    audience: str = "authenticated",
    is_anonymous: bool = False,
    **extra: Any,
) -> dict[str, Any]:
    now = int(time.time())
    payload: dict[str, Any] = {
        "iss": issuer or f"{DEV_SUPABASE_URL}/auth/v1",
        "aud": audience,
        "sub": sub,
        "role": role,
        "aal": aal,
        "amr": [{"method": "password", "timestamp": now}]
        + ([{"method": "totp", "timestamp": now}] if aal == "aal2" else []),
        "session_id": str(uuid.uuid4()),
        "is_anonymous": is_anonymous,
        "iat": now,
        "exp": now + expires_in,
    }
    if email is not None:
        payload["email"] = email
    payload.update(extra)
    return payload


def mint(payload: dict[str, Any], secret: str = DEV_JWT_SECRET) -> str:
    """An HS256 token signed with the (local development) secret."""
    return jwt.encode(payload, secret, algorithm="HS256")


def mint_for(sub: str, secret: str = DEV_JWT_SECRET, **options: Any) -> str:
    return mint(claims(sub, **options), secret)
