"""Email flows: invite, verify (link and OTP), recover, OTP/magic link, resend.

Routes as `invite.go`, `verify.go`, `recover.go`, `otp.go`/`magic_link.go` and `resend.go`
answer them. `GET /verify` is what a person's browser opens from the email: it redirects (303)
to `redirect_to` with the session in the URL fragment, or with `error`, `error_code` and
`error_description` there when the link is bad, as GoTrue's implicit flow does; a PKCE
flow's link redirects with `?code=` instead (`pkce`).
"""

from __future__ import annotations

from urllib.parse import urlencode, urlparse

from werkzeug.utils import redirect
from werkzeug.wrappers import Response

from fnkit.local.auth import access, pkce, store
from fnkit.local.auth.app import Ctx, Handler
from fnkit.local.auth.errors import AuthError, bad_request, json_response
from fnkit.local.auth.otp import send_token
from fnkit.local.auth.signup import before_user_created, insert_new_user
from fnkit.local.auth.users import validate_email
from fnkit.local.auth.verify import SINGLE_CONFIRMATION, apply_verification, find_verified_user


def _redirect_target(ctx: Ctx, wanted: str | None) -> str:
    """redirect_to when it is the site or a loopback address, else the site URL."""
    site = ctx.config.site_url
    if not wanted:
        return site
    host = urlparse(wanted).hostname or ""
    if wanted.startswith(site) or host in ("localhost", "127.0.0.1", "::1"):
        return wanted
    return site


def invite(ctx: Ctx) -> Response:
    access.require_admin(ctx.config, ctx.request.headers.get("Authorization"))
    email = validate_email(ctx.text("email"))
    data = ctx.body().get("data") if isinstance(ctx.body().get("data"), dict) else {}
    with store.connect(ctx.config) as conn:
        existing = store.find_user_by_email(conn, email)
    new_id = None if existing else before_user_created(ctx, email, data)
    with store.connect(ctx.config) as conn:
        existing = store.find_user_by_email(conn, email)
        if existing is not None and existing["email_confirmed_at"] is not None:
            raise AuthError(
                422, "email_exists", "A user with this email address has already been registered"
            )
        if existing is None:
            assert new_id is not None
            insert_new_user(
                conn, user_id=new_id, email=email, password=None, user_metadata=data, invited=True
            )
            user_id = new_id
        else:
            user_id = str(existing["id"])
            conn.execute("update auth.users set invited_at = now() where id = %s", (user_id,))
        send_token(
            conn,
            ctx.config,
            ctx.inbox,
            user_id=user_id,
            email=email,
            kind="invite",
            redirect_to=_redirect_target(
                ctx, ctx.text("redirect_to") or ctx.request.args.get("redirect_to")
            ),
        )
        user = store.load_user(conn, user_id)
        assert user is not None
        return json_response(store.user_json(conn, user))


def verify_post(ctx: Ctx) -> Response:
    ctx.limit("verify")
    kind, token, hashed = ctx.text("type"), ctx.text("token"), ctx.text("token_hash")
    email = ctx.text("email")
    if not kind:
        raise bad_request("validation_failed", "Verify requires a verification type")
    if bool(token) == bool(hashed):
        raise bad_request("validation_failed", "Verify requires either a token or a token hash")
    if token and not email:
        if ctx.text("phone"):
            raise bad_request("phone_provider_disabled", "Phone logins are disabled")
        raise bad_request(
            "validation_failed",
            "Only an email address or phone number should be provided on verify",
        )
    if hashed and (email or ctx.text("phone")):
        raise bad_request("validation_failed", "Only the token_hash and type should be provided")
    with store.connect(ctx.config) as conn:
        user, effective = find_verified_user(conn, kind, token or hashed, email or None)
        stored_hash = token or hashed
        if email:
            from fnkit.local.auth.otp import token_hash

            stored_hash = token_hash(email.lower(), token)
        if not apply_verification(conn, user, effective, stored_hash):
            return json_response({"msg": SINGLE_CONFIRMATION, "code": "200"})
        body = access.issue_session(
            conn, ctx.config, str(user["id"]), "otp", ctx.ip, ctx.user_agent
        )
    return json_response(body)


