"""comments: the discussion on a task, paginated oldest first; edited by their author.

Every route runs as the caller under row-level security and is one SQL statement: the row,
the caller's role (`private.member_role`) and the write are read and done together, so a
hidden task or comment is a 404 and a visible one the caller may not touch is a 403.

Who may do what (the RLS policies say the same): every member reads; owners, admins and
members comment; only the author edits a comment (while they may still write in the
workspace); the author or an owner or admin deletes it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import Field

from shared import (
    READ,
    WRITE,
    App,
    Forbidden,
    Model,
    NotFound,
    Request,
    Result,
    Schema,
)
from shared.pagination import KeysetSort, page

app = App("comments", title="Comments", description="Comments on tasks.")

WRITERS = ["owner", "admin", "member"]
MODERATORS = ["owner", "admin"]

# The columns a comment is returned with; every query names the table `c`.
COLUMNS = "c.id, c.task_id, c.workspace_id, c.author_id, c.body, c.created_at, c.updated_at"


# ---- models ---------------------------------------------------------------------------


class ListQuery(Model):
    task_id: UUID
    limit: int = Field(default=50, ge=1, le=100)
    cursor: str | None = Field(default=None, min_length=1)


class CommentIn(Model):
    task_id: UUID
    body: str = Field(min_length=1, max_length=10000)


class CommentPatch(Model):
    body: str = Field(min_length=1, max_length=10000)


class CommentPath(Model):
    id: UUID


class Comment(Schema):
    id: UUID
    task_id: UUID
    workspace_id: UUID
    author_id: UUID | None
    body: str
    created_at: datetime
    updated_at: datetime


class Deleted(Schema):
    id: UUID
    deleted: bool


# ---- helpers --------------------------------------------------------------------------


# Oldest first on (created_at, id): the (task_id, created_at, id) index serves every page.
_ORDER = KeysetSort("created_at", False, datetime.fromisoformat, str, alias="c")


def _scope(task_id: UUID) -> dict[str, str]:
    return {"list": "comments", "task_id": str(task_id)}


def _comment(row: dict[str, Any]) -> dict[str, Any]:
    return {key: row[key] for key in Comment.model_fields}


# ---- routes and handlers --------------------------------------------------------------

_LIST = (
    "select t.id as seen, c.* from (select id from public.tasks where id = %(task)s) t"
    f" left join lateral (select {COLUMNS} from public.task_comments c"
    "   where c.task_id = t.id {after}"
    "   order by c.created_at, c.id limit %(fetch)s) c on true"
)
_FIRST_PAGE = _LIST.format(after="")
_NEXT_PAGE = _LIST.format(after="and (c.created_at, c.id) > (%(after_at)s, %(after_id)s)")


@app.get("/", response=list[Comment], rate=READ)
def list_comments(request: Request, query: ListQuery) -> Result:
    """A task's comments, oldest first, keyset-paginated on (created_at, id).

    Rows added while a client pages appear after the ones it has seen: a page never repeats
    or skips a row. 404 when the caller cannot see the task.
    """
    params: dict[str, Any] = {"task": query.task_id, "fetch": query.limit + 1}
    sql = _FIRST_PAGE
    if query.cursor is not None:
        params["after_at"], params["after_id"] = _ORDER.decode(query.cursor, _scope(query.task_id))
        sql = _NEXT_PAGE
    rows = request.db.all(sql, params)
    if not rows:
        raise NotFound("Task not found")
    comments = [_comment(row) for row in rows if row["id"] is not None]
    items, pagination = page(
        comments,
        query.limit,
        _scope(query.task_id),
        _ORDER.cursor_values,
    )
    return Result(items, pagination=pagination)


@app.post("/", response=Comment, status=201, rate=WRITE, single_statement=True)
def create_comment(request: Request, body: CommentIn) -> Result:
    """Comment on a task as the caller (owners, admins, members; viewers 403; 404 when the
    task is hidden)."""
    row = request.db.one(
        "with t as (select id, workspace_id, private.member_role(workspace_id) as role"
        "   from public.tasks where id = %(task)s),"
        " c as (insert into public.task_comments (task_id, workspace_id, body)"
        "   select t.id, t.workspace_id, %(body)s from t where t.role = any(%(roles)s)"
        "   returning *)"
        f" select t.role, {COLUMNS} from t left join c on true",
        {"task": body.task_id, "body": body.body, "roles": WRITERS},
    )
    if row is None:
        raise NotFound("Task not found")
    if row["id"] is None:
        raise Forbidden(f"Your role ({row['role']}) may not comment")
    return Result(_comment(row), status=201)


@app.patch(
    "/{id}",
    response=Comment,
    rate=WRITE,
    single_statement=True,
)
def update_comment(request: Request, path: CommentPath, body: CommentPatch) -> dict[str, Any]:
    """Edit a comment's body: its author only (admins may delete, not rewrite)."""
    row = request.db.one(
        "with target as (select c.id, c.author_id = (select auth.uid()) as mine,"
        "   private.member_role(c.workspace_id) as role"
        "   from public.task_comments c where c.id = %(id)s),"
        " c as (update public.task_comments c set body = %(body)s from target"
        "   where c.id = target.id and target.mine and target.role = any(%(roles)s)"
        "   returning c.*)"
        f" select target.mine, target.role, {COLUMNS} from target left join c on true",
        {"id": path.id, "body": body.body, "roles": WRITERS},
    )
    if row is None:
        raise NotFound("Comment not found")
    if row["id"] is None:
        raise Forbidden(
            "Only the author may edit a comment"
            if not row["mine"]
            else f"Your role ({row['role']}) may not edit comments"
        )
    return _comment(row)


@app.delete("/{id}", response=Deleted, rate=WRITE, single_statement=True)
def delete_comment(request: Request, path: CommentPath) -> dict[str, Any]:
    """Delete a comment: its author, or an owner or admin of the workspace."""
    row = request.db.one(
        "with target as (select c.id, c.author_id = (select auth.uid()) as mine,"
        "   private.member_role(c.workspace_id) as role"
        "   from public.task_comments c where c.id = %(id)s),"
        " gone as (delete from public.task_comments c using target where c.id = target.id"
        "   and (target.role = any(%(moderators)s)"
        "     or (target.mine and target.role = any(%(writers)s)))"
        "   returning c.id)"
        " select target.role, gone.id from target left join gone on true",
        {"id": path.id, "moderators": MODERATORS, "writers": WRITERS},
    )
    if row is None:
        raise NotFound("Comment not found")
    if row["id"] is None:
        raise Forbidden("Only the author or an owner or admin may delete a comment")
    return {"id": row["id"], "deleted": True}


handler = app.handler
