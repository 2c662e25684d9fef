"""What every benchmark needs around the functions: a seeded database, Upstash, keys, users.

One `Services` per run: a throwaway database (bootstrap, migrations, seed, plus bench users who
are members of the seed workspace), the Upstash REST bridge in its own process (so the load
generator's and the functions' processes do not share its CPU time), a JWKS endpoint on
loopback for ES256 tokens, and tokens for every bench user. `stop()` drops the database and
ends the processes it started, by their pids.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request as WRequest
from werkzeug.wrappers import Response as WResponse

from fnkit import db
from fnkit.devenv import DEV_JWT_SECRET
from fnkit.tokens import claims

ROOT = Path(__file__).resolve().parents[2]
ORIGIN = "https://app.example.com"
ACME = "a0000000-0000-4000-8000-000000000001"
ACME_PROJECT = "b0000000-0000-4000-8000-000000000001"
OWNER = "11111111-1111-1111-1111-111111111111"
TASK_WITH_COMMENTS = "c0000000-0000-4000-8000-000000000003"
BENCH_REDIS_DB = int(os.environ.get("FNKIT_BENCH_REDIS_DB", "10"))
USER_PREFIX = "ee000000-0000-4000-8000-"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float, proc: subprocess.Popen[Any] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process {proc.args!r} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.01)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f} s")


def stop_process(proc: subprocess.Popen[Any], timeout: float = 5.0) -> None:
    """End a process this run started (its own pid only), politely, then firmly."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)


@dataclass
class Jwks:
    """Supabase Auth's JWKS endpoint for ES256 tokens, served from a thread on loopback."""

    kid: str = "bench-key"
    private: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    url: str = ""
    _server: BaseWSGIServer | None = None

    def start(self) -> Jwks:
        public = jwt.algorithms.ECAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        body = json.dumps({"keys": [{**public, "kid": self.kid, "alg": "ES256", "use": "sig"}]})

        def app(environ: dict[str, Any], start_response: Any) -> Any:
            if WRequest(environ).path == "/auth/v1/.well-known/jwks.json":
                return WResponse(body, content_type="application/json")(environ, start_response)
            return WResponse("not found", status=404)(environ, start_response)

        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        return self

    @property
    def issuer(self) -> str:
        return f"{self.url}/auth/v1"

    def hs256(self, sub: str, **options: Any) -> str:
        return jwt.encode(claims(sub, issuer=self.issuer, **options), DEV_JWT_SECRET, "HS256")

    def es256(self, sub: str, **options: Any) -> str:
        payload = claims(sub, issuer=self.issuer, **options)
        return jwt.encode(payload, self.private, algorithm="ES256", headers={"kid": self.kid})

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()


@dataclass
class Bridge:
    """The Upstash REST bridge in a process of its own."""

    url: str
    token: str
    proc: subprocess.Popen[bytes]
    embedded: bool

    @classmethod
    def start(cls) -> Bridge:
        from fnkit.local.upstash.bridge import resolve_redis_url

        port, token = free_port(), "fnkit-bench-token"
        redis_url = resolve_redis_url()
        where = (
            ["--redis-url", urlunsplit(urlsplit(redis_url)._replace(path=f"/{BENCH_REDIS_DB}"))]
            if redis_url
            else ["--embedded"]
        )
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "fnkit.local.upstash.bridge",
                "--port",
                str(port),
                "--token",
                token,
                *where,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(port, 15, proc)
        bridge = cls(f"http://127.0.0.1:{port}", token, proc, redis_url is None)
        bridge.flush()
        return bridge

    def flush(self) -> None:
        """Empty the bench's Redis DB: fresh rate-limit windows and caches between phases."""
        httpx.post(
            self.url, json=["FLUSHDB"], headers={"Authorization": f"Bearer {self.token}"}
        ).raise_for_status()

    def stop(self) -> None:
        stop_process(self.proc)


@dataclass
class Services:
    """Everything a run shares; `env` is what a served function reads."""

    admin_url: str
    database_url: str
    bridge: Bridge
    jwks: Jwks
    users: list[str]
    tokens: list[str]
    env: dict[str, str]
    server_version: str = ""

    @classmethod
    def start(cls, users: int = 2000) -> Services:
        admin_url = db.resolve_test_admin_url()
        url = db.create_throwaway_database(admin_url, prefix="fnkit_bench")
        bridge: Bridge | None = None
        jwks: Jwks | None = None
        try:
            db.bootstrap(url)
            db.migrate(url, ROOT / "supabase" / "migrations")
            db.seed(url, ROOT / "supabase" / "seed.sql")
            ids = [f"{USER_PREFIX}{n:012d}" for n in range(1, users + 1)]
            version = add_members(url, ids, ACME)
            bridge = Bridge.start()
            jwks = Jwks().start()
            tokens = [jwks.hs256(sub, email=f"bench{n}@example.com") for n, sub in enumerate(ids)]
            env = {
                "SUPABASE_URL": jwks.url,
                "SUPABASE_JWT_SECRET": DEV_JWT_SECRET,
                "DATABASE_URL": url,
                "UPSTASH_REDIS_REST_URL": bridge.url,
                "UPSTASH_REDIS_REST_TOKEN": bridge.token,
                "ALLOWED_ORIGINS": ORIGIN,
            }
            return cls(admin_url, url, bridge, jwks, ids, tokens, env, version)
        except BaseException:
            for part in (bridge, jwks):
                if part is not None:
                    part.stop()
            db.drop_database(admin_url, db.database_name(url))
            raise

    def process_env(self, **extra: str) -> dict[str, str]:
        """The environment for a child process: ours plus the function settings."""
        env = self.bundle_env(**extra)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        return env

    def bundle_env(self, **extra: str) -> dict[str, str]:
        """The same for a bundle (fnkit/bundle.py): the repository stays off the import path,
        so the function imports its own copy of shared/."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SUPABASE_", "UPSTASH_"))}
        env.pop("DATABASE_URL", None)
        env.pop("PYTHONPATH", None)
        env.update(self.env)
        env.update(extra)
        return env

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.bridge.stop()
        with contextlib.suppress(Exception):
            self.jwks.stop()
        db.drop_database(self.admin_url, db.database_name(self.database_url))


def add_members(url: str, user_ids: list[str], workspace: str, role: str = "member") -> str:
    """Create users (as superuser) and make them members; returns the server version."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "insert into auth.users (id, email) select u, 'bench-' || u || '@example.com'"
            " from unnest(%s::uuid[]) u on conflict do nothing",
            (user_ids,),
        )
        conn.execute(
            "insert into public.workspace_members (workspace_id, user_id, role)"
            " select %s, u, %s from unnest(%s::uuid[]) u on conflict do nothing",
            (workspace, role, user_ids),
        )
        row = conn.execute("show server_version").fetchone()
    return str(row[0]) if row else "?"


def new_id() -> str:
    return str(uuid.uuid4())
