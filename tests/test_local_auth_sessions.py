"""Sessions in the local Auth: refresh rotation, reuse detection, logout scopes, rate limits."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

import psycopg
import pytest
from supabase_auth.errors import AuthApiError
from werkzeug.wrappers import Response

from fnkit.local.auth import create_app
from fnkit.local.gateway import create_gateway
from tests.fixtures.server import FakeAuth, Served
from tests.test_local_auth_support import (
    API_2024,
    PASSWORD,
    claims_of,
    client,
    proxied,
    raw,
    second_auth,
    serve,
    unique_email,
)


@pytest.fixture(autouse=True)
def _signing_key_and_hooks(served: Served) -> None:
    """The served functions: the hooks the local Auth calls point at them."""


def _sign_up(url: str) -> tuple[str, dict[str, Any]]:
    email = unique_email("session")
    with raw(url, **API_2024) as http:
        body = http.post("/signup", json={"email": email, "password": PASSWORD}).json()
    return email, body


def _refresh(url: str, token: str) -> Any:
    with raw(url, **API_2024) as http:
        return http.post("/token?grant_type=refresh_token", json={"refresh_token": token})


def test_a_refresh_rotates_and_a_concurrent_repeat_gets_the_same_child(
    fake_auth: FakeAuth, db_admin: psycopg.Connection[Any]
) -> None:
    _, first = _sign_up(fake_auth.url)
    answer = _refresh(fake_auth.url, first["refresh_token"])
    assert answer.status_code == 200, answer.text
    second = answer.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert set(second) >= {"access_token", "token_type", "expires_in", "expires_at", "user"}
    assert (
        claims_of(second["access_token"])["session_id"]
        == claims_of(first["access_token"])["session_id"]
    )
    again = _refresh(fake_auth.url, first["refresh_token"]).json()  # two tabs refreshing at once
    assert again["refresh_token"] == second["refresh_token"]
    rows = db_admin.execute(
        "select token, revoked, parent from auth.refresh_tokens where token = any(%s) order by id",
        ([first["refresh_token"], second["refresh_token"]],),
    ).fetchall()
    assert rows == [
        (first["refresh_token"], True, None),
        (second["refresh_token"], False, first["refresh_token"]),
    ]


def test_reuse_after_the_interval_revokes_the_whole_session(
    fake_auth: FakeAuth, db_admin: psycopg.Connection[Any]
) -> None:
    _, first = _sign_up(fake_auth.url)
    second = _refresh(fake_auth.url, first["refresh_token"]).json()
    third = _refresh(fake_auth.url, second["refresh_token"]).json()
    session_id = claims_of(first["access_token"])["session_id"]

    def age_tokens() -> None:  # the 10 s reuse interval passes
        db_admin.execute(
            "update auth.refresh_tokens set updated_at = updated_at - interval '11 seconds'"
            " where session_id = %s",
            (session_id,),
        )

    age_tokens()
    stolen = _refresh(fake_auth.url, first["refresh_token"])
    assert stolen.status_code == 400
    assert stolen.json() == {
        "code": "refresh_token_already_used", "message": "Invalid Refresh Token: Already Used",
    }  # fmt: skip
    age_tokens()
    latest = _refresh(fake_auth.url, third["refresh_token"])  # the family is revoked too
    assert latest.status_code == 400 and latest.json()["code"] == "refresh_token_already_used"
    unknown = _refresh(fake_auth.url, "no-such-token")
    assert unknown.status_code == 400 and unknown.json()["code"] == "refresh_token_not_found"
    with raw(fake_auth.url) as http:
        empty = http.post("/token?grant_type=refresh_token", json={})
    assert empty.status_code == 400
    assert empty.json() == {
        "error": "invalid_request",
        "error_description": "refresh_token required",
    }


def test_supabase_py_refreshes_its_session(fake_auth: FakeAuth) -> None:
    auth = client(fake_auth.url).auth
    auth.sign_up({"email": unique_email("py"), "password": PASSWORD})
    before = auth.get_session()
    assert before is not None
    after = auth.refresh_session().session
    assert after is not None and after.refresh_token != before.refresh_token


@pytest.mark.parametrize(
    ("scope", "alive"),
    [("global", [False, False, False]), ("local", [False, True, True]),
     ("others", [True, False, False])],
)  # fmt: skip
def test_logout_scopes_end_the_sessions_they_name(
    fake_auth: FakeAuth, scope: str, alive: list[bool]
) -> None:
    email, first = _sign_up(fake_auth.url)
    sessions = [first]
    with raw(fake_auth.url, **API_2024) as http:
        for _ in range(2):
            sessions.append(
                http.post(
                    "/token?grant_type=password", json={"email": email, "password": PASSWORD}
                ).json()
            )
        bearer = {"Authorization": f"Bearer {first['access_token']}"}
        assert http.post(f"/logout?scope={scope}", headers=bearer).status_code == 204
        for session, expected in zip(sessions, alive, strict=True):
            me = http.get("/user", headers={"Authorization": f"Bearer {session['access_token']}"})
            assert (me.status_code == 200) is expected, (scope, me.text)
            if not expected:
                assert me.status_code == 403 and me.json()["code"] == "session_not_found"
            refreshed = _refresh(fake_auth.url, session["refresh_token"])
            assert (refreshed.status_code == 200) is expected
        bad = http.post("/logout?scope=everything", headers=bearer)
    assert bad.status_code == 400 and bad.json()["code"] == "validation_failed"


def test_supabase_py_sign_out_ends_the_session(fake_auth: FakeAuth) -> None:
    auth = client(fake_auth.url).auth
    session = auth.sign_up({"email": unique_email("out"), "password": PASSWORD}).session
    assert session is not None
    auth.sign_out()
    with raw(fake_auth.url, **API_2024) as http:
        me = http.get("/user", headers={"Authorization": f"Bearer {session.access_token}"})
    assert me.status_code == 403 and me.json()["code"] == "session_not_found"


def test_repeated_failed_sign_ins_hit_the_rate_limit(fake_auth: FakeAuth) -> None:
    assert fake_auth.config is not None
    limits = {"auth_rate_limit_token": "3/300"}
    with second_auth(fake_auth.config, extra=limits) as (url, _), raw(url, **API_2024) as http:
        address = {"X-Forwarded-For": f"203.0.113.{uuid.uuid4().int % 250}"}
        wrong = {"email": "owner@example.com", "password": "wrong-password"}
        codes = [
            http.post("/token?grant_type=password", json=wrong, headers=address).status_code
            for _ in range(4)
        ]
        limited = http.post("/token?grant_type=password", json=wrong, headers=address)
        elsewhere = http.post(
            "/token?grant_type=password", json=wrong, headers={"X-Forwarded-For": "198.51.100.7"}
        )
    assert codes == [400, 400, 400, 429]
    assert limited.json() == {
        "code": "over_request_rate_limit", "message": "Request rate limit reached",
    }  # fmt: skip
    assert elsewhere.status_code == 400  # per client address
    with second_auth(fake_auth.config, extra=limits) as (url, _), raw(url, **API_2024) as http:
        unproxied = [
            http.post("/token?grant_type=password", json=wrong).status_code for _ in range(5)
        ]
    assert unproxied == [400] * 5  # no proxy header, no limit: GoTrue lets it through


def test_supabase_py_raises_its_rate_limit_error(fake_auth: FakeAuth) -> None:
    assert fake_auth.config is not None
    limits = {"auth_rate_limit_signup": "1/300"}
    with second_auth(fake_auth.config, extra=limits) as (url, _):
        auth = client(url, **proxied()).auth
        auth.sign_up({"email": unique_email("limit"), "password": PASSWORD})
        with pytest.raises(AuthApiError) as caught:
            auth.sign_up({"email": unique_email("limit"), "password": PASSWORD})
    assert caught.value.status == 429 and caught.value.code == "over_request_rate_limit"


def test_behind_the_gateway_a_clients_own_forwarded_for_cannot_dodge_the_limit(
    fake_auth: FakeAuth,
) -> None:
    """`make dev`'s gateway appends the peer to X-Forwarded-For as Kong does, and Auth keys its
    limits on that last hop: a client writing a new address into each request is still one
    client."""
    assert fake_auth.config is not None
    config = dataclasses.replace(fake_auth.config, extra={"auth_rate_limit_token": "3/300"})
    gateway = create_gateway(Response("not found", 404), {"/auth/v1": create_app(config)})
    wrong = {"email": "owner@example.com", "password": "wrong-password"}
    with serve(gateway) as url, raw(url, **API_2024) as http:
        codes = [
            http.post(
                "/token?grant_type=password",
                json=wrong,
                headers={"X-Forwarded-For": f"203.0.113.{n}"},  # a new address each time
            ).status_code
            for n in range(4)
        ]
    assert codes == [400, 400, 400, 429]
