"""The Auth hooks as the local Auth calls them: signed, timed, and answered as GoTrue does."""

from __future__ import annotations

import json
import socket
from typing import Any

import psycopg
import pytest
from standardwebhooks.webhooks import Webhook
from supabase_auth.errors import AuthApiError

from fnkit.devenv import DEV_AUTH_HOOK_SECRET, DEV_SERVICE_ROLE_KEY
from tests.fixtures.server import SECOND_HOOK_SECRET, FakeAuth, Served
from tests.test_local_auth_support import (
    API_2024,
    PASSWORD,
    claims_of,
    client,
    json_answer,
    raw,
    second_auth,
    slow_answer,
    stub_hook,
    unique_email,
)


@pytest.fixture
def denied_domain(db_admin: psycopg.Connection[Any]) -> Any:
    domain = f"denied-{unique_email('x').split('@')[0]}.example"
    db_admin.execute("insert into public.signup_denied_domains (domain) values (%s)", (domain,))
    yield domain
    db_admin.execute("delete from public.signup_denied_domains where domain = %s", (domain,))


def _user_exists(db: psycopg.Connection[Any], email: str) -> bool:
    row = db.execute("select count(*) from auth.users where email = %s", (email,)).fetchone()
    return bool(row and row[0])


def test_the_project_hook_refuses_a_denied_domain_and_nothing_is_written(
    served: Served, denied_domain: str, db_admin: psycopg.Connection[Any]
) -> None:
    """The hooks function answers a refusal with 200 and `{"error": {"http_code", "message"}}`,
    the only answer Supabase Auth reads a refusal from: the client gets that status and
    message, and no user is written."""
    email = f"someone@{denied_domain}"
    with pytest.raises(AuthApiError) as caught:
        client(served.auth.url).auth.sign_up({"email": email, "password": PASSWORD})
    assert caught.value.status == 403
    assert caught.value.message == (
        f"Sign-ups with an e-mail address at {denied_domain} are not allowed"
    )
    assert not _user_exists(db_admin, email)
    allowed = f"someone@not-{denied_domain}"
    assert client(served.auth.url).auth.sign_up({"email": allowed, "password": PASSWORD}).user
    assert _user_exists(db_admin, allowed)


def test_a_hook_answering_an_error_status_fails_as_on_supabase(
    served: Served, db_admin: psycopg.Connection[Any]
) -> None:
    """Any status but 200/202/204 (and a retried 429/503) is the hook failing: 500 naming the
    status, whatever the body says (supabase/auth#2235)."""
    refusal = {"error": {"http_code": 403, "message": "Sign-ups from here are closed"}}
    assert served.auth.config is not None
    with (
        stub_hook(json_answer(refusal, status=403)) as (hook, _),
        second_auth(served.auth.config, before_user_created_uri=hook) as (url, _),
        raw(url, **API_2024) as http,
    ):
        email = unique_email("refused")
        answer = http.post("/signup", json={"email": email, "password": PASSWORD})
    assert answer.status_code == 500
    assert answer.json() == {
        "code": "unexpected_failure",
        "message": "Unexpected status code returned from hook: 403",
    }
    assert not _user_exists(db_admin, email)


def test_a_refusal_in_the_hook_contract_reaches_the_client_with_its_status(
    served: Served, db_admin: psycopg.Connection[Any]
) -> None:
    refusal = {"error": {"http_code": 403, "message": "Sign-ups from here are closed"}}
    assert served.auth.config is not None
    with (
        stub_hook(json_answer(refusal)) as (hook, received),
        second_auth(served.auth.config, before_user_created_uri=hook) as (url, _),
    ):
        email = unique_email("refused")
        with raw(url, **API_2024) as http:
            answer = http.post("/signup", json={"email": email, "password": PASSWORD})
        with raw(url) as http:
            legacy = http.post("/signup", json={"email": email, "password": PASSWORD})
    assert answer.status_code == 403
    assert answer.json() == {"code": "unknown", "message": "Sign-ups from here are closed"}
    assert legacy.json() == {
        "code": 403,
        "error_code": "unknown",
        "msg": "Sign-ups from here are closed",
    }
    assert not _user_exists(db_admin, email)
    headers, body = received[0]
    assert body["metadata"]["name"] == "before-user-created"
    assert body["user"]["email"] == email and body["user"]["aud"] == "authenticated"
    payload = json.dumps(body, separators=(",", ":"))
    verified = Webhook(DEV_AUTH_HOOK_SECRET.removeprefix("v1,")).verify(
        payload, {k.lower(): v for k, v in headers.items()}
    )  # signed with the first secret, as Standard Webhooks verifies it
    assert verified == body


def test_a_slow_hook_is_a_hook_timeout(served: Served) -> None:
    assert served.auth.config is not None
    with (
        stub_hook(slow_answer(1.5)) as (hook, _),
        second_auth(
            served.auth.config, custom_access_token_uri=hook, extra={"auth_hook_timeout_s": "0.3"}
        ) as (url, _),
        raw(url, **API_2024) as http,
    ):
        answer = http.post("/signup", json={"email": unique_email("slow"), "password": PASSWORD})
    assert answer.status_code == 422 and answer.json()["code"] == "hook_timeout"


