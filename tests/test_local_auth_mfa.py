"""TOTP MFA in the local Auth through supabase-py: enroll, challenge, verify, aal2, unenroll."""

from __future__ import annotations

from typing import Any

import psycopg
import pyotp
import pytest
from supabase_auth.errors import AuthApiError

from tests.fixtures.server import FakeAuth, Served
from tests.test_local_auth_support import (
    API_2024,
    PASSWORD,
    claims_of,
    client,
    raw,
    unique_email,
)


@pytest.fixture(autouse=True)
def _signing_key_and_hooks(served: Served) -> None:
    """The served functions: the hooks the local Auth calls point at them."""


def test_totp_raises_the_session_to_aal2(
    fake_auth: FakeAuth, db_admin: psycopg.Connection[Any]
) -> None:
    auth = client(fake_auth.url).auth
    email = unique_email("mfa")
    auth.sign_up({"email": email, "password": PASSWORD})
    other = client(fake_auth.url).auth
    other.sign_in_with_password({"email": email, "password": PASSWORD})
    enrolled = auth.mfa.enroll({"factor_type": "totp", "friendly_name": "phone app"})
    assert enrolled.type == "totp" and enrolled.friendly_name == "phone app"
    assert enrolled.totp is not None
    assert enrolled.totp.uri.startswith("otpauth://totp/") and enrolled.totp.secret
    assert enrolled.totp.qr_code.startswith("data:image/svg+xml;utf-8,<svg")
    assert "<path" in enrolled.totp.qr_code  # a drawn QR code, not the URI as text
    level = auth.mfa.get_authenticator_assurance_level()
    assert (level.current_level, level.next_level) == ("aal1", "aal1")  # not verified yet
    challenge = auth.mfa.challenge({"factor_id": enrolled.id})
    with pytest.raises(AuthApiError) as wrong:
        auth.mfa.verify({"factor_id": enrolled.id, "challenge_id": challenge.id, "code": "000000"})
    assert wrong.value.status == 422 and wrong.value.code == "mfa_verification_failed"
    code = pyotp.TOTP(enrolled.totp.secret).now()
    verified = auth.mfa.verify(
        {"factor_id": enrolled.id, "challenge_id": challenge.id, "code": code}
    )
    claims = claims_of(verified.access_token)
    assert claims["aal"] == "aal2"
    assert [a["method"] for a in claims["amr"]] == ["totp", "password"]
    assert "memberships" in claims  # the hook ran for the stepped-up token too
    level = auth.mfa.get_authenticator_assurance_level()
    assert (level.current_level, level.next_level) == ("aal2", "aal2")
    factors = auth.mfa.list_factors()
    assert [f.id for f in factors.totp] == [enrolled.id]
    assert factors.totp[0].status == "verified"
    with pytest.raises(AuthApiError) as ended:  # sessions below aal2 are ended
        other.get_user()
    assert ended.value.code == "session_not_found"
    session_row = db_admin.execute(
        "select aal::text, factor_id::text from auth.sessions where id = %s",
        (claims["session_id"],),
    ).fetchone()
    assert session_row == ("aal2", enrolled.id)
    refreshed = auth.refresh_session().session
    assert refreshed is not None and claims_of(refreshed.access_token)["aal"] == "aal2"


def test_a_verified_factor_needs_aal2_to_change_or_remove(fake_auth: FakeAuth) -> None:
    auth = client(fake_auth.url).auth
    email = unique_email("mfa2")
    auth.sign_up({"email": email, "password": PASSWORD})
    enrolled = auth.mfa.enroll({"factor_type": "totp", "friendly_name": "app"})
    assert enrolled.totp is not None
    auth.mfa.challenge_and_verify(
        {"factor_id": enrolled.id, "code": pyotp.TOTP(enrolled.totp.secret).now()}
    )
    plain = client(fake_auth.url).auth
    plain.sign_in_with_password({"email": email, "password": PASSWORD})
    level = plain.mfa.get_authenticator_assurance_level()
    assert (level.current_level, level.next_level) == ("aal1", "aal2")
    with pytest.raises(AuthApiError) as password:
        plain.update_user({"password": "another-password"})
    assert password.value.status == 401 and password.value.code == "insufficient_aal"
    with pytest.raises(AuthApiError) as remove:
        plain.mfa.unenroll({"factor_id": enrolled.id})
    assert remove.value.code == "insufficient_aal"
    with pytest.raises(AuthApiError) as name:
        auth.mfa.enroll({"factor_type": "totp", "friendly_name": "app"})
    assert name.value.code == "mfa_factor_name_conflict"
    assert auth.mfa.unenroll({"factor_id": enrolled.id}).id == enrolled.id
    assert auth.mfa.list_factors().totp == []
    token = auth.refresh_session().session
    assert token is not None and claims_of(token.access_token)["aal"] == "aal1"


def test_challenges_are_checked_as_gotrue_checks_them(
    fake_auth: FakeAuth, db_admin: psycopg.Connection[Any]
) -> None:
    auth = client(fake_auth.url).auth
    session = auth.sign_up({"email": unique_email("mfa3"), "password": PASSWORD}).session
    assert session is not None
    enrolled = auth.mfa.enroll({"factor_type": "totp", "friendly_name": "x"})
    assert enrolled.totp is not None
    code = pyotp.TOTP(enrolled.totp.secret).now()
    bearer = {"Authorization": f"Bearer {session.access_token}"}
    with raw(fake_auth.url, **API_2024, **bearer) as http:
        phone = http.post("/factors", json={"factor_type": "phone", "phone": "+15555550100"})
        moved = http.post(f"/factors/{enrolled.id}/challenge").json()
        elsewhere = http.post(
            f"/factors/{enrolled.id}/verify",
            json={"challenge_id": moved["id"], "code": code},
            headers={"X-Forwarded-For": "198.51.100.9"},
        )
        stale = http.post(f"/factors/{enrolled.id}/challenge").json()
        db_admin.execute(
            "update auth.mfa_challenges set created_at = created_at - interval '301 seconds'"
            " where id = %s",
            (stale["id"],),
        )
        expired = http.post(
            f"/factors/{enrolled.id}/verify", json={"challenge_id": stale["id"], "code": code}
        )
        unknown = http.post(
            f"/factors/{enrolled.id}/verify", json={"challenge_id": "x", "code": code}
        )
        missing = http.post("/factors/00000000-0000-4000-8000-000000000000/challenge")
    assert phone.status_code == 422 and phone.json()["code"] == "mfa_phone_enroll_not_enabled"
    assert elsewhere.status_code == 422 and elsewhere.json()["code"] == "mfa_ip_address_mismatch"
    assert expired.status_code == 422 and expired.json()["code"] == "mfa_challenge_expired"
    assert unknown.status_code == 422 and unknown.json()["code"] == "mfa_factor_not_found"
    assert missing.status_code == 404 and missing.json()["code"] == "mfa_factor_not_found"
