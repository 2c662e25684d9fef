"""The Supabase-compatible database tooling (fnkit.db, fnkit.local.postgres, bootstrap.sql).

These tests use databases of their own (throwaway ones on the test server, and a private
embedded server in a temporary folder), so they do not depend on the project's migrations.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import LiteralString

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import TupleRow

from fnkit import db
from fnkit.local.postgres import _clear_stale_pidfile, start_embedded, stop_embedded

Conn = psycopg.Connection[TupleRow]


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def throwaway_url(pg_admin_url: str) -> Iterator[str]:
    """An empty database of this test's own, dropped after it."""
    url = db.create_throwaway_database(pg_admin_url, prefix="fnkit_tooling")
    yield url
    db.drop_database(pg_admin_url, db.database_name(url))


@pytest.fixture(scope="module")
def boot_url(pg_admin_url: str) -> Iterator[str]:
    """A bootstrapped database (no migrations) shared by this module's read-mostly tests."""
    url = db.create_throwaway_database(pg_admin_url, prefix="fnkit_tooling")
    db.bootstrap(url)
    yield url
    db.drop_database(pg_admin_url, db.database_name(url))


@pytest.fixture
def conn(boot_url: str) -> Iterator[Conn]:
    """A superuser connection in a transaction that is rolled back after the test."""
    with psycopg.connect(boot_url) as connection:
        yield connection
        connection.rollback()


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def scalar(conn: Conn, query: LiteralString, params: tuple[object, ...] = ()) -> object:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


def act_as(conn: Conn, role: str, claims: Mapping[str, object]) -> None:
    """Impersonate a caller for the rest of the transaction, as PostgREST does."""
    conn.execute(sql.SQL("set local role {}").format(sql.Identifier(role)))
    conn.execute("select set_config('request.jwt.claims', %s, true)", (json.dumps(claims),))


# --- bootstrap --------------------------------------------------------------------------------


def test_bootstrap_twice_gives_supabase_roles_and_schemas(throwaway_url: str) -> None:
    assert db.bootstrap(throwaway_url) is True
    assert db.bootstrap(throwaway_url) is True

    with psycopg.connect(throwaway_url) as c:
        roles = dict(
            (name, (login, inherit, bypass))
            for name, login, inherit, bypass in c.execute(
                "select rolname, rolcanlogin, rolinherit, rolbypassrls from pg_roles"
                " where rolname in ('anon', 'authenticated', 'service_role', 'authenticator')"
            ).fetchall()
        )
        assert roles == {
            "anon": (False, False, False),
            "authenticated": (False, False, False),
            "service_role": (False, False, True),
            "authenticator": (True, False, False),
        }
        for role in ("anon", "authenticated", "service_role"):
            assert scalar(c, "select pg_has_role('authenticator', %s, 'member')", (role,))
            assert scalar(c, "select has_schema_privilege(%s, 'public', 'usage')", (role,))
        schemas = {
            r[0]
            for r in c.execute(
                "select nspname from pg_namespace"
                " where nspname in ('auth', 'extensions', 'realtime', 'storage')"
            )
        }
        assert schemas == {"auth", "extensions", "realtime", "storage"}
        assert scalar(c, "select count(*) from pg_publication where pubname = 'supabase_realtime'")
        rls: dict[str, bool] = dict(
            c.execute(
                "select oid::regclass::text, relrowsecurity from pg_class where oid in"
                " ('realtime.messages'::regclass, 'storage.objects'::regclass)"
            ).fetchall()
        )
        assert rls == {"realtime.messages": True, "storage.objects": True}
        assert scalar(c, "select count(*) from pg_default_acl") == 3  # tables, functions, seqs


def test_default_privileges_reach_tables_migrations_create(conn: Conn) -> None:
    conn.execute("create table public.fresh (id int)")
    for role in ("anon", "authenticated", "service_role"):
        assert scalar(conn, "select has_table_privilege(%s, 'public.fresh', 'select')", (role,))


# --- auth -------------------------------------------------------------------------------------


