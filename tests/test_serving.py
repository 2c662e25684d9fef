"""Each function runs alone under functions-framework, and tooling around serving works."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import jwt
import pytest

from shared import logs
from tests.fixtures.server import ROOT, Served

BIN = Path(sys.executable).parent
OWNER = "11111111-1111-1111-1111-111111111111"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(url: str, proc: subprocess.Popen[bytes], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(proc.stderr.read().decode() if proc.stderr else "exited")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer in {seconds}s")


def test_a_function_runs_alone_under_functions_framework(
    served: Served, function_env: dict[str, str]
) -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [
            str(BIN / "functions-framework"),
            "--source",
            str(ROOT / "functions/me/main.py"),
            "--target",
            "handler",
            "--port",
            str(port),
            "--host",
            "127.0.0.1",
        ],
        env={**os.environ, **function_env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        _wait(f"http://127.0.0.1:{port}/openapi.json", proc)
        token = served.token(OWNER)
        # Cloud Functions passes the path below the function's own URL.
        response = httpx.get(
            f"http://127.0.0.1:{port}/", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 200, response.text
        assert response.json()["data"]["sub"] == OWNER
        anonymous = httpx.get(f"http://127.0.0.1:{port}/")
        assert anonymous.status_code == 401
        assert anonymous.json()["error"]["code"] == "UNAUTHENTICATED"
    finally:
        proc.terminate()
        proc.wait(10)


def test_a_missing_setting_stops_the_function_with_one_line(function_env: dict[str, str]) -> None:
    env = {k: v for k, v in {**os.environ, **function_env}.items() if k != "DATABASE_URL"}
    proc = subprocess.run(
        [sys.executable, "-c", "import runpy; runpy.run_path('functions/health/main.py')"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip() == "health: setting DATABASE_URL is missing"


def test_a_malformed_setting_is_named(function_env: dict[str, str]) -> None:
    env = {**os.environ, **function_env, "DB_POOL_MAX": "many"}
    proc = subprocess.run(
        [sys.executable, "-c", "import runpy; runpy.run_path('functions/me/main.py')"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip() == "me: setting DB_POOL_MAX must be an integer, got 'many'"


def test_fnkit_token_mints_what_the_functions_accept(
    served: Served, function_env: dict[str, str]
) -> None:
    out = subprocess.run(
        [
            str(BIN / "fnkit"),
            "token",
            "--sub",
            OWNER,
            "--aal",
            "aal2",
            "--email",
            "owner@example.com",
            "--exp",
            "600",
        ],
        env={**os.environ, **function_env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    payload = jwt.decode(out, options={"verify_signature": False})
    assert (
        payload["sub"] == OWNER and payload["aal"] == "aal2" and payload["aud"] == "authenticated"
    )
    assert 590 <= payload["exp"] - payload["iat"] <= 600
    with served.client(Authorization=f"Bearer {out}") as client:
        response = client.get("/me")
    assert response.json()["data"]["email"] == "owner@example.com"


def test_fnkit_env_and_db_url(function_env: dict[str, str]) -> None:
    env = {**os.environ, "DATABASE_URL": function_env["DATABASE_URL"]}
    url = subprocess.run(
        [str(BIN / "fnkit"), "db", "url"], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert url == function_env["DATABASE_URL"]
    exports = subprocess.run(
        [str(BIN / "fnkit"), "env"], env=env, capture_output=True, text=True, check=True
    ).stdout
    names = {line.split("=", 1)[0].removeprefix("export ") for line in exports.splitlines()}
    assert {
        "DATABASE_URL",
        "UPSTASH_REDIS_REST_URL",
        "UPSTASH_REDIS_REST_TOKEN",
        "SUPABASE_URL",
        "SUPABASE_JWT_SECRET",
    } <= names


def test_supabase_py_invokes_a_served_function(served: Served) -> None:
    from supabase import create_client

    from fnkit.devenv import DEV_ANON_KEY

    client = create_client(served.url, DEV_ANON_KEY)
    raw = client.functions.invoke(
        "me", {"method": "GET", "headers": {"Authorization": f"Bearer {served.token(OWNER)}"}}
    )
    assert json.loads(raw)["data"]["sub"] == OWNER
    health = json.loads(client.functions.invoke("health", {"method": "GET"}))
    assert health["success"] is True


def test_one_structured_log_line_per_request(served: Served) -> None:
    stream = io.StringIO()
    logs.set_stream(stream)
    try:
        with served.client() as client:
            response = client.get(
                "/me",
                headers={
                    "X-Request-Id": "log-check-1",
                    "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                },
            )
    finally:
        logs.set_stream(sys.stdout)
    assert response.status_code == 401
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    mine = [line for line in lines if line.get("request_id") == "log-check-1"]
    assert len(mine) == 1
    entry = mine[0]
    assert entry["severity"] == "WARNING"
    assert entry["status"] == 401 and entry["error"] == "UNAUTHENTICATED"
    assert entry["message"] == "GET / 401"
    assert entry["logging.googleapis.com/trace"].endswith("0af7651916cd43dd8448eb211c80319c")
    assert entry["function"] == "me"


@pytest.mark.parametrize("name", ["health", "me"])
def test_openapi_is_served_per_function(served: Served, name: str) -> None:
    with served.client() as client:
        doc = client.get(f"/{name}/openapi.json").json()
    assert doc["openapi"] == "3.1.0"
    assert f"/{name}" in doc["paths"]
