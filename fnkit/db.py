"""Database tooling for dev and tests: find a server, bootstrap it, migrate, seed, reset.

Everything here is for developers' machines and CI. The runtime package `shared/` never
imports it, and `bootstrap()` and `reset()` refuse to touch a real Supabase database (one
with the role `supabase_admin`), where the Supabase CLI owns those jobs.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.pq import TransactionStatus
from psycopg.rows import TupleRow

__all__ = [
    "SUPABASE_LOCAL_URL",
    "TEST_ADMIN_URL",
    "Migration",
    "MigrationError",
    "SupabaseDatabaseError",
    "bootstrap",
    "create_throwaway_database",
    "database_name",
    "drop_database",
    "is_supabase",
    "list_migrations",
    "migrate",
    "pending_migrations",
    "redact",
    "repo_root",
    "reset",
    "resolve_database_url",
    "resolve_test_admin_url",
    "seed",
    "with_database",
]

_log = logging.getLogger(__name__)

Conn = psycopg.Connection[TupleRow]

SUPABASE_LOCAL_URL = "postgresql://postgres:postgres@127.0.0.1:54322/postgres"
TEST_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
PORT_CHECK_TIMEOUT = 0.2
MIGRATION_FILE = re.compile(r"^(?P<version>\d+)_(?P<name>.+)\.sql$")
# Serializes migrate() runs against one database (advisory locks are per database).
MIGRATE_LOCK_KEY = 0x666E6B697401
HISTORY_DDL = b"""
create schema if not exists supabase_migrations;
create table if not exists supabase_migrations.schema_migrations (
  version text not null primary key
);
alter table supabase_migrations.schema_migrations add column if not exists statements text[];
alter table supabase_migrations.schema_migrations add column if not exists name text;
alter table supabase_migrations.schema_migrations
  add column if not exists inserted_at timestamptz default now();
"""


class MigrationError(RuntimeError):
    """A migration file failed; its transaction was rolled back, nothing of it remains."""

    def __init__(
        self, path: Path, error: psycopg.Error, sql_text: str, kind: str = "migration"
    ) -> None:
        diag = error.diag
        self.path = path
        self.sqlstate: str | None = error.sqlstate
        self.error_message: str = diag.message_primary or str(error).strip()
        self.line: int | None = _error_line(sql_text, diag.statement_position)
        where = f", line {self.line}" if self.line is not None else ""
        extra = "".join(
            f"\n  {label}: {value}"
            for label, value in (
                ("detail", diag.message_detail),
                ("hint", diag.message_hint),
                ("context", diag.context),
            )
            if value
        )
        super().__init__(
            f"{kind} {path.name} failed{where}: {self.error_message} "
            f"(SQLSTATE {self.sqlstate}){extra}"
        )


class SupabaseDatabaseError(RuntimeError):
    """Raised instead of rebuilding a real Supabase database, which the Supabase CLI owns."""


@dataclass(frozen=True)
class Migration:
    """One `<version>_<name>.sql` file of the migrations folder."""

    version: str
    name: str
    path: Path


# --- where things are -------------------------------------------------------------------------


def repo_root(start: Path | None = None) -> Path:
    """The repository root: the nearest folder upwards holding `supabase/` and `pyproject.toml`.

    Commands run from any sub-folder should still find the migrations and `.fnkit/`.
    """
    here = (start if start is not None else Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "supabase").is_dir() and (folder / "pyproject.toml").is_file():
            return folder
    return here


def _port_answers(host: str, port: int, timeout: float = PORT_CHECK_TIMEOUT) -> bool:
    """True when something accepts TCP connections there; cheap enough to run at every start."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _embedded_url() -> str:
    """Start (or re-use) the embedded server of this repository; imported lazily."""
    from fnkit.local.postgres import start_embedded

    return start_embedded(root=repo_root())


def resolve_database_url() -> str:
    """The dev database: DATABASE_URL, else `supabase start`'s database, else embedded."""
    configured = os.environ.get("DATABASE_URL")
    if configured:
        return configured
    if _port_answers("127.0.0.1", 54322):
        return SUPABASE_LOCAL_URL
    return _embedded_url()


def resolve_test_admin_url() -> str:
    """A superuser URL for tests: TEST_DATABASE_URL, else the machine's Postgres, else embedded."""
    configured = os.environ.get("TEST_DATABASE_URL")
    if configured:
        return configured
    if _port_answers("127.0.0.1", 5432):
        return TEST_ADMIN_URL
    return _embedded_url()


# --- URLs -------------------------------------------------------------------------------------


def _is_url(conninfo: str) -> bool:
    return conninfo.startswith(("postgresql://", "postgres://"))


def with_database(url: str, dbname: str) -> str:
    """The same server and credentials as `url`, another database.

    Handles URLs (also with a socket folder in `?host=`, and a `dbname=` query parameter,
    which libpq lets override the path) and key=value connection strings. The other query
    parameters are kept byte for byte: re-encoding them could change what libpq reads.
    """
    if not _is_url(url):
        return make_conninfo(url, dbname=dbname)
    parts = urlsplit(url)
    query = "&".join(p for p in parts.query.split("&") if p and not p.startswith("dbname="))
    return urlunsplit(parts._replace(path="/" + quote(dbname, safe=""), query=query))


