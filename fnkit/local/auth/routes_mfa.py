"""TOTP multi-factor authentication (`mfa.go`): enroll, challenge, verify, unenroll.

Verifying a challenge with a valid code (RFC 6238, SHA-1, 6 digits, 30 s, one step of skew)
marks the factor verified, records `totp` among the session's authentication methods, raises
the session to aal2, rotates its refresh token and answers a new session, as
`updateMFASessionAndClaims` does; the user's other sessions below aal2 are ended. A challenge
is valid for 300 s and only from the address that asked for it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from urllib.parse import urlparse

import pyotp
from werkzeug.wrappers import Response

from fnkit.local.auth import access, sessions, store
from fnkit.local.auth.app import Ctx, Handler
from fnkit.local.auth.errors import AuthError, bad_request, forbidden, json_response, not_found

CHALLENGE_EXPIRY_S = 300
MAX_ENROLLED_FACTORS = 10  # supabase/config.toml [auth.mfa] max_enrolled_factors
MAX_VERIFIED_FACTORS = 10


def qr_svg(uri: str) -> str:
    """The otpauth URI as an SVG QR code, error correction H, as GoTrue draws it (the clients
    prefix `data:image/svg+xml;utf-8,`); a person scans it with an authenticator app."""
    import segno

    return str(segno.make(uri, error="h").svg_inline())


def _caller(ctx: Ctx, conn: store.Conn) -> access.Caller:
    return access.authenticate(conn, ctx.config, ctx.request.headers.get("Authorization"))


def _factor(conn: store.Conn, user_id: str, factor_id: str) -> dict[str, object]:
    try:
        uuid.UUID(factor_id)
    except ValueError:
        raise not_found("validation_failed", "factor_id must be an UUID") from None
    row = conn.execute(
        "select id, friendly_name, factor_type::text as factor_type, status::text as status,"
        " secret from auth.mfa_factors where id = %s and user_id = %s",
        (factor_id, user_id),
    ).fetchone()
    if row is None:
        raise not_found("mfa_factor_not_found", "Factor not found")
    return dict(row)


def enroll(ctx: Ctx) -> Response:
    kind, name = ctx.text("factor_type"), ctx.text("friendly_name")
    if kind == "phone":
        raise AuthError(422, "mfa_phone_enroll_not_enabled", "MFA enroll is disabled for Phone")
    if kind == "webauthn":
        raise AuthError(
            422, "mfa_webauthn_enroll_not_enabled", "MFA enroll is disabled for WebAuthn"
        )
    if kind != "totp":
        raise bad_request("validation_failed", "factor_type needs to be totp, phone, or webauthn")
    issuer = ctx.text("issuer") or urlparse(ctx.config.site_url).netloc
    with store.connect(ctx.config) as conn:
        caller = _caller(ctx, conn)
        user_id = str(caller.user["id"])
        factors = conn.execute(
            "select friendly_name, status::text as status from auth.mfa_factors where user_id = %s",
            (user_id,),
        ).fetchall()
        if any((f["friendly_name"] or "") == name for f in factors):
            raise AuthError(
                422,
                "mfa_factor_name_conflict",
                f'A factor with the friendly name "{name}" for this user already exists',
            )
        verified = sum(1 for f in factors if f["status"] == "verified")
        if len(factors) >= MAX_ENROLLED_FACTORS or verified >= MAX_VERIFIED_FACTORS:
            raise AuthError(
                422,
                "too_many_enrolled_mfa_factors",
                "Maximum number of verified factors reached, unenroll to continue",
            )
        if verified and caller.session is not None and caller.session["aal"] != "aal2":
            raise forbidden("insufficient_aal", "AAL2 required to enroll a new factor")
        secret = pyotp.random_base32()
        uri = pyotp.TOTP(secret).provisioning_uri(
            name=caller.user["email"] or "", issuer_name=issuer
        )
        factor_id = str(uuid.uuid4())
        conn.execute(
            "insert into auth.mfa_factors (id, user_id, friendly_name, factor_type, status,"
            " created_at, updated_at, secret) values (%s, %s, %s, 'totp', 'unverified',"
            " now(), now(), %s)",
            (factor_id, user_id, name, secret),
        )
    return json_response(
        {
            "id": factor_id,
            "type": "totp",
            "friendly_name": name,
            "totp": {"qr_code": qr_svg(uri), "secret": secret, "uri": uri},
        }
    )


def challenge(ctx: Ctx, factor_id: str) -> Response:
    with store.connect(ctx.config) as conn:
        caller = _caller(ctx, conn)
        ctx.limit("factor")
        factor = _factor(conn, str(caller.user["id"]), factor_id)
        challenge_id = str(uuid.uuid4())
        moment = store.now()
        conn.execute(
            "insert into auth.mfa_challenges (id, factor_id, created_at, ip_address)"
            " values (%s, %s, %s, %s)",
            (challenge_id, factor_id, moment, ctx.ip),
        )
        conn.execute(
            "update auth.mfa_factors set last_challenged_at = %s where id = %s",
            (moment, factor_id),
        )
    expires = int(moment.timestamp()) + CHALLENGE_EXPIRY_S
    return json_response({"id": challenge_id, "type": factor["factor_type"], "expires_at": expires})


def verify(ctx: Ctx, factor_id: str) -> Response:
    with store.connect(ctx.config) as conn:
        caller = _caller(ctx, conn)
        ctx.limit("factor")
        code, challenge_id = ctx.text("code"), ctx.text("challenge_id")
        if not code:
            raise bad_request("validation_failed", "Code needs to be non-empty")
        user_id = str(caller.user["id"])
        factor = _factor(conn, user_id, factor_id)
        found = None
        with contextlib.suppress(ValueError):  # a malformed id is a challenge not found
            found = conn.execute(
                "select id, created_at, host(ip_address) as ip from auth.mfa_challenges"
                " where id = %s and factor_id = %s",
                (uuid.UUID(challenge_id), factor_id),
            ).fetchone()
        if found is None:
            raise AuthError(
                422,
                "mfa_factor_not_found",
                "MFA factor with the provided challenge ID not found",
            )
        if found["ip"] != ctx.ip:
            raise AuthError(
                422, "mfa_ip_address_mismatch", "Challenge and verify IP addresses mismatch."
            )
        if store.now() > found["created_at"] + dt.timedelta(seconds=CHALLENGE_EXPIRY_S):
            raise AuthError(
                422,
                "mfa_challenge_expired",
                f"MFA challenge {challenge_id} has expired, verify against another challenge"
                " or create a new challenge.",
            )
        if not pyotp.TOTP(str(factor["secret"])).verify(code, valid_window=1):
            raise AuthError(422, "mfa_verification_failed", "Invalid TOTP code entered")
        if caller.session is None:
            raise AuthError(500, "unexpected_failure", "Cannot read SessionId claim as UUID")
        session_id = str(caller.session["id"])
        conn.execute(
            "update auth.mfa_challenges set verified_at = now() where id = %s", (found["id"],)
        )
        conn.execute(
            "update auth.mfa_factors set status = 'verified', updated_at = now() where id = %s",
            (factor_id,),
        )
        sessions.add_amr(conn, session_id, "totp")
        conn.execute(
            "update auth.sessions set aal = 'aal2', factor_id = %s, updated_at = now()"
            " where id = %s",
            (factor_id, session_id),
        )
        refresh = sessions.rotate_active_token(conn, session_id)
        conn.execute(
            "delete from auth.sessions where user_id = %s and id <> %s"
            " and (aal is null or aal < 'aal2')",
            (user_id, session_id),
        )
        conn.execute(
            "delete from auth.mfa_factors where user_id = %s and factor_type = 'totp'"
            " and status = 'unverified'",
            (user_id,),
        )
        user = store.load_user(conn, user_id)
        assert user is not None
        token, expires = access.sign_access_token(
            conn, ctx.config, user, session_id, "totp", ctx.ip
        )
        return json_response(access.session_body(conn, token, expires, refresh, user))


def unenroll(ctx: Ctx, factor_id: str) -> Response:
    with store.connect(ctx.config) as conn:
        caller = _caller(ctx, conn)
        factor = _factor(conn, str(caller.user["id"]), factor_id)
        aal2 = caller.session is not None and caller.session["aal"] == "aal2"
        if factor["status"] == "verified" and not aal2:
            raise AuthError(422, "insufficient_aal", "AAL2 required to unenroll verified factor")
        downgraded = conn.execute(
            "update auth.sessions set aal = 'aal1', factor_id = null, updated_at = now()"
            " where factor_id = %s returning id",
            (factor_id,),
        ).fetchall()
        conn.execute(
            "delete from auth.mfa_amr_claims where session_id = any(%s)"
            " and authentication_method = 'totp'",
            ([row["id"] for row in downgraded],),
        )
        conn.execute("delete from auth.mfa_factors where id = %s", (factor_id,))
    return json_response({"id": factor_id})


ROUTES: list[tuple[str, list[str], Handler]] = [
    ("/factors", ["POST"], enroll),
    ("/factors/<factor_id>/challenge", ["POST"], challenge),
    ("/factors/<factor_id>/verify", ["POST"], verify),
    ("/factors/<factor_id>", ["DELETE"], unenroll),
]
