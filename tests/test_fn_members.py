"""members: roster, adding by email, invites through Supabase Auth admin, roles, leaving.

Real HTTP to the served function on the seeded database. Invites go to the local Supabase Auth
(`fake_auth`), which creates the user in this database, runs the Before User Created hook of
the served `hooks` function and mails the invite to its local inbox, as Supabase Auth would.
respx stands in only where Auth has to misbehave (down, 5xx, garbage, a user from another
project): it patches httpx for the whole process (the served functions run in threads here),
so only `POST /auth/v1/invite` is answered by it and everything else passes through.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.util
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import flask
import httpx
import psycopg
import pytest
import respx
from werkzeug.serving import make_server

import shared.app
from fnkit.devenv import DEV_SECRET_KEY, DEV_SERVICE_ROLE_KEY
from fnkit.local.auth.mail import Inbox
from shared.settings import load_settings
from tests.envelope import assert_error
from tests.fixtures.server import ROOT, SEED_USERS, Served, as_user
from tests.webhook_signing import signed

OWNER, ADMIN, MEMBER, VIEWER, OUTSIDER = (
    SEED_USERS[r] for r in ("owner", "admin", "member", "viewer", "outsider")
)
UPSTREAM_SECRET = "UPSTREAM-BODY-DETAIL-7f3a"  # must never reach our callers


# ---- setup helpers (also used by test_fn_attachments) -------------------------------------


def make_workspace(db: psycopg.Connection[Any], *, extra_owner: str | None = None) -> str:
    """A fresh workspace: the seed owner owns it, admin/member/viewer have their seed roles."""
    ws = str(uuid.uuid4())
    db.execute(
        "insert into public.workspaces (id, name, created_by) values (%s, %s, %s)",
        (ws, f"Test {ws[:8]}", OWNER),
    )
    roles = [(ADMIN, "admin"), (MEMBER, "member"), (VIEWER, "viewer")]
    if extra_owner:
        roles.append((extra_owner, "owner"))
    for user_id, role in roles:
        db.execute(
            "insert into public.workspace_members (workspace_id, user_id, role) values (%s, %s, %s)",
            (ws, user_id, role),
        )
    return ws


def make_user(db: psycopg.Connection[Any], prefix: str = "user") -> tuple[str, str]:
    """A fresh account in auth.users: (id, email)."""
    user_id = str(uuid.uuid4())
    email = f"{prefix}-{user_id[:8]}@example.com"
    db.execute(
        "insert into auth.users (id, email, aud, role) values (%s, %s, 'authenticated', 'authenticated')",
        (user_id, email),
    )
    return user_id, email


def role_of(db: psycopg.Connection[Any], ws: str, user_id: str) -> str | None:
    row = db.execute(
        "select role from public.workspace_members where workspace_id = %s and user_id = %s",
        (ws, user_id),
    ).fetchone()
    return None if row is None else row[0]


def check_service_call(request: httpx.Request, method: str, url: str) -> None:
    """The call supabase-py made: exact method and URL, the project's secret key (which admin
    calls take before the legacy service role key) in both headers."""
    assert request.method == method
    assert str(request.url) == url
    assert request.headers["apikey"] == DEV_SECRET_KEY
    assert request.headers["Authorization"] == f"Bearer {DEV_SECRET_KEY}"


def _load_copy(name: str, settings: Any) -> Any:
    """functions/<name>/main.py imported again under its own module name, its App built with
    `settings` instead of the process's (App reads `shared.app.get_settings` at import)."""
    module_name = f"copy_of_{name}_{uuid.uuid4().hex[:8]}"
    spec = importlib.util.spec_from_file_location(
        module_name, ROOT / "functions" / name / "main.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    with mock.patch.object(shared.app, "get_settings", lambda: settings):
        spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def serve_copy(name: str, **env: str | None) -> Iterator[str]:
    """Serve a second instance of a function whose settings differ from the process's by
    `env` (None removes a variable), on its own port; yields the /functions/v1 base URL."""
    values = dict(os.environ)
    for key, value in env.items():
        if value is None:
            values.pop(key, None)
        else:
            values[key] = value
    module = _load_copy(name, load_settings(values))
    app = flask.Flask(module.__name__)
    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]

    @app.route(f"/functions/v1/{name}", methods=methods, strict_slashes=False)
    @app.route(f"/functions/v1/{name}/<path:rest>", methods=methods)
    def dispatch(rest: str = "") -> Any:
        return module.handler(flask.request)

    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/functions/v1"
    finally:
        server.shutdown()
        sys.modules.pop(module.__name__, None)


