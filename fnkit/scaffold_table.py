"""`fnkit new NAME --table TABLE`: a workspace table, the function over it, and its tests.

A new function almost always comes with a new table, and the product's conventions for one
(workspace_id, the writer-membership guard, revoke + column grants, one policy per action,
an index per foreign key and policy column) used to live only in SQL comments and test
internals. These templates write them down once, as a feature small enough to read as a
model (docs/writing-functions.md, "Adding a table", explains each step). The generated
migration, function and tests pass `make lint typecheck test` as written; the RLS matrix
and the catalog checks pick the table up by themselves.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from string import Template

__all__ = ["TABLE_RULE", "main_source", "migration_name", "migration_source", "test_source"]

# A plain lower-case SQL identifier, short enough that `<table>_workspace_created_idx` fits
# Postgres's 63 characters.
TABLE_RULE = re.compile(r"[a-z][a-z0-9_]{0,39}")
_VERSION = re.compile(r"^(\d{14})_")


def _row_class(table: str) -> str:
    """`labels` -> `Label`, `task_labels` -> `TaskLabel`: the model of one row."""
    words = [part.capitalize() for part in table.split("_") if part]
    if words[-1].endswith("s") and len(words[-1]) > 1:
        words[-1] = words[-1][:-1]
    return "".join(words)


def migration_name(table: str, migrations: Path, now: dt.datetime | None = None) -> str:
    """`<timestamp>_<table>.sql`, later than every existing migration (they apply in file
    name order, and a timestamp earlier than an applied one would never run on a database
    that has it)."""
    stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%d%H%M%S")
    versions = [m[1] for p in migrations.glob("*.sql") if (m := _VERSION.match(p.name))]
    if versions and max(versions) >= stamp:
        latest = dt.datetime.strptime(max(versions), "%Y%m%d%H%M%S")
        stamp = (latest + dt.timedelta(seconds=1)).strftime("%Y%m%d%H%M%S")
    return f"{stamp}_{table}.sql"


def _fill(template: str, name: str, table: str, migration: str = "") -> str:
    return Template(template).substitute(
        name=name,
        table=table,
        row=_row_class(table),
        title=" ".join(w.capitalize() for w in re.split(r"[-_]", name) if w),
        migration=migration,
        mod=name.replace("-", "_"),
    )


def migration_source(name: str, table: str) -> str:
    return _fill(_MIGRATION, name, table)


def main_source(name: str, table: str, migration: str) -> str:
    return _fill(_MAIN, name, table, migration)


def test_source(name: str, table: str) -> str:
    return _fill(_TEST, name, table)


_MIGRATION = """\
-- $table: TODO say what a row is. Each step: docs/writing-functions.md, "Adding a table".

-- 1. The table: workspace_id on every row; authorship and times are the database's.
create table public.$table (
  id uuid primary key default gen_random_uuid(),
  workspace_id uuid not null references public.workspaces (id) on delete cascade,
  name text not null constraint ${table}_name_length
    check (char_length(btrim(name)) between 1 and 200),
  created_by uuid default auth.uid() references auth.users (id) on delete set null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint ${table}_name_key unique (workspace_id, name)
);

-- 2. An index for every foreign key and every column a policy or a list filters on.
create index ${table}_workspace_created_idx on public.$table (workspace_id, created_at, id);
create index ${table}_created_by_idx on public.$table (created_by);

-- 3. Triggers: updated_at is the database's; only a current writer writes (membership guard).
create trigger ${table}_touch_updated_at before update on public.$table
  for each row execute function private.touch_updated_at();
create trigger ${table}_writer_is_member before insert or update or delete on public.$table
  for each row execute function private.guard_writer_membership();

-- 4. Privileges: nothing by default, then only the columns a user writes.
revoke all on public.$table from anon, authenticated;
grant select, delete on public.$table to authenticated;
grant insert (workspace_id, name) on public.$table to authenticated;
grant update (name) on public.$table to authenticated;

-- 5. Row-level security, one policy per action: members read and write, admins delete.
alter table public.$table enable row level security;
create policy "members read $table" on public.$table for select to authenticated
  using (workspace_id in (select private.workspace_ids()));
create policy "members create $table" on public.$table for insert to authenticated
  with check (workspace_id in (select private.workspace_ids('{owner,admin,member}')));
create policy "members edit $table" on public.$table for update to authenticated
  using (workspace_id in (select private.workspace_ids('{owner,admin,member}')))
  with check (workspace_id in (select private.workspace_ids('{owner,admin,member}')));
create policy "admins delete $table" on public.$table for delete to authenticated
  using (workspace_id in (select private.workspace_ids('{owner,admin}')));
"""

_MAIN = '''\
"""$name: a workspace's $table. Queries run as the caller, so row-level security decides
(supabase/migrations/$migration): members read; owners, admins and members
write; owners and admins delete. A row the caller may not see or change reads as missing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field

from shared import READ, WRITE, App, Conflict, Model, NotFound, Request, Result

app = App("$name", title="$title", description="A workspace's $table.")
app.errors.constraint("${table}_name_key", Conflict, "That name is taken in this workspace")


