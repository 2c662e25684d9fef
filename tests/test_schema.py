"""The data model beyond the RLS matrix: migrations, seed, realtime, search, catalog checks.

Migrations and seed are checked on a database of this module's own (empty, bootstrapped like a
fresh Supabase project) so other tests' writes to the session database cannot disturb the
seed's numbers; realtime and the catalog checks use the session database.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from fnkit import db
from shared.db import close_pools
from shared.settings import Settings
from tests.rls_helpers import Conn, World, acting_as, build_world, scalar, settings_for

MIGRATIONS = db.repo_root(Path(__file__).parent) / "supabase" / "migrations"
SEED = MIGRATIONS.parent / "seed.sql"

OWNER = uuid.UUID("11111111-1111-1111-1111-111111111111")
ADMIN = uuid.UUID("22222222-2222-2222-2222-222222222222")
MEMBER = uuid.UUID("33333333-3333-3333-3333-333333333333")
VIEWER = uuid.UUID("44444444-4444-4444-4444-444444444444")
OUTSIDER = uuid.UUID("55555555-5555-5555-5555-555555555555")
ACME = uuid.UUID("a0000000-0000-4000-8000-000000000001")
OUTPOST = uuid.UUID("a0000000-0000-4000-8000-000000000002")

SEEDED_TABLES = (
    "auth.users", "public.workspaces", "public.workspace_members", "public.projects",
    "public.tasks", "public.task_comments", "public.task_events", "realtime.messages",
)  # fmt: skip


def table_counts(conn: Conn) -> dict[str, int]:
    query = sql.SQL("select count(*) from {}")
    return {t: scalar(conn, query.format(sql.Identifier(*t.split(".")))) for t in SEEDED_TABLES}


# --- migrations and seed on an empty database -------------------------------------------------


@pytest.fixture(scope="module")
def fresh_url(pg_admin_url: str) -> Iterator[str]:
    """An empty database, bootstrapped like a fresh Supabase project; nothing applied yet."""
    url = db.create_throwaway_database(pg_admin_url, prefix="fnkit_schema")
    try:
        db.bootstrap(url)
        yield url
    finally:
        close_pools()
        db.drop_database(pg_admin_url, db.database_name(url))


@pytest.fixture(scope="module")
def seeded_url(fresh_url: str) -> str:
    """`fresh_url` with every migration applied twice and the seed loaded once."""
    expected = [m.path.name for m in db.list_migrations(MIGRATIONS)]
    assert db.migrate(fresh_url, MIGRATIONS) == expected
    assert db.migrate(fresh_url, MIGRATIONS) == []  # the second run applies nothing
    assert db.seed(fresh_url, SEED) is True
    return fresh_url


@pytest.fixture
def seeded(seeded_url: str) -> Iterator[Conn]:
    with psycopg.connect(seeded_url, autocommit=True) as conn:
        yield conn


def test_migrations_apply_on_an_empty_database_twice(seeded: Conn) -> None:
    recorded = [
        r[0]
        for r in seeded.execute(
            "select version from supabase_migrations.schema_migrations order by version"
        )
    ]
    assert recorded == [m.version for m in db.list_migrations(MIGRATIONS)]
    assert scalar(seeded, "select to_regclass('public.tasks')") == "tasks"


def test_the_seed_loads_twice_without_duplicating(seeded_url: str, seeded: Conn) -> None:
    before = table_counts(seeded)
    assert db.seed(seeded_url, SEED) is True
    assert table_counts(seeded) == before


def test_seed_users_roles_and_workspaces(seeded: Conn) -> None:
    users: dict[uuid.UUID, str] = dict(
        seeded.execute("select id, email from auth.users order by email").fetchall()
    )
    assert users == {
        ADMIN: "admin@example.com",
        MEMBER: "member@example.com",
        OUTSIDER: "outsider@example.com",
        OWNER: "owner@example.com",
        VIEWER: "viewer@example.com",
    }
    members = seeded.execute(
        "select w.slug, w.name, m.user_id, m.role from public.workspace_members m"
        " join public.workspaces w on w.id = m.workspace_id order by w.slug, m.user_id"
    ).fetchall()
    assert members == [
        ("acme", "Acme", OWNER, "owner"),
        ("acme", "Acme", ADMIN, "admin"),
        ("acme", "Acme", MEMBER, "member"),
        ("acme", "Acme", VIEWER, "viewer"),
        ("outpost", "Outpost", OUTSIDER, "owner"),
    ]
    assert scalar(seeded, "select id from public.workspaces where slug = 'acme'") == ACME
    assert (
        scalar(seeded, "select count(*) from public.projects where workspace_id = %s", (ACME,)) == 3
    )


def test_seed_tasks_give_lists_filters_and_stats_work_to_do(seeded: Conn) -> None:
    stats = seeded.execute(
        "select count(*), count(distinct status), count(distinct priority),"
        " count(distinct assignee_id), count(*) filter (where assignee_id is null),"
        " count(distinct project_id), count(*) filter (where due_date is null),"
        " count(*) filter (where due_date < current_date and status <> 'done'),"
        " count(*) filter (where due_date >= current_date),"
        " count(distinct date_trunc('week', completed_at)),"
        " count(*) filter (where description is null)"
        " from public.tasks where workspace_id = %s",
        (ACME,),
    ).fetchone()
    assert stats is not None
    (total, statuses, priorities, assignees, unassigned, projects, no_due, overdue, upcoming,
     done_weeks, no_description) = stats  # fmt: skip
    assert total >= 500
    assert (statuses, priorities, assignees, projects) == (4, 5, 4, 3)
    assert unassigned > 0 and no_due > 0 and overdue > 0 and upcoming > 0 and no_description > 0
    assert done_weeks >= 12
    # The invariants the triggers keep hold for seeded rows too.
    assert (
        scalar(
            seeded,
            "select count(*) from public.tasks where (status = 'done') <> (completed_at is not null)"
            " or completed_at < created_at or completed_at > now() or version <> 1",
        )
        == 0
    )
    comments = scalar(
        seeded,
        "select count(*) from public.task_comments where workspace_id = %s and created_at <= now()",
        (ACME,),
    )
    assert comments >= 300


def test_seed_seen_through_rls(seeded_url: str) -> None:
    settings = settings_for(seeded_url)
    mine = (
        "select w.slug, m.role, (select count(*) from public.tasks t where t.workspace_id = w.id)"
        " as tasks from public.workspace_members m join public.workspaces w"
        " on w.id = m.workspace_id where m.user_id = auth.uid() order by w.slug"
    )
    with acting_as(settings, VIEWER) as tx:
        assert tx.all(mine) == [{"slug": "acme", "role": "viewer", "tasks": 600}]
    with acting_as(settings, OUTSIDER) as tx:
        assert tx.all(mine) == [{"slug": "outpost", "role": "owner", "tasks": 10}]
        assert tx.value("select count(*) from public.tasks") == 10
        assert tx.value("select count(*) from public.workspaces") == 1


def test_full_text_search_on_title_and_description(seeded_url: str) -> None:
    with acting_as(settings_for(seeded_url), MEMBER) as tx:
        hits = tx.all(
            "select title, description from public.tasks"
            " where workspace_id = %s and search @@ websearch_to_tsquery('simple', %s)",
            (ACME, "billing"),
        )
        assert hits
        assert all("billing" in h["title"] for h in hits)
        in_description = tx.value(
            "select count(*) from public.tasks"
            " where workspace_id = %s and search @@ websearch_to_tsquery('simple', %s)",
            (ACME, "incident report"),
        )
        assert in_description > 0


# --- realtime ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rt_settings(database_url: str) -> Iterator[Settings]:
    yield settings_for(database_url)
    close_pools()


@pytest.fixture
def world(db_admin: Conn) -> World:
    return build_world(db_admin)


def test_published_tables(db_admin: Conn) -> None:
    published = {
        r[0]
        for r in db_admin.execute(
            "select tablename from pg_catalog.pg_publication_tables"
            " where pubname = 'supabase_realtime' and schemaname = 'public'"
        )
    }
    assert published >= {"tasks", "projects", "task_comments", "workspace_members"}


def test_a_task_change_writes_one_event_and_one_broadcast_only_members_receive(
    world: World, rt_settings: Settings, db_admin: Conn, pg_admin_url: str
) -> None:
    member = world.users["member"]
    with acting_as(rt_settings, member, commit=True) as tx:
        assert (
            tx.execute(
                "update public.tasks set title = 'Renamed', priority = 4 where id = %s",
                (world.task,),
            )
            == 1
        )

    events = db_admin.execute(
        "select actor_id, old_values, new_values from public.task_events"
        " where task_id = %s and action = 'update'",
        (world.task,),
    ).fetchall()
    assert events == [
        (member, {"title": "Task", "priority": 2}, {"title": "Renamed", "priority": 4})
    ]
    broadcast = (
        "select payload from realtime.messages where topic = %(topic)s and event = 'UPDATE'"
        " and extension = 'broadcast' and payload -> 'record' ->> 'id' = %(task)s"
    )
    params = {"topic": world.topic, "task": str(world.task)}
    messages = db_admin.execute(broadcast, params).fetchall()
    assert len(messages) == 1
    payload = messages[0][0]
    assert (payload["table"], payload["schema"], payload["operation"]) == (
        "tasks",
        "public",
        "UPDATE",
    )
    assert (payload["record"]["title"], payload["old_record"]["title"]) == ("Renamed", "Task")

    def received(user: uuid.UUID, topic: str | None) -> int:
        with acting_as(rt_settings, user) as tx:
            if topic is not None:
                tx.value("select set_config('realtime.topic', %s, true)", (topic,))
            return len(tx.all(broadcast, params))

    assert received(member, world.topic) == 1
    assert received(world.users["viewer"], world.topic) == 1
    assert received(world.users["outsider"], world.topic) == 0
    assert received(member, None) == 0  # Realtime always names the topic it authorizes
    # A member elsewhere who names their own topic still reads only that topic's messages.
    elsewhere = scalar(
        db_admin,
        "insert into public.workspaces (name, created_by) values ('Elsewhere', %s) returning id",
        (world.users["outsider"],),
    )
    assert received(world.users["outsider"], f"workspace:{elsewhere}") == 0


def test_non_workspace_topics_are_refused_without_error(
    world: World, rt_settings: Settings
) -> None:
    for topic in ("workspace:not-a-uuid", "room:1", f"workspace:{world.workspace}:x"):
        with acting_as(rt_settings, world.users["owner"]) as tx:
            tx.value("select set_config('realtime.topic', %s, true)", (topic,))
            assert tx.all("select id from realtime.messages") == [], topic


def test_an_insert_and_a_delete_are_recorded_too(
    world: World, rt_settings: Settings, db_admin: Conn
) -> None:
    with acting_as(rt_settings, world.users["admin"], commit=True) as tx:
        task = tx.value(
            "insert into public.tasks (project_id, title) values (%s, 'Short-lived') returning id",
            (world.project,),
        )
        tx.execute("delete from public.tasks where id = %s", (task,))
    actions = db_admin.execute(
        "select action, actor_id, old_values ->> 'title', new_values ->> 'title'"
        " from public.task_events where task_id = %s order by id",
        (task,),
    ).fetchall()
    admin = world.users["admin"]
    assert actions == [
        ("insert", admin, None, "Short-lived"),
        ("delete", admin, "Short-lived", None),
    ]
    # A no-op update records nothing (the version still moves).
    with acting_as(rt_settings, world.users["admin"], commit=True) as tx:
        tx.execute("update public.tasks set title = title where id = %s", (world.task,))
    assert (
        scalar(
            db_admin,
            "select count(*) from public.task_events where task_id = %s and action = 'update'",
            (world.task,),
        )
        == 0
    )


# --- catalog checks ---------------------------------------------------------------------------
# Each check is a query returning offenders; a meta-test proves each one catches its offence.

OUR_SCHEMAS = ["public", "private"]
EXPOSED_SCHEMAS = ["public"]

TABLES_WITHOUT_RLS = """
select c.oid::regclass::text
from pg_catalog.pg_class c
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
where n.nspname = any (%(exposed)s) and c.relkind in ('r', 'p') and not c.relrowsecurity
"""

FOREIGN_KEYS_WITHOUT_INDEX = """
select c.conrelid::regclass::text || '.' || c.conname
from pg_catalog.pg_constraint c
join pg_catalog.pg_class r on r.oid = c.conrelid
join pg_catalog.pg_namespace n on n.oid = r.relnamespace
where c.contype = 'f' and n.nspname = any (%(ours)s)
  and not exists (
    select 1 from pg_catalog.pg_index i
    where i.indrelid = c.conrelid
      and i.indpred is null
      -- the key's columns are the leading columns of the index, in any order
      and (i.indkey::int2[])[0:pg_catalog.cardinality(c.conkey) - 1] @> c.conkey
  )
