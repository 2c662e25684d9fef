"""`POST /admin/generate_link` (`mail.go`): an emailed link made and handed back, not mailed.

Signup, invite, magic link and recovery links create the user as a sign-up would (the Before
User Created hook included) when it does not exist yet; `email_change_current`/`_new` record
the change and answer the link for the address named.
"""

from __future__ import annotations

from werkzeug.wrappers import Response

from fnkit.local.auth import store
from fnkit.local.auth.app import Ctx, Handler
from fnkit.local.auth.errors import AuthError, bad_request, json_response, not_found
from fnkit.local.auth.otp import send_token
from fnkit.local.auth.routes_admin import DUPLICATE, admin_only, load_user_or_404
from fnkit.local.auth.signup import before_user_created, insert_new_user
from fnkit.local.auth.users import check_password_strength, validate_email


def _email_change_link(ctx: Ctx, kind: str, email: str) -> Response:
    """generate_link for `email_change_current`/`_new`: the change recorded, its link back."""
    new_email = validate_email(ctx.text("new_email"))
    with store.connect(ctx.config) as conn:
        user = store.find_user_by_email(conn, email)
        if user is None:
            raise not_found("user_not_found", "User with this email not found")
        if store.find_user_by_email(conn, new_email) is not None:
            raise AuthError(422, "email_exists", DUPLICATE)
        user_id = str(user["id"])
        conn.execute(
            "update auth.users set email_change = %s, email_change_confirm_status = 0"
            " where id = %s",
            (new_email, user_id),
        )
        redirect = ctx.text("redirect_to") or None
        links = {
            name: send_token(conn, ctx.config, ctx.inbox, user_id=user_id, email=address,
                             kind=name, redirect_to=redirect, deliver=False)
            for name, address in (("email_change_current", email), ("email_change_new", new_email))
        }  # fmt: skip
        body = store.user_json(conn, load_user_or_404(conn, user_id))
    body.update(links[kind])
    body["verification_type"] = kind
    body["redirect_to"] = ctx.text("redirect_to") or ctx.config.site_url
    return json_response(body)


def generate_link(ctx: Ctx) -> Response:
    admin_only(ctx)
    kind, email = ctx.text("type"), validate_email(ctx.text("email"))
    if kind in ("email_change_current", "email_change_new"):
        return _email_change_link(ctx, kind, email)
    if kind not in ("signup", "invite", "magiclink", "recovery"):
        raise bad_request("validation_failed", "Invalid email action link type requested")
    data = ctx.body().get("data") if isinstance(ctx.body().get("data"), dict) else {}
    with store.connect(ctx.config) as conn:
        existing = store.find_user_by_email(conn, email)
    if existing is None and kind in ("magiclink", "recovery"):
        raise not_found("user_not_found", "User with this email not found")
    if existing is not None and kind in ("signup", "invite") and existing["email_confirmed_at"]:
        raise AuthError(422, "email_exists", DUPLICATE)
    new_id = None if existing else before_user_created(ctx, email, data)
    with store.connect(ctx.config) as conn:
        if existing is None:
            assert new_id is not None
            password = ctx.text("password") or None
            if kind == "signup" and password:
                check_password_strength(password)
            insert_new_user(
                conn,
                user_id=new_id,
                email=email,
                password=password,
                user_metadata=data,
                invited=kind == "invite",
            )
        user_id = str(existing["id"]) if existing is not None else str(new_id)
        link = send_token(
            conn,
            ctx.config,
            ctx.inbox,
            user_id=user_id,
            email=email,
            kind=kind,
            redirect_to=ctx.text("redirect_to") or None,
            deliver=False,
        )
        body = store.user_json(conn, load_user_or_404(conn, user_id))
    body.update(link)
    body["verification_type"] = kind
    body["redirect_to"] = ctx.text("redirect_to") or ctx.config.site_url
    return json_response(body)


ROUTES: list[tuple[str, list[str], Handler]] = [
    ("/admin/generate_link", ["POST"], generate_link),
]