# ---- models ---------------------------------------------------------------------------


class ListQuery(Model):
    workspace_id: UUID
    limit: int = Field(default=50, ge=1, le=200)


class ${row}In(Model):
    workspace_id: UUID
    name: str = Field(min_length=1, max_length=200)


class ${row}Patch(Model):
    name: str = Field(min_length=1, max_length=200)


class ${row}Path(Model):
    id: UUID


class $row(BaseModel):
    id: UUID
    workspace_id: UUID
    name: str
    created_by: UUID | None
    created_at: datetime
    updated_at: datetime


# ---- handlers -------------------------------------------------------------------------


def _found(row: dict[str, Any] | None) -> dict[str, Any]:
    """Hidden by row-level security or absent: the same answer, so nothing leaks."""
    if row is None:
        raise NotFound("Not found")
    return row


@app.get("/", response=list[$row], rate=READ)
def list_$table(request: Request, query: ListQuery) -> list[dict[str, Any]]:
    """A workspace's $table, oldest first (none for a non-member)."""
    return request.db.all(
        "select * from public.$table where workspace_id = %s order by created_at, id limit %s",
        (query.workspace_id, query.limit),
    )


@app.post("/", response=$row, status=201, rate=WRITE)
def create_$table(request: Request, body: ${row}In) -> Result:
    """Create one (owners, admins, members; others 403)."""
    sql = "insert into public.$table (workspace_id, name) values (%s, %s) returning *"
    return Result(request.db.one(sql, (body.workspace_id, body.name)), status=201)


@app.get("/{id}", response=$row, rate=READ)
def get_$table(request: Request, path: ${row}Path) -> dict[str, Any]:
    return _found(request.db.one("select * from public.$table where id = %s", (path.id,)))


@app.patch("/{id}", response=$row, rate=WRITE)
def update_$table(request: Request, path: ${row}Path, body: ${row}Patch) -> dict[str, Any]:
    """Rename one (owners, admins, members)."""
    sql = "update public.$table set name = %s where id = %s returning *"
    return _found(request.db.one(sql, (body.name, path.id)))


@app.delete("/{id}", response=$row, rate=WRITE)
def delete_$table(request: Request, path: ${row}Path) -> dict[str, Any]:
    """Delete one (owners and admins)."""
    return _found(request.db.one("delete from public.$table where id = %s returning *", (path.id,)))


handler = app.handler
'''

_TEST = '''\
"""The $name function over HTTP: every route as every role of a fresh workspace."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.fixtures.server import SEED_USERS, Served, as_user

# `team` is a fresh workspace of the seed's owner, admin, member and viewer (the outsider is
# not in it), deleted after the test; `row` is one someone else made there (as superuser,
# `db_admin`: setup only).
ROLES = ("owner", "admin", "member", "viewer", "outsider", "anon")
MATRIX = {  # the status each role gets, in the order of ROLES
    "list": (200, 200, 200, 200, 200, 401),  # the outsider's list is empty
    "create": (201, 201, 201, 403, 403, 401),
    "get": (200, 200, 200, 200, 404, 401),
    "update": (200, 200, 200, 404, 404, 401),
    "delete": (200, 200, 404, 404, 404, 401),
}


@pytest.fixture
def row(team: str, db_admin: Any) -> str:
    made = db_admin.execute(
        "insert into public.$table (workspace_id, name, created_by) values (%s, 'First', %s)"
        " returning id",
        (team, SEED_USERS["owner"]),
    ).fetchone()
    return str(made[0])


def send(client: httpx.Client, route: str, team: str, row: str) -> httpx.Response:
    if route == "list":
        return client.get("/$name", params={"workspace_id": team})
    if route == "create":
        return client.post("/$name", json={"workspace_id": team, "name": "New"})
    if route == "update":
        return client.patch(f"/$name/{row}", json={"name": "Renamed"})
    return client.request("GET" if route == "get" else "DELETE", f"/$name/{row}")


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("route", MATRIX)
def test_role_matrix(served: Served, team: str, row: str, route: str, role: str) -> None:
    with as_user(served, role) as client:
        response = send(client, route, team, row)
    assert response.status_code == MATRIX[route][ROLES.index(role)], response.text
    if route == "list" and role != "anon":
        assert [r["id"] for r in response.json()["data"]] == ([] if role == "outsider" else [row])
    if route == "create" and response.status_code == 201:
        assert response.json()["data"]["created_by"] == SEED_USERS[role]  # auth.uid()


def test_a_name_is_taken_once_per_workspace(served: Served, team: str, make_team: Any) -> None:
    body = {"workspace_id": team, "name": "A"}
    with as_user(served, "member") as client:
        assert client.post("/$name", json=body).status_code == 201
        taken = client.post("/$name", json=body)  # app.errors.constraint gives the message
        assert taken.status_code == 409, taken.text
        assert taken.json()["error"]["message"] == "That name is taken in this workspace"
        assert client.post("/$name", json={**body, "workspace_id": make_team()}).status_code == 201
'''