def test_auth_helpers_read_request_jwt_claims_as_authenticated(conn: Conn) -> None:
    user_id = uuid.uuid4()
    claims = {"sub": str(user_id), "role": "authenticated", "email": "a@b.test", "aal": "aal2"}
    act_as(conn, "authenticated", claims)

    assert scalar(conn, "select current_user") == "authenticated"
    assert scalar(conn, "select auth.uid()") == user_id
    assert scalar(conn, "select auth.role()") == "authenticated"
    assert scalar(conn, "select auth.email()") == "a@b.test"
    assert scalar(conn, "select auth.jwt()") == claims
    assert scalar(conn, "select auth.jwt() ->> 'aal'") == "aal2"


def test_auth_claims_end_with_the_transaction(conn: Conn) -> None:
    act_as(conn, "authenticated", {"sub": str(uuid.uuid4())})
    conn.commit()
    assert scalar(conn, "select current_user") == "postgres"
    assert scalar(conn, "select auth.uid()") is None
    assert scalar(conn, "select auth.jwt()") is None


def test_auth_legacy_single_claim_setting_wins(conn: Conn) -> None:
    legacy, modern = uuid.uuid4(), uuid.uuid4()
    conn.execute("select set_config('request.jwt.claim.sub', %s, true)", (str(legacy),))
    conn.execute("select set_config('request.jwt.claims', %s, true)", (f'{{"sub":"{modern}"}}',))
    assert scalar(conn, "select auth.uid()") == legacy


def test_auth_users_has_supabase_defaults(conn: Conn) -> None:
    row = conn.execute(
        "insert into auth.users (email) values ('x@y.test')"
        " returning id, raw_user_meta_data, raw_app_meta_data, is_anonymous, created_at"
    ).fetchone()
    assert row is not None
    assert isinstance(row[0], uuid.UUID)
    assert row[1:4] == ({}, {}, False)
    assert row[4] is not None


# --- realtime ---------------------------------------------------------------------------------


def test_realtime_send_runs_as_its_caller_as_on_supabase(conn: Conn) -> None:
    """Supabase's realtime.send is security invoker: a user with no INSERT policy on
    realtime.messages loses the broadcast to a warning; with one, it is written."""
    act_as(conn, "authenticated", {"sub": str(uuid.uuid4()), "role": "authenticated"})
    conn.execute("select realtime.send(%s::jsonb, 'ping', 'workspace:1')", ('{"n": 1}',))
    conn.execute("reset role")
    assert scalar(conn, "select count(*) from realtime.messages where topic = 'workspace:1'") == 0

    conn.execute(
        "create policy send_any on realtime.messages for insert to authenticated with check (true)"
    )
    act_as(conn, "authenticated", {"sub": str(uuid.uuid4()), "role": "authenticated"})
    conn.execute("select realtime.send(%s::jsonb, 'ping', 'workspace:1')", ('{"n": 1}',))
    conn.execute("reset role")
    row = conn.execute(
        "select id, payload, event, extension, private from realtime.messages"
        " where topic = 'workspace:1'"
    ).fetchone()
    assert row is not None
    message_id, payload, *rest = row
    assert payload == {"n": 1, "id": str(message_id)}  # Supabase adds the message's id
    assert rest == ["ping", "broadcast", True]


def test_realtime_topic_reads_setting(conn: Conn) -> None:
    assert scalar(conn, "select realtime.topic()") is None
    conn.execute("select set_config('realtime.topic', 'workspace:9', true)")
    assert scalar(conn, "select realtime.topic()") == "workspace:9"


def test_broadcast_changes_from_a_trigger_run_by_a_user(conn: Conn) -> None:
    """The trigger function is security definer (owned by the migrating role), as the
    product's are: the broadcast is written whatever the user may write. An invoker trigger
    would lose it, here as on Supabase (realtime.send runs as its caller)."""
    conn.execute(
        b"""
        create table public.notes (id int primary key, body text);
        grant all on public.notes to authenticated;
        create function public.notes_broadcast() returns trigger
        language plpgsql security definer set search_path = '' as $$
        begin
          perform realtime.broadcast_changes(
            'notes:' || coalesce(new.id, old.id)::text, tg_op, tg_op,
            tg_table_name, tg_table_schema, new, old);
          return null;
        end $$;
        create trigger notes_broadcast after insert or update or delete on public.notes
          for each row execute function public.notes_broadcast();
        """
    )
    act_as(conn, "authenticated", {"sub": str(uuid.uuid4())})
    conn.execute("insert into public.notes values (7, 'hello')")
    conn.execute("update public.notes set body = 'bye' where id = 7")
    conn.execute("reset role")

    rows = conn.execute(
        "select event, payload from realtime.messages where topic = 'notes:7' order by inserted_at"
    ).fetchall()
    assert [event for event, _ in rows] == ["INSERT", "UPDATE"]
    insert, update = rows[0][1], rows[1][1]
    assert insert.pop("id") and update.pop("id")  # realtime.send adds the message id
    assert insert == {
        "table": "notes",
        "schema": "public",
        "operation": "INSERT",
        "record": {"id": 7, "body": "hello"},
        "old_record": None,
    }
    assert update["record"] == {"id": 7, "body": "bye"}
    assert update["old_record"] == {"id": 7, "body": "hello"}