"""

FUNCTIONS_WITH_MUTABLE_SEARCH_PATH = """
select p.oid::regprocedure::text
from pg_catalog.pg_proc p
join pg_catalog.pg_namespace n on n.oid = p.pronamespace
where n.nspname = any (%(ours)s)
  and (n.nspname = any (%(exposed)s) or p.prosecdef)
  and not exists (
    select 1 from pg_catalog.unnest(coalesce(p.proconfig, '{}')) as setting
    where setting like 'search_path=%%'
  )
  and not exists (
    select 1 from pg_catalog.pg_depend d where d.objid = p.oid and d.deptype = 'e'
  )
"""

POLICIES_FOR_ANON_OR_PUBLIC = """
select schemaname || '.' || tablename || ': ' || policyname
from pg_catalog.pg_policies
where schemaname = any (%(exposed)s) and roles && array['public', 'anon']::name[]
"""

ALWAYS_TRUE_POLICIES = """
select schemaname || '.' || tablename || ': ' || policyname
from pg_catalog.pg_policies
where schemaname = any (%(exposed)s)
  and (pg_catalog.btrim(qual, '() ') = 'true' or pg_catalog.btrim(with_check, '() ') = 'true')
"""

SEVERAL_PERMISSIVE_POLICIES = """
select schemaname || '.' || tablename || ' ' || role || ' ' || action
from pg_catalog.pg_policies
cross join lateral pg_catalog.unnest(roles) as role
cross join lateral pg_catalog.unnest(
  case when cmd = 'ALL' then array['SELECT', 'INSERT', 'UPDATE', 'DELETE'] else array[cmd] end
) as action
where schemaname = any (%(exposed)s) and permissive = 'PERMISSIVE'
group by 1
having count(*) > 1
"""

# Supabase's advisor lint 0003 (auth_rls_initplan), made stricter: every call of auth.uid(),
# auth.jwt(), auth.role() or auth.email() in a policy stands alone in a `select`, so Postgres
# evaluates it once per statement (an initplan), not once per row. The lint passes a policy
# where one call of several is wrapped; this counts them. Stored expressions are deparsed, so
# `(select auth.jwt() ->> 'aal')` reads `( SELECT (auth.jwt() ->> ...))` and is caught.
PER_ROW_AUTH_CALLS = """
select schemaname || '.' || tablename || ': ' || policyname
from pg_catalog.pg_policies
cross join lateral (values (coalesce(qual, '')), (coalesce(with_check, ''))) as e(expr)
where schemaname = any (%(exposed)s)
  and pg_catalog.regexp_count(e.expr, 'auth\\.(uid|jwt|role|email)\\(\\)')
    > pg_catalog.regexp_count(pg_catalog.lower(e.expr), 'select\\s+auth\\.(uid|jwt|role|email)\\(\\)')
