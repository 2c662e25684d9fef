"""projects: a workspace's projects, listed, created, renamed, archived and deleted.

Every route runs as the caller, so row-level security decides what exists for them; the
handlers only turn "hidden" into 404 and "seen but not allowed" into 403. Each route is one
SQL statement: the caller's role (`private.member_role`) is read in the same statement that
reads or writes the row, so the answer costs one round trip.

Who may do what (the RLS policies say the same): every member reads; owners, admins and
members create and edit; only owners and admins delete. Deleting a project deletes its tasks
(foreign key cascade), which moves the workspace's task version that the stats cache follows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import Field, field_validator, model_validator

from shared import READ, WRITE, App, Forbidden, Model, NotFound, Request, Result, Schema

app = App("projects", title="Projects", description="A workspace's projects.")

EDITORS = ("owner", "admin", "member")
DELETERS = ("owner", "admin")

# The columns a project is returned with; every query names the table `p`.
COLUMNS = (
    "p.id, p.workspace_id, p.name, p.description, p.archived_at,"
    " p.archived_at is not null as archived, p.created_by, p.created_at, p.updated_at"
)


# ---- models ---------------------------------------------------------------------------


class ListQuery(Model):
    workspace_id: UUID
    # Omitted or false: active projects only (what a project picker wants); true: only the
    # archived ones.
    archived: bool = False


class ProjectIn(Model):
    workspace_id: UUID
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=10000)


class ProjectPatch(Model):
    """Only the fields sent change; `description: null` clears it, `archived` sets or clears
    `archived_at` (archiving an archived project keeps its first archive time)."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=10000)
    archived: bool | None = None

    @field_validator("name", "archived")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may be omitted but not null")
        return value

    @model_validator(mode="after")
    def _something(self) -> ProjectPatch:
        if not self.model_fields_set:
            raise ValueError("Give at least one of name, description, archived")
        return self


class ProjectPath(Model):
    id: UUID


class Project(Schema):
    id: UUID
    workspace_id: UUID
    name: str
    description: str | None
    archived_at: datetime | None
    archived: bool
    created_by: UUID | None
    created_at: datetime
    updated_at: datetime


class Deleted(Schema):
    id: UUID
    deleted: bool


# ---- helpers --------------------------------------------------------------------------


def _allowed(row: dict[str, Any] | None, roles: tuple[str, ...], what: str) -> None:
    """404 when the caller cannot see the thing, 403 when their role may not do this."""
    if row is None or row["role"] is None:
        raise NotFound(f"{what} not found")
    if row["role"] not in roles or row["id"] is None:
        raise Forbidden(f"Your role ({row['role']}) may not do this")


def _project(row: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in row.items() if key != "role"}


# ---- routes and handlers --------------------------------------------------------------


@app.get("/", response=list[Project], rate=READ)
def list_projects(request: Request, query: ListQuery) -> list[dict[str, Any]]:
    """A workspace's projects, oldest first: active ones unless `archived=true`.

    404 when the caller is not a member of the workspace (an empty list would say "exists").
    """
    rows = request.db.all(
        "select r.role, p.* from (select private.member_role(%(ws)s) as role) r"
        f" left join lateral (select {COLUMNS} from public.projects p"
        "   where p.workspace_id = %(ws)s and (p.archived_at is not null) = %(archived)s"
        "   order by p.created_at, p.id) p on true",
        {"ws": query.workspace_id, "archived": query.archived},
    )
    if not rows or rows[0]["role"] is None:
        raise NotFound("Workspace not found")
    return [_project(row) for row in rows if row["id"] is not None]


@app.post("/", response=Project, status=201, rate=WRITE, single_statement=True)
def create_project(request: Request, body: ProjectIn) -> Result:
    """Create a project (owners, admins, members; viewers 403; non-members 404)."""
    row = request.db.one(
        "with r as (select private.member_role(%(ws)s) as role),"
        " p as (insert into public.projects (workspace_id, name, description)"
        "   select %(ws)s, %(name)s, %(description)s from r where r.role = any(%(roles)s)"
        "   returning *)"
        f" select r.role, {COLUMNS} from r left join p on true",
        {
            "ws": body.workspace_id,
            "name": body.name,
            "description": body.description,
            "roles": list(EDITORS),
        },
    )
    _allowed(row, EDITORS, "Workspace")
    assert row is not None
    return Result(_project(row), status=201)


@app.get("/{id}", response=Project, rate=READ)
def get_project(request: Request, path: ProjectPath) -> dict[str, Any]:
    """One project, archived or not."""
    row = request.db.one(f"select {COLUMNS} from public.projects p where p.id = %s", (path.id,))
    if row is None:
        raise NotFound("Project not found")
    return row


@app.patch(
    "/{id}",
    response=Project,
    rate=WRITE,
    single_statement=True,
)
def update_project(request: Request, path: ProjectPath, body: ProjectPatch) -> dict[str, Any]:
    """Rename, describe, archive or unarchive a project (owners, admins, members)."""
    given = body.model_fields_set
    row = request.db.one(
        "with target as (select p.id, private.member_role(p.workspace_id) as role"
        "   from public.projects p where p.id = %(id)s),"
        " p as (update public.projects p set"
        "   name = case when %(set_name)s then %(name)s else p.name end,"
        "   description = case when %(set_description)s then %(description)s"
        "     else p.description end,"
        "   archived_at = case when %(archived)s::boolean is null then p.archived_at"
        "     when %(archived)s::boolean then coalesce(p.archived_at, now()) else null end"
        "   from target where p.id = target.id and target.role = any(%(roles)s)"
        "   returning p.*)"
        f" select target.role, {COLUMNS} from target left join p on true",
        {
            "id": path.id,
            "set_name": "name" in given,
            "name": body.name,
            "set_description": "description" in given,
            "description": body.description,
            "archived": body.archived,
            "roles": list(EDITORS),
        },
    )
    _allowed(row, EDITORS, "Project")
    assert row is not None
    return _project(row)


@app.delete("/{id}", response=Deleted, rate=WRITE, single_statement=True)
def delete_project(request: Request, path: ProjectPath) -> dict[str, Any]:
    """Delete a project and, by cascade, its tasks, comments and attachment rows (owners and
    admins; members and viewers 403)."""
    row = request.db.one(
        "with target as (select p.id, p.workspace_id,"
        "   private.member_role(p.workspace_id) as role"
        "   from public.projects p where p.id = %(id)s),"
        " gone as (delete from public.projects p using target"
        "   where p.id = target.id and target.role = any(%(roles)s) returning p.id)"
        " select target.workspace_id, target.role, gone.id from target left join gone on true",
        {"id": path.id, "roles": list(DELETERS)},
    )
    _allowed(row, DELETERS, "Project")
    assert row is not None
    return {"id": row["id"], "deleted": True}


handler = app.handler
