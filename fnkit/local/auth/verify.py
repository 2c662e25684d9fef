"""Following an emailed token (`verify.go`): find its user, check expiry, apply its effect.

The token arrives as the link's hash (`token_hash`, or `token` on `GET /verify`) or as the
6-digit OTP with its email address. Its type says which column holds it and what following
it does: `signup`/`invite` confirm the address, `recovery`/`magiclink` sign in (confirming an
unconfirmed address), `email_change` moves the address once both links (current and new) are
followed; `email` accepts a sign-up or a magic-link OTP.
"""

from __future__ import annotations

from typing import Any

from psycopg.rows import DictRow

from fnkit.local.auth import store
from fnkit.local.auth.errors import bad_request, forbidden
from fnkit.local.auth.otp import OTP_EXPIRY_S, token_hash
from fnkit.local.auth.users import confirm_email, is_banned

__all__ = ["SINGLE_CONFIRMATION", "apply_verification", "find_verified_user"]

SINGLE_CONFIRMATION = (
    "Confirmation link accepted. Please proceed to confirm link sent to the other email"
)
_COLUMNS = {
    "signup": ("confirmation_token",),
    "invite": ("confirmation_token",),
    "recovery": ("recovery_token",),
    "magiclink": ("recovery_token",),
    "email": ("confirmation_token", "recovery_token"),
    "email_change": ("email_change_token_new", "email_change_token_current"),
}
_SENT_AT = {
    "confirmation_token": "confirmation_sent_at",
    "recovery_token": "recovery_sent_at",
    "email_change_token_new": "email_change_sent_at",
    "email_change_token_current": "email_change_sent_at",
}
_EFFECTIVE = {"confirmation_token": "signup", "recovery_token": "magiclink"}


def _expired(user: DictRow, column: str) -> bool:
    sent = user[_SENT_AT[column]]
    return sent is None or (store.now() - sent).total_seconds() > OTP_EXPIRY_S


def find_verified_user(
    conn: store.Conn, kind: str, hashed: str, email: str | None
) -> tuple[DictRow, str]:
    """The user the token belongs to and the effective type, or 403 `otp_expired`."""
    if kind not in _COLUMNS:
        raise bad_request("validation_failed", "Unsupported verification type")
    message = "Token has expired or is invalid" if email else "Email link is invalid or has expired"
    if email:
        hashed = token_hash(email.lower(), hashed)
    for column in _COLUMNS[kind]:
        user = conn.execute(
            f"select {store.USER_COLUMNS} from auth.users where {column} in (%s, 'pkce_' || %s)"
            " and (%s::text is null or lower(email) = lower(%s) or lower(email_change) = lower(%s))"
            " limit 1 for update",
            (hashed, hashed, email, email, email),
        ).fetchone()
        if user is None:
            continue
        if is_banned(user):
            raise forbidden("user_banned", "User is banned")
        if _expired(user, column):
            raise forbidden("otp_expired", message)
        effective = _EFFECTIVE.get(column, kind) if kind == "email" else kind
        return user, effective
    raise forbidden("otp_expired", message)


def apply_verification(conn: store.Conn, user: DictRow, kind: str, hashed: str) -> bool:
    """The token's effect; False when an email change still awaits its other link."""
    user_id = str(user["id"])
    if kind in ("signup", "invite"):
        if not user["encrypted_password"] and user["invited_at"] is not None:
            from fnkit.local.auth.signup import random_password
            from fnkit.local.auth.users import hash_password

            conn.execute(
                "update auth.users set encrypted_password = %s where id = %s",
                (hash_password(random_password()), user_id),
            )
        confirm_email(conn, user_id, verify_identity=True)
    elif kind in ("recovery", "magiclink"):
        conn.execute(
            "update auth.users set recovery_token = '', updated_at = now() where id = %s",
            (user_id,),
        )
        conn.execute(
            "delete from auth.one_time_tokens where user_id = %s and token_type = 'recovery_token'",
            (user_id,),
        )
        if user["email_confirmed_at"] is None:
            confirm_email(conn, user_id)
    elif kind == "email_change":
        return _email_change(conn, user, hashed)
    return True


def _email_change(conn: store.Conn, user: DictRow, hashed: str) -> bool:
    user_id = str(user["id"])
    both = bool(user["email_change_token_new"]) and bool(user["email_change_token_current"])
    if both and (user["email_change_confirm_status"] or 0) == 0:
        spent = (
            "email_change_token_new"
            if user["email_change_token_new"] == hashed
            else "email_change_token_current"
        )
        conn.execute(
            f"update auth.users set {spent} = '', email_change_confirm_status = 1,"
            " updated_at = now() where id = %s",
            (user_id,),
        )
        return False
    new_email: Any = user["email_change"]
    conn.execute(
        "update auth.users set email = %s, email_change = '', email_change_token_new = '',"
        " email_change_token_current = '', email_change_confirm_status = 0,"
        " email_confirmed_at = coalesce(email_confirmed_at, now()), updated_at = now()"
        " where id = %s",
        (new_email, user_id),
    )
    conn.execute(
        "update auth.identities set identity_data = identity_data || jsonb_build_object("
        "'email', %s::text), updated_at = now() where user_id = %s and provider = 'email'",
        (new_email, user_id),
    )
    conn.execute("delete from auth.one_time_tokens where user_id = %s", (user_id,))
    return True
