"""Admin routes (`admin.go`): service role only, as `requireAdmin` checks the token's role.

`GET /admin/users` pages with `page`/`per_page` (default 50) and answers `{"users", "aud"}`
with GoTrue's `X-Total-Count` and `Link` headers; create, read, update and delete act on one
user, and its factors can be listed and deleted. Links: `routes_links`.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any

from psycopg.rows import DictRow
from psycopg.types.json import Jsonb
from werkzeug.wrappers import Response

from fnkit.local.auth import access, store
from fnkit.local.auth.app import Ctx, Handler
from fnkit.local.auth.errors import AuthError, bad_request, json_response, not_found
from fnkit.local.auth.routes_user import merge_metadata
from fnkit.local.auth.signup import random_password
from fnkit.local.auth.users import (
    check_password_strength,
    create_user,
    hash_password,
    validate_email,
)

DUPLICATE = "A user with this email address has already been registered"
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_S = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


def admin_only(ctx: Ctx) -> None:
    access.require_admin(ctx.config, ctx.request.headers.get("Authorization"))


def _ban_until(value: str) -> dt.datetime | None:
    """Go's time.ParseDuration for `ban_duration` ("none" lifts a ban)."""
    if value == "none":
        return None
    parts = _DURATION.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        raise bad_request("validation_failed", f"invalid format for ban duration: {value!r}")
    seconds = sum(float(n) * _UNIT_S[u] for n, u in parts)
    return store.now() + dt.timedelta(seconds=seconds)


def load_user_or_404(conn: store.Conn, user_id: str) -> DictRow:
    try:
        uuid.UUID(user_id)
    except ValueError:
        raise not_found("validation_failed", "user_id must be an UUID") from None
    user = store.load_user(conn, user_id)
    if user is None:
        raise not_found("user_not_found", "User not found")
    return user


