"""The hooks function: Supabase Auth's Custom Access Token and Before User Created hooks over
real HTTP (signed with the reference library), and the tables behind them under RLS."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from fnkit.devenv import DEV_DB_WEBHOOK_SECRET
from tests.fixtures.server import ACME, OUTPOST, SEED_USERS, Served
from tests.webhook_signing import signed

REQUIRED_CLAIMS = (
    "iss", "aud", "exp", "iat", "sub", "role", "aal", "session_id", "email", "phone",
    "is_anonymous",
)  # fmt: skip


def token_claims(user_id: str) -> dict[str, Any]:
    """The claims Supabase Auth hands the hook (its documented example, for this user)."""
    return {
        "iss": "http://127.0.0.1:54321/auth/v1",
        "aud": "authenticated",
        "exp": 1715690221,
        "iat": 1715686621,
        "sub": user_id,
        "email": "owner@example.com",
        "phone": "",
        "app_metadata": {"provider": "email", "providers": ["email"]},
        "user_metadata": {},
        "role": "authenticated",
        "aal": "aal1",
        "amr": [{"method": "password", "timestamp": 1715686621}],
        "session_id": str(uuid.uuid4()),
        "is_anonymous": False,
    }


def call(served: Served, path: str, body: Any) -> Any:
    content, headers = signed(body)
    with served.client() as client:
        return client.post(f"/hooks/{path}", content=content, headers=headers)


def test_custom_access_token_keeps_every_required_claim_and_adds_memberships(
    served: Served, db_admin: psycopg.Connection[Any]
) -> None:
    owner = SEED_USERS["owner"]
    claims = token_claims(owner)
    response = call(
        served,
        "custom-access-token",
        {"user_id": owner, "claims": claims, "authentication_method": "password"},
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert set(answer) == {"claims"}  # the hook's own format
    out = answer["claims"]
    for name in REQUIRED_CLAIMS:
        assert out[name] == claims[name], name
    assert {k: v for k, v in out.items() if k != "memberships"} == claims
    expected = dict(
        db_admin.execute(
            "select workspace_id::text, role from public.workspace_members where user_id = %s",
            (owner,),
        ).fetchall()
    )
    assert out["memberships"] == expected
    assert out["memberships"][ACME] == "owner" and OUTPOST not in out["memberships"]


def test_custom_access_token_for_a_user_in_no_workspace(served: Served) -> None:
    nobody = str(uuid.uuid4())
    response = call(
        served, "custom-access-token", {"user_id": nobody, "claims": token_claims(nobody)}
    )
    assert response.status_code == 200
    assert response.json()["claims"]["memberships"] == {}


def test_custom_access_token_refuses_a_payload_without_claims(served: Served) -> None:
    response = call(served, "custom-access-token", {"user_id": SEED_USERS["owner"]})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["http_code"] == 422 and error["code"] == "VALIDATION_FAILED"


# ---- Before User Created --------------------------------------------------------------------


@pytest.fixture
def deny_list(db_admin: psycopg.Connection[Any]) -> Iterator[str]:
    domain = f"blocked-{uuid.uuid4().hex[:8]}.example"
    db_admin.execute("insert into public.signup_denied_domains (domain) values (%s)", (domain,))
    yield domain
    db_admin.execute("delete from public.signup_denied_domains where domain = %s", (domain,))
    db_admin.execute("delete from public.signup_invitations where email like %s", (f"%@{domain}",))


def signup(email: str | None, phone: str | None = None) -> dict[str, Any]:
    return {
        "metadata": {
            "uuid": str(uuid.uuid4()),
            "time": "2026-11-30T10:00:00Z",
            "name": "before-user-created",
            "ip_address": "127.0.0.1",
        },
        "user": {
            "id": str(uuid.uuid4()),
            "aud": "authenticated",
            "role": "",
            "email": email,
            "phone": phone or "",
            "app_metadata": {"provider": "email", "providers": ["email"]},
            "user_metadata": {},
            "identities": [],
            "is_anonymous": False,
        },
    }


@pytest.mark.parametrize("prefix", ["", "mail.", "a.b."])
def test_a_denied_domain_or_its_subdomain_is_refused_in_the_hook_format(
    served: Served, deny_list: str, prefix: str
) -> None:
    """Supabase Auth reads a refusal only from a 2xx answer (any other status is its own 500),
    so the refusal comes with 200 and the user's status in `error.http_code`."""
    response = call(served, "before-user-created", signup(f"Someone@{prefix}{deny_list.upper()}"))
    assert response.status_code == 200, response.text
    error = response.json()["error"]
    assert error["http_code"] == 403
    assert f"{prefix}{deny_list}" in error["message"]


def test_another_domain_passes(served: Served, deny_list: str) -> None:
    response = call(served, "before-user-created", signup(f"someone@not-{deny_list}"))
    assert response.status_code == 200 and response.json() == {}


