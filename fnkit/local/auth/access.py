"""Access tokens as Supabase Auth issues them, and the bearer check of its user routes.

Claims follow `internal/tokens/service.go` (`iss`, `sub`, `aud`, `exp`, `iat`, `email`,
`phone`, `app_metadata`, `user_metadata`, `role`, `aal`, `amr`, `session_id`, `is_anonymous`),
signed ES256 with the key ring's first key and its `kid`. When the Custom Access Token hook is
on, its `claims` replace them after GoTrue's schema check (required claims present and of the
right type, else 500). A bearer token is verified with `fnkit.local.tokens` and answers as
`requireAuthentication` does: no token 401 `no_authorization`, a bad one 403 `bad_jwt`, a
missing user 403 `user_not_found`, a logged-out session 403 `session_not_found`.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from psycopg.rows import DictRow

from fnkit.local import tokens
from fnkit.local.auth import sessions
from fnkit.local.auth.errors import AuthError, forbidden
from fnkit.local.auth.hooks import call_hook, hook_metadata
from fnkit.local.auth.store import Conn, load_user, user_json
from fnkit.local.config import LocalConfig

__all__ = ["Caller", "authenticate", "issue_session", "session_body", "sign_access_token"]

# The claims GoTrue requires back from the hook, with their JSON types.
_REQUIRED = {
    "aud": (str, list), "exp": (int,), "iat": (int,), "sub": (str,), "email": (str,),
    "phone": (str,), "role": (str,), "aal": (str,), "session_id": (str,),
    "is_anonymous": (bool,),
}  # fmt: skip
_OPTIONAL = {
    "jti": (str,), "iss": (str,), "nbf": (int,), "app_metadata": (dict,),
    "user_metadata": (dict,), "amr": (list,), "client_id": (str,),
}  # fmt: skip


@dataclass
class Caller:
    """Who a bearer token names: verified claims, the user row, the live session if any."""

    claims: dict[str, Any]
    user: DictRow
    session: DictRow | None


def _check_hook_claims(claims: Any) -> dict[str, Any]:
    if not isinstance(claims, dict):
        raise AuthError(500, "", "output claims field is missing")
    problems = []
    for name, kinds in {**_REQUIRED, **_OPTIONAL}.items():
        if name not in claims:
            if name in _REQUIRED:
                problems.append(f"- (root): {name} is required")
            continue
        value = claims[name]
        ok = isinstance(value, kinds) and not (bool not in kinds and isinstance(value, bool))
        if not ok:
            problems.append(f"- {name}: Invalid type.")
    if problems:
        detail = "\n".join(problems)
        raise AuthError(
            500, "", f"output claims do not conform to the expected schema: \n{detail}\n"
        )
    return claims


def sign_access_token(
    conn: Conn, config: LocalConfig, user: DictRow, session_id: str, method: str, ip: str
) -> tuple[str, int]:
    """The signed access token and its `exp`, through the Custom Access Token hook if on."""
    aal, amr = sessions.aal_and_amr(conn, session_id)
    issued = int(time.time())
    expires = issued + config.jwt_expiry_s
    claims: dict[str, Any] = {
        "iss": config.issuer,
        "sub": str(user["id"]),
        "aud": user["aud"] or "authenticated",
        "exp": expires,
        "iat": issued,
        "email": user["email"] or "",
        "phone": user["phone"] or "",
        "app_metadata": user["raw_app_meta_data"] or {},
        "user_metadata": user["raw_user_meta_data"] or {},
        "role": user["role"] or "",
        "aal": aal,
        "amr": amr,
        "session_id": session_id,
        "is_anonymous": bool(user["is_anonymous"]),
    }
    if config.custom_access_token_uri:
        answer = call_hook(
            config,
            config.custom_access_token_uri,
            {
                "metadata": hook_metadata("customize-access-token", ip),
                "user_id": str(user["id"]),
                "claims": claims,
                "authentication_method": method,
            },
        )
        if answer is None or "claims" not in answer:
            raise AuthError(500, "", "output claims field is missing")
        claims = _check_hook_claims(answer["claims"])
        expires = int(claims["exp"])
    if config.extra.get("auth_jwt_alg") == "HS256":  # a GoTrue with only a JWT secret
        return jwt.encode(claims, config.jwt_secret, algorithm="HS256"), expires
    key = config.keys.signing_key()
    token = jwt.encode(claims, key.private, algorithm="ES256", headers={"kid": key.kid})
    return token, expires


def session_body(
    conn: Conn, access_token: str, expires_at: int, refresh_token: str, user: DictRow
) -> dict[str, Any]:
    """AccessTokenResponse's JSON."""
    return {
        "access_token": access_token,
        "token_type": "bearer",
        "expires_in": max(0, expires_at - int(time.time())),
        "expires_at": expires_at,
        "refresh_token": refresh_token,
        "user": user_json(conn, user),
    }


