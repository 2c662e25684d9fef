"""The Supabase CLI accepts the repository as it is: config.toml loads and the migrations apply.

The CLI is the real one, from the npm registry at the version `tools/supabase-cli` pins
(`make supabase-cli` installs it; `make test` does so first). A fresh clone has no
AUTH_HOOK_* variables set, so each command runs with them removed from the environment:
the committed `supabase/.env` must be enough for the CLI to load the file.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from fnkit import db

ROOT = Path(__file__).resolve().parents[1]
CLI = ROOT / "tools" / "supabase-cli" / "node_modules" / ".bin" / "supabase"
MIGRATIONS = sorted(p.name for p in (ROOT / "supabase" / "migrations").glob("*.sql"))


def supabase(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI in the repository with the hook variables unset unless given here."""
    assert CLI.exists(), f"{CLI} is missing: run `make supabase-cli`"
    base = {k: v for k, v in os.environ.items() if not k.startswith("AUTH_HOOK")}
    return subprocess.run(
        [str(CLI), *args],
        cwd=ROOT,
        env={**base, **env, "DO_NOT_TRACK": "1", "SUPABASE_TELEMETRY_DISABLED": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def throwaway(pg_admin_url: str) -> Iterator[str]:
    """A bootstrapped empty database (what Supabase provides, none of our migrations)."""
    url = db.create_throwaway_database(pg_admin_url, prefix="fnkit_cli")
    try:
        db.bootstrap(url)
        yield url
    finally:
        db.drop_database(pg_admin_url, db.database_name(url))


def cli_url(url: str) -> str:
    """The CLI (Go's pgx) tries TLS first; the local server has none."""
    return url + ("&" if "?" in url else "?") + "sslmode=disable"


def test_cli_version_is_the_pinned_one() -> None:
    result = supabase("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "2.117.0"


def test_db_push_applies_every_migration_then_nothing(throwaway: str) -> None:
    first = supabase("db", "push", "--db-url", cli_url(throwaway), "--yes")
    assert first.returncode == 0, first.stdout + first.stderr
    output = first.stdout + first.stderr
    for name in MIGRATIONS:
        assert f"Applying migration {name}" in output
    with psycopg.connect(throwaway) as conn:
        versions = [
            row[0]
            for row in conn.execute(
                "select version from supabase_migrations.schema_migrations order by version"
            )
        ]
        assert versions == [name.split("_", 1)[0] for name in MIGRATIONS]
        # The schema the migrations make is there, not only the bookkeeping.
        assert conn.execute("select to_regclass('public.tasks')").fetchone() == ("tasks",)

    second = supabase("db", "push", "--db-url", cli_url(throwaway), "--yes")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "Remote database is up to date" in second.stdout + second.stderr
    assert "Applying migration" not in second.stdout + second.stderr


def test_hooks_turned_on_are_validated_by_the_cli(throwaway: str) -> None:
    """With AUTH_HOOKS_ENABLED=true the hooks take the .env URIs, and the CLI still checks
    them: a bad URI given in the environment is refused, the defaults are accepted."""
    url = cli_url(throwaway)
    on = supabase("db", "push", "--db-url", url, "--dry-run", AUTH_HOOKS_ENABLED="true")
    assert on.returncode == 0, on.stdout + on.stderr

    bad = supabase(
        "db",
        "push",
        "--db-url",
        url,
        "--dry-run",
        AUTH_HOOKS_ENABLED="true",
        AUTH_HOOK_CUSTOM_ACCESS_TOKEN_URI="not-a-uri",
    )
    assert bad.returncode != 0
    assert "auth.hook.custom_access_token.uri" in bad.stdout + bad.stderr
