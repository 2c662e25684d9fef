"""workspaces: the tenants. Create one (you become its owner), list yours, rename, delete."""

from __future__ import annotations

import datetime as dt
from typing import Any
from uuid import UUID

from pydantic import Field

from shared import (
    READ,
    WRITE,
    App,
    Forbidden,
    MfaRequired,
    Model,
    NotFound,
    Request,
    Result,
    Schema,
)
from shared.errors import Conflict, ValidationFailed

app = App("workspaces", title="Workspaces", description="Workspaces and the caller's role in each.")
app.errors.constraint("workspaces_slug_key", Conflict, "That slug is taken")

SLUG = r"^[a-z0-9]+(-[a-z0-9]+)*$"


# ---- models ---------------------------------------------------------------------------


class WorkspaceIn(Model):
    name: str = Field(min_length=1, max_length=100)
    slug: str | None = Field(default=None, min_length=1, max_length=63, pattern=SLUG)


class WorkspacePatch(Model):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    slug: str | None = Field(default=None, min_length=1, max_length=63, pattern=SLUG)


class WorkspacePath(Model):
    id: UUID


class Workspace(Schema):
    id: UUID
    name: str
    slug: str
    role: str
    created_by: UUID | None
    created_at: dt.datetime
    updated_at: dt.datetime


class Deleted(Schema):
    id: UUID
    deleted: bool


_COLUMNS = "w.id, w.name, w.slug, w.created_by, w.created_at, w.updated_at"
_WITH_ROLE = (
    f"select {_COLUMNS}, m.role from public.workspaces w"
    " join public.workspace_members m on m.workspace_id = w.id and m.user_id = auth.uid()"
)


def _mine(request: Request, workspace_id: UUID) -> dict[str, Any]:
    """The workspace with the caller's role; 404 when they cannot see it."""
    row = request.db.one(f"{_WITH_ROLE} where w.id = %s", (workspace_id,))
    if row is None:
        raise NotFound("Workspace not found")
    return row


# ---- routes and handlers --------------------------------------------------------------


@app.get("/", rate=READ, response=list[Workspace])
def list_workspaces(request: Request) -> list[dict[str, Any]]:
    """The workspaces the caller belongs to, with their role in each."""
    return request.db.all(f"{_WITH_ROLE} order by w.created_at, w.id limit 1000")


@app.post("/", response=Workspace, status=201, rate=WRITE, single_statement=True)
def create_workspace(request: Request, body: WorkspaceIn) -> Result:
    """Create a workspace; the caller becomes its owner in the same transaction."""
    row = request.db.one(
        f"insert into public.workspaces as w (name, slug) values (%s, %s) returning {_COLUMNS}",
        (body.name, body.slug),
    )
    assert row is not None
    return Result({**row, "role": "owner"}, status=201)


@app.get("/{id}", rate=READ, response=Workspace)
def get_workspace(request: Request, path: WorkspacePath) -> dict[str, Any]:
    """One workspace the caller belongs to."""
    return _mine(request, path.id)


@app.patch("/{id}", response=Workspace, rate=WRITE)
def update_workspace(request: Request, path: WorkspacePath, body: WorkspacePatch) -> dict[str, Any]:
    """Rename a workspace or change its slug (owners and admins)."""
    changes = body.model_dump(exclude_unset=True)
    if not changes or any(value is None for value in changes.values()):
        raise ValidationFailed(
            "Give a new name or slug",
            details=[
                {"loc": ["body"], "type": "empty_patch", "message": "Give name or slug, not null"}
            ],
        )
    current = _mine(request, path.id)
    if current["role"] not in ("owner", "admin"):
        raise Forbidden("Only owners and admins can change a workspace")
    row = request.db.one(
        "update public.workspaces as w set name = coalesce(%s, name), slug = coalesce(%s, slug)"
        f" where id = %s returning {_COLUMNS}",
        (changes.get("name"), changes.get("slug"), path.id),
    )
    if row is None:
        raise Forbidden("Only owners and admins can change a workspace")
    return {**row, "role": current["role"]}


@app.delete("/{id}", response=Deleted, rate=WRITE)
def delete_workspace(request: Request, path: WorkspacePath) -> dict[str, Any]:
    """Delete a workspace and everything in it (owners, with an aal2 session)."""
    current = _mine(request, path.id)
    if current["role"] != "owner":
        raise Forbidden("Only owners can delete a workspace")
    if request.claims is None or request.claims.aal != "aal2":
        raise MfaRequired("Deleting a workspace needs a session verified with MFA (aal2)")
    deleted = request.db.execute("delete from public.workspaces where id = %s", (path.id,))
    if deleted != 1:
        raise Forbidden("Only owners can delete a workspace")
    return {"id": path.id, "deleted": True}


handler = app.handler