# --- storage ----------------------------------------------------------------------------------


def test_storage_path_helpers(conn: Conn) -> None:
    row = conn.execute(
        "select storage.foldername(%s), storage.filename(%s), storage.extension(%s)",
        ("user-1/avatars/me.png",) * 3,
    ).fetchone()
    assert row == (["user-1", "avatars"], "me.png", "png")
    assert scalar(conn, "select storage.foldername('top.txt')") == []


def test_storage_tables_accept_a_bucket_and_object(conn: Conn) -> None:
    conn.execute("insert into storage.buckets (id, name) values ('files', 'files')")
    conn.execute("insert into storage.objects (bucket_id, name) values ('files', 'u/a/b.pdf')")
    assert scalar(conn, "select path_tokens from storage.objects") == ["u", "a", "b.pdf"]
    act_as(conn, "authenticated", {"sub": str(uuid.uuid4())})
    assert scalar(conn, "select count(*) from storage.objects") == 0  # RLS, no policy yet


# --- migrations -------------------------------------------------------------------------------


def history(url: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as c:
        return c.execute(
            "select version, name from supabase_migrations.schema_migrations order by version"
        ).fetchall()


def test_migrate_applies_in_order_records_and_skips_applied(
    throwaway_url: str, tmp_path: Path
) -> None:
    folder = tmp_path / "migrations"
    write(folder, "20240102000000_add_column.sql", "alter table public.items add column n int;")
    write(folder, "20240101000000_create_items.sql", "create table public.items (id int);")
    write(folder, "README.sql", "this is not a migration;")

    assert db.migrate(throwaway_url, folder) == [
        "20240101000000_create_items.sql",
        "20240102000000_add_column.sql",
    ]
    assert history(throwaway_url) == [
        ("20240101000000", "create_items"),
        ("20240102000000", "add_column"),
    ]
    assert db.migrate(throwaway_url, folder) == []
    assert db.pending_migrations(throwaway_url, folder) == []

    write(folder, "20240103000000_more.sql", "insert into public.items values (1, 2);")
    assert [m.name for m in db.pending_migrations(throwaway_url, folder)] == ["more"]
    assert db.migrate(throwaway_url, folder) == ["20240103000000_more.sql"]


def test_migrate_runs_multi_statement_files_with_dollar_bodies(
    throwaway_url: str, tmp_path: Path
) -> None:
    folder = tmp_path / "migrations"
    write(
        folder,
        "20240101000000_functions.sql",
        """
        -- a comment; with a semicolon
        create table public.t (id int primary key, note text default 'a;b 50%');
        create function public.add_one(x int) returns int
        language plpgsql as $$
        declare
          y int;
        begin
          y := x + 1;  -- ; inside the body
          return y;
        end;
        $$;
        create function public.tagged() returns text language sql as $fn$ select 'x;$$y' $fn$;
        insert into public.t (id) values (public.add_one(1));
        """,
    )
    assert db.migrate(throwaway_url, folder) == ["20240101000000_functions.sql"]
    with psycopg.connect(throwaway_url) as c:
        assert c.execute("select id, note, public.tagged() from public.t").fetchall() == [
            (2, "a;b 50%", "x;$$y")
        ]


def test_failing_migration_names_file_and_error_and_leaves_nothing(
    throwaway_url: str, tmp_path: Path
) -> None:
    folder = tmp_path / "migrations"
    write(folder, "20240101000000_ok.sql", "create table public.ok (id int);")
    bad = write(
        folder,
        "20240102000000_broken.sql",
        """\
        create table public.half (id int);
        insert into public.half values (1);

        selec 1;
        """,
    )

    with pytest.raises(db.MigrationError) as caught:
        db.migrate(throwaway_url, folder)
    error = caught.value
    message = str(error)
    assert "20240102000000_broken.sql" in message
    assert 'syntax error at or near "selec"' in message
    assert "SQLSTATE 42601" in message
    assert "line 4" in message
    assert (error.path, error.sqlstate, error.line) == (bad, "42601", 4)

    with psycopg.connect(throwaway_url) as c:
        assert scalar(c, "select to_regclass('public.half')") is None
        assert scalar(c, "select to_regclass('public.ok')") == "ok"
    assert history(throwaway_url) == [("20240101000000", "ok")]

    bad.write_text("create table public.half (id int);\n", encoding="utf-8")
    assert db.migrate(throwaway_url, folder) == ["20240102000000_broken.sql"]


def test_runtime_error_in_migration_carries_sqlstate(throwaway_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    write(folder, "20240101000000_div.sql", "create table public.d (x int);\nselect 1/0;\n")
    with pytest.raises(db.MigrationError, match=r"20240101000000_div\.sql.*division by zero"):
        db.migrate(throwaway_url, folder)
    with psycopg.connect(throwaway_url) as c:
        assert scalar(c, "select to_regclass('public.d')") is None


# --- seed and reset ---------------------------------------------------------------------------


def test_seed_missing_file_is_a_no_op(throwaway_url: str, tmp_path: Path) -> None:
    assert db.seed(throwaway_url, tmp_path / "nope.sql") is False


def test_reset_rebuilds_from_scratch(throwaway_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    write(folder, "20240101000000_items.sql", "create table public.items (name text unique);")
    seed_file = write(tmp_path, "seed.sql", "insert into public.items values ('demo');")

    db.reset(throwaway_url, migrations_dir=folder, seed_file=seed_file)
    with psycopg.connect(throwaway_url, autocommit=True) as c:
        c.execute("create table public.junk (id int)")
        c.execute("insert into public.items values ('junk')")

    bystander = psycopg.connect(throwaway_url, autocommit=True)  # reset must end it
    try:
        db.reset(throwaway_url, migrations_dir=folder, seed_file=seed_file)
        with pytest.raises(psycopg.OperationalError):
            bystander.execute("select 1")
    finally:
        bystander.close()

    with psycopg.connect(throwaway_url) as c:
        assert scalar(c, "select to_regclass('public.junk')") is None
        assert c.execute("select name from public.items").fetchall() == [("demo",)]
        assert scalar(c, "select auth.uid()") is None  # bootstrapped again
    assert history(throwaway_url) == [("20240101000000", "items")]


# --- URLs and resolution ----------------------------------------------------------------------


def test_redact_masks_passwords() -> None:
    assert db.redact("postgresql://u:s3cret@h:5/d?sslmode=require") == (
        "postgresql://u:***@h:5/d?sslmode=require"
    )
    assert db.redact("postgresql://u@h/d?password=s3cret") == "postgresql://u@h/d?password=***"
    assert "s3cret" not in db.redact("host=h user=u password=s3cret dbname=d")
    assert db.redact("postgresql://postgres:@/postgres?host=/x") == (
        "postgresql://postgres:@/postgres?host=/x"
    )


def test_with_database_keeps_server_and_socket_host() -> None:
    socket_url = "postgresql://postgres:@/postgres?host=/repo/.fnkit/pgdata"
    assert db.with_database(socket_url, "other") == (
        "postgresql://postgres:@/other?host=/repo/.fnkit/pgdata"
    )
    assert db.database_name(db.with_database(socket_url, "other")) == "other"
    assert (
        db.with_database("postgresql://u:p@h:5/a?dbname=a&sslmode=disable", "b")
        == "postgresql://u:p@h:5/b?sslmode=disable"
    )
    with_options = "postgresql://u@h/a?options=-c%20search_path%3Dx%2By&dbname=a"
    assert db.with_database(with_options, "b") == (
        "postgresql://u@h/b?options=-c%20search_path%3Dx%2By"
    )
    dsn = db.with_database("host=h port=5 dbname=a user=u", "b")
    assert db.database_name(dsn) == "b"
    assert db.database_name("postgresql://alice@h/") == "alice"


def test_resolvers_prefer_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://x@h/dev")
    monkeypatch.setenv("TEST_DATABASE_URL", "postgresql://x@h/test")
    assert db.resolve_database_url() == "postgresql://x@h/dev"
    assert db.resolve_test_admin_url() == "postgresql://x@h/test"


def test_resolvers_fall_back_by_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("TEST_DATABASE_URL", raising=False)
    monkeypatch.setattr(db, "_embedded_url", lambda: "embedded")
    open_ports: set[int] = set()
    monkeypatch.setattr(db, "_port_answers", lambda host, port: port in open_ports)

    assert db.resolve_database_url() == "embedded"
    assert db.resolve_test_admin_url() == "embedded"
    open_ports.update({54322, 5432})
    assert db.resolve_database_url() == db.SUPABASE_LOCAL_URL
    assert db.resolve_test_admin_url() == db.TEST_ADMIN_URL


def test_repo_root_found_from_a_subfolder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "supabase" / "migrations").mkdir(parents=True)
    (tmp_path / "pyproject.toml").write_text("")
    monkeypatch.chdir(tmp_path / "supabase" / "migrations")
    assert db.repo_root() == tmp_path.resolve()
    # Without markers upwards, the start folder itself is the root.
    assert db.repo_root(tmp_path.parent) == tmp_path.parent.resolve()


def test_session_database_fixture_is_migrated(database_url: str, db_admin: Conn) -> None:
    assert str(scalar(db_admin, "select current_database()")).startswith("fnkit_test_")
    recorded = {
        r[0] for r in db_admin.execute("select version from supabase_migrations.schema_migrations")
    }
    expected = {m.version for m in db.list_migrations(db.repo_root() / "supabase" / "migrations")}
    assert recorded == expected
    assert scalar(db_admin, "select to_regclass('auth.users')") == "auth.users"


# --- embedded Postgres ------------------------------------------------------------------------


REUSE_SCRIPT = """
import sys
from pathlib import Path
from fnkit.local.postgres import start_embedded
print(start_embedded(Path(sys.argv[1])))
"""


def test_embedded_pgserver_starts_reuses_bootstraps_and_resets(tmp_path: Path) -> None:
    url = start_embedded(root=tmp_path)
    data_dir = tmp_path / ".fnkit" / "pgdata"
    try:
        assert f"host={data_dir.resolve()}" in url
        with psycopg.connect(url) as c:
            assert int(str(scalar(c, "show server_version_num"))) >= 160000
        assert start_embedded(data_dir) == url

        # Another process re-uses the running server, which outlives that process.
        child = subprocess.run(
            [sys.executable, "-c", REUSE_SCRIPT, str(data_dir)],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        assert child.stdout.strip() == url
        with psycopg.connect(url) as c:
            assert scalar(c, "select 1") == 1

        # PG 16 takes the bootstrap twice; reset works over the socket on the `postgres` db.
        assert db.bootstrap(url) is True
        assert db.bootstrap(url) is True
        folder = write(tmp_path / "migrations", "20240101000000_x.sql", "create table x (id int);")
        db.reset(url, folder.parent, tmp_path / "none.sql")
        assert history(url) == [("20240101000000", "x")]

        # Stopped, it answers no more; started again, the data is still there.
        assert stop_embedded(data_dir) is True
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(url, connect_timeout=2).close()
        assert stop_embedded(data_dir) is False
        assert start_embedded(data_dir) == url
        assert history(url) == [("20240101000000", "x")]

        # A real Supabase database (role supabase_admin) is never bootstrapped nor reset.
        with psycopg.connect(url, autocommit=True) as c:
            c.execute("create role supabase_admin")
        assert db.bootstrap(url) is False
        with pytest.raises(db.SupabaseDatabaseError, match="supabase db reset"):
            db.reset(url, folder.parent)
    finally:
        stop_embedded(data_dir)


def test_stale_postmaster_pid_is_cleared(tmp_path: Path) -> None:
    pidfile = tmp_path / "postmaster.pid"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    pidfile.write_text(f"{dead.pid}\n{tmp_path}\n")
    _clear_stale_pidfile(tmp_path)
    assert not pidfile.exists()

    pidfile.write_text(f"{os.getpid()}\n{tmp_path}\n")
    _clear_stale_pidfile(tmp_path)
    assert pidfile.exists()