def test_an_unreachable_hook_fails_after_retries(served: Served) -> None:
    with socket.socket() as spare:
        spare.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{spare.getsockname()[1]}/hook"
    assert served.auth.config is not None
    settings = {"auth_hook_backoff_s": "0.05"}
    with (
        second_auth(served.auth.config, before_user_created_uri=closed, extra=settings) as (url, _),
        raw(url, **API_2024) as http,
    ):
        answer = http.post("/signup", json={"email": unique_email("down"), "password": PASSWORD})
    assert answer.status_code == 422 and answer.json()["code"] == "hook_timeout_after_retry"


def test_custom_claims_are_checked_as_gotrue_checks_them(served: Served) -> None:
    assert served.auth.config is not None

    def returning(claims: dict[str, Any]) -> Any:
        return stub_hook(
            lambda r: json_answer({"claims": {**json.loads(r.get_data())["claims"], **claims}})(r)
        )

    with (
        returning({"tier": "gold"}) as (hook, received),
        second_auth(served.auth.config, custom_access_token_uri=hook) as (url, _),
    ):
        session = client(url).auth.sign_up({"email": unique_email("gold"), "password": PASSWORD})
    assert session.session is not None
    assert claims_of(session.session.access_token)["tier"] == "gold"
    assert received[0][1]["authentication_method"] == "password"
    assert received[0][1]["claims"]["aal"] == "aal1"
    with (
        returning({"aal": 2}) as (hook, _),
        second_auth(served.auth.config, custom_access_token_uri=hook) as (url, _),
        raw(url, **API_2024) as http,
    ):
        answer = http.post("/signup", json={"email": unique_email("bad"), "password": PASSWORD})
    assert answer.status_code == 500 and answer.json()["code"] == "unexpected_failure"
    assert answer.json()["message"].startswith("output claims do not conform")


def test_hooks_off_are_not_called(fake_auth: FakeAuth, served: Served) -> None:
    assert fake_auth.config is not None
    with second_auth(
        fake_auth.config, custom_access_token_uri=None, before_user_created_uri=None
    ) as (url, _):
        session = client(url).auth.sign_up({"email": unique_email("plain"), "password": PASSWORD})
    assert session.session is not None
    assert "memberships" not in claims_of(session.session.access_token)


def test_an_invite_runs_the_before_user_created_hook(
    served: Served, denied_domain: str, db_admin: psycopg.Connection[Any]
) -> None:
    email = f"invitee@{denied_domain}"
    with raw(served.auth.url, key=DEV_SERVICE_ROLE_KEY, **API_2024) as http:
        bearer = {"Authorization": f"Bearer {DEV_SERVICE_ROLE_KEY}"}
        refused = http.post("/invite", json={"email": email}, headers=bearer)
        db_admin.execute("insert into public.signup_invitations (email) values (%s)", (email,))
        try:
            invited = http.post("/invite", json={"email": email}, headers=bearer)
        finally:
            db_admin.execute("delete from public.signup_invitations where email = %s", (email,))
    assert refused.status_code == 403
    assert (
        refused.json()["message"]
        == f"Sign-ups with an e-mail address at {denied_domain} are not allowed"
    )
    assert invited.status_code == 200, invited.text
    assert invited.json()["email"] == email and _user_exists(db_admin, email)


def test_a_rotation_signs_with_every_secret_as_gotrue_does(served: Served) -> None:
    """GoTrue's generateSignatures: one `v1,` signature per configured secret, joined by
    `", "` (internal/hooks/hookshttp). Each must verify with its own secret."""
    assert served.auth.config is not None
    second = "v1,whsec_c2Vjb25kLXJvdGF0aW9uLXNlY3JldC0wMDAwMDA="
    secrets = f"{DEV_AUTH_HOOK_SECRET}|{second}"
    with (
        stub_hook(json_answer({})) as (hook, received),
        second_auth(served.auth.config, before_user_created_uri=hook, hook_secrets=secrets) as (
            url,
            _,
        ),
        raw(url, **API_2024) as http,
    ):
        http.post("/signup", json={"email": unique_email("rotation"), "password": PASSWORD})
    headers, body = received[0]
    lowered = {k.lower(): v for k, v in headers.items()}
    first, other = lowered["webhook-signature"].split(", ")
    payload = json.dumps(body, separators=(",", ":"))
    for secret, signature in ((DEV_AUTH_HOOK_SECRET, first), (second, other)):
        alone = {**lowered, "webhook-signature": signature}
        assert Webhook(secret.removeprefix("v1,")).verify(payload, alone) == body


def test_during_a_rotation_sign_ups_and_sign_ins_pass_the_projects_hooks(served: Served) -> None:
    """Both hook secrets configured in Auth, as during a rotation: its calls carry two
    signatures joined by ", ", and the project's hooks function (which accepts both secrets)
    takes them, so sign-up and sign-in work as before."""
    assert served.auth.config is not None
    secrets = f"{DEV_AUTH_HOOK_SECRET}|{SECOND_HOOK_SECRET}"
    with second_auth(served.auth.config, hook_secrets=secrets) as (url, _):
        supabase = client(url)
        email = unique_email("rotating")
        signed_up = supabase.auth.sign_up({"email": email, "password": PASSWORD})
        assert signed_up.user is not None
        session = supabase.auth.sign_in_with_password({"email": email, "password": PASSWORD})
        assert session.session is not None
        assert "memberships" in claims_of(session.session.access_token)