def issue_session(
    conn: Conn,
    config: LocalConfig,
    user_id: str,
    method: str,
    ip: str,
    user_agent: str | None,
) -> dict[str, Any]:
    """IssueRefreshToken: a new session, its refresh token and an access token."""
    session_id, refresh = sessions.create_session(conn, user_id, method, ip, user_agent)
    user = load_user(conn, user_id)
    assert user is not None
    token, expires = sign_access_token(conn, config, user, session_id, method, ip)
    return session_body(conn, token, expires, refresh, user)


def bearer(authorization: str | None) -> str:
    scheme, _, value = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise AuthError(401, "no_authorization", "This endpoint requires a valid Bearer token")
    return value.strip()


def verify_claims(config: LocalConfig, token: str) -> dict[str, Any]:
    """The token's claims, checked by `fnkit.local.tokens`; GoTrue (golang-jwt) checks `exp`
    only when present, so an HS256 token without one (an operator's admin token) is accepted
    on its signature, as GoTrue accepts it."""
    try:
        return tokens.verify(config, token)
    except tokens.InvalidToken as exc:
        failure = exc
    try:
        if jwt.get_unverified_header(token).get("alg") == "HS256":
            unverified = jwt.decode(token, options={"verify_signature": False})
            if "exp" not in unverified:
                claims: dict[str, Any] = jwt.decode(
                    token, config.jwt_secret, algorithms=["HS256"], options={"verify_aud": False}
                )
                return claims
    except jwt.PyJWTError:
        pass
    raise forbidden(
        "bad_jwt", f"invalid JWT: unable to parse or verify signature, {failure}"
    ) from failure


def _is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def authenticate(conn: Conn, config: LocalConfig, authorization: str | None) -> Caller:
    """requireAuthentication: the caller's user and session, or GoTrue's refusal."""
    claims = verify_claims(config, bearer(authorization))
    subject = claims.get("sub")
    if not subject:
        raise forbidden("bad_jwt", "invalid claim: missing sub claim")
    if not _is_uuid(subject):
        raise AuthError(400, "bad_jwt", "invalid claim: sub claim must be a UUID")
    user = load_user(conn, str(subject))
    if user is None:
        raise forbidden("user_not_found", "User from sub claim in JWT does not exist")
    session = None
    session_id = claims.get("session_id")
    if session_id and session_id != "00000000-0000-0000-0000-000000000000":
        if not _is_uuid(session_id):
            raise forbidden("bad_jwt", "invalid claim: session_id claim must be a UUID")
        session = sessions.require_session(conn, str(session_id))
    banned = user["banned_until"]
    if banned is not None and banned.timestamp() > time.time():
        raise forbidden("user_banned", "User is banned")
    return Caller(claims, user, session)


ADMIN_ROLES = ("service_role", "supabase_admin")


def require_admin(config: LocalConfig, authorization: str | None) -> dict[str, Any]:
    """requireAdminCredentials: a verified token whose role is an admin role (service_role)."""
    claims = verify_claims(config, bearer(authorization))
    if claims.get("role") not in ADMIN_ROLES:
        raise forbidden("not_admin", "User not allowed")
    return claims