@contextlib.contextmanager
def copy_client(served: Served, name: str, who: str, **env: str | None) -> Iterator[httpx.Client]:
    """A seed user's client of a copy of a function served by `serve_copy(name, **env)`;
    tokens name the copy's SUPABASE_URL as their issuer, as Supabase Auth would."""
    url = env.get("SUPABASE_URL")
    issuer = f"{url}/auth/v1" if url else served.issuer
    token = served.token(SEED_USERS[who], email=f"{who}@example.com", issuer=issuer)
    with (
        serve_copy(name, **env) as base,
        httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30
        ) as client,
    ):
        yield client


# ---- Supabase Auth: the local one, and a misbehaving one -----------------------------------


def gotrue_user(user_id: str, email: str) -> dict[str, Any]:
    """A user as GoTrue answers it, for a misbehaving Auth to hand back."""
    now = dt.datetime.now(dt.UTC).isoformat()
    return {
        "id": user_id,
        "aud": "authenticated",
        "role": "authenticated",
        "email": email,
        "invited_at": now,
        "confirmation_sent_at": now,
        "app_metadata": {"provider": "email", "providers": ["email"]},
        "user_metadata": {},
        "identities": [],
        "created_at": now,
        "updated_at": now,
        "is_anonymous": False,
    }


@pytest.fixture
def failing_auth(served: Served) -> Iterator[respx.Route]:
    """`POST /auth/v1/invite` answered by respx (each test sets `side_effect`); everything
    else, the local Auth included, passes through to the network."""
    with respx.mock(assert_all_called=False) as router:
        route = router.post(path="/auth/v1/invite", name="invite")
        router.route().pass_through()
        yield route


def invite_mails(served: Served, email: str) -> list[dict[str, Any]]:
    """The invites the local Auth mailed to `email`."""
    assert served.auth.config is not None
    inbox = Inbox(served.auth.config.data_dir / "inbox")
    return [m for m in inbox.messages(email) if m["kind"] == "invite"]


def auth_user(db_admin: Any, email: str) -> Any:
    return db_admin.execute(
        "select id::text, invited_at is not null, email_confirmed_at from auth.users"
        " where email = %s",
        (email,),
    ).fetchone()


# ---- GET /members ---------------------------------------------------------------------------


def test_members_list_the_roster_with_emails(served: Served, db_admin: Any) -> None:
    ws = make_workspace(db_admin)
    for who in ("owner", "admin", "member", "viewer"):
        with as_user(served, who) as client:
            response = client.get("/members", params={"workspace_id": ws})
        assert response.status_code == 200, response.text
        rows = response.json()["data"]
        assert {(r["user_id"], r["email"], r["role"]) for r in rows} == {
            (OWNER, "owner@example.com", "owner"),
            (ADMIN, "admin@example.com", "admin"),
            (MEMBER, "member@example.com", "member"),
            (VIEWER, "viewer@example.com", "viewer"),
        }
        assert all(r["workspace_id"] == ws and r["created_at"] for r in rows)