def verify_get(ctx: Ctx) -> Response:
    args = ctx.request.args
    target = _redirect_target(ctx, args.get("redirect_to"))
    kind, token = args.get("type", ""), args.get("token", "")
    try:
        ctx.limit("verify")
        if not kind:
            raise bad_request("validation_failed", "Verify requires a verification type")
        if not token:
            raise bad_request("validation_failed", "Verify requires a token or a token hash")
        with store.connect(ctx.config) as conn:
            user, effective = find_verified_user(conn, kind, token, None)
            if not apply_verification(conn, user, effective, token):
                message = urlencode({"message": SINGLE_CONFIRMATION})
                return redirect(f"{target}#{message}", 303)
            if token.startswith(pkce.PREFIX):  # the PKCE flow: a code for the client to redeem
                code = pkce.issue_auth_code(conn, str(user["id"]), effective)
                joiner = "&" if "?" in target else "?"
                return redirect(f"{target}{joiner}{urlencode({'code': code})}", 303)
            body = access.issue_session(
                conn, ctx.config, str(user["id"]), "otp", ctx.ip, ctx.user_agent
            )
    except AuthError as exc:
        error = "server_error" if exc.status >= 500 else "access_denied"
        fragment = urlencode(
            {"error": error, "error_code": exc.code or "unknown", "error_description": exc.message}
        )
        return redirect(f"{target}#{fragment}", 303)
    fragment = urlencode(
        {
            "access_token": body["access_token"],
            "expires_at": body["expires_at"],
            "expires_in": body["expires_in"],
            "refresh_token": body["refresh_token"],
            "token_type": "bearer",
            "type": kind,
            "sb": "",
        }
    )
    return redirect(f"{target}#{fragment}", 303)


def recover(ctx: Ctx) -> Response:
    ctx.limit("recover")
    email = validate_email(ctx.text("email"))
    with store.connect(ctx.config) as conn:
        user = store.find_user_by_email(conn, email)
        flow = pkce.wants_pkce(ctx.body())
        if user is not None:
            if flow:
                pkce.start_flow(conn, str(user["id"]), "recovery", flow)
            send_token(
                conn,
                ctx.config,
                ctx.inbox,
                user_id=str(user["id"]),
                email=email,
                kind="recovery",
                redirect_to=_redirect_target(ctx, ctx.request.args.get("redirect_to")),
                pkce=flow is not None,
            )
    return json_response({})


def otp(ctx: Ctx) -> Response:
    """POST /otp and /magiclink: a sign-in link and code, creating the user if allowed."""
    ctx.limit("otp")
    if ctx.text("phone") and not ctx.text("email"):
        raise bad_request("phone_provider_disabled", "Unsupported phone provider")
    email = validate_email(ctx.text("email"))
    create = ctx.body().get("create_user", True) is not False
    data = ctx.body().get("data") if isinstance(ctx.body().get("data"), dict) else {}
    redirect_to = _redirect_target(ctx, ctx.request.args.get("redirect_to"))
    with store.connect(ctx.config) as conn:
        existing = store.find_user_by_email(conn, email)
    if existing is None and not create:
        raise AuthError(422, "otp_disabled", "Signups not allowed for otp")
    new_id = None if existing else before_user_created(ctx, email, data)
    with store.connect(ctx.config) as conn:
        user = store.find_user_by_email(conn, email)
        if user is None:
            assert new_id is not None
            insert_new_user(conn, user_id=new_id, email=email, password=None, user_metadata=data)
            user = store.load_user(conn, new_id)
        assert user is not None
        kind = "magiclink" if user["email_confirmed_at"] is not None else "signup"
        flow = pkce.wants_pkce(ctx.body())
        if flow:
            pkce.start_flow(conn, str(user["id"]), kind, flow)
        send_token(
            conn,
            ctx.config,
            ctx.inbox,
            user_id=str(user["id"]),
            email=email,
            kind=kind,
            redirect_to=redirect_to,
            pkce=flow is not None,
        )
    return json_response({})


def resend(ctx: Ctx) -> Response:
    ctx.limit("otp")
    kind = ctx.text("type")
    if kind not in ("signup", "email_change"):
        raise bad_request("validation_failed", "Missing one of these types: signup, email_change")
    email = validate_email(ctx.text("email"))
    with store.connect(ctx.config) as conn:
        user = store.find_user_by_email(conn, email)
        if user is not None and kind == "signup" and user["email_confirmed_at"] is None:
            send_token(
                conn, ctx.config, ctx.inbox, user_id=str(user["id"]), email=email, kind="signup"
            )
        elif user is not None and kind == "email_change" and user["email_change"]:
            send_token(
                conn,
                ctx.config,
                ctx.inbox,
                user_id=str(user["id"]),
                email=user["email_change"],
                kind="email_change_new",
            )
    return json_response({})


ROUTES: list[tuple[str, list[str], Handler]] = [
    ("/invite", ["POST"], invite),
    ("/verify", ["POST"], verify_post),
    ("/verify", ["GET"], verify_get),
    ("/recover", ["POST"], recover),
    ("/otp", ["POST"], otp),
    ("/magiclink", ["POST"], otp),
    ("/resend", ["POST"], resend),
]
