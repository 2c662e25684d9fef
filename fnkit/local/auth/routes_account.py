"""Health, settings, JWKS, sign-up, sign-in and refresh (`signup.go`, `token.go`, `api.go`)."""

from __future__ import annotations

import uuid
from typing import Any

from werkzeug.wrappers import Response

from fnkit.local.auth import access, pkce, sessions, store
from fnkit.local.auth.app import Ctx, Handler
from fnkit.local.auth.errors import AuthError, OAuthError, bad_request, json_response
from fnkit.local.auth.otp import send_token
from fnkit.local.auth.signup import before_user_created, insert_new_user
from fnkit.local.auth.users import (
    check_password,
    check_password_strength,
    confirm_email,
    create_anonymous_user,
    require_not_banned,
    validate_email,
)

INVALID_LOGIN = "Invalid login credentials"
ALL_PROVIDERS = (
    "anonymous_users",
    "apple",
    "azure",
    "bitbucket",
    "discord",
    "facebook",
    "snapchat",
    "figma",
    "fly",
    "github",
    "gitlab",
    "google",
    "keycloak",
    "kakao",
    "linkedin",
    "linkedin_oidc",
    "notion",
    "spotify",
    "slack",
    "slack_oidc",
    "workos",
    "twitch",
    "twitter",
    "email",
    "phone",
    "zoom",
)


def health(ctx: Ctx) -> Response:
    return json_response(
        {
            "version": "fnkit-local",
            "name": "GoTrue",
            "description": "GoTrue is a user registration and authentication API",
        }
    )


def settings(ctx: Ctx) -> Response:
    external = {name: name == "email" for name in ALL_PROVIDERS}
    external["anonymous_users"] = _flag(ctx, "auth_anonymous_users")
    return json_response(
        {
            "external": external,
            "disable_signup": _flag(ctx, "auth_disable_signup"),
            "mailer_autoconfirm": not ctx.config.enable_confirmations,
            "phone_autoconfirm": False,
            "sms_provider": "",
            "saml_enabled": False,
            "passkeys_enabled": False,
        }
    )


def _flag(ctx: Ctx, name: str) -> bool:
    """A switch in `LocalConfig.extra` (GoTrue's DISABLE_SIGNUP, EXTERNAL_ANONYMOUS_USERS)."""
    return ctx.config.extra.get(name, "").lower() in ("1", "true", "yes", "on")


def jwks(ctx: Ctx) -> Response:
    return json_response(ctx.config.keys.jwks())


def _metadata(ctx: Ctx, name: str) -> dict[str, Any]:
    value = ctx.body().get(name)
    return value if isinstance(value, dict) else {}


def _sanitized_user(email: str, data: dict[str, Any]) -> dict[str, Any]:
    """sanitizeUser: what a repeated sign-up sees when confirmations are on (no leak)."""
    moment = store.timestamp(store.now())
    return {
        "id": str(uuid.uuid4()),
        "aud": "authenticated",
        "role": "",
        "email": email,
        "phone": "",
        "confirmation_sent_at": moment,
        "app_metadata": {"provider": "email", "providers": ["email"]},
        "user_metadata": data,
        "identities": [],
        "created_at": moment,
        "updated_at": moment,
        "is_anonymous": False,
    }


def _sign_up_anonymously(ctx: Ctx, data: dict[str, Any]) -> Response:
    """SignupAnonymously: a user with no address, signed in with amr `anonymous`."""
    if not _flag(ctx, "auth_anonymous_users"):
        raise AuthError(422, "anonymous_provider_disabled", "Anonymous sign-ins are disabled")
    document_id = before_user_created(ctx, "", data)
    with store.connect(ctx.config) as conn:
        create_anonymous_user(conn, document_id, data)
        body = access.issue_session(
            conn, ctx.config, document_id, "anonymous", ctx.ip, ctx.user_agent
        )
    return json_response(body)


