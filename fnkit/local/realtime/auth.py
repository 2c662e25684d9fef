"""Who a connection or a channel is: its token, verified as Realtime verifies it.

`fnkit.local.tokens.verify` checks the signature and expiry; Realtime additionally requires the
`role` and `exp` claims and words each failure its own way (the join error or `system` message
a client sees). `ChannelError` carries that wording: `code` is Realtime's log code, `message` its
text, and `reason` the `"Code: message"` string Realtime replies with.

The socket's `apikey` must be the project's anon or service role key, as Supabase's gateway
requires; a channel then acts as the `access_token` its join carries (or the apikey's role).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import jwt

from fnkit.local.config import LocalConfig
from fnkit.local.tokens import InvalidToken, verify

__all__ = ["ChannelError", "Identity", "check_apikey", "identify"]


class ChannelError(Exception):
    """A refusal in Realtime's words: `{"reason": "Code: message"}` at join."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    @property
    def reason(self) -> str:
        return f"{self.code}: {self.message}"


@dataclass(frozen=True)
class Identity:
    """A verified token: the database role it acts as and the claims policies read."""

    token: str
    claims: dict[str, Any]

    @cached_property
    def claims_json(self) -> str:
        """The claims as `request.jwt.claims` carries them (encoded once per token)."""
        return json.dumps(self.claims)

    @property
    def role(self) -> str:
        return str(self.claims["role"])

    @property
    def sub(self) -> str | None:
        sub = self.claims.get("sub")
        return str(sub) if sub is not None else None

    @property
    def expires_at(self) -> float:
        return float(self.claims["exp"])


def check_apikey(config: LocalConfig, apikey: str | None) -> str | None:
    """None when `apikey` may open a socket, else the 401 message Realtime answers with."""
    if not apikey:
        return "API key is missing"
    if apikey in (config.anon_key, config.service_role_key):
        return None
    # A publishable or secret key arrives as the gateway's role JWT (fnkit.local.gateway).
    try:
        role = verify(config, apikey).get("role")
    except InvalidToken:
        return "Invalid API key"
    return None if role in ("anon", "service_role") else "Invalid API key"


def identify(config: LocalConfig, token: str) -> Identity:
    """The token's identity; ChannelError with Realtime's code and text when it is refused."""
    token = "".join(token.split())
    try:
        header = jwt.get_unverified_header(token)
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise ChannelError("MalformedJWT", "The token provided is not a valid JWT") from exc
    if not isinstance(unverified, dict):
        raise ChannelError("MalformedJWT", "The token provided is not a valid JWT")
    try:
        claims = verify(config, token)
    except InvalidToken as exc:
        raise _refusal(header, unverified, str(exc)) from exc
    if "role" not in claims or "exp" not in claims:
        raise ChannelError("InvalidJWTToken", "Fields `role` and `exp` are required in JWT")
    if not isinstance(claims["exp"], int | float) or claims["exp"] <= time.time():
        raise _expired(claims)
    return Identity(token, claims)


def _refusal(header: dict[str, Any], claims: dict[str, Any], why: str) -> ChannelError:
    alg, kid = header.get("alg"), header.get("kid")
    if why == "token is expired":
        return _expired(claims)
    if why == "unknown signing key" or alg not in ("HS256", "ES256"):
        if isinstance(kid, str):
            return ChannelError(
                "JwtSignerError",
                f'Failed to generate JWT signer for key ID (kid) "{kid}", check your JWT secret'
                " or JWKS configuration",
            )
        return ChannelError(
            "JwtSignerError",
            "Failed to generate JWT signer, check your JWT secret or JWKS configuration",
        )
    if "exp" not in claims:
        return ChannelError("InvalidJWTToken", "Fields `role` and `exp` are required in JWT")
    return ChannelError("JwtSignatureError", "Failed to validate JWT signature")


def _expired(claims: dict[str, Any]) -> ChannelError:
    exp = claims.get("exp")
    ago = int(time.time() - exp) if isinstance(exp, int | float) else 0
    return ChannelError("InvalidJWTToken", f"Token has expired {ago} seconds ago")
