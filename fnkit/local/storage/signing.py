"""Signed URL tokens, made and checked as Storage makes and checks them (src/storage/object.ts).

A token is an HS256 JWT signed with the project's JWT secret, whose `url` claim binds it to one
object (`bucket/key`) and whose `scope` (`download` or `upload`) to one action, so a download
token can never be replayed to upload. Upload tokens also carry `owner` (who signed; the upload
is recorded as theirs) and `upsert`. Verification accepts what Storage's verifier accepts (the
legacy secret or the key ring), then checks scope, object and expiry with Storage's errors.
"""

from __future__ import annotations

import time
from typing import Any

import jwt

from fnkit.local.config import LocalConfig
from fnkit.local.storage.caller import token_error_message
from fnkit.local.storage.errors import StorageError
from fnkit.local.tokens import InvalidToken, verify

__all__ = [
    "DOWNLOAD",
    "UPLOAD",
    "UPLOAD_URL_EXPIRY_S",
    "parse_expires_in",
    "sign",
    "verify_signed",
]

DOWNLOAD = "download"
UPLOAD = "upload"
UPLOAD_URL_EXPIRY_S = 2 * 60 * 60  # Storage's uploadSignedUrlExpirationTime default
MAX_EXPIRES_IN_S = 2**31 - 1  # jose refuses expirations past 2038, so Storage caps the input


def sign(config: LocalConfig, claims: dict[str, Any], expires_in: int) -> str:
    """An HS256 token with `iat` and `exp`, as jose's SignJWT makes it."""
    now = int(time.time())
    payload = {**claims, "iat": now, "exp": now + expires_in}
    return jwt.encode(payload, config.jwt_secret, algorithm="HS256")


def parse_expires_in(value: Any) -> int:
    """`expiresIn` as Storage's schema takes it: an integer ≥ 1, numeric strings coerced."""
    if isinstance(value, bool):
        value = None
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value.strip())
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int):
        raise StorageError.validation("body/expiresIn must be integer")
    if value < 1:
        raise StorageError.validation("body/expiresIn must be >= 1")
    if value > MAX_EXPIRES_IN_S:
        raise StorageError(400, "InvalidParameter", "Invalid Parameter expiresIn")
    return value


def verify_signed(config: LocalConfig, token: str, bucket: str, key: str, scope: str) -> Any:
    """The token's claims when it grants `scope` on `bucket/key` and has not expired."""
    try:
        claims = verify(config, token)
    except InvalidToken as exc:
        raise StorageError.invalid_jwt(token_error_message(exc)) from None
    token_scope = claims.get("scope")
    if scope == UPLOAD:
        granted = token_scope == UPLOAD or (token_scope is None and "upsert" in claims)
    else:
        granted = token_scope == DOWNLOAD or (token_scope is None and "upsert" not in claims)
    if not granted:
        raise StorageError.invalid_signature(f"Token is not scoped for {scope}")
    if claims.get("url") != f"{bucket}/{key}":
        raise StorageError.invalid_signature()
    if int(claims.get("exp", 0)) < time.time():
        raise StorageError.expired_signature()
    return claims