def test_members_list_refuses_outsiders_anon_and_bad_input(served: Served, db_admin: Any) -> None:
    ws = make_workspace(db_admin)
    with as_user(served, "outsider") as client:
        assert_error(client.get("/members", params={"workspace_id": ws}), 404, "NOT_FOUND")
        assert_error(
            client.get("/members", params={"workspace_id": str(uuid.uuid4())}), 404, "NOT_FOUND"
        )
        missing = assert_error(client.get("/members"), 422, "VALIDATION_FAILED")
        assert missing["error"]["details"][0]["loc"] == ["query", "workspace_id"]
        assert_error(client.get("/members", params={"workspace_id": "x"}), 422, "VALIDATION_FAILED")
    with as_user(served, "anon") as client:
        assert_error(client.get("/members", params={"workspace_id": ws}), 401, "UNAUTHENTICATED")


# ---- POST /members: existing users ---------------------------------------------------------


def test_owners_and_admins_add_existing_users_at_once(served: Served, db_admin: Any) -> None:
    ws = make_workspace(db_admin)
    expected = {
        "owner": 201,
        "admin": 201,
        "member": 403,
        "viewer": 403,
        "outsider": 404,
        "anon": 401,
    }
    for who, status in expected.items():
        user_id, email = make_user(db_admin)
        with as_user(served, who) as client:
            response = client.post(
                "/members", json={"workspace_id": ws, "email": email.upper(), "role": "member"}
            )
        assert response.status_code == status, (who, response.text)
        if status == 201:
            data = response.json()["data"]
            assert data["user_id"] == user_id and data["email"] == email
            assert data["role"] == "member" and data["invited"] is False
            assert role_of(db_admin, ws, user_id) == "member"
        else:
            assert role_of(db_admin, ws, user_id) is None
        assert invite_mails(served, email) == []  # known emails never reach Supabase Auth


def test_adding_a_member_twice_is_a_conflict(served: Served, db_admin: Any) -> None:
    ws = make_workspace(db_admin)
    with as_user(served, "owner") as client:
        response = client.post(
            "/members", json={"workspace_id": ws, "email": "member@example.com", "role": "viewer"}
        )
    body = assert_error(response, 409, "CONFLICT")
    assert "already a member" in body["error"]["message"]
    assert role_of(db_admin, ws, MEMBER) == "member"


def test_add_member_validates_its_body(served: Served, db_admin: Any) -> None:
    ws = make_workspace(db_admin)
    with as_user(served, "owner") as client:
        for body, loc in [
            ({"workspace_id": ws, "email": "not-an-email", "role": "member"}, ["body", "email"]),
            ({"workspace_id": ws, "email": "a@b.co", "role": "superuser"}, ["body", "role"]),
            ({"workspace_id": "nope", "email": "a@b.co"}, ["body", "workspace_id"]),
            ({"workspace_id": ws, "email": "a@b.co", "extra": 1}, ["body", "extra"]),
        ]:
            problem = assert_error(client.post("/members", json=body), 422, "VALIDATION_FAILED")
            assert problem["error"]["details"][0]["loc"] == loc


def test_only_owners_with_aal2_add_owners(served: Served, db_admin: Any) -> None:
    ws = make_workspace(db_admin)
    user_id, email = make_user(db_admin)
    body = {"workspace_id": ws, "email": email, "role": "owner"}
    with as_user(served, "admin", aal="aal2") as client:
        assert_error(client.post("/members", json=body), 403, "FORBIDDEN")
    with as_user(served, "owner") as client:
        assert_error(client.post("/members", json=body), 403, "MFA_REQUIRED")
    assert role_of(db_admin, ws, user_id) is None
    with as_user(served, "owner", aal="aal2") as client:
        assert client.post("/members", json=body).status_code == 201
    assert role_of(db_admin, ws, user_id) == "owner"


# ---- POST /members: invites ------------------------------------------------------------------