def redact(url: str) -> str:
    """The connection string with its password masked, for console output and logs."""
    if not _is_url(url):
        params = conninfo_to_dict(url)
        if params.get("password"):
            params["password"] = "***"
        return make_conninfo("", **params)
    parts = urlsplit(url)
    if parts.password:
        userinfo, _, hostinfo = parts.netloc.rpartition("@")
        parts = parts._replace(netloc=f"{userinfo.split(':', 1)[0]}:***@{hostinfo}")
    query = "&".join(
        "password=***" if p.startswith("password=") else p for p in parts.query.split("&")
    )
    return urlunsplit(parts._replace(query=query))


def database_name(url: str) -> str:
    """The database a URL names, else libpq's defaults: PGDATABASE, then the user name."""
    params = conninfo_to_dict(url)
    for name in (params.get("dbname"), os.environ.get("PGDATABASE"), params.get("user")):
        if name:
            return str(name)
    import getpass

    return os.environ.get("PGUSER") or getpass.getuser()


def _connect(url: str, *, autocommit: bool = False) -> Conn:
    """A connection that never prepares statements: whole SQL files go through it."""
    return psycopg.connect(url, autocommit=autocommit, prepare_threshold=None)


# --- bootstrap --------------------------------------------------------------------------------


def is_supabase(conn: Conn) -> bool:
    """A real Supabase database (hosted or `supabase start`) has the role supabase_admin."""
    row = conn.execute(
        "select exists (select 1 from pg_catalog.pg_roles where rolname = %s)",
        ("supabase_admin",),
    ).fetchone()
    return bool(row and row[0])


BOOTSTRAP_SQL = Path(__file__).with_name("sql") / "bootstrap.sql"
# What the local services keep in the database, as Supabase's own services create it (GoTrue's
# auth tables, Storage's columns); applied after bootstrap.sql, in this order, when present.
LOCAL_SERVICE_SQL = ("auth.sql", "storage.sql")


def bootstrap_sql() -> str:
    """The text of fnkit/sql/bootstrap.sql, then the local services' SQL (package data).

    Read by path, not importlib.resources: an editable install made before fnkit had an
    `__init__.py` maps it as a namespace package, which importlib.resources cannot read.
    """
    parts = [BOOTSTRAP_SQL] + [BOOTSTRAP_SQL.with_name(name) for name in LOCAL_SERVICE_SQL]
    return "\n".join(p.read_text(encoding="utf-8") for p in parts if p.exists())


def bootstrap(url: str, *, attempts: int = 3) -> bool:
    """Give a plain Postgres what Supabase provides; False (and no change) on real Supabase.

    Runs in one transaction. Roles are shared by all databases of a server, so two test
    sessions bootstrapping fresh databases at once can race on them; the loser retries.
    """
    text = bootstrap_sql().encode()
    attempt = 1
    while True:
        with _connect(url, autocommit=True) as conn:
            if is_supabase(conn):
                _log.info("real Supabase database: bootstrap skipped")
                return False
            try:
                with conn.transaction():
                    conn.execute(text)
                return True
            except psycopg.Error as exc:
                if attempt >= attempts or not _is_catalog_race(exc):
                    raise
        _log.info("bootstrap raced a concurrent one, retrying (%d/%d)", attempt, attempts)
        attempt += 1


def _is_catalog_race(exc: psycopg.Error) -> bool:
    """Errors a concurrent bootstrap of another database causes on the shared role catalog."""
    if isinstance(exc, psycopg.errors.UniqueViolation | psycopg.errors.DuplicateObject):
        return True
    return isinstance(exc, psycopg.errors.InternalError_) and "concurrently" in str(exc)


# --- migrations -------------------------------------------------------------------------------


def _default_migrations_dir() -> Path:
    return repo_root() / "supabase" / "migrations"


def _default_seed_file() -> Path:
    return repo_root() / "supabase" / "seed.sql"


def list_migrations(migrations_dir: Path) -> list[Migration]:
    """The migration files in the order they apply (file name order, as the Supabase CLI).

    Files not named `<timestamp>_<name>.sql` are skipped with a warning, as the CLI does.
    """
    found: list[Migration] = []
    if not migrations_dir.is_dir():
        return found
    for path in sorted(migrations_dir.glob("*.sql"), key=lambda p: p.name):
        match = MIGRATION_FILE.match(path.name)
        if match is None:
            _log.warning("skipping %s: name must be <timestamp>_<name>.sql", path.name)
            continue
        found.append(Migration(match["version"], match["name"], path))
    return found


def _applied_versions(conn: Conn) -> set[str]:
    rows = conn.execute("select version from supabase_migrations.schema_migrations").fetchall()
    return {str(row[0]) for row in rows}


def pending_migrations(url: str, migrations_dir: Path | None = None) -> list[Migration]:
    """The migrations that `migrate()` would apply now (none recorded yet counts as all)."""
    folder = migrations_dir if migrations_dir is not None else _default_migrations_dir()
    with _connect(url, autocommit=True) as conn:
        row = conn.execute(
            "select to_regclass('supabase_migrations.schema_migrations') is not null"
        ).fetchone()
        applied = _applied_versions(conn) if row and row[0] else set()
    return [m for m in list_migrations(folder) if m.version not in applied]