group by 1
"""

PRIVATE_FUNCTIONS_FOR_EVERYONE = """
select p.oid::regprocedure::text
from pg_catalog.pg_proc p
join pg_catalog.pg_namespace n on n.oid = p.pronamespace
where n.nspname = 'private' and pg_catalog.has_function_privilege('public', p.oid, 'execute')
"""

# Every table with a workspace_id column carries the writer-membership guard
# (20260106000000_membership_guard.sql), except those no member writes directly: the
# membership itself, the audit trail (written by a trigger) and notifications (service role).
UNGUARDED_WORKSPACE_TABLES = ["workspace_members", "task_events", "notifications"]
WORKSPACE_TABLES_WITHOUT_GUARD = """
select n.nspname || '.' || c.relname
from pg_catalog.pg_class c
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
join pg_catalog.pg_attribute a on a.attrelid = c.oid and a.attname = 'workspace_id'
where n.nspname = any (%(exposed)s) and c.relkind in ('r', 'p') and not a.attisdropped
  and not (n.nspname = 'public' and c.relname = any (%(unguarded)s))
  and not exists (
    select 1 from pg_catalog.pg_trigger t
    where t.tgrelid = c.oid and not t.tgisinternal
      and t.tgfoid = 'private.guard_writer_membership()'::regprocedure
      and t.tgtype & 2 = 2                         -- before
      and t.tgtype & (4 | 8 | 16) = (4 | 8 | 16)   -- insert, delete and update
  )
