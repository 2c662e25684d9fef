"""`fnkit dev` with the Supabase CLI's local API keys: `fnkit env` prints them first, and the one
base URL takes them as Supabase does (the gateway in front of Auth and Storage, the functions
themselves). `fnkit dev` runs as a subprocess in a copy of the repository, on its own database.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator

import httpx
import pytest
from supabase import create_client

from fnkit.devenv import DEV_ANON_KEY, DEV_PUBLISHABLE_KEY, DEV_SECRET_KEY
from tests.devserver import FNKIT, ROOT, DevServer, base_env, running_dev


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory, pg_admin_url: str) -> Iterator[DevServer]:
    root = tmp_path_factory.mktemp("api-keys-dev")
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    shutil.copytree(ROOT / "functions", root / "functions")
    shutil.copytree(ROOT / "supabase", root / "supabase")
    with running_dev(root, pg_admin_url) as server:
        yield server


def test_fnkit_env_prints_the_new_keys_first(dev: DevServer) -> None:
    env = subprocess.run(
        [FNKIT, "env"],
        cwd=dev.root,
        env=base_env(DATABASE_URL=dev.database_url),  # the dev server's, no embedded one
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert env.returncode == 0, env.stderr
    names = [line.split("=", 1)[0].removeprefix("export ") for line in env.stdout.splitlines()]
    order = [names.index(n) for n in ("SUPABASE_URL", "SUPABASE_PUBLISHABLE_KEY",
                                      "SUPABASE_SECRET_KEY", "SUPABASE_ANON_KEY",
                                      "SUPABASE_SERVICE_ROLE_KEY")]  # fmt: skip
    assert order == sorted(order)
    assert f"export SUPABASE_PUBLISHABLE_KEY='{DEV_PUBLISHABLE_KEY}'" in env.stdout
    assert f"export SUPABASE_SECRET_KEY='{DEV_SECRET_KEY}'" in env.stdout


def test_storage_takes_the_secret_key(dev: DevServer) -> None:
    storage = create_client(dev.url, DEV_SECRET_KEY).storage
    assert "attachments" in {bucket.name for bucket in storage.list_buckets()}


@pytest.mark.parametrize(
    ("key", "status"), [(DEV_SECRET_KEY, 200), (DEV_PUBLISHABLE_KEY, 401), (DEV_ANON_KEY, 401)]
)
def test_a_scheduled_route_run_by_hand_with_the_secret_key(
    dev: DevServer, key: str, status: int
) -> None:
    response = httpx.post(
        f"{dev.url}/functions/v1/housekeeping/idempotency-keys/expire",
        headers={"apikey": key},
        timeout=30,
    )
    assert response.status_code == status, response.text


def test_the_readme_session_with_the_publishable_key(dev: DevServer) -> None:
    """README's "Call a function in a minute", with the publishable key: sign up, sign in, and
    call a function as the signed-in user (supabase-py sends the key in apikey, the user's
    token in Authorization)."""
    supabase = create_client(dev.url, DEV_PUBLISHABLE_KEY)
    assert supabase.auth.get_session() is None
    email, password = f"keys-{uuid.uuid4().hex[:8]}@example.com", "correct-horse-battery"
    answer = supabase.auth.sign_up({"email": email, "password": password})
    assert answer.user is not None and answer.user.email == email
    supabase.auth.sign_in_with_password({"email": email, "password": password})
    body = supabase.functions.invoke("me", {"method": "GET", "responseType": "json"})
    assert isinstance(body, dict)
    assert body["success"] is True and body["data"]["email"] == email
    assert body["data"]["role"] == "authenticated"
