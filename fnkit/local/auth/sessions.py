"""Sessions and refresh tokens as GoTrue keeps them: `auth.sessions`, `auth.refresh_tokens`.

A sign-in opens a session with its first refresh token (a random 12-character string, GoTrue's
v1 tokens) and records how the user authenticated (`auth.mfa_amr_claims`), from which the
access token's `aal` and `amr` are computed. A refresh revokes the token and issues its child
(`parent` = the old token). Reuse detection is GoTrue's (`token_refresh.go`): a revoked token
whose child is the session's active token is a concurrent refresh and gets that child; a
revoked token within `refresh_token_reuse_interval` (10 s) of its revocation is swapped again;
after that, the whole session's tokens are revoked, the revocation is committed, and the
answer is 400 `refresh_token_already_used`.
"""

from __future__ import annotations

import datetime as dt
import secrets
import string
import uuid
from typing import Any

from psycopg.rows import DictRow

from fnkit.local.auth.errors import AuthError, bad_request
from fnkit.local.auth.store import INSTANCE_ID, Conn, now

__all__ = [
    "aal_and_amr",
    "add_amr",
    "create_session",
    "find_session",
    "logout",
    "rotate_refresh_token",
]

REFRESH_TOKEN_REUSE_INTERVAL_S = 10
MFA_METHODS = ("totp", "mfa/totp", "mfa/phone", "mfa/webauthn")
_ALPHABET = string.ascii_lowercase + string.digits


def _new_token() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(12))


def add_amr(conn: Conn, session_id: str, method: str) -> None:
    """AddClaimToSession: one row per method, its time refreshed when passed again."""
    conn.execute(
        "insert into auth.mfa_amr_claims (session_id, created_at, updated_at,"
        " authentication_method, id) values (%s, now(), now(), %s, %s)"
        " on conflict (session_id, authentication_method) do update set updated_at = now()",
        (session_id, method, uuid.uuid4()),
    )


def create_session(
    conn: Conn, user_id: str, method: str, ip: str | None, user_agent: str | None
) -> tuple[str, str]:
    """A new session and its first refresh token: (session id, refresh token)."""
    session_id = str(uuid.uuid4())
    token = _new_token()
    conn.execute(
        "insert into auth.sessions (id, user_id, created_at, updated_at, aal, user_agent, ip)"
        " values (%s, %s, now(), now(), 'aal1', %s, %s)",
        (session_id, user_id, user_agent, ip),
    )
    conn.execute(
        "insert into auth.refresh_tokens (instance_id, token, user_id, revoked, created_at,"
        " updated_at, parent, session_id) values (%s, %s, %s, false, now(), now(), null, %s)",
        (INSTANCE_ID, token, user_id, session_id),
    )
    conn.execute(
        "update auth.users set last_sign_in_at = now(), updated_at = now() where id = %s",
        (user_id,),
    )
    add_amr(conn, session_id, method)
    return session_id, token


def find_session(conn: Conn, session_id: str) -> DictRow | None:
    return conn.execute(
        "select id, user_id, created_at, aal::text as aal, factor_id, not_after"
        " from auth.sessions where id = %s",
        (session_id,),
    ).fetchone()


def aal_and_amr(conn: Conn, session_id: str) -> tuple[str, list[dict[str, Any]]]:
    """CalculateAALAndAMR: aal2 once any MFA method is passed; amr newest first."""
    rows = conn.execute(
        "select authentication_method, updated_at from auth.mfa_amr_claims"
        " where session_id = %s order by updated_at desc",
        (session_id,),
    ).fetchall()
    amr = [
        {"method": r["authentication_method"], "timestamp": int(r["updated_at"].timestamp())}
        for r in rows
    ]
    aal = "aal2" if any(r["authentication_method"] in MFA_METHODS for r in rows) else "aal1"
    return aal, amr