"""

CHECKS = {
    "public table without row-level security": TABLES_WITHOUT_RLS,
    "foreign key without an index": FOREIGN_KEYS_WITHOUT_INDEX,
    "function with a mutable search_path": FUNCTIONS_WITH_MUTABLE_SEARCH_PATH,
    "policy that applies to anon or public": POLICIES_FOR_ANON_OR_PUBLIC,
    "policy that is always true": ALWAYS_TRUE_POLICIES,
    "several permissive policies for one table, role and action": SEVERAL_PERMISSIVE_POLICIES,
    "private function executable by everyone": PRIVATE_FUNCTIONS_FOR_EVERYONE,
    "policy that calls auth.uid()/jwt()/role()/email() once per row": PER_ROW_AUTH_CALLS,
    "workspace table without the writer-membership guard": WORKSPACE_TABLES_WITHOUT_GUARD,
}


def offenders(conn: Conn, query: str, exposed: list[str] | None = None) -> list[str]:
    params: dict[str, Any] = {
        "ours": [*OUR_SCHEMAS, *(exposed or [])],
        "exposed": exposed or EXPOSED_SCHEMAS,
        "unguarded": UNGUARDED_WORKSPACE_TABLES,
    }
    return sorted(r[0] for r in conn.execute(query, params))


@pytest.mark.parametrize("check", CHECKS)
def test_catalog(check: str, db_admin: Conn) -> None:
    assert offenders(db_admin, CHECKS[check]) == [], check


BROKEN_SCHEMA = """
create schema catalog_probe;
create table catalog_probe.parent (id int primary key);
create table catalog_probe.child (id int primary key, parent_id int references catalog_probe.parent);
create function catalog_probe.loose() returns int language sql as 'select 1';
alter table catalog_probe.parent enable row level security;
create policy open on catalog_probe.parent for select using (true);
create policy anon_all on catalog_probe.parent for all to anon using (id > 0);
create policy anon_read on catalog_probe.parent for select to anon using (id > 1);
create function private.catalog_probe_for_all() returns int language sql as 'select 1';
create policy per_row on catalog_probe.parent for update to authenticated
  using (id > 0 and ((select auth.jwt() ->> 'n'))::int = id)
  with check ((select auth.uid()) is not null);
