"""The signed-in user: `GET /user` and `PUT /user` (email, password, data), as `user.go`.

A password change logs out the user's other sessions (`User.UpdatePassword`); an email change
mails a confirmation to both the current and the new address (`double_confirm_changes`, on in
supabase/config.toml) and takes effect when both links are followed. With a verified MFA
factor, changing either needs an aal2 session (401 `insufficient_aal`).
"""

from __future__ import annotations

from typing import Any

from psycopg.types.json import Jsonb
from werkzeug.wrappers import Response

from fnkit.local.auth import access, store
from fnkit.local.auth.app import Ctx, Handler
from fnkit.local.auth.errors import AuthError, forbidden, json_response
from fnkit.local.auth.otp import send_token
from fnkit.local.auth.users import (
    check_password,
    check_password_strength,
    hash_password,
    validate_email,
)


def get_user(ctx: Ctx) -> Response:
    with store.connect(ctx.config) as conn:
        caller = access.authenticate(conn, ctx.config, ctx.request.headers.get("Authorization"))
        return json_response(store.user_json(conn, caller.user))


def merge_metadata(current: dict[str, Any] | None, updates: dict[str, Any]) -> dict[str, Any]:
    """UpdateUserMetaData: keys set, keys given null removed."""
    merged = dict(current or {})
    for key, value in updates.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def _has_verified_factor(conn: store.Conn, user_id: str) -> bool:
    row = conn.execute(
        "select exists (select 1 from auth.mfa_factors where user_id = %s"
        " and status = 'verified') as found",
        (user_id,),
    ).fetchone()
    return bool(row and row["found"])


def update_user(ctx: Ctx) -> Response:
    """As GoTrue's router orders it: authentication, then the rate limit, then the body."""
    with store.connect(ctx.config) as conn:
        caller = access.authenticate(conn, ctx.config, ctx.request.headers.get("Authorization"))
        ctx.limit("user")
        body = ctx.body()
        password = body.get("password") if isinstance(body.get("password"), str) else None
        data = body.get("data") if isinstance(body.get("data"), dict) else None
        email = validate_email(ctx.text("email")) if ctx.text("email") else ""
        if password:
            check_password_strength(password)
        user, session = caller.user, caller.session
        user_id = str(user["id"])
        if body.get("app_metadata") is not None:
            raise forbidden("not_admin", "Updating app_metadata requires admin privileges")
        changing_email = bool(email) and email != (user["email"] or "")
        aal2 = session is not None and session["aal"] == "aal2"
        if (password or changing_email) and _has_verified_factor(conn, user_id) and not aal2:
            raise AuthError(
                401,
                "insufficient_aal",
                "AAL2 session is required to update email or password when MFA is enabled.",
            )
        if changing_email:
            duplicate = store.find_user_by_email(conn, email)
            if duplicate is not None and str(duplicate["id"]) != user_id:
                raise AuthError(
                    422,
                    "email_exists",
                    "A user with this email address has already been registered",
                )
        if password is not None:
            if password and check_password(password, user["encrypted_password"]):
                raise AuthError(
                    422, "same_password", "New password should be different from the old password."
                )
            conn.execute(
                "update auth.users set encrypted_password = %s, updated_at = now() where id = %s",
                (hash_password(password) if password else "", user_id),
            )
            if session is not None:
                conn.execute(
                    "delete from auth.sessions where user_id = %s and id <> %s",
                    (user_id, session["id"]),
                )
            else:
                conn.execute("delete from auth.sessions where user_id = %s", (user_id,))
        if data is not None:
            conn.execute(
                "update auth.users set raw_user_meta_data = %s, updated_at = now() where id = %s",
                (Jsonb(merge_metadata(user["raw_user_meta_data"], data)), user_id),
            )
        if changing_email:
            _start_email_change(ctx, conn, user_id, user["email"] or "", email)
        fresh = store.load_user(conn, user_id)
        assert fresh is not None
        return json_response(store.user_json(conn, fresh))


def _start_email_change(ctx: Ctx, conn: store.Conn, user_id: str, current: str, new: str) -> None:
    """sendEmailChange with secure email change: a link to each address."""
    conn.execute(
        "update auth.users set email_change = %s, email_change_confirm_status = 0,"
        " email_change_token_current = '', updated_at = now() where id = %s",
        (new, user_id),
    )
    redirect = ctx.request.args.get("redirect_to")
    send_token(
        conn,
        ctx.config,
        ctx.inbox,
        user_id=user_id,
        email=new,
        kind="email_change_new",
        redirect_to=redirect,
    )
    if current:
        send_token(
            conn,
            ctx.config,
            ctx.inbox,
            user_id=user_id,
            email=current,
            kind="email_change_current",
            redirect_to=redirect,
        )


def reauthenticate(ctx: Ctx) -> Response:
    """`GET /reauthenticate`: a one-time code mailed to the user's address (`reauthenticate.go`);
    GoTrue only requires it with `secure_password_change`, off here as in config.toml."""
    with store.connect(ctx.config) as conn:
        caller = access.authenticate(conn, ctx.config, ctx.request.headers.get("Authorization"))
        email = caller.user["email"]
        if not email:
            raise AuthError(422, "validation_failed", "Reauthentication requires an email address")
        send_token(conn, ctx.config, ctx.inbox, user_id=str(caller.user["id"]), email=email,
                   kind="reauthentication")  # fmt: skip
    return json_response({})


ROUTES: list[tuple[str, list[str], Handler]] = [
    ("/reauthenticate", ["GET"], reauthenticate),
    ("/user", ["GET"], get_user),
    ("/user", ["PUT"], update_user),
]
