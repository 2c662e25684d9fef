"""Served functions in projects with only the new API keys, only the legacy ones, or both.

Each test serves copies of real functions (tests/functions/echo, functions/housekeeping,
functions/attachments) whose settings are the session's with the project's keys swapped in,
and calls them over real HTTP, as Supabase's clients send keys: a project key in `apikey`
(supabase-py repeats it in `Authorization`), a user's access token in `Authorization`. The
Auth admin and Storage calls go to the session's local Supabase (the real Storage behind the
gateway that swaps `sb_` keys for role JWTs).

- new: SUPABASE_PUBLISHABLE_KEY, SUPABASE_SECRET_KEY and the JWKS; no legacy key, no JWT secret
- legacy: SUPABASE_ANON_KEY, SUPABASE_SERVICE_ROLE_KEY, SUPABASE_JWT_SECRET
- both: a project in the middle of its migration
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import flask
import httpx
import pytest
from supabase import ClientOptions, create_client
from werkzeug.serving import make_server

import shared.app
from fnkit.devenv import (
    DEV_ANON_KEY,
    DEV_JWT_SECRET,
    DEV_PUBLISHABLE_KEY,
    DEV_SECRET_KEY,
    DEV_SERVICE_ROLE_KEY,
)
from shared.settings import load_settings
from tests.fixtures.server import ROOT, SEED_USERS, Served

KEY_SETTINGS = (
    "SUPABASE_PUBLISHABLE_KEY",
    "SUPABASE_SECRET_KEY",
    "SUPABASE_ANON_KEY",
    "SUPABASE_SERVICE_ROLE_KEY",
    "SUPABASE_JWT_SECRET",
)
NEW = {"SUPABASE_PUBLISHABLE_KEY": DEV_PUBLISHABLE_KEY, "SUPABASE_SECRET_KEY": DEV_SECRET_KEY}
LEGACY = {
    "SUPABASE_ANON_KEY": DEV_ANON_KEY,
    "SUPABASE_SERVICE_ROLE_KEY": DEV_SERVICE_ROLE_KEY,
    "SUPABASE_JWT_SECRET": DEV_JWT_SECRET,
}
PROJECTS = {"new": NEW, "legacy": LEGACY, "both": {**NEW, **LEGACY}}
OTHER_SECRET = "sb_secret_" + "o" * 31
OWNER = SEED_USERS["owner"]
ITEM = {"name": "widget", "count": 1}


@contextlib.contextmanager
def serve_project(source: Path, keys: dict[str, str]) -> Iterator[str]:
    """A copy of the function in `source` (its main.py) with the session's settings but only
    `keys` for API keys, on its own port; yields its /functions/v1 base URL."""
    values = {k: v for k, v in os.environ.items() if k not in KEY_SETTINGS}
    settings = load_settings({**values, **keys})
    name = source.name
    module_name = f"keys_copy_of_{name}_{uuid.uuid4().hex[:8]}"
    spec = importlib.util.spec_from_file_location(module_name, source / "main.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    with mock.patch.object(shared.app, "get_settings", lambda: settings):
        spec.loader.exec_module(module)
    app = flask.Flask(module_name)
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
        sys.modules.pop(module_name, None)


@pytest.fixture(scope="module")
def echo(served: Served) -> Iterator[dict[str, str]]:
    """The echo test function served once per kind of project: {project: base URL}."""
    with contextlib.ExitStack() as stack:
        yield {
            project: stack.enter_context(serve_project(ROOT / "tests/functions/echo", keys))
            for project, keys in PROJECTS.items()
        }


def call(base: str, method: str, path: str, **headers: str) -> httpx.Response:
    """A request to the echo or housekeeping copy; POST /echo carries a valid item."""
    body = ITEM if path == "/echo" else None
    return httpx.request(method, f"{base}{path}", json=body, headers=headers, timeout=30)


def refused(response: httpx.Response, words: str = "") -> str:
    assert response.status_code == 401, response.text
    error = response.json()["error"]
    assert error["code"] == "UNAUTHENTICATED" and words in error["message"]
    return str(error["message"])


# ---- users: the publishable key in apikey, the user's token in Authorization ----------------


@pytest.mark.parametrize("project", ["new", "both"])
def test_a_user_with_the_publishable_key_and_an_es256_token(
    served: Served, echo: dict[str, str], project: str
) -> None:
    headers = {"apikey": DEV_PUBLISHABLE_KEY, "Authorization": f"Bearer {served.es256(OWNER)}"}
    response = call(echo[project], "POST", "/echo", **headers)
    assert response.status_code == 201, response.text
    assert response.json()["data"]["user"] == OWNER


def test_only_new_keys_verify_by_the_jwks_alone(served: Served, echo: dict[str, str]) -> None:
    """No SUPABASE_JWT_SECRET: an HS256 token is refused, whatever it claims."""
    headers = {"apikey": DEV_PUBLISHABLE_KEY, "Authorization": f"Bearer {served.token(OWNER)}"}
    refused(call(echo["new"], "POST", "/echo", **headers), "algorithm")
    headers["Authorization"] = f"Bearer {served.es256(OWNER)}"
    assert call(echo["new"], "POST", "/echo", **headers).status_code == 201


@pytest.mark.parametrize("project", ["legacy", "both"])
def test_legacy_projects_take_hs256_tokens_and_the_anon_key(
    served: Served, echo: dict[str, str], project: str
) -> None:
    headers = {"apikey": DEV_ANON_KEY, "Authorization": f"Bearer {served.token(OWNER)}"}
    assert call(echo[project], "POST", "/echo", **headers).status_code == 201


def test_a_legacy_project_refuses_sb_keys_it_does_not_have(echo: dict[str, str]) -> None:
    refused(call(echo["legacy"], "GET", "/echo/search", apikey=DEV_PUBLISHABLE_KEY), "apikey")
    refused(call(echo["legacy"], "GET", "/echo/service", apikey=DEV_SECRET_KEY), "apikey")


@pytest.mark.parametrize("key", [DEV_PUBLISHABLE_KEY, DEV_SECRET_KEY])
def test_an_sb_key_as_the_bearer_of_a_user_route_says_where_it_belongs(
    echo: dict[str, str], key: str
) -> None:
    message = refused(call(echo["new"], "POST", "/echo", Authorization=f"Bearer {key}"))
    assert "apikey header" in message and key not in message
    # With the same key in apikey (as supabase-py sends it), it is the key's role: not a user.
    refused(call(echo["new"], "POST", "/echo", apikey=key, Authorization=f"Bearer {key}"))


def test_the_publishable_key_alone_is_anonymous_on_public_routes(echo: dict[str, str]) -> None:
    response = call(echo["new"], "GET", "/echo/search", apikey=DEV_PUBLISHABLE_KEY)
    assert response.status_code == 200, response.text


# ---- service callers: the secret key in apikey ----------------------------------------------


@pytest.mark.parametrize("project", ["new", "both"])
def test_the_secret_key_in_apikey_is_the_service_role(echo: dict[str, str], project: str) -> None:
    response = call(echo[project], "GET", "/echo/service", apikey=DEV_SECRET_KEY)
    assert response.status_code == 200, response.text
    assert response.json()["data"] == {"role": "service_role"}


def test_supabase_py_invokes_a_service_route_with_the_secret_key(echo: dict[str, str]) -> None:
    root = echo["new"].removesuffix("/functions/v1")
    options = ClientOptions(auto_refresh_token=False, persist_session=False)
    supabase = create_client(root, DEV_SECRET_KEY, options)
    answer = supabase.functions.invoke("echo/service", {"method": "GET"})
    assert isinstance(answer, bytes)  # functions-py hands back the body as sent
    assert json.loads(answer)["data"] == {"role": "service_role"}


@pytest.mark.parametrize(
    ("project", "headers", "words"),
    [
        ("new", {"apikey": DEV_PUBLISHABLE_KEY}, "service role"),
        ("new", {"apikey": OTHER_SECRET}, "apikey"),
        ("new", {"Authorization": f"Bearer {DEV_SECRET_KEY}"}, "apikey header"),
        ("new", {"apikey": DEV_SECRET_KEY, "Authorization": f"Bearer {OTHER_SECRET}"}, "apikey"),
        ("new", {"Authorization": f"Bearer {DEV_SERVICE_ROLE_KEY}"}, "algorithm"),
        ("legacy", {"apikey": DEV_ANON_KEY}, "service role"),
    ],
    ids=["publishable", "unknown secret", "secret as bearer only", "another key as bearer",
         "service role jwt without legacy keys", "anon key"],
)  # fmt: skip
def test_who_is_not_the_service_role(
    echo: dict[str, str], project: str, headers: dict[str, str], words: str
) -> None:
    message = refused(call(echo[project], "GET", "/echo/service", **headers), words)
    assert DEV_SECRET_KEY not in message and OTHER_SECRET not in message


@pytest.mark.parametrize("project", ["legacy", "both"])
def test_the_service_role_key_works_while_legacy_keys_are_configured(
    echo: dict[str, str], project: str
) -> None:
    headers = {"Authorization": f"Bearer {DEV_SERVICE_ROLE_KEY}"}
    assert call(echo[project], "GET", "/echo/service", **headers).status_code == 200


# ---- scheduled routes run by hand with the secret key ---------------------------------------

EXPIRE = "/housekeeping/idempotency-keys/expire"


@pytest.mark.parametrize(
    ("project", "headers", "status"),
    [
        ("new", {"apikey": DEV_SECRET_KEY}, 200),
        ("new", {"apikey": DEV_SECRET_KEY, "Authorization": f"Bearer {DEV_SECRET_KEY}"}, 200),
        ("new", {"apikey": DEV_PUBLISHABLE_KEY}, 401),
        ("new", {"apikey": OTHER_SECRET}, 401),
        ("new", {"Authorization": f"Bearer {DEV_SECRET_KEY}"}, 401),
        ("new", {"apikey": DEV_SECRET_KEY, "Authorization": f"Bearer {OTHER_SECRET}"}, 401),
        ("new", {"Authorization": f"Bearer {DEV_SERVICE_ROLE_KEY}"}, 401),
        ("legacy", {"Authorization": f"Bearer {DEV_SERVICE_ROLE_KEY}"}, 200),
        ("legacy", {"apikey": DEV_SECRET_KEY}, 401),
        ("both", {"apikey": DEV_SECRET_KEY}, 200),
        ("both", {"apikey": DEV_SERVICE_ROLE_KEY}, 200),
    ],
    ids=["new secret", "new secret twice", "new publishable", "new unknown", "new bearer only",
         "new other bearer", "new legacy key", "legacy key", "legacy secret", "both secret",
         "both service role key in apikey"],
)  # fmt: skip
def test_a_scheduled_route_run_by_hand(
    served: Served, project: str, headers: dict[str, str], status: int
) -> None:
    with serve_project(ROOT / "functions/housekeeping", PROJECTS[project]) as base:
        response = call(base, "POST", EXPIRE, **headers)
    assert response.status_code == status, response.text
    if status == 200:
        assert response.json()["data"]["ran"] is True


# ---- Storage through shared.supabase_admin with only the new keys ---------------------------


@pytest.mark.parametrize("project", ["new", "legacy"])
def test_attachments_upload_download_and_delete_against_the_local_storage(
    served: Served, task: str, project: str
) -> None:
    """The whole attachment flow on the real local Storage: our signed upload URL (the secret
    key, or the service role key, through the gateway), the browser's upload with the
    publishable (or anon) key, the signed download, and the removal."""
    token = served.es256(OWNER, email="owner@example.com")
    public_key = DEV_PUBLISHABLE_KEY if project == "new" else DEV_ANON_KEY
    headers = {"apikey": public_key, "Authorization": f"Bearer {token}"}
    body = {"task_id": task, "filename": "notes.txt", "content_type": "text/plain", "size": 5}
    with (
        serve_project(ROOT / "functions/attachments", PROJECTS[project]) as base,
        httpx.Client(base_url=f"{base}/attachments", headers=headers, timeout=30) as api,
    ):
        created = api.post("", json=body)
        assert created.status_code == 201, created.text
        upload = created.json()["data"]["upload"]
        options = ClientOptions(auto_refresh_token=False, persist_session=False)
        browser = create_client(served.auth.url, public_key, options).storage
        browser.from_("attachments").upload_to_signed_url(upload["path"], upload["token"], b"hello")

        attachment = created.json()["data"]["id"]
        fetched = api.get(f"/{attachment}")
        assert fetched.status_code == 200, fetched.text
        download = httpx.get(fetched.json()["data"]["download"]["url"], timeout=10)
        assert download.status_code == 200 and download.content == b"hello"

        assert api.delete(f"/{attachment}").status_code == 204
        gone = httpx.get(fetched.json()["data"]["download"]["url"], timeout=10)
        assert gone.status_code == 400 and gone.json()["code"] == "NoSuchKey"  # Storage's words


# ---- Auth admin through shared.supabase_admin -----------------------------------------------


@pytest.mark.parametrize("project", ["new", "legacy"])
def test_an_invite_goes_through_the_local_auth(
    served: Served, team: str, db_admin: Any, project: str
) -> None:
    """members invites an unknown email: Auth admin's invite with the secret key (or the
    service role key), through the gateway, creates the user the membership then names."""
    token = served.es256(OWNER, email="owner@example.com")
    public_key = DEV_PUBLISHABLE_KEY if project == "new" else DEV_ANON_KEY
    headers = {"apikey": public_key, "Authorization": f"Bearer {token}"}
    email = f"invitee-{uuid.uuid4().hex[:8]}@example.com"
    with serve_project(ROOT / "functions/members", PROJECTS[project]) as base:
        response = httpx.post(
            f"{base}/members",
            json={"workspace_id": team, "email": email, "role": "viewer"},
            headers=headers,
            timeout=30,
        )
    assert response.status_code == 201, response.text
    data = response.json()["data"]
    assert data["invited"] is True
    row = db_admin.execute(
        "select u.email, m.role from auth.users u join public.workspace_members m"
        " on m.user_id = u.id where u.id = %s and m.workspace_id = %s",
        (data["user_id"], team),
    ).fetchone()
    assert row == (email, "viewer")
