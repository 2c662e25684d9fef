"""`fnkit dev` as a developer runs it: a subprocess in a copy of the repository, on free ports.

It reloads on a new or changed function and applies a new migration while running; when the
Upstash bridge's port is taken it takes a free one, says so in one line, and `fnkit env`
prints the address in use; its start-up lines name every service. `fnkit db stop` stops the
embedded Postgres. Waits poll for an outcome (no timing is asserted); the deadlines only
keep a broken run from hanging.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from fnkit.local.upstash.bridge import resolve_redis_url
from tests.devserver import FNKIT, ROOT, DevServer, base_env, running_dev, wait_for

HELLO = """from shared import App, Request

app = App("hello")


@app.get("/", auth="public", rate=None)
def hello(request: Request) -> dict[str, str]:
    return {"says": "%s"}


handler = app.handler
"""


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory, pg_admin_url: str) -> Iterator[DevServer]:
    """`fnkit dev` in a copy of the repository (health only), its own database, the bridge's
    port held by someone else."""
    root = tmp_path_factory.mktemp("devrepo")
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    shutil.copytree(ROOT / "functions" / "health", root / "functions" / "health")
    shutil.copytree(ROOT / "supabase", root / "supabase")
    busy = socket.create_server(("127.0.0.1", 0))  # the bridge's port, taken
    busy_port = busy.getsockname()[1]
    try:
        with running_dev(root, pg_admin_url, FNKIT_UPSTASH_PORT=str(busy_port)) as server:
            yield dataclasses.replace(server, busy_port=busy_port)
    finally:
        busy.close()


def test_start_up_lines_name_every_service(dev: DevServer) -> None:
    log = dev.log()
    assert "fnkit: database postgresql://" in log
    redis = "redis://127.0.0.1:6379" if resolve_redis_url() else "embedded fakeredis"
    assert f"fnkit: Redis {redis}" in log
    assert "fnkit: Upstash REST bridge at http://127.0.0.1:" in log
    assert f"fnkit: functions at {dev.url}/functions/v1/<name>: health" in log
    assert (
        f"fnkit: local Supabase (for development only, loopback): {dev.url}/auth/v1,"
        f" {dev.url}/storage/v1, {dev.url}/realtime/v1" in log
    )


def test_one_base_url_serves_the_functions_and_the_local_supabase(dev: DevServer) -> None:
    """`fnkit env` names the dev server itself as SUPABASE_URL, and that URL publishes the
    local Auth's signing keys, which the functions behind it verify tokens against."""
    env = subprocess.run(
        [FNKIT, "env"], cwd=dev.root, env=base_env(DATABASE_URL=dev.database_url),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert env.returncode == 0, env.stderr
    assert f"export SUPABASE_URL='{dev.url}'" in env.stdout
    assert "export SUPABASE_SERVICE_ROLE_KEY='ey" in env.stdout
    jwks = httpx.get(f"{dev.url}/auth/v1/.well-known/jwks.json", timeout=10).json()
    assert [key["alg"] for key in jwks["keys"]] == ["ES256"]
    # The key is kept in the git-ignored .fnkit/, so a restart keeps signing with it.
    assert (dev.root / ".fnkit" / "auth" / "signing-key.pem").exists()


def test_a_taken_bridge_port_moves_and_fnkit_env_prints_the_one_in_use(dev: DevServer) -> None:
    moved = re.search(rf"port {dev.busy_port} is taken: the Upstash bridge uses (\d+)", dev.log())
    assert moved is not None, dev.log()
    assert "FNKIT_UPSTASH_PORT moves it" in dev.log()
    in_use = f"http://127.0.0.1:{moved[1]}"
    env = subprocess.run(
        [FNKIT, "env"], cwd=dev.root, env=base_env(DATABASE_URL=dev.database_url),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert env.returncode == 0, env.stderr
    assert f"export UPSTASH_REDIS_REST_URL='{in_use}'" in env.stdout
    token = re.search(r"export UPSTASH_REDIS_REST_TOKEN='([^']+)'", env.stdout)
    assert token is not None
    pong = httpx.post(in_use, json=["PING"], headers={"Authorization": f"Bearer {token[1]}"})
    assert pong.json() == {"result": "PONG"}


def test_a_new_function_a_change_and_a_migration_are_picked_up_while_running(
    dev: DevServer,
) -> None:
    hello = dev.root / "functions" / "hello" / "main.py"
    hello.parent.mkdir()
    hello.write_text(HELLO % "first")

    def says(text: str) -> bool:
        response = dev.answer("hello")
        return (
            response is not None
            and response.status_code == 200
            and (response.json()["data"] == {"says": text})
        )

    wait_for("the new function served", lambda: says("first"))
    hello.write_text(HELLO % "second")
    wait_for("the changed function served", lambda: says("second"))
    assert "fnkit: reloading (functions/hello/main.py changed)" in dev.log()

    migration = dev.root / "supabase" / "migrations" / "29990101000000_reload_probe.sql"
    migration.write_text("create table public.reload_probe (id int primary key);\n")

    def exists() -> bool:
        with psycopg.connect(dev.database_url) as conn:
            row = conn.execute("select to_regclass('public.reload_probe')").fetchone()
        return row is not None and row[0] is not None

    wait_for("the new migration applied", exists)
    assert "fnkit: applied migration 29990101000000_reload_probe.sql" in dev.log()
    assert dev.answer("health") is not None


def test_db_stop_stops_the_embedded_postgres(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    (tmp_path / "supabase").mkdir()
    (tmp_path / "functions").mkdir()
    env = base_env()
    started = subprocess.run(
        [FNKIT, "db", "url"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert started.returncode == 0, started.stderr
    url = started.stdout.strip()
    assert ".fnkit/pgdata" in url
    with psycopg.connect(url) as conn:
        assert conn.execute("select 1").fetchone() == (1,)

    stop = [FNKIT, "db", "stop"]
    stopped = subprocess.run(stop, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert stopped.stdout.strip() == "fnkit: embedded Postgres (.fnkit/pgdata) stopped"
    assert not (tmp_path / ".fnkit" / "pgdata" / "postmaster.pid").exists()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=5)
    again = subprocess.run(stop, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert again.stdout.strip() == "fnkit: embedded Postgres (.fnkit/pgdata) was not running"