def signup(ctx: Ctx) -> Response:
    if _flag(ctx, "auth_disable_signup"):
        raise AuthError(422, "signup_disabled", "Signups not allowed for this instance")
    ctx.limit("signup")
    password, data = ctx.text("password"), _metadata(ctx, "data")
    if not ctx.text("email") and not ctx.text("phone"):
        return _sign_up_anonymously(ctx, data)
    if not password:
        raise bad_request("validation_failed", "Signup requires a valid password")
    check_password_strength(password)
    if ctx.text("email") and ctx.text("phone"):
        raise bad_request(
            "validation_failed",
            "Only an email address or phone number should be provided on signup.",
        )
    if ctx.text("phone"):
        raise bad_request("phone_provider_disabled", "Phone signups are disabled")
    if not ctx.text("email"):
        raise bad_request("validation_failed", "Sign up only available with email provider")
    email = validate_email(ctx.text("email"))
    with store.connect(ctx.config) as conn:
        existing = store.find_user_by_email(conn, email)
    new_id = None if existing else before_user_created(ctx, email, data)
    autoconfirm = not ctx.config.enable_confirmations
    with store.connect(ctx.config) as conn:
        existing = store.find_user_by_email(conn, email)
        if existing is not None and existing["email_confirmed_at"] is not None:
            if autoconfirm:
                raise AuthError(422, "user_already_exists", "User already registered")
            return json_response(_sanitized_user(email, data))
        if existing is None:
            new_id = new_id or str(uuid.uuid4())
            insert_new_user(
                conn, user_id=new_id, email=email, password=password, user_metadata=data
            )
            user_id = new_id
        else:
            user_id = str(existing["id"])
        if autoconfirm:
            confirm_email(conn, user_id)
            body = access.issue_session(
                conn, ctx.config, user_id, "password", ctx.ip, ctx.user_agent
            )
            return json_response(body)
        flow = pkce.wants_pkce(ctx.body())
        if flow:
            pkce.start_flow(conn, user_id, "signup", flow)
        send_token(
            conn,
            ctx.config,
            ctx.inbox,
            user_id=user_id,
            email=email,
            kind="signup",
            redirect_to=ctx.request.args.get("redirect_to"),
            pkce=flow is not None,
        )
        user = store.load_user(conn, user_id)
        assert user is not None
        return json_response(store.user_json(conn, user))


def token(ctx: Ctx) -> Response:
    grant = ctx.request.args.get("grant_type") or ctx.request.form.get("grant_type", "")
    if grant not in ("password", "refresh_token", "pkce"):
        raise bad_request("invalid_credentials", "unsupported_grant_type")
    ctx.limit("token")
    if grant == "pkce":
        return _pkce_grant(ctx)
    return _password_grant(ctx) if grant == "password" else _refresh_grant(ctx)


def _pkce_grant(ctx: Ctx) -> Response:
    with store.connect(ctx.config) as conn:
        user_id, method = pkce.exchange(conn, ctx.text("auth_code"), ctx.text("code_verifier"))
        body = access.issue_session(conn, ctx.config, user_id, method, ctx.ip, ctx.user_agent)
    return json_response(body)


def _password_grant(ctx: Ctx) -> Response:
    email, phone, password = ctx.text("email"), ctx.text("phone"), ctx.text("password")
    if email and phone:
        raise bad_request(
            "validation_failed",
            "Only an email address or phone number should be provided on login.",
        )
    if phone:
        raise AuthError(422, "phone_provider_disabled", "Phone logins are disabled")
    if not email:
        raise bad_request("validation_failed", "missing email or phone")
    with store.connect(ctx.config) as conn:
        user = store.find_user_by_email(conn, email)
        if user is None or not user["encrypted_password"]:
            raise bad_request("invalid_credentials", INVALID_LOGIN)
        require_not_banned(user)
        if not check_password(password, user["encrypted_password"]):
            raise bad_request("invalid_credentials", INVALID_LOGIN)
        weak = None
        try:
            check_password_strength(password)
        except AuthError as exc:
            weak = {"message": exc.message, "reasons": exc.reasons} if exc.reasons else None
        if user["email_confirmed_at"] is None:
            raise bad_request("email_not_confirmed", "Email not confirmed")
        body = access.issue_session(
            conn, ctx.config, str(user["id"]), "password", ctx.ip, ctx.user_agent
        )
    if weak:
        body["weak_password"] = weak
    return json_response(body)


def _refresh_grant(ctx: Ctx) -> Response:
    value = ctx.text("refresh_token")
    if not value:
        raise OAuthError("invalid_request", "refresh_token required")
    with store.connect(ctx.config) as conn:
        user_id, session_id, issued = sessions.rotate_refresh_token(conn, value)
        user = store.load_user(conn, user_id)
        if user is None:
            raise bad_request(
                "refresh_token_not_found", "Invalid Refresh Token: Refresh Token Not Found"
            )
        require_not_banned(user)
        token_value, expires = access.sign_access_token(
            conn, ctx.config, user, session_id, "token_refresh", ctx.ip
        )
        sessions.touch_session(conn, session_id, ctx.ip, ctx.user_agent)
        return json_response(access.session_body(conn, token_value, expires, issued, user))


def logout(ctx: Ctx) -> Response:
    scope = ctx.request.args.get("scope") or "global"
    if scope not in ("global", "local", "others"):
        raise bad_request("validation_failed", f'Unsupported logout scope "{scope}"')
    with store.connect(ctx.config) as conn:
        caller = access.authenticate(conn, ctx.config, ctx.request.headers.get("Authorization"))
        session_id = str(caller.session["id"]) if caller.session else None
        sessions.logout(conn, str(caller.user["id"]), session_id, scope)
    return Response(status=204)


ROUTES: list[tuple[str, list[str], Handler]] = [
    ("/health", ["GET"], health),
    ("/settings", ["GET"], settings),
    ("/.well-known/jwks.json", ["GET"], jwks),
    ("/signup", ["POST"], signup),
    ("/token", ["POST"], token),
    ("/logout", ["POST"], logout),
]