def test_an_unknown_email_is_invited_through_supabase_auth(served: Served, db_admin: Any) -> None:
    ws = make_workspace(db_admin)
    email = f"stranger-{uuid.uuid4().hex[:8]}@example.com"
    with as_user(served, "admin") as client:
        response = client.post(
            "/members", json={"workspace_id": ws, "email": f"  {email.upper()} ", "role": "viewer"}
        )
    assert response.status_code == 201, response.text
    assert response.headers["RateLimit-Policy"] == '"sensitive";q=10;w=60'  # Upstash passed through
    data = response.json()["data"]
    assert data["invited"] is True and data["email"] == email and data["role"] == "viewer"
    assert role_of(db_admin, ws, data["user_id"]) == "viewer"
    # Supabase Auth created the invited user here and mailed the invite.
    assert auth_user(db_admin, email) == (data["user_id"], True, None)
    mails = invite_mails(served, email)
    assert len(mails) == 1 and "/auth/v1/verify?token=" in mails[0]["link"]
    assert "type=invite" in mails[0]["link"]


def invitation_of(db_admin: Any, email: str) -> Any:
    return db_admin.execute(
        "select invited_by::text from public.signup_invitations where email = %s", (email,)
    ).fetchone()


def test_an_invite_records_the_address_so_the_hook_lets_it_through_a_denied_domain(
    served: Served, db_admin: Any
) -> None:
    """The local Auth runs the Before User Created hook (the served hooks function) during the
    invite, as `internal/api/invite.go` does: the address recorded first lets it through."""
    ws = make_workspace(db_admin)
    domain = f"denied-{uuid.uuid4().hex[:8]}.example.com"
    db_admin.execute("insert into public.signup_denied_domains (domain) values (%s)", (domain,))
    email = f"guest@{domain}"
    with as_user(served, "admin") as client:
        response = client.post("/members", json={"workspace_id": ws, "email": email.upper()})
    assert response.status_code == 201, response.text
    assert auth_user(db_admin, email) is not None and len(invite_mails(served, email)) == 1
    assert invitation_of(db_admin, email) == (SEED_USERS["admin"],)
    assert role_of(db_admin, ws, response.json()["data"]["user_id"]) == "member"
    # The deny list still holds for everyone else at that domain.
    stranger = {"metadata": {}, "user": {"email": f"stranger@{domain}"}}
    content, headers = signed(stranger)
    with served.client() as client:
        refused = client.post("/hooks/before-user-created", content=content, headers=headers)
    # A refusal answers 200 with the hook contract's error, the only answer Supabase Auth reads.
    assert refused.status_code == 200 and refused.json()["error"]["http_code"] == 403


def test_an_invitation_is_recorded_once_and_only_for_managers(
    served: Served, db_admin: Any
) -> None:
    ws = make_workspace(db_admin)
    email = f"again-{uuid.uuid4().hex[:8]}@example.com"
    with respx.mock(assert_all_called=False) as router:  # Auth down for the first attempt
        router.post(path="/auth/v1/invite").side_effect = _upstream(503)
        router.route().pass_through()
        with as_user(served, "owner") as client:
            response = client.post("/members", json={"workspace_id": ws, "email": email})
    assert_error(response, 503, "UNAVAILABLE")
    assert invitation_of(db_admin, email) == (SEED_USERS["owner"],)  # kept for the retry
    with as_user(served, "owner") as client:
        retry = client.post("/members", json={"workspace_id": ws, "email": email})
    assert retry.status_code == 201, retry.text
    count = db_admin.execute(
        "select count(*) from public.signup_invitations where email = %s", (email,)
    ).fetchone()
    assert count == (1,)
    # A member may not add anyone: refused before any invitation or invite.
    other = f"nope-{uuid.uuid4().hex[:8]}@example.com"
    with as_user(served, "member") as client:
        response = client.post("/members", json={"workspace_id": ws, "email": other})
    assert_error(response, 403, "FORBIDDEN")
    assert invitation_of(db_admin, other) is None and auth_user(db_admin, other) is None
    assert invite_mails(served, other) == []