def list_users(ctx: Ctx) -> Response:
    admin_only(ctx)
    try:
        page = max(1, int(ctx.request.args.get("page") or 1))
        per_page = max(1, int(ctx.request.args.get("per_page") or 50))
    except ValueError:
        raise bad_request("validation_failed", "Bad Pagination Parameters") from None
    with store.connect(ctx.config) as conn:
        total_row = conn.execute(
            "select count(*) as n from auth.users where aud = 'authenticated'"
        ).fetchone()
        total = int(total_row["n"]) if total_row else 0
        rows = conn.execute(
            f"select {store.USER_COLUMNS} from auth.users where aud = 'authenticated'"
            " order by created_at desc, id limit %s offset %s",
            (per_page, (page - 1) * per_page),
        ).fetchall()
        users = [store.user_json(conn, row) for row in rows]
    last = max(1, -(-total // per_page))
    base = ctx.request.base_url
    links = [f'<{base}?page={last}&per_page={per_page}>; rel="last"']
    if page < last:
        links.insert(0, f'<{base}?page={page + 1}&per_page={per_page}>; rel="next"')
    headers = {"X-Total-Count": str(total), "Link": ", ".join(links)}
    return json_response({"users": users, "aud": "authenticated"}, headers=headers)


def create(ctx: Ctx) -> Response:
    admin_only(ctx)
    body = ctx.body()
    if not ctx.text("email"):
        if ctx.text("phone"):
            raise bad_request("phone_provider_disabled", "Phone signups are disabled")
        raise bad_request(
            "validation_failed", "Cannot create a user without either an email or phone"
        )
    email = validate_email(ctx.text("email"))
    password = body.get("password") if isinstance(body.get("password"), str) else None
    if password and ctx.text("password_hash"):
        raise bad_request(
            "validation_failed", "Only a password or a password hash should be provided"
        )
    password_hash = ctx.text("password_hash") or hash_password(password or random_password())
    user_id = ctx.text("id") or str(uuid.uuid4())
    try:
        if uuid.UUID(user_id).int == 0:
            raise bad_request("validation_failed", "ID cannot be a nil uuid")
    except ValueError:
        raise bad_request("validation_failed", "ID must conform to the uuid v4 format") from None
    meta = body.get("user_metadata") if isinstance(body.get("user_metadata"), dict) else {}
    app = body.get("app_metadata") if isinstance(body.get("app_metadata"), dict) else {}
    with store.connect(ctx.config) as conn:
        if store.find_user_by_email(conn, email) is not None:
            raise AuthError(422, "email_exists", DUPLICATE)
        create_user(
            conn,
            user_id=user_id,
            email=email,
            password_hash=password_hash,
            user_metadata=meta,
            app_metadata=app,
            role=ctx.text("role") or "authenticated",
            confirmed=body.get("email_confirm") is True,
        )
        if ctx.text("ban_duration"):
            conn.execute(
                "update auth.users set banned_until = %s where id = %s",
                (_ban_until(ctx.text("ban_duration")), user_id),
            )
        return json_response(store.user_json(conn, load_user_or_404(conn, user_id)))


def get(ctx: Ctx, user_id: str) -> Response:
    admin_only(ctx)
    with store.connect(ctx.config) as conn:
        return json_response(store.user_json(conn, load_user_or_404(conn, user_id)))


def update(ctx: Ctx, user_id: str) -> Response:
    admin_only(ctx)
    body = ctx.body()
    with store.connect(ctx.config) as conn:
        user = load_user_or_404(conn, user_id)
        sets: list[tuple[str, Any]] = []
        if ctx.text("role"):
            sets.append(("role", ctx.text("role")))
        if ctx.text("email") and ctx.text("email") != user["email"]:
            email = validate_email(ctx.text("email"))
            if store.find_user_by_email(conn, email) is not None:
                raise AuthError(422, "email_exists", DUPLICATE)
            sets.append(("email", email))
        if isinstance(body.get("password"), str):
            check_password_strength(body["password"])
            sets.append(("encrypted_password", hash_password(body["password"])))
        if body.get("email_confirm") is True and user["email_confirmed_at"] is None:
            sets.append(("email_confirmed_at", store.now()))
        if isinstance(body.get("user_metadata"), dict):
            merged = merge_metadata(user["raw_user_meta_data"], body["user_metadata"])
            sets.append(("raw_user_meta_data", Jsonb(merged)))
        if isinstance(body.get("app_metadata"), dict):
            merged = merge_metadata(user["raw_app_meta_data"], body["app_metadata"])
            sets.append(("raw_app_meta_data", Jsonb(merged)))
        if ctx.text("ban_duration"):
            sets.append(("banned_until", _ban_until(ctx.text("ban_duration"))))
        for column, value in sets:  # names from the fixed list above, never from input
            conn.execute(
                f"update auth.users set {column} = %s, updated_at = now() where id = %s",
                (value, user_id),
            )
        if any(column == "email" for column, _ in sets):
            conn.execute(
                "update auth.identities set identity_data = identity_data"
                " || jsonb_build_object('email', %s::text) where user_id = %s"
                " and provider = 'email'",
                (dict(sets)["email"], user_id),
            )
        return json_response(store.user_json(conn, load_user_or_404(conn, user_id)))


def delete(ctx: Ctx, user_id: str) -> Response:
    admin_only(ctx)
    soft = ctx.body().get("should_soft_delete") is True
    with store.connect(ctx.config) as conn:
        user = load_user_or_404(conn, user_id)
        if soft:
            if user["deleted_at"] is None:
                conn.execute(
                    "update auth.users set deleted_at = now(), email = null, phone = null,"
                    " encrypted_password = '', raw_user_meta_data = '{}'::jsonb,"
                    " raw_app_meta_data = '{}'::jsonb, updated_at = now() where id = %s",
                    (user_id,),
                )
                conn.execute("delete from auth.identities where user_id = %s", (user_id,))
                conn.execute("delete from auth.sessions where user_id = %s", (user_id,))
        else:
            conn.execute("delete from auth.users where id = %s", (user_id,))
    return json_response({})


def list_factors(ctx: Ctx, user_id: str) -> Response:
    admin_only(ctx)
    with store.connect(ctx.config) as conn:
        user = load_user_or_404(conn, user_id)
        return json_response(store.factors_json(conn, user["id"]))


def delete_factor(ctx: Ctx, user_id: str, factor_id: str) -> Response:
    admin_only(ctx)
    with store.connect(ctx.config) as conn:
        load_user_or_404(conn, user_id)
        try:
            uuid.UUID(factor_id)
        except ValueError:
            raise not_found("validation_failed", "factor_id must be an UUID") from None
        gone = conn.execute(
            "delete from auth.mfa_factors where id = %s and user_id = %s returning id",
            (factor_id, user_id),
        ).fetchone()
        if gone is None:
            raise not_found("mfa_factor_not_found", "Factor not found")
        conn.execute(
            "update auth.sessions set aal = 'aal1', factor_id = null where factor_id = %s",
            (factor_id,),
        )
    return json_response({"id": factor_id})


ROUTES: list[tuple[str, list[str], Handler]] = [
    ("/admin/users", ["GET"], list_users),
    ("/admin/users", ["POST"], create),
    ("/admin/users/<user_id>", ["GET"], get),
    ("/admin/users/<user_id>", ["PUT"], update),
    ("/admin/users/<user_id>", ["DELETE"], delete),
    ("/admin/users/<user_id>/factors", ["GET"], list_factors),
    ("/admin/users/<user_id>/factors/<factor_id>", ["DELETE"], delete_factor),
]
