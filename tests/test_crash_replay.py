"""A worker killed between the write and the response: the retry does not write twice.

The function runs under functions-framework in its own process (gunicorn, as deployed), and
`tests/functions/crashy` kills that process at a chosen point of a write:

* after COMMIT, before the response: the client sees the connection drop, although the row
  and its Idempotency-Key record are committed together. Retrying the identical request
  against a fresh process replays the first answer (`Idempotent-Replayed: true`), and there
  is exactly one row.
* before COMMIT: Postgres rolls the transaction back when the connection dies, the key's
  claim included. The retry performs the write, once; a further retry replays it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.fixtures.server import ROOT, SEED_USERS, Served

BIN = Path(sys.executable).parent
OWNER = SEED_USERS["owner"]
SOURCE = ROOT / "tests" / "functions" / "crashy" / "main.py"


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def crashy_process(function_env: dict[str, str]) -> Iterator[str]:
    """A fresh functions-framework process serving the crashy function; yields its URL."""
    port = _free_port()
    proc = subprocess.Popen(
        [
            str(BIN / "functions-framework"),
            "--source",
            str(SOURCE),
            "--target",
            "handler",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env={**os.environ, **function_env, "FNKIT_CRASHY_ARMED": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group: gunicorn's master and worker
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise AssertionError(proc.stderr.read().decode() if proc.stderr else "exited")
            try:
                httpx.get(f"{url}/openapi.json", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise AssertionError("crashy did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)


@pytest.fixture
def workspace(database_url: str) -> Iterator[str]:
    ws = str(uuid.uuid4())
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "insert into public.workspaces (id, name, created_by) values (%s, 'Crash', %s)",
            (ws, OWNER),
        )
    yield ws
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("delete from public.workspaces where id = %s", (ws,))


def _rows(database_url: str, ws: str, name: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        return conn.execute(
            "select id::text from public.projects where workspace_id = %s and name = %s",
            (ws, name),
        ).fetchall()


def _key_recorded(database_url: str, key: str) -> tuple[Any, ...] | None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        return conn.execute(
            "select status_code, response is not null from private.idempotency_keys"
            " where function_name = 'crashy' and key = %s",
            (key,),
        ).fetchone()


def _post(
    url: str, served: Served, body: dict[str, str], key: str, crash: str | None
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {served.token(OWNER)}", "Idempotency-Key": key}
    if crash:
        headers["X-Crash"] = crash
    return httpx.post(f"{url}/", json=body, headers=headers, timeout=30)


def test_killed_after_commit_the_retry_replays_and_writes_nothing(
    served: Served, function_env: dict[str, str], database_url: str, workspace: str
) -> None:
    name, key = f"after-{uuid.uuid4().hex[:8]}", f"crash-{uuid.uuid4()}"
    body = {"workspace_id": workspace, "name": name}
    with crashy_process(function_env) as url, pytest.raises(httpx.TransportError):
        _post(url, served, body, key, crash="after-commit")  # the process dies: no answer
    rows = _rows(database_url, workspace, name)
    assert len(rows) == 1  # committed, with its key record, in one transaction
    assert _key_recorded(database_url, key) == (201, True)
    with crashy_process(function_env) as url:  # a fresh instance
        retry = _post(url, served, body, key, crash="after-commit")  # the identical request
        assert retry.status_code == 201, retry.text
        assert retry.headers["Idempotent-Replayed"] == "true"
        assert retry.json()["data"]["id"] == rows[0][0]
        # The same key with another body is refused, not run.
        other = _post(url, served, {**body, "name": name + "-2"}, key, crash=None)
        assert other.status_code == 422, other.text
        assert other.json()["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert _rows(database_url, workspace, name) == rows
    assert _rows(database_url, workspace, name + "-2") == []


def test_killed_before_commit_the_retry_writes_once(
    served: Served, function_env: dict[str, str], database_url: str, workspace: str
) -> None:
    name, key = f"before-{uuid.uuid4().hex[:8]}", f"crash-{uuid.uuid4()}"
    body = {"workspace_id": workspace, "name": name}
    with crashy_process(function_env) as url, pytest.raises(httpx.TransportError):
        _post(url, served, body, key, crash="before-commit")
    # The dead connection's transaction is rolled back: no row, and no claim on the key.
    deadline = time.monotonic() + 10
    while _key_recorded(database_url, key) is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _rows(database_url, workspace, name) == []
    assert _key_recorded(database_url, key) is None
    with crashy_process(function_env) as url:
        first = _post(url, served, body, key, crash=None)  # the crash does not repeat
        assert first.status_code == 201, first.text
        assert "Idempotent-Replayed" not in first.headers
        again = _post(url, served, body, key, crash=None)
        assert again.status_code == 201
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.json()["data"] == first.json()["data"]
    assert len(_rows(database_url, workspace, name)) == 1


def test_the_retry_that_races_the_dying_transaction_waits_then_writes_once(
    served: Served, function_env: dict[str, str], database_url: str, workspace: str
) -> None:
    """Retried at once, on a second instance already running: while Postgres has not yet
    noticed the dead connection, its claim on the key is locked; the retry waits for it (or
    gets 409 IDEMPOTENCY_KEY_IN_USE and retries) and then writes exactly once."""
    name, key = f"race-{uuid.uuid4().hex[:8]}", f"crash-{uuid.uuid4()}"
    body = {"workspace_id": workspace, "name": name}
    with crashy_process(function_env) as dying, crashy_process(function_env) as healthy:
        with pytest.raises(httpx.TransportError):
            _post(dying, served, body, key, crash="before-commit")
        statuses = []
        for _ in range(20):
            response = _post(healthy, served, body, key, crash=None)
            statuses.append(response.status_code)
            if response.status_code != 409:
                break
            assert response.json()["error"]["code"] == "IDEMPOTENCY_KEY_IN_USE"
            time.sleep(float(response.headers["Retry-After"]))
        assert statuses[-1] == 201, statuses
    assert len(_rows(database_url, workspace, name)) == 1