def test_an_invited_address_passes_even_on_a_denied_domain(
    served: Served, deny_list: str, db_admin: psycopg.Connection[Any]
) -> None:
    db_admin.execute(
        "insert into public.signup_invitations (email, invited_by) values (%s, %s)",
        (f"guest@{deny_list}", SEED_USERS["owner"]),
    )
    assert call(served, "before-user-created", signup(f"Guest@{deny_list}")).json() == {}
    uninvited = call(served, "before-user-created", signup(f"other@{deny_list}"))
    assert uninvited.status_code == 200 and uninvited.json()["error"]["http_code"] == 403


def test_a_phone_sign_up_passes(served: Served, deny_list: str) -> None:
    response = call(served, "before-user-created", signup(None, phone="+15555550100"))
    assert response.status_code == 200 and response.json() == {}


@pytest.mark.parametrize("role", ["anon", "authenticated"])
@pytest.mark.parametrize("table", ["signup_denied_domains", "signup_invitations"])
def test_only_the_service_role_manages_the_sign_up_tables(
    db_admin: psycopg.Connection[Any], role: str, table: str
) -> None:
    with db_admin.transaction(force_rollback=True):
        db_admin.execute(f"set local role {role}")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            db_admin.execute(f"select * from public.{table}")
    with db_admin.transaction(force_rollback=True):
        db_admin.execute("set local role service_role")
        db_admin.execute(f"select * from public.{table}")


# ---- notifications under RLS ----------------------------------------------------------------


def test_each_user_reads_and_marks_only_their_own_notifications(
    db_admin: psycopg.Connection[Any],
) -> None:
    member, viewer = SEED_USERS["member"], SEED_USERS["viewer"]
    keys = [f"test:{uuid.uuid4()}", f"test:{uuid.uuid4()}"]
    for user, key in zip((member, viewer), keys, strict=True):
        db_admin.execute(
            "insert into public.notifications (user_id, workspace_id, kind, event_key)"
            " values (%s, %s, 'task_assigned', %s)",
            (user, ACME, key),
        )
    try:
        with db_admin.transaction(force_rollback=True):
            db_admin.execute("set local role authenticated")
            db_admin.execute(
                "select set_config('request.jwt.claims', %s, true)",
                (f'{{"sub": "{member}", "role": "authenticated"}}',),
            )
            seen = db_admin.execute(
                "select event_key from public.notifications where event_key = any(%s)", (keys,)
            ).fetchall()
            assert seen == [(keys[0],)]
            marked = db_admin.execute(
                "update public.notifications set read_at = now() where event_key = any(%s)", (keys,)
            ).rowcount
            assert marked == 1
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                db_admin.execute(
                    "update public.notifications set user_id = %s where event_key = %s",
                    (member, keys[1]),
                )
        with db_admin.transaction(force_rollback=True):
            db_admin.execute("set local role anon")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                db_admin.execute("select * from public.notifications")
    finally:
        db_admin.execute("delete from public.notifications where event_key = any(%s)", (keys,))


def test_fnkit_hook_send_signs_a_call_the_hook_accepts(
    served: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    from fnkit.cli import main

    owner = SEED_USERS["owner"]
    body = json.dumps({"user_id": owner, "claims": token_claims(owner)})
    base = f"{served.url}/functions/v1"
    assert main(["hook", "send", "hooks/custom-access-token", "--json", body, "--url", base]) == 0
    assert json.loads(capsys.readouterr().out)["claims"]["memberships"][ACME] == "owner"
    change = json.dumps({"type": "DELETE", "table": "tasks", "schema": "public"})
    args = ["hook", "send", "hooks/task-assigned", "--json", change, "--url", base]
    assert main([*args, "--database-webhook"]) == 0
    assert json.loads(capsys.readouterr().out)["data"]["reason"] == "no assignee"
    assert main(args) == 1  # a signature is not the database webhook's secret


def test_the_document_shows_each_machine_routes_scheme_and_answer(served: Served) -> None:
    """The OpenAPI document says who may call each hook and in which contract it answers."""
    with served.client() as client:
        document = client.get("/hooks/openapi.json").json()
    schemes = document["components"]["securitySchemes"]
    for path, scheme, answer in (
        ("/hooks/custom-access-token", "standardWebhooks", "auth_hook"),
        ("/hooks/before-user-created", "standardWebhooks", "auth_hook"),
        ("/hooks/task-assigned", "databaseWebhook", "envelope"),
    ):
        operation = document["paths"][path]["post"]
        assert operation["security"] == [{scheme: []}], path
        assert operation["x-answer"] == answer, path
        assert operation["requestBody"]["content"]["application/json"]["schema"]
    assert schemes["standardWebhooks"]["x-standard-webhooks"]["tolerance_s"] == 300
    assert schemes["databaseWebhook"] == {**schemes["databaseWebhook"], "scheme": "bearer"}


def test_a_delivery_for_another_table_names_the_fields(served: Served) -> None:
    change = {"type": "INSERT", "table": "projects", "schema": "private", "record": None}
    with served.client() as client:
        response = client.post(
            "/hooks/task-assigned",
            json=change,
            headers={"Authorization": f"Bearer {DEV_DB_WEBHOOK_SECRET}"},
        )
    assert response.status_code == 422, response.text
    details = response.json()["error"]["details"]
    assert [d["loc"] for d in details] == [["body", "schema"], ["body", "table"]]