def _swap(conn: Conn, token: DictRow) -> str:
    """GrantRefreshTokenSwap: the token revoked, a child issued in its session."""
    conn.execute(
        "update auth.refresh_tokens set revoked = true, updated_at = now() where id = %s",
        (token["id"],),
    )
    child = _new_token()
    conn.execute(
        "insert into auth.refresh_tokens (instance_id, token, user_id, revoked, created_at,"
        " updated_at, parent, session_id) values (%s, %s, %s, false, now(), now(), %s, %s)",
        (INSTANCE_ID, child, token["user_id"], token["token"], token["session_id"]),
    )
    return child


def rotate_refresh_token(conn: Conn, token_value: str) -> tuple[str, str, str]:
    """Refresh: (user id, session id, the refresh token to hand out), or GoTrue's refusal.

    Detected reuse commits the family's revocation before raising, as GoTrue's
    `NewCommitWithError` does."""
    token = conn.execute(
        "select id, token, user_id, revoked, updated_at, parent, session_id"
        " from auth.refresh_tokens where token = %s for update",
        (token_value,),
    ).fetchone()
    if token is None:
        raise bad_request(
            "refresh_token_not_found", "Invalid Refresh Token: Refresh Token Not Found"
        )
    session = find_session(conn, str(token["session_id"])) if token["session_id"] else None
    if session is None:
        conn.execute("delete from auth.refresh_tokens where id = %s", (token["id"],))
        conn.commit()
        raise bad_request("session_not_found", "Invalid Refresh Token: No Valid Session Found")
    if session["not_after"] is not None and session["not_after"] < now():
        raise bad_request("session_expired", "Invalid Refresh Token: Session Expired")
    session_id = str(session["id"])
    if token["revoked"]:
        active = conn.execute(
            "select token, parent from auth.refresh_tokens where session_id = %s"
            " and revoked = false order by id desc limit 1",
            (session_id,),
        ).fetchone()
        if active is not None and active["parent"] == token["token"]:
            return str(token["user_id"]), session_id, str(active["token"])
        reuse_until = token["updated_at"] + dt.timedelta(seconds=REFRESH_TOKEN_REUSE_INTERVAL_S)
        if now() > reuse_until:
            conn.execute(
                "update auth.refresh_tokens set revoked = true, updated_at = now()"
                " where session_id = %s and revoked = false",
                (session_id,),
            )
            conn.commit()
            raise bad_request("refresh_token_already_used", "Invalid Refresh Token: Already Used")
    return str(token["user_id"]), session_id, _swap(conn, token)


def touch_session(conn: Conn, session_id: str, ip: str | None, user_agent: str | None) -> None:
    conn.execute(
        "update auth.sessions set refreshed_at = (now() at time zone 'utc'), updated_at = now(),"
        " user_agent = %s, ip = %s where id = %s",
        (user_agent, ip, session_id),
    )


def logout(conn: Conn, user_id: str, session_id: str | None, scope: str) -> None:
    """global: every session of the user; local: this one; others: all but this one."""
    if session_id is not None and scope == "local":
        conn.execute("delete from auth.sessions where id = %s", (session_id,))
    elif session_id is not None and scope == "others":
        conn.execute(
            "delete from auth.sessions where user_id = %s and id <> %s", (user_id, session_id)
        )
    else:
        conn.execute("delete from auth.sessions where user_id = %s", (user_id,))
        conn.execute("delete from auth.refresh_tokens where user_id = %s", (user_id,))


def require_session(conn: Conn, session_id: str) -> DictRow:
    session = find_session(conn, session_id)
    if session is None:
        raise AuthError(
            403, "session_not_found", "Session from session_id claim in JWT does not exist"
        )
    return session


def rotate_active_token(conn: Conn, session_id: str) -> str:
    """The session's active refresh token swapped for a child (after an MFA step-up)."""
    token = conn.execute(
        "select id, token, user_id, session_id from auth.refresh_tokens"
        " where session_id = %s and revoked = false order by id desc limit 1 for update",
        (session_id,),
    ).fetchone()
    if token is None:
        raise AuthError(500, "unexpected_failure", "No active refresh token for the session")
    return _swap(conn, token)
