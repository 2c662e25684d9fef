"""What a conventional workspace table must allow, derived from the catalog.

A workspace table made the way `fnkit new --table` makes one (docs/writing-functions.md,
"Adding a table") needs no hand-written row in the RLS matrix: `CONVENTION` says what each
role may do, and the catalog says how to make, read, change and delete a row of it (its
columns, their types, foreign keys and grants). Tables whose rules differ keep hand-written
cases in tests/test_rls_matrix.py: those are the exceptions. `probe_all` runs every cell and
returns every gap at once, so a new table's problems show up together, not one per run.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from psycopg import sql

from shared.settings import Settings
from tests.rls_helpers import CALLERS, DENIED, Conn, Outcome, World, acting_as, cells, outcome

ACTIONS = ("select", "insert", "update", "delete")

# Members read; owners, admins and members write; owners and admins delete; anon has no
# privilege. The probed row is someone else's (the bystander's).
CONVENTION: dict[str, dict[str, Outcome]] = {
    "select": cells(owner=1, admin=1, member=1, viewer=1, outsider=0, anon=DENIED),
    "insert": cells(owner=1, admin=1, member=1, viewer=DENIED, outsider=DENIED, anon=DENIED),
    "update": cells(owner=1, admin=1, member=1, viewer=0, outsider=0, anon=DENIED),
    "delete": cells(owner=1, admin=1, member=0, viewer=0, outsider=0, anon=DENIED),
}

WORKSPACE_TABLES = """
select c.relname from pg_catalog.pg_class c
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
join pg_catalog.pg_attribute a on a.attrelid = c.oid and a.attname = 'workspace_id'
where n.nspname = 'public' and c.relkind in ('r', 'p') and not a.attisdropped
order by 1
"""

COLUMNS = """
select a.attname, pg_catalog.format_type(a.atttypid, null) as type,
       a.attnotnull and not a.atthasdef and a.attidentity = '' and a.attgenerated = ''
         as required,
       a.attgenerated <> '' or a.attidentity = 'a' as computed,
       pg_catalog.has_column_privilege('authenticated', a.attrelid, a.attname, 'INSERT')
         as insertable,
       pg_catalog.has_column_privilege('authenticated', a.attrelid, a.attname, 'UPDATE')
         as updatable,
       (select f.confrelid::regclass::text from pg_catalog.pg_constraint f
         where f.conrelid = a.attrelid and f.contype = 'f' and f.conkey = array[a.attnum]
         limit 1) as refers_to,
       coalesce(a.attnum = any (i.indkey), false) as key
from pg_catalog.pg_attribute a
left join pg_catalog.pg_index i on i.indrelid = a.attrelid and i.indisprimary
where a.attrelid = %s::regclass and a.attnum > 0 and not a.attisdropped
order by a.attnum
"""

# A value for a column of each type; text is unique so unique constraints never collide.
SIMPLE_VALUES: dict[str, Any] = {
    "smallint": 1, "integer": 1, "bigint": 1, "numeric": 1, "real": 1.0,
    "double precision": 1.0, "boolean": False, "jsonb": "{}", "json": "{}",
    "date": "2026-01-01", "timestamp with time zone": "2026-01-01T00:00:00Z",
}  # fmt: skip


def workspace_tables(conn: Conn) -> list[str]:
    """Every public table with a workspace_id column: what a workspace's deletion takes."""
    return [row[0] for row in conn.execute(WORKSPACE_TABLES)]


@dataclass
class Column:
    name: str
    type: str
    required: bool
    computed: bool
    insertable: bool
    updatable: bool
    refers_to: str | None
    key: bool


class CannotDerive(Exception):
    """The catalog does not say how to make a row: the table needs hand-written cases."""


def columns(conn: Conn, table: str) -> list[Column]:
    return [Column(*row) for row in conn.execute(COLUMNS, (f"public.{table}",))]


