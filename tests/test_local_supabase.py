"""The local Supabase from a developer's seat: `fnkit dev`, then the real supabase-py client.

One base URL serves the functions, Auth and Storage. A new user signs up (the Before User
Created hook runs: a deny-listed domain is refused), signs in (the Custom Access Token hook's
`memberships` claim is in the token), calls `me`; the seed's owner invites a member, uploads
and downloads an attachment through the signed URLs the function hands out, enrolls TOTP and
deletes a workspace with the aal2 session. Nothing is faked: `fnkit dev` runs as a subprocess
in a copy of the repository, on a database of its own.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import psycopg
import pyotp
import pytest
from supabase import Client, create_client
from supabase_auth.errors import AuthApiError

from fnkit.devenv import DEV_ANON_KEY
from tests.devserver import FNKIT, ROOT, DevServer, running_dev

ACME = "a0000000-0000-4000-8000-000000000001"
OWNER = ("owner@example.com", "password123")


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory, pg_admin_url: str) -> Iterator[DevServer]:
    """`fnkit dev` with every function, in a copy of the repository."""
    root = tmp_path_factory.mktemp("local-supabase")
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    shutil.copytree(ROOT / "functions", root / "functions")
    shutil.copytree(ROOT / "supabase", root / "supabase")
    with running_dev(root, pg_admin_url) as server:
        yield server


def client(dev: DevServer) -> Client:
    return create_client(dev.url, DEV_ANON_KEY)


def call(dev: DevServer, method: str, path: str, token: str, **kwargs: Any) -> httpx.Response:
    return httpx.request(
        method,
        f"{dev.url}/functions/v1/{path}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
        **kwargs,
    )


def sign_in(dev: DevServer, email: str, password: str) -> tuple[Client, str]:
    supabase = client(dev)
    session = supabase.auth.sign_in_with_password({"email": email, "password": password})
    assert session.session is not None
    return supabase, session.session.access_token


def test_sign_up_runs_the_before_user_created_hook(dev: DevServer) -> None:
    with psycopg.connect(dev.database_url, autocommit=True) as conn:
        conn.execute(
            "insert into public.signup_denied_domains (domain) values ('blocked.example')"
            " on conflict do nothing"
        )
    supabase = client(dev)
    with pytest.raises(AuthApiError) as refused:
        supabase.auth.sign_up({"email": "mallory@blocked.example", "password": "s3cret-Passw0rd"})
    assert "blocked.example" in refused.value.message

    email = f"new-{uuid.uuid4().hex[:8]}@example.com"
    signed_up = supabase.auth.sign_up({"email": email, "password": "s3cret-Passw0rd"})
    assert signed_up.user is not None and signed_up.user.email == email
    with psycopg.connect(dev.database_url) as conn:
        row = conn.execute(
            "select u.encrypted_password like '$2%%', i.provider"
            " from auth.users u join auth.identities i on i.user_id = u.id where u.email = %s",
            (email,),
        ).fetchone()
    assert row == (True, "email")


def test_sign_in_carries_the_memberships_claim_and_me_answers(dev: DevServer) -> None:
    supabase, token = sign_in(dev, *OWNER)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert jwt.get_unverified_header(token)["alg"] == "ES256"
    assert claims["iss"] == f"{dev.url}/auth/v1"
    assert claims["memberships"][ACME] == "owner"
    me = supabase.functions.invoke(
        "me",
        {"method": "GET", "responseType": "json", "headers": {"Authorization": f"Bearer {token}"}},
    )
    assert me["data"]["sub"] == claims["sub"]


def test_an_owner_invites_a_member(dev: DevServer) -> None:
    _, token = sign_in(dev, *OWNER)
    email = f"invitee-{uuid.uuid4().hex[:8]}@example.com"
    invited = call(dev, "POST", "members", token, json={"workspace_id": ACME, "email": email})
    assert invited.status_code == 201, invited.text
    with psycopg.connect(dev.database_url) as conn:
        row = conn.execute(
            "select invited_at is not null from auth.users where email = %s", (email,)
        ).fetchone()
    assert row == (True,)
    # The invite email is in the local inbox, where a person (or `fnkit inbox`) reads it.
    listed = subprocess.run(
        [FNKIT, "inbox", "--to", email, "--json"],
        cwd=dev.root, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    messages = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [m["kind"] for m in messages] == ["invite"]
    assert messages[0]["link"].startswith(f"{dev.url}/auth/v1/verify?")
    assert f"invite to {email}" in dev.log()


def test_an_attachment_goes_up_and_comes_back_through_signed_urls(dev: DevServer) -> None:
    supabase, token = sign_in(dev, *OWNER)
    with psycopg.connect(dev.database_url) as conn:
        task = conn.execute(
            "select id from public.tasks where workspace_id = %s limit 1", (ACME,)
        ).fetchone()
    assert task is not None
    data = b"minutes of the kickoff\n" * 10
    created = call(
        dev,
        "POST",
        "attachments",
        token,
        json={
            "task_id": str(task[0]),
            "filename": "kickoff.txt",
            "content_type": "text/plain",
            "size": len(data),
        },
    )
    assert created.status_code == 201, created.text
    upload = created.json()["data"]["upload"]
    uploaded = supabase.storage.from_("attachments").upload_to_signed_url(
        upload["path"], upload["token"], data, {"content-type": "text/plain"}
    )
    assert uploaded.path == upload["path"]

    attachment = call(dev, "GET", f"attachments/{created.json()['data']['id']}", token)
    assert attachment.status_code == 200, attachment.text
    download = httpx.get(attachment.json()["data"]["download"]["url"], timeout=30)
    assert download.status_code == 200
    assert download.content == data


def test_totp_enrollment_gives_the_aal2_session_that_deletes_a_workspace(dev: DevServer) -> None:
    supabase, token = sign_in(dev, *OWNER)
    created = call(dev, "POST", "workspaces", token, json={"name": "Short-lived"})
    assert created.status_code == 201, created.text
    workspace = created.json()["data"]["id"]
    refused = call(dev, "DELETE", f"workspaces/{workspace}", token)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "MFA_REQUIRED"

    factor = supabase.auth.mfa.enroll({"factor_type": "totp", "friendly_name": "phone"})
    code = pyotp.TOTP(factor.totp.secret).now()
    verified = supabase.auth.mfa.challenge_and_verify({"factor_id": factor.id, "code": code})
    claims = jwt.decode(verified.access_token, options={"verify_signature": False})
    assert claims["aal"] == "aal2"
    assert {entry["method"] for entry in claims["amr"]} >= {"password", "totp"}

    deleted = call(dev, "DELETE", f"workspaces/{workspace}", verified.access_token)
    assert deleted.status_code == 200, deleted.text
    supabase.auth.mfa.unenroll({"factor_id": factor.id})


def test_the_readme_first_minute_runs_as_written(dev: DevServer) -> None:
    """README's supabase-py snippet, run as written against this server (only the URL and the
    address change: another port, and an address no earlier run signed up)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Call a function in a minute", 1)[1]
    snippet = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert 'create_client("http://127.0.0.1:8080", PUBLISHABLE_KEY)' in snippet
    email = f"readme-{uuid.uuid4().hex[:8]}@example.com"
    code = snippet.replace("http://127.0.0.1:8080", dev.url).replace("you@example.com", email)
    printed: list[Any] = []
    exec(compile(code, "README.md", "exec"), {"print": printed.append})
    assert printed[0]["success"] is True
    assert printed[0]["data"]["email"] == email