create policy one_of_two on catalog_probe.parent for delete to authenticated
  using ((select auth.uid()) is not null and auth.role() = 'authenticated');
create table catalog_probe.unguarded (id int primary key, workspace_id uuid);
alter table catalog_probe.unguarded enable row level security;
create table catalog_probe.half_guarded (id int primary key, workspace_id uuid);
alter table catalog_probe.half_guarded enable row level security;
create trigger only_inserts before insert on catalog_probe.half_guarded
  for each row execute function private.guard_writer_membership();
"""

EXPECTED_OFFENDERS = {
    "public table without row-level security": ["catalog_probe.child"],
    "foreign key without an index": ["catalog_probe.child.child_parent_id_fkey"],
    "function with a mutable search_path": ["catalog_probe.loose()"],
    "policy that applies to anon or public": [
        "catalog_probe.parent: anon_all", "catalog_probe.parent: anon_read",
        "catalog_probe.parent: open",
    ],
    "policy that is always true": ["catalog_probe.parent: open"],
    "several permissive policies for one table, role and action": [
        "catalog_probe.parent anon SELECT",
    ],
    "private function executable by everyone": ["private.catalog_probe_for_all()"],
    "policy that calls auth.uid()/jwt()/role()/email() once per row": [
        "catalog_probe.parent: one_of_two", "catalog_probe.parent: per_row",
    ],
    "workspace table without the writer-membership guard": [
        "catalog_probe.half_guarded", "catalog_probe.unguarded",
    ],
}  # fmt: skip


def test_catalog_checks_catch_what_they_look_for(database_url: str) -> None:
    """Each check flags a deliberately broken schema (rolled back) treated as exposed."""
    with psycopg.connect(database_url) as conn:
        try:
            conn.execute(BROKEN_SCHEMA)
            for check, query in CHECKS.items():
                found = offenders(conn, query, exposed=["catalog_probe"])
                if check == "private function executable by everyone":
                    assert found == EXPECTED_OFFENDERS[check], check
                else:
                    assert [f for f in found if "catalog_probe" in f] == EXPECTED_OFFENDERS[
                        check
                    ], check
        finally:
            conn.rollback()


# --- the embedded PostgreSQL 16 ---------------------------------------------------------------


def test_migrations_and_seed_on_embedded_postgres_16(tmp_path: Path) -> None:
    """The embedded server has no contrib extensions; the schema must not need one."""
    pytest.importorskip("pgserver")
    from fnkit.local.postgres import start_embedded, stop_embedded

    url = start_embedded(root=tmp_path)
    data_dir = tmp_path / ".fnkit" / "pgdata"
    try:
        db.reset(url, MIGRATIONS, SEED)
        db.seed(url, SEED)
        with psycopg.connect(url) as conn:
            assert int(scalar(conn, "show server_version_num")) >= 160000
            assert (
                scalar(
                    conn, "select count(*) from pg_catalog.pg_extension where extname <> 'plpgsql'"
                )
                == 0
            )
            assert (
                scalar(conn, "select count(*) from public.tasks where workspace_id = %s", (ACME,))
                == 600
            )
        with acting_as(settings_for(url), MEMBER) as tx:
            assert tx.value("select count(*) from public.tasks") == 600
    finally:
        close_pools()
        stop_embedded(data_dir)