def migrate(url: str, migrations_dir: Path | None = None) -> list[str]:
    """Apply the pending migrations in order; return the file names applied.

    Each file runs whole (simple query protocol: many statements, `$$` bodies) in its own
    transaction together with its row in supabase_migrations.schema_migrations, the table the
    Supabase CLI keeps, so a file is either applied and recorded or not at all.
    """
    folder = migrations_dir if migrations_dir is not None else _default_migrations_dir()
    applied_now: list[str] = []
    with _connect(url) as conn:
        conn.execute("select pg_advisory_lock(%s)", (MIGRATE_LOCK_KEY,))
        conn.execute(HISTORY_DDL)
        conn.commit()
        done = _applied_versions(conn)
        conn.commit()
        for migration in list_migrations(folder):
            if migration.version in done:
                continue
            _apply(conn, migration)
            applied_now.append(migration.path.name)
        conn.execute("select pg_advisory_unlock(%s)", (MIGRATE_LOCK_KEY,))
        conn.commit()
    return applied_now


def _apply(conn: Conn, migration: Migration) -> None:
    """Run one file and record it in one transaction; MigrationError on failure."""
    text = migration.path.read_text(encoding="utf-8")
    try:
        conn.execute(text.encode())
    except psycopg.Error as exc:
        conn.rollback()
        raise MigrationError(migration.path, exc, text) from exc
    if conn.info.transaction_status != TransactionStatus.INTRANS:
        _log.warning("%s ends its own transaction (COMMIT): it was not atomic", migration.path)
    conn.execute(
        "insert into supabase_migrations.schema_migrations (version, name, statements)"
        " values (%s, %s, %s)",
        (migration.version, migration.name, [text]),
    )
    conn.commit()
    _log.info("applied migration %s", migration.path.name)


def _error_line(text: str, position: str | None) -> int | None:
    """Turn Postgres's 1-based character position in the sent text into a line number."""
    if not position or not position.isdigit():
        return None
    return text[: int(position) - 1].count("\n") + 1


# --- seed, reset, throwaway databases ---------------------------------------------------------


def seed(url: str, seed_file: Path | None = None) -> bool:
    """Load demo data in one transaction; False when there is no seed file."""
    path = seed_file if seed_file is not None else _default_seed_file()
    if not path.is_file():
        return False
    text = path.read_text(encoding="utf-8")
    with _connect(url) as conn:
        try:
            conn.execute(text.encode())
        except psycopg.Error as exc:
            conn.rollback()
            raise MigrationError(path, exc, text, kind="seed") from exc
        conn.commit()
    return True


def _maintenance_url(url: str) -> str:
    """A database of the same server to run CREATE/DROP DATABASE from (never the target)."""
    return with_database(url, "template1" if database_name(url) == "postgres" else "postgres")


def _drop(admin: Conn, name: str) -> None:
    """Drop a database even while clients are connected (PG 13+: WITH (FORCE))."""
    admin.execute(
        "select pg_terminate_backend(pid) from pg_stat_activity"
        " where datname = %s and pid <> pg_backend_pid()",
        (name,),
    )
    admin.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


def _create(admin: Conn, name: str) -> None:
    """Create from template0: template1 refuses to be copied while anyone is connected to it."""
    admin.execute(sql.SQL("create database {} template template0").format(sql.Identifier(name)))


def reset(
    url: str,
    migrations_dir: Path | None = None,
    seed_file: Path | None = None,
) -> None:
    """Rebuild the database of `url` from nothing: drop, create, bootstrap, migrate, seed.

    Refuses a real Supabase database: there `supabase db reset` rebuilds it with Supabase's
    own schemas, which this bootstrap only imitates.
    """
    name = database_name(url)
    with _connect(_maintenance_url(url), autocommit=True) as admin:
        if is_supabase(admin):
            raise SupabaseDatabaseError(
                f"{name!r} is a Supabase database; refusing to drop it. "
                "Use `supabase db reset` (local) or the Supabase dashboard instead."
            )
        _drop(admin, name)
        _create(admin, name)
    bootstrap(url)
    applied = migrate(url, migrations_dir)
    seeded = seed(url, seed_file)
    _log.info("reset %s: %d migrations, seed %s", name, len(applied), seeded)


def create_throwaway_database(admin_url: str, prefix: str = "fnkit_test") -> str:
    """Create an empty database `<prefix>_<random>` and return its URL (same credentials).

    Tests get a database of their own, so parallel sessions on one server never collide.
    """
    name = f"{prefix}_{secrets.token_hex(6)}"
    with _connect(admin_url, autocommit=True) as admin:
        _create(admin, name)
    return with_database(admin_url, name)


def drop_database(admin_url: str, name: str) -> None:
    """Drop a database, terminating the connections still open to it."""
    with _connect(_maintenance_url(with_database(admin_url, name)), autocommit=True) as admin:
        _drop(admin, name)
