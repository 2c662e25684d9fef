"""The local Auth through supabase-py and raw HTTP: sign-up, sign-in, tokens, rows, errors.

Against the session's local Auth (`fake_auth`) on the session database, with the Auth hooks
pointed at the served `hooks` function (the `served` fixture), as `make dev` runs them.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
import psycopg
import pytest
from supabase_auth.errors import AuthApiError, AuthWeakPasswordError

from fnkit.devenv import DEV_ANON_KEY, DEV_JWT_SECRET
from fnkit.local.keys import SigningKey
from tests.fixtures.server import ACME, OUTPOST, SEED_USERS, FakeAuth, Served
from tests.test_local_auth_support import (
    API_2024,
    PASSWORD,
    claims_of,
    client,
    proxied,
    raw,
    second_auth,
    unique_email,
)


@pytest.fixture(autouse=True)
def _signing_key_and_hooks(served: Served) -> None:
    """The served functions: the hooks the local Auth calls point at them."""


def test_health_settings_and_jwks_answer_as_gotrue(fake_auth: FakeAuth) -> None:
    with raw(fake_auth.url) as http:
        health = http.get("/health").json()
        settings = http.get("/settings").json()
    assert health["name"] == "GoTrue"
    assert settings["external"]["email"] is True and settings["external"]["phone"] is False
    assert settings["mailer_autoconfirm"] is True
    before = fake_auth.fetches
    with raw(fake_auth.url) as http:
        keys = http.get("/.well-known/jwks.json").json()["keys"]
    assert fake_auth.fetches == before + 1
    assert {k["kid"] for k in keys} == {k.kid for k in fake_auth.keys}


def test_sign_up_signs_in_with_an_es256_token_carrying_the_hook_claims(
    served: Served, fake_auth: FakeAuth
) -> None:
    email = unique_email("Signup")
    response = client(fake_auth.url).auth.sign_up(
        {"email": email, "password": PASSWORD, "options": {"data": {"full_name": "Sam"}}}
    )
    assert response.session is not None and response.user is not None
    assert response.user.email == email.lower()
    assert response.user.user_metadata["full_name"] == "Sam"
    token = response.session.access_token
    header = jwt.get_unverified_header(token)
    key = next(k for k in fake_auth.keys if k.kid == header["kid"])
    assert header["alg"] == "ES256" and key is fake_auth.keys[0]
    claims = jwt.decode(
        token, key.private.public_key(), algorithms=["ES256"], audience="authenticated",
        issuer=f"{fake_auth.url}/auth/v1",
    )  # fmt: skip
    assert claims["sub"] == response.user.id and claims["role"] == "authenticated"
    assert claims["aal"] == "aal1" and claims["is_anonymous"] is False
    assert [a["method"] for a in claims["amr"]] == ["password"]
    assert claims["app_metadata"] == {"provider": "email", "providers": ["email"]}
    assert claims["email"] == email.lower() and claims["phone"] == ""
    assert claims["memberships"] == {}  # the Custom Access Token hook ran: a new user is in none
    assert 3599 <= response.session.expires_in <= 3600  # a second may tick between the two
    assert uuid.UUID(claims["session_id"])


def test_rows_are_written_as_gotrue_writes_them(
    fake_auth: FakeAuth, db_admin: psycopg.Connection[Any]
) -> None:
    email = unique_email("rows")
    user = client(fake_auth.url).auth.sign_up({"email": email, "password": PASSWORD}).user
    assert user is not None
    row = db_admin.execute(
        "select instance_id::text, aud, role, email, encrypted_password, email_confirmed_at,"
        " confirmation_token, recovery_token, email_change, raw_app_meta_data,"
        " raw_user_meta_data, created_at, updated_at, last_sign_in_at, invited_at,"
        " confirmed_at, is_sso_user, is_anonymous from auth.users where id = %s",
        (user.id,),
    ).fetchone()
    assert row is not None
    (instance, aud, role, stored_email, hashed, confirmed, confirmation, recovery, change,
     app, meta, created, updated, last_sign_in, invited, confirmed_at, sso, anonymous) = row  # fmt: skip
    assert instance == "00000000-0000-0000-0000-000000000000"
    assert (aud, role, stored_email) == ("authenticated", "authenticated", email)
    assert hashed.startswith("$2a$10$") and len(hashed) == 60
    assert confirmed is not None and confirmed_at == confirmed
    assert (confirmation, recovery, change) == ("", "", "")
    assert app == {"provider": "email", "providers": ["email"]}
    assert meta == {"email_verified": True}
    assert created is not None and updated is not None and last_sign_in is not None
    assert invited is None and sso is False and anonymous is False
    identity = db_admin.execute(
        "select provider_id, provider, identity_data, email, last_sign_in_at"
        " from auth.identities where user_id = %s",
        (user.id,),
    ).fetchall()
    assert len(identity) == 1
    provider_id, provider, data, identity_email, signed_in = identity[0]
    assert signed_in is not None
    assert (provider_id, provider, identity_email) == (user.id, "email", email)
    assert data == {"sub": user.id, "email": email, "email_verified": False,
                    "phone_verified": False}  # fmt: skip
    sessions = db_admin.execute(
        "select s.aal::text, count(r.*) from auth.sessions s"
        " join auth.refresh_tokens r on r.session_id = s.id where s.user_id = %s group by 1",
        (user.id,),
    ).fetchall()
    assert sessions == [("aal1", 1)]


def test_a_seed_user_signs_in_and_the_me_function_sees_them(served: Served) -> None:
    session = (
        client(served.auth.url)
        .auth.sign_in_with_password({"email": "owner@example.com", "password": "password123"})
        .session
    )
    assert session is not None
    claims = claims_of(session.access_token)
    assert claims["sub"] == SEED_USERS["owner"]
    assert claims["memberships"][ACME] == "owner" and OUTPOST not in claims["memberships"]
    with served.client(Authorization=f"Bearer {session.access_token}") as http:
        response = http.get("/me")
    assert response.status_code == 200, response.text
    me = response.json()["data"]
    assert me["sub"] == SEED_USERS["owner"] and me["email"] == "owner@example.com"
    assert me["db_role"] == "authenticated" and me["aal"] == "aal1"
    # (other tests of the session give the seed owner workspaces of their own)
    assert ACME in [w["workspace_id"] for w in me["workspaces"] if w["role"] == "owner"]
    assert OUTPOST not in [w["workspace_id"] for w in me["workspaces"]]


@pytest.mark.parametrize("email", ["owner@example.com", "nobody-here@example.com"])
def test_wrong_credentials_are_invalid_credentials(fake_auth: FakeAuth, email: str) -> None:
    with pytest.raises(AuthApiError) as caught:
        client(fake_auth.url).auth.sign_in_with_password({"email": email, "password": "nope-nope"})
    assert caught.value.status == 400 and caught.value.code == "invalid_credentials"
    assert caught.value.message == "Invalid login credentials"


def test_weak_passwords_and_repeated_sign_ups_are_refused_in_gotrue_terms(
    fake_auth: FakeAuth,
) -> None:
    auth = client(fake_auth.url).auth
    with pytest.raises(AuthWeakPasswordError) as weak:
        auth.sign_up({"email": unique_email(), "password": "12345"})
    assert weak.value.status == 422 and weak.value.reasons == ["length"]
    email = unique_email("twice")
    auth.sign_up({"email": email, "password": PASSWORD})
    with pytest.raises(AuthApiError) as again:
        auth.sign_up({"email": email, "password": PASSWORD})
    assert again.value.status == 422 and again.value.code == "user_already_exists"
    with raw(fake_auth.url) as http:  # the original error shape, for clients without a version
        response = http.post("/signup", json={"email": email, "password": PASSWORD})
        malformed = http.post("/signup", content=b"{nope", headers=API_2024)
    assert response.status_code == 422
    assert response.json() == {
        "code": 422, "error_code": "user_already_exists", "msg": "User already registered",
    }  # fmt: skip
    assert response.headers["x-sb-error-code"] == "user_already_exists"
    assert malformed.status_code == 400 and malformed.json()["code"] == "bad_json"


def test_the_user_reads_and_updates_itself(fake_auth: FakeAuth) -> None:
    email = unique_email("update")
    auth = client(fake_auth.url).auth
    auth.sign_up({"email": email, "password": PASSWORD, "options": {"data": {"a": 1, "b": 2}}})
    assert auth.get_user() is not None
    updated = auth.update_user({"data": {"b": None, "c": 3}}).user
    assert updated.user_metadata == {"a": 1, "c": 3, "email_verified": True}
    other = client(fake_auth.url).auth
    other.sign_in_with_password({"email": email, "password": PASSWORD})
    auth.update_user({"password": PASSWORD + "-2"})
    with pytest.raises(AuthApiError) as gone:  # a password change ends the other sessions
        other.get_user()
    assert gone.value.status == 403 and gone.value.code == "session_not_found"
    with pytest.raises(AuthApiError) as same:
        auth.update_user({"password": PASSWORD + "-2"})
    assert same.value.code == "same_password"
    fresh = client(fake_auth.url).auth
    assert fresh.sign_in_with_password({"email": email, "password": PASSWORD + "-2"}).session


def test_bad_tokens_get_gotrue_answers(fake_auth: FakeAuth) -> None:
    email = unique_email("tokens")
    session = client(fake_auth.url).auth.sign_up({"email": email, "password": PASSWORD}).session
    assert session is not None
    claims = claims_of(session.access_token)
    stranger = SigningKey.generate(fake_auth.keys[0].kid)  # same kid, another key: forged
    forged = jwt.encode(claims, stranger.private, "ES256", headers={"kid": stranger.kid})
    expired = jwt.encode({**claims, "exp": int(time.time()) - 60}, DEV_JWT_SECRET, "HS256")
    with raw(fake_auth.url, **API_2024) as http:
        missing = http.get("/user")
        answers = [http.get("/user", headers={"Authorization": f"Bearer {t}"})
                   for t in (forged, expired, "not.a.jwt")]  # fmt: skip
        good = http.get("/user", headers={"Authorization": f"Bearer {session.access_token}"})
    assert missing.status_code == 401
    assert missing.json() == {
        "code": "no_authorization", "message": "This endpoint requires a valid Bearer token",
    }  # fmt: skip
    for answer in answers:
        assert answer.status_code == 403 and answer.json()["code"] == "bad_jwt"
        assert answer.json()["message"].startswith("invalid JWT: unable to parse or verify")
    assert good.status_code == 200 and good.json()["email"] == email


def test_the_gateway_wants_a_known_api_key(fake_auth: FakeAuth) -> None:
    with raw(fake_auth.url, key="not-a-key") as http:
        wrong = http.get("/settings")
        jwks = http.get("/.well-known/jwks.json")
    with raw(fake_auth.url) as http:
        missing = http.get("/settings", headers={"apikey": ""})
        by_query = http.get(f"/settings?apikey={DEV_ANON_KEY}", headers={"apikey": ""})
    assert wrong.status_code == 401 and wrong.json()["message"] == "Invalid API key"
    assert missing.status_code == 401
    assert missing.json()["message"] == "No API key found in request"
    assert by_query.status_code == 200 and jwks.status_code == 200


def test_a_subject_that_is_no_uuid_is_bad_jwt(fake_auth: FakeAuth) -> None:
    with raw(fake_auth.url, **API_2024) as http:
        token = jwt.encode(
            {"sub": "11111111", "role": "authenticated", "exp": int(time.time()) + 60},
            DEV_JWT_SECRET,
        )
        answer = http.get("/user", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 400 and answer.json()["code"] == "bad_jwt"
    assert "Traceback" not in answer.text


def test_anonymous_sign_ins_and_closed_sign_ups_follow_their_switches(
    fake_auth: FakeAuth,
) -> None:
    assert fake_auth.config is not None
    with pytest.raises(AuthApiError) as off:
        client(fake_auth.url).auth.sign_in_anonymously()
    assert off.value.status == 422 and off.value.code == "anonymous_provider_disabled"
    switches = {"auth_anonymous_users": "true", "auth_disable_signup": "false"}
    with second_auth(fake_auth.config, extra=switches) as (url, _):
        session = client(url).auth.sign_in_anonymously().session
    assert session is not None and session.user.is_anonymous
    claims = claims_of(session.access_token)
    assert claims["is_anonymous"] is True and claims["email"] == ""
    assert [a["method"] for a in claims["amr"]] == ["anonymous"]
    with second_auth(fake_auth.config, extra={"auth_disable_signup": "true"}) as (url, _):
        with pytest.raises(AuthApiError) as closed:
            client(url).auth.sign_up({"email": unique_email("closed"), "password": PASSWORD})
        assert (
            client(url)
            .auth.sign_in_with_password({"email": "member@example.com", "password": "password123"})
            .session
        )  # signing in still works
    assert closed.value.status == 422 and closed.value.code == "signup_disabled"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b'{"email": "a@b.c", "password": NaN}', "bad_json"),
        (b'{"a":' * 3000 + b"1" + b"}" * 3000, "bad_json"),
        (b"[]", "bad_json"),
        (b'{"email": "a\\u0000b@example.com", "password": "long-enough"}', "validation_failed"),
        (b'{"email": "\\ud800@example.com", "password": "long-enough"}', "validation_failed"),
        (b'{"email": "x@example.com\\n", "password": "long-enough"}', "validation_failed"),
    ],
    ids=["nan", "deep", "not-an-object", "nul", "lone-surrogate", "trailing-newline"],
)
def test_bodies_go_would_refuse_are_400_never_500(
    fake_auth: FakeAuth, body: bytes, code: str
) -> None:
    with raw(fake_auth.url, **API_2024) as http:
        answer = http.post("/signup", content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 400 and answer.json()["code"] == code, answer.text


def test_authentication_comes_before_the_rate_limit(fake_auth: FakeAuth) -> None:
    """GoTrue's router authenticates `PUT /user` before its limiter: a forged token is refused
    as such even when the address is over its limit."""
    assert fake_auth.config is not None
    address = proxied()
    with second_auth(fake_auth.config, extra={"auth_rate_limit_user": "1/300"}) as (url, _):
        auth = client(url, **address).auth
        session = auth.sign_up({"email": unique_email("order"), "password": PASSWORD}).session
        assert session is not None
        auth.update_user({"data": {"n": 1}})
        with raw(url, **API_2024, **address) as http:
            limited = http.put(
                "/user",
                json={"data": {"n": 2}},
                headers={"Authorization": f"Bearer {session.access_token}"},
            )
            forged = http.put(
                "/user", json={"data": {}}, headers={"Authorization": "Bearer not.a.token"}
            )
    assert limited.status_code == 429 and limited.json()["code"] == "over_request_rate_limit"
    assert forged.status_code == 403 and forged.json()["code"] == "bad_jwt"