def test_the_invitation_helper_refuses_non_managers(db_admin: Any, database_url: str) -> None:
    """`private.record_signup_invitation` checks the caller itself (it is callable by any
    signed-in user): a member, an outsider and anon are refused, nothing is written."""
    from shared.db import close_pools
    from tests.rls_helpers import acting_as, outcome, settings_for

    ws = make_workspace(db_admin)
    settings = settings_for(database_url)
    email = f"sneaky-{uuid.uuid4().hex[:8]}@example.com"
    try:
        for who in ("member", "viewer", None):
            user = uuid.UUID(SEED_USERS[who]) if who else None
            with acting_as(settings, user, commit=True) as tx:

                def record(tx: Any = tx) -> Any:
                    return tx.execute(
                        "select private.record_signup_invitation(%s, %s)", (ws, email)
                    )

                got = outcome(record)
            assert repr(got) == "error 42501", (who, got)
    finally:
        close_pools()
    assert invitation_of(db_admin, email) is None


def test_an_invite_replayed_with_its_idempotency_key_invites_once(
    served: Served, db_admin: Any
) -> None:
    ws = make_workspace(db_admin)
    body = {"workspace_id": ws, "email": f"once-{uuid.uuid4().hex[:8]}@example.com"}
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    with as_user(served, "owner") as client:
        first = client.post("/members", json=body, headers=headers)
        second = client.post("/members", json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.json()["data"] == first.json()["data"]
    assert len(invite_mails(served, body["email"])) == 1


def test_an_invited_user_missing_from_this_database_is_503_not_a_conflict(
    served: Served, db_admin: Any, failing_auth: respx.Route
) -> None:
    """Auth answered a user that auth.users here does not have (SUPABASE_URL and DATABASE_URL
    of different projects): the membership's foreign key fails, which is our setup's fault."""
    ws = make_workspace(db_admin)
    email = f"elsewhere-{uuid.uuid4().hex[:8]}@example.com"
    failing_auth.side_effect = lambda request: httpx.Response(
        200, json=gotrue_user(str(uuid.uuid4()), email)
    )
    with as_user(served, "owner") as client:
        response = client.post("/members", json={"workspace_id": ws, "email": email})
    assert_error(response, 503, "UNAVAILABLE")
    count = db_admin.execute(
        "select count(*) from public.workspace_members where workspace_id = %s", (ws,)
    ).fetchone()
    assert count == (4,)


def _upstream(status: int, **body: Any) -> Callable[[httpx.Request], httpx.Response]:
    payload = {"msg": UPSTREAM_SECRET, "message": UPSTREAM_SECRET, **body}
    return lambda request: httpx.Response(
        status, json=payload, headers={"X-Supabase-Api-Version": "2024-01-01"}
    )


def _raise(exc: type[httpx.TransportError]) -> Callable[[httpx.Request], httpx.Response]:
    def fail(request: httpx.Request) -> httpx.Response:
        raise exc(UPSTREAM_SECRET, request=request)

    return fail


@pytest.mark.parametrize(
    ("side_effect", "status", "code"),
    [
        (_upstream(422, code="email_address_invalid"), 422, "VALIDATION_FAILED"),
        (_upstream(422, code="email_exists"), 409, "CONFLICT"),
        (_upstream(400, code="validation_failed"), 422, "VALIDATION_FAILED"),
        (_upstream(429, code="over_email_send_rate_limit"), 429, "RATE_LIMITED"),
        (_upstream(401, code="no_authorization"), 503, "UNAVAILABLE"),
        (_upstream(500, code="unexpected_failure"), 503, "UNAVAILABLE"),
        (_upstream(503), 503, "UNAVAILABLE"),
        (
            lambda request: httpx.Response(502, text=f"<html>{UPSTREAM_SECRET}</html>"),
            503,
            "UNAVAILABLE",
        ),
        (
            lambda request: httpx.Response(200, json={"unexpected": UPSTREAM_SECRET}),
            503,
            "UNAVAILABLE",
        ),
        (_raise(httpx.ReadTimeout), 503, "UNAVAILABLE"),
        (_raise(httpx.ConnectError), 503, "UNAVAILABLE"),
    ],
    ids=[
        "invalid-email",
        "exists",
        "bad-request",
        "rate-limited",
        "bad-key",
        "500",
        "503",
        "502-html",
        "garbage",
        "timeout",
        "unreachable",
    ],
)
def test_invite_failures_map_to_the_envelope_and_add_nobody(
    served: Served,
    db_admin: Any,
    failing_auth: respx.Route,
    side_effect: Any,
    status: int,
    code: str,
) -> None:
    ws = make_workspace(db_admin)
    failing_auth.side_effect = side_effect
    started = time.monotonic()
    with as_user(served, "owner") as client:
        response = client.post(
            "/members", json={"workspace_id": ws, "email": f"x-{uuid.uuid4().hex[:8]}@example.com"}
        )
    assert time.monotonic() - started < 5
    assert_error(response, status, code)
    assert UPSTREAM_SECRET not in response.text
    assert DEV_SERVICE_ROLE_KEY not in response.text
    assert failing_auth.call_count == 1
    request = failing_auth.calls.last.request  # supabase-py's call, as Supabase receives it
    check_service_call(request, "POST", f"{served.auth.url}/auth/v1/invite")
    assert request.headers["X-Supabase-Api-Version"] == "2024-01-01"
    count = db_admin.execute(
        "select count(*) from public.workspace_members where workspace_id = %s", (ws,)
    ).fetchone()
    assert count == (4,)


def test_without_a_secret_key_invites_are_503_and_the_rest_works(
    served: Served, db_admin: Any
) -> None:
    ws = make_workspace(db_admin)
    user_id, email = make_user(db_admin)
    no_keys = {"SUPABASE_SECRET_KEY": None, "SUPABASE_SERVICE_ROLE_KEY": None}
    with copy_client(served, "members", "owner", **no_keys) as client:
        invite = client.post(
            "/members", json={"workspace_id": ws, "email": "nobody-yet@example.com"}
        )
        added = client.post("/members", json={"workspace_id": ws, "email": email})
        listed = client.get("/members", params={"workspace_id": ws})
    body = assert_error(invite, 503, "UNAVAILABLE")
    assert "SUPABASE_SECRET_KEY" in body["error"]["message"]
    assert "SUPABASE_SERVICE_ROLE_KEY" in body["error"]["message"]
    assert added.status_code == 201 and role_of(db_admin, ws, user_id) == "member"
    assert listed.status_code == 200 and len(listed.json()["data"]) == 5


def test_a_slow_supabase_auth_is_503_within_the_timeout(
    served: Served, db_admin: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real socket that accepts and never answers: httpx's read timeout must end it."""
    from shared import supabase_admin

    monkeypatch.setattr(supabase_admin, "TIMEOUT_S", 0.5)
    slow = flask.Flask("slow-auth")

    @slow.post("/auth/v1/invite")
    def hang() -> Any:
        time.sleep(3)
        return {}

    server = make_server("127.0.0.1", 0, slow, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    slow_url = f"http://127.0.0.1:{server.server_port}"
    ws = make_workspace(db_admin)
    try:
        with copy_client(served, "members", "owner", SUPABASE_URL=slow_url) as client:
            started = time.monotonic()
            response = client.post(
                "/members", json={"workspace_id": ws, "email": "slowpoke@example.com"}
            )
            elapsed = time.monotonic() - started
    finally:
        server.shutdown()
    assert_error(response, 503, "UNAVAILABLE")
    assert elapsed < 2.5


# ---- PATCH /members/{workspace_id}/{user_id} -----------------------------------------------


def test_owners_and_admins_change_roles(served: Served, db_admin: Any) -> None:
    ws = make_workspace(db_admin)
    target, _ = make_user(db_admin)
    db_admin.execute(
        "insert into public.workspace_members (workspace_id, user_id, role) values (%s, %s, 'viewer')",
        (ws, target),
    )
    expected = {"member": 403, "viewer": 403, "outsider": 404, "anon": 401}
    for who, status in expected.items():
        with as_user(served, who) as client:
            response = client.patch(f"/members/{ws}/{target}", json={"role": "admin"})
        assert response.status_code == status, (who, response.text)
    assert role_of(db_admin, ws, target) == "viewer"
    with as_user(served, "admin") as client:
        response = client.patch(f"/members/{ws}/{target}", json={"role": "member"})
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert (
        data["role"] == "member" and data["user_id"] == target and data["email"].startswith("user-")
    )
    with as_user(served, "owner") as client:
        assert client.patch(f"/members/{ws}/{target}", json={"role": "admin"}).status_code == 200
        assert_error(
            client.patch(f"/members/{ws}/{uuid.uuid4()}", json={"role": "admin"}), 404, "NOT_FOUND"
        )
        assert_error(
            client.patch(f"/members/{ws}/{target}", json={"role": "boss"}), 422, "VALIDATION_FAILED"
        )
    assert role_of(db_admin, ws, target) == "admin"


def test_the_owner_role_needs_an_owner_with_aal2(served: Served, db_admin: Any) -> None:
    second_owner, _ = make_user(db_admin)
    ws = make_workspace(db_admin, extra_owner=second_owner)
    with as_user(served, "admin", aal="aal2") as client:
        assert_error(
            client.patch(f"/members/{ws}/{MEMBER}", json={"role": "owner"}), 403, "FORBIDDEN"
        )
        assert_error(
            client.patch(f"/members/{ws}/{second_owner}", json={"role": "admin"}), 403, "FORBIDDEN"
        )
    with as_user(served, "owner") as client:  # aal1
        assert_error(
            client.patch(f"/members/{ws}/{MEMBER}", json={"role": "owner"}), 403, "MFA_REQUIRED"
        )
        assert_error(
            client.patch(f"/members/{ws}/{second_owner}", json={"role": "member"}),
            403,
            "MFA_REQUIRED",
        )
    assert role_of(db_admin, ws, MEMBER) == "member"
    assert role_of(db_admin, ws, second_owner) == "owner"
    with as_user(served, "owner", aal="aal2") as client:
        assert client.patch(f"/members/{ws}/{MEMBER}", json={"role": "owner"}).status_code == 200
        assert (
            client.patch(f"/members/{ws}/{second_owner}", json={"role": "member"}).status_code
            == 200
        )
    assert role_of(db_admin, ws, MEMBER) == "owner"
    assert role_of(db_admin, ws, second_owner) == "member"


def test_the_last_owner_cannot_step_down(served: Served, db_admin: Any) -> None:
    ws = make_workspace(db_admin)
    with as_user(served, "owner", aal="aal2") as client:
        response = client.patch(f"/members/{ws}/{OWNER}", json={"role": "admin"})
        body = assert_error(response, 409, "CONFLICT")
        assert "keep an owner" in body["error"]["message"]
        assert role_of(db_admin, ws, OWNER) == "owner"
        # With a second owner, stepping down works.
        assert client.patch(f"/members/{ws}/{ADMIN}", json={"role": "owner"}).status_code == 200
        assert client.patch(f"/members/{ws}/{OWNER}", json={"role": "admin"}).status_code == 200
    assert role_of(db_admin, ws, OWNER) == "admin"


def test_an_unchanged_role_is_a_no_op(served: Served, db_admin: Any) -> None:
    ws = make_workspace(db_admin)
    with as_user(served, "admin") as client:
        response = client.patch(f"/members/{ws}/{VIEWER}", json={"role": "viewer"})
    assert response.status_code == 200 and response.json()["data"]["role"] == "viewer"


# ---- DELETE /members/{workspace_id}/{user_id} ----------------------------------------------


def test_owners_and_admins_remove_members(served: Served, db_admin: Any) -> None:
    ws = make_workspace(db_admin)
    expected = {"member": 403, "viewer": 403, "outsider": 404, "anon": 401}
    for who, status in expected.items():
        target = MEMBER if who == "viewer" else VIEWER
        with as_user(served, who) as client:
            response = client.delete(f"/members/{ws}/{target}")
        assert response.status_code == status, (who, response.text)
    assert role_of(db_admin, ws, VIEWER) == "viewer" and role_of(db_admin, ws, MEMBER) == "member"
    with as_user(served, "admin") as client:
        assert_error(client.delete(f"/members/{ws}/{OWNER}"), 403, "FORBIDDEN")
        response = client.delete(f"/members/{ws}/{VIEWER}")
        assert response.status_code == 204 and response.content == b""
        assert_error(client.delete(f"/members/{ws}/{VIEWER}"), 404, "NOT_FOUND")
    with as_user(served, "owner") as client:
        assert client.delete(f"/members/{ws}/{MEMBER}").status_code == 204
    assert role_of(db_admin, ws, VIEWER) is None and role_of(db_admin, ws, MEMBER) is None


@pytest.mark.parametrize("who", ["admin", "member", "viewer"])
def test_anyone_may_leave(served: Served, db_admin: Any, who: str) -> None:
    ws = make_workspace(db_admin)
    with as_user(served, who) as client:
        assert client.delete(f"/members/{ws}/{SEED_USERS[who]}").status_code == 204
        assert_error(client.get("/members", params={"workspace_id": ws}), 404, "NOT_FOUND")
    assert role_of(db_admin, ws, SEED_USERS[who]) is None


def test_an_owner_leaves_with_aal2_unless_the_last_one(served: Served, db_admin: Any) -> None:
    ws = make_workspace(db_admin)
    with as_user(served, "owner") as client:
        assert_error(client.delete(f"/members/{ws}/{OWNER}"), 403, "MFA_REQUIRED")
    with as_user(served, "owner", aal="aal2") as client:
        assert_error(client.delete(f"/members/{ws}/{OWNER}"), 409, "CONFLICT")
        assert role_of(db_admin, ws, OWNER) == "owner"
        assert client.patch(f"/members/{ws}/{ADMIN}", json={"role": "owner"}).status_code == 200
        assert client.delete(f"/members/{ws}/{OWNER}").status_code == 204
    assert role_of(db_admin, ws, OWNER) is None


def test_owners_remove_other_owners_with_aal2(served: Served, db_admin: Any) -> None:
    second_owner, _ = make_user(db_admin)
    ws = make_workspace(db_admin, extra_owner=second_owner)
    with as_user(served, "owner") as client:
        assert_error(client.delete(f"/members/{ws}/{second_owner}"), 403, "MFA_REQUIRED")
    with as_user(served, "owner", aal="aal2") as client:
        assert client.delete(f"/members/{ws}/{second_owner}").status_code == 204
    assert role_of(db_admin, ws, second_owner) is None


# ---- OpenAPI --------------------------------------------------------------------------------


def test_openapi_declares_every_route_with_its_rate_policy(served: Served) -> None:
    with served.client() as client:
        doc = client.get("/members/openapi.json").json()
    paths = doc["paths"]
    assert doc["openapi"].startswith("3.1")
    assert paths["/members"]["post"]["x-rate-limit"]["policy"] == "sensitive"
    assert paths["/members"]["get"]["x-rate-limit"]["policy"] == "read"
    assert {"patch", "delete"} <= set(paths["/members/{workspace_id}/{user_id}"])