def value_for(column: Column, world: World, author: uuid.UUID | None) -> Any:
    """A value the column accepts in the world's workspace."""
    parents = {
        "workspaces": world.workspace, "projects": world.project, "tasks": world.task,
        "task_comments": world.comment, "attachments": world.attachment,
    }  # fmt: skip
    if column.name == "workspace_id":
        return world.workspace
    if column.refers_to is not None:
        table = column.refers_to.removeprefix("public.")
        if table == "auth.users":
            return author
        if table in parents:
            return parents[table]
        raise CannotDerive(f"{column.name} refers to {column.refers_to}")
    if column.type == "text" or column.type.startswith("character"):
        return f"rls {uuid.uuid4().hex[:12]}"
    if column.type == "uuid":
        return uuid.uuid4()
    if column.type in SIMPLE_VALUES:
        return SIMPLE_VALUES[column.type]
    raise CannotDerive(f"no sample value for {column.name} ({column.type})")


def insert_sql(table: str, values: dict[str, Any], keys: list[str]) -> sql.Composed:
    names = list(values)
    return sql.SQL("insert into public.{} ({}) values ({}) returning {}").format(
        sql.Identifier(table),
        sql.SQL(", ").join(map(sql.Identifier, names)),
        sql.SQL(", ").join(sql.Placeholder(n) for n in names),
        sql.SQL(", ").join(map(sql.Identifier, keys)),
    )


def make_row(admin: Conn, table: str, world: World) -> dict[str, Any]:
    """A row of the bystander's, written as superuser; its primary key."""
    cols = columns(admin, table)
    keys = [c.name for c in cols if c.key]
    values = {
        c.name: value_for(c, world, world.users["bystander"])
        for c in cols
        if not c.computed and (c.required or c.name == "workspace_id" or c.refers_to)
    }
    row = admin.execute(insert_sql(table, values, keys), values).fetchone()
    assert row is not None
    return dict(zip(keys, row, strict=True))


def probe_sql(table: str, action: str, cols: list[Column], key: dict[str, Any]) -> sql.Composed:
    """The statement of one cell, on the bystander's row (insert: a new row)."""
    where = sql.SQL(" and ").join(
        sql.SQL("{} = {}").format(sql.Identifier(k), sql.Placeholder(k)) for k in key
    )
    target = sql.Identifier(table)
    if action == "select":
        return sql.SQL("select 1 from public.{} where {}").format(target, where)
    if action == "delete":
        return sql.SQL("delete from public.{} where {}").format(target, where)
    editable = [c for c in cols if c.updatable and not c.key and not c.computed]
    column = sql.Identifier((editable or [c for c in cols if not c.key])[0].name)
    return sql.SQL("update public.{} set {} = {} where {}").format(target, column, column, where)


def probe_all(admin: Conn, settings: Settings, world: World, tables: list[str]) -> list[str]:
    """Run CONVENTION's every cell on every table; one line per cell that differs."""
    gaps: list[str] = []
    for table in tables:
        try:
            cols = columns(admin, table)
            key = make_row(admin, table, world)
        except CannotDerive as exc:
            gaps.append(f"{table}: cannot make a row ({exc}); write its cases by hand")
            continue
        for action in ACTIONS:
            for caller in CALLERS:
                me = world.caller_id(caller)
                with acting_as(settings, me) as tx:
                    if action == "insert":
                        values = {
                            c.name: value_for(c, world, me)
                            for c in cols
                            if c.insertable and (c.required or c.name == "workspace_id")
                        }
                        query = insert_sql(table, values, list(key))
                        got = outcome(lambda: tx.execute(query, values))
                    elif action == "select":
                        got = outcome(lambda: len(tx.all(probe_sql(table, action, cols, key), key)))
                    else:
                        got = outcome(lambda: tx.execute(probe_sql(table, action, cols, key), key))
                expected = CONVENTION[action][caller]
                if got != expected:
                    gaps.append(f"{table}: {action} as {caller}: expected {expected}, got {got}")
    return gaps
