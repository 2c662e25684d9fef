"""Run `fnkit dev` as a developer does: a subprocess in a copy of the repository, on free ports.

Shared by the dev server's own tests and the local Supabase's end-to-end test. Waits poll for
an outcome (no timing is asserted); the deadlines only keep a broken run from hanging.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from fnkit import db
from fnkit.local.upstash.bridge import resolve_redis_url

ROOT = Path(__file__).resolve().parents[1]
FNKIT = str(Path(sys.executable).parent / "fnkit")
# Settings the test session exports for its own served functions; `fnkit dev` must choose
# its own.
SESSION_SETTINGS = (
    "SUPABASE_URL", "SUPABASE_JWT_SECRET", "SUPABASE_ANON_KEY", "SUPABASE_SERVICE_ROLE_KEY",
    "SUPABASE_PUBLISHABLE_KEY", "SUPABASE_SECRET_KEY",
    "DATABASE_URL", "UPSTASH_REDIS_REST_URL", "UPSTASH_REDIS_REST_TOKEN", "ALLOWED_ORIGINS",
    "AUTH_HOOK_SECRETS", "DB_WEBHOOK_SECRET", "PORT", "FNKIT_UPSTASH_PORT", "REDIS_URL",
)  # fmt: skip


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(what: str, check: Callable[[], bool], deadline_s: float = 90) -> None:
    """Poll until `check()` holds; the deadline only bounds a broken run."""
    end = time.monotonic() + deadline_s
    while not check():
        assert time.monotonic() < end, f"never happened: {what}"
        time.sleep(0.2)


def base_env(**extra: str) -> dict[str, str]:
    """The dev server's environment: the machine Redis (a test DB) when one answers; else
    none, and `fnkit dev` falls back to fakeredis as on a machine without Redis."""
    env = {k: v for k, v in os.environ.items() if k not in SESSION_SETTINGS}
    if resolve_redis_url() is not None:
        redis_db = os.environ.get("FNKIT_TEST_REDIS_DB", "0")
        env["REDIS_URL"] = f"redis://127.0.0.1:6379/{redis_db}"
    return {**env, **extra}


@dataclass
class DevServer:
    root: Path
    url: str
    database_url: str
    log_path: Path
    busy_port: int | None = None  # a port someone else held when it started, if any

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def answer(self, path: str) -> httpx.Response | None:
        try:
            return httpx.get(f"{self.url}/functions/v1/{path}", timeout=10)
        except httpx.HTTPError:
            return None


@contextlib.contextmanager
def running_dev(root: Path, pg_admin_url: str, **env: str) -> Iterator[DevServer]:
    """`fnkit dev` in `root` (a prepared copy of the repository) on a throwaway database,
    stopped with Ctrl-C (as a person stops it) at the end, its database dropped."""
    database_url = db.create_throwaway_database(pg_admin_url, prefix="fnkit_dev")
    port = free_port()
    log_path = root / "dev.log"
    settings = base_env(DATABASE_URL=database_url, PORT=str(port), **env)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [FNKIT, "dev"], cwd=root, env=settings, stdout=log, stderr=subprocess.STDOUT
        )
    server = DevServer(root, f"http://127.0.0.1:{port}", database_url, log_path)
    try:

        def serving() -> bool:
            assert process.poll() is None, server.log()  # it stopped: say why
            response = server.answer("health")
            return response is not None and response.is_success

        wait_for("health served", serving)
        yield server
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        db.drop_database(pg_admin_url, db.database_name(database_url))
