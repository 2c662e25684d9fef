"""tasks: list, read, create, edit and delete tasks, one at a time or in an all-or-nothing bulk.

Choices every route shares (the OpenAPI document repeats them per route):
* A task or project the caller cannot see is 404 NOT_FOUND on a task route and 422
  VALIDATION_FAILED (`loc` names `project_id`) when it is named in a body; a role that may not
  do the action on a task the caller sees is 403 FORBIDDEN.
* Writes need the version the caller read: `If-Match: "<version>"` (`W/"3"` and `3` are read
  too) or `version` in the body. Missing → 422 VALIDATION_FAILED; stale → 412
  PRECONDITION_FAILED for `If-Match` (RFC 9110), 409 VERSION_CONFLICT for a body's `version`,
  and nothing changes. The answer carries the new `ETag`.
* Every write moves its workspace's task version (a database trigger); the stats cache follows
  it.
* A write that sets `status` to `done` emits `task.completed` (key: the task id) through the
  transactional outbox: it is delivered after commit, and only if the write commits.
* SQL is composed with `psycopg.sql` from the fixed fragments below (column names as
  identifiers); input only ever travels as parameters.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Literal
from uuid import UUID

import psycopg.errors
from psycopg import sql
from pydantic import Field, field_validator, model_validator

from shared import READ, WRITE, App, Model, Request, Result, Schema
from shared.conditional import conditional, etag, if_match_version
from shared.error_map import diagnostic
from shared.errors import (
    ApiError,
    Forbidden,
    NotFound,
    PreconditionFailed,
    ValidationFailed,
    VersionConflict,
    detail,
)
from shared.pagination import KeysetSort, page

app = App(
    "tasks",
    title="Tasks",
    description=(
        "List, read, create, edit and delete tasks, one at a time or in an all-or-nothing bulk."
        " A task or project you cannot see is 404 on a task route and 422 (`loc` names"
        " `project_id`) when named in a body; a role that may not do the action is 403. Writes"
        ' need the version you read (`If-Match: "<version>"` or `version` in the body): missing'
        " is 422; stale is 412 PRECONDITION_FAILED for `If-Match`, 409 VERSION_CONFLICT for a"
        " body `version`, and nothing changes; answers carry the new `ETag`. Setting `status`"
        " to `done` emits `task.completed` after the write commits."
    ),
)

Status = Literal["todo", "in_progress", "blocked", "done"]
SortKey = Literal[
    "created_at", "-created_at", "updated_at", "-updated_at",
    "due_date", "-due_date", "priority", "-priority",
]  # fmt: skip
Loc = list[str | int]
Row = dict[str, Any]

# ---- models ---------------------------------------------------------------------------------


class Task(Schema):
    id: UUID
    workspace_id: UUID
    project_id: UUID
    title: str
    description: str | None
    status: Status
    priority: int
    assignee_id: UUID | None
    due_date: dt.date | None
    position: float
    version: int
    completed_at: dt.datetime | None
    created_by: UUID | None
    created_at: dt.datetime
    updated_at: dt.datetime


Title = Annotated[str, Field(min_length=1, max_length=500)]
Description = Annotated[str, Field(max_length=20000)]
Priority = Annotated[int, Field(ge=0, le=4)]
Position = Annotated[float, Field(allow_inf_nan=False)]
Version = Annotated[int, Field(ge=1, le=2**31 - 1)]


class TaskCreate(Model):
    project_id: UUID
    title: Title
    description: Description | None = None
    status: Status = "todo"
    priority: Priority = 2
    assignee_id: UUID | None = None
    due_date: dt.date | None = None
    position: Position | None = Field(default=None, description="Omitted or null: at the end")


class TaskChanges(Model):
    """The columns a user may change (the migration grants UPDATE on exactly these)."""

    project_id: UUID | None = None
    title: Title | None = None
    description: Description | None = None
    status: Status | None = None
    priority: Priority | None = None
    assignee_id: UUID | None = None
    due_date: dt.date | None = None
    position: Position | None = None

    @field_validator("project_id", "title", "status", "priority", "position")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("This field may not be null")
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> TaskChanges:
        if not self.model_fields_set - {"version"}:
            raise ValueError("Give at least one field to change")
        return self

    def changes(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in _UPDATABLE if k in self.model_fields_set}


class TaskPatch(TaskChanges):
    version: Version | None = Field(default=None, description="Or the If-Match header")


class TaskQuery(Model):
    project_id: UUID | None = None
    workspace_id: UUID | None = None
    status: list[Status] = Field(default=[], description="Several: status=a&status=b or a,b")
    assignee_id: UUID | Literal["none"] | None = Field(default=None, description="none: unassigned")
    q: str | None = Field(default=None, min_length=1, max_length=200)
    due_before: dt.date | None = None
    sort: SortKey = "-created_at"
    limit: int = Field(default=50, ge=1, le=100)
    cursor: str | None = None

    @field_validator("assignee_id", mode="before")
    @classmethod
    def _user_or_none(cls, value: Any) -> Any:
        """One clear error instead of one per member of the union."""
        try:
            return value if value in (None, "none") else UUID(str(value))
        except ValueError:
            raise ValueError("Give a user id, or none for unassigned tasks") from None

    @model_validator(mode="after")
    def _one_scope(self) -> TaskQuery:
        if (self.project_id is None) == (self.workspace_id is None):
            raise ValueError("Give exactly one of project_id and workspace_id")
        return self


class TaskPath(Model):
    id: UUID


class CreateOp(Model):
    op: Literal["create"]
    data: TaskCreate


class UpdateOp(Model):
    op: Literal["update"]
    id: UUID
    version: Version
    data: TaskChanges


class DeleteOp(Model):
    op: Literal["delete"]
    id: UUID
    version: Version | None = None


class BulkIn(Model):
    ops: list[Annotated[CreateOp | UpdateOp | DeleteOp, Field(discriminator="op")]] = Field(
        min_length=1, max_length=100
    )


class Deleted(Schema):
    id: UUID
    deleted: bool


class BulkResult(Schema):
    index: int
    op: Literal["create", "update", "delete"]
    id: UUID
    task: Task | None = Field(description="The task after the op; null for a delete")


class BulkOut(Schema):
    results: list[BulkResult]


# ---- SQL fragments (the only SQL text there is) ---------------------------------------------

_COLUMNS = (
    "t.id, t.workspace_id, t.project_id, t.title, t.description, t.status, t.priority,"
    " t.assignee_id, t.due_date, t.position, t.version, t.completed_at, t.created_by,"
    " t.created_at, t.updated_at"
)
_SELECTED = sql.SQL(_COLUMNS)
_UPDATABLE = (
    "project_id", "title", "description", "status", "priority", "assignee_id", "due_date",
    "position",
)  # fmt: skip
_SET = {column: sql.SQL("{} = %s").format(sql.Identifier(column)) for column in _UPDATABLE}
_SCOPE = {
    column: sql.SQL("{} = %s").format(sql.Identifier("t", column))
    for column in ("project_id", "workspace_id")
}
_CAN_EDIT = "private.has_role(t.workspace_id, '{owner,admin,member}')"
_CAN_DELETE = (
    "(private.has_role(t.workspace_id, '{owner,admin}') or (t.created_by = (select auth.uid())"
    " and private.has_role(t.workspace_id, '{member}')))"
)


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("not an integer")
    return value


_SORTS = {
    f"{'-' if desc else ''}{column}": KeysetSort(
        column, desc, parse, json_type, column == "due_date"
    )
    for column, parse, json_type in (
        ("created_at", dt.datetime.fromisoformat, str),
        ("updated_at", dt.datetime.fromisoformat, str),
        ("due_date", dt.date.fromisoformat, str),
        ("priority", _integer, int),
    )
    for desc in (False, True)
}

_FILTERS = {
    **_SCOPE,
    "status": sql.SQL("t.status = any(%s)"),
    "unassigned": sql.SQL("t.assignee_id is null"),
    "assignee": sql.SQL("t.assignee_id = %s"),
    "q": sql.SQL("t.search @@ websearch_to_tsquery('simple', %s)"),
    "due_before": sql.SQL("t.due_date < %s"),
}
# A list query's text by its shape: (filters..., sort, cursor kind, range). Composed with
# `psycopg.sql` the first time a shape is asked for, then reused: composing and rendering it
# cost every list request ~80 µs of CPU. Bounded: a few thousand shapes exist at most.
_LIST_QUERIES: dict[tuple[str, ...], str] = {}


def _list_query(shape: tuple[str, ...], extra: list[sql.Composable]) -> str:
    text = _LIST_QUERIES.get(shape)
    if text is None:
        filters, sort = shape[:-3], _SORTS[shape[-3]]
        text = (
            sql.SQL("select {} from public.tasks t where {}{} limit %s")
            .format(
                _SELECTED,
                sql.SQL(" and ").join([*(_FILTERS[f] for f in filters), *extra]),
                sort.order_by(),
            )
            .as_string()
        )
        _LIST_QUERIES[shape] = text
    return text


# ---- routes and handlers --------------------------------------------------------------------


@app.get("/", response=list[Task], rate=READ)
def list_tasks(request: Request, query: TaskQuery) -> Result:
    """List a project's or a workspace's tasks, filtered, sorted, one keyset page at a time.

    Exactly one of `project_id` and `workspace_id`. `sort` defaults to `-created_at` (newest
    first); ties break on `id` in the same direction. `due_date` sorts put tasks without a due
    date last in both directions. `next_cursor` is bound to the filters and the sort: reusing
    it with other ones is a 422. A project or workspace the caller cannot see is a 404.
    """
    sort = _SORTS[query.sort]
    scope_column = "project_id" if query.project_id is not None else "workspace_id"
    scope_id = query.project_id or query.workspace_id
    filters: list[str] = [scope_column]
    params: list[Any] = [scope_id]
    if query.status:
        filters.append("status")
        params.append(sorted(set(query.status)))
    if query.assignee_id == "none":
        filters.append("unassigned")
    elif query.assignee_id is not None:
        filters.append("assignee")
        params.append(query.assignee_id)
    if query.q is not None:
        filters.append("q")
        params.append(query.q)
    if query.due_before is not None:
        filters.append("due_before")
        params.append(query.due_before)
    scope = query.model_dump(mode="json", exclude={"limit", "cursor"})
    scope["status"] = sorted(set(query.status))
    after = sort.decode(query.cursor, scope) if query.cursor else None
    at = "first" if after is None else "null" if after[0] is None else "value"

    want, rows = query.limit + 1, list[Row]()
    for index, (extra, extra_params) in enumerate(sort.ranges(after)):
        text = _list_query((*filters, query.sort, at, str(index)), extra)
        rows += request.db.all(text, [*params, *extra_params, want - len(rows)])
        if len(rows) == want:
            break
    if not rows:
        _require_scope_visible(request, scope_column, scope_id)
    items, pagination = page(rows, query.limit, scope, sort.cursor_values)
    return Result(items, pagination=pagination)


@app.post("/", response=Task, status=201, rate=WRITE, single_statement=True)
def create_task(request: Request, body: TaskCreate) -> Result:
    """Create a task in a project (201, `version` 1); the workspace comes from the project.

    A project the caller cannot see is 422 (`loc` body.project_id); a viewer gets 403. Honours
    `Idempotency-Key`.
    """
    task = _create(request, body, ["body"])
    return Result(task, status=201, headers=etag(task["version"]))


@app.post("/bulk", response=BulkOut, rate=WRITE)
def bulk(request: Request, body: BulkIn) -> dict[str, Any]:
    """Apply up to 100 create/update/delete ops in order, all or nothing, in one transaction.

    `update` needs the op's `version`; `delete` checks it when given. The first op that fails
    (not found, forbidden, stale version, bad data) fails the request with its usual status
    and code, `details[0].loc` = `["body", "ops", <index>, ...]`, and nothing is changed.
    """
    results: list[dict[str, Any]] = []
    for index, op in enumerate(body.ops):
        at: Loc = ["body", "ops", index]
        with _naming_op(index):
            if isinstance(op, CreateOp):
                task: Row | None = _create(request, op.data, [*at, "data"])
            elif isinstance(op, UpdateOp):
                task = _update(request, op.id, op.version, op.data, at, [*at, "data"])
            else:
                task = None
                _delete(request, op.id, op.version, at)
        task_id = task["id"] if task is not None else getattr(op, "id", None)
        results.append({"index": index, "op": op.op, "id": task_id, "task": task})
    return {"results": results}


@app.get("/{id}", response=Task, rate=READ)
def get_task(request: Request, path: TaskPath) -> Result:
    """One task, with `ETag: "<version>"` for a later PATCH or DELETE."""
    task = request.db.one(f"select {_COLUMNS} from public.tasks t where t.id = %s", (path.id,))
    if task is None:
        raise NotFound("Task not found")
    return Result(task, headers=etag(task["version"]))


@app.patch("/{id}", response=Task, rate=WRITE, single_statement=True)
@conditional
def patch_task(request: Request, path: TaskPath, body: TaskPatch) -> Result:
    """Change some fields of a task, if it is still at the version the caller read.

    The version comes from `If-Match: "<n>"` or from `version` in the body (if both, they must
    agree); neither is a 422 VALIDATION_FAILED. A stale version changes nothing: 412
    PRECONDITION_FAILED when it came in `If-Match`, 409 VERSION_CONFLICT from the body.
    Success returns the task and its new `ETag`. An empty patch is a 422.
    """
    header = if_match_version(request)
    if header is not None and body.version is not None and header != body.version:
        raise _invalid(["body", "version"], "version and If-Match disagree", "version_mismatch")
    version = header if header is not None else body.version
    if version is None:
        raise _invalid(
            ["header", "If-Match"], 'Send If-Match: "<version>" or a body version', "missing"
        )
    task = _update(request, path.id, version, body, ["path", "id"], ["body"], header is not None)
    return Result(task, headers=etag(task["version"]))


@app.delete("/{id}", response=Deleted, rate=WRITE, single_statement=True)
@conditional
def delete_task(request: Request, path: TaskPath) -> Deleted:
    """Delete a task: 200 with `{"id", "deleted": true}`.

    Members delete tasks they created, admins and owners any; viewers get 403. An `If-Match`
    header is optional here; when given, a stale version is 412 and nothing is deleted.
    """
    version = if_match_version(request)
    gone = _delete(request, path.id, version, ["path", "id"], version is not None)
    return Deleted(id=gone["id"], deleted=True)


# ---- the operations behind the routes (single and bulk) -------------------------------------
# `at` locates the op in the request (for errors about the task), `data_at` its fields.


def _create(request: Request, data: TaskCreate, data_at: Loc) -> Row:
    values = data.model_dump(exclude_unset=True)
    if values.get("position") is None:
        values.pop("position", None)  # the column default puts it at the end
    columns = [column for column in _UPDATABLE if column in values]
    insert = sql.SQL("insert into public.tasks as t ({}) values ({}) returning {}").format(
        sql.SQL(", ").join(map(sql.Identifier, columns)),
        sql.SQL(", ").join(sql.Placeholder() * len(columns)),
        _SELECTED,
    )
    with _database_errors(data_at, "create tasks"):
        task = request.db.one(insert, [values[column] for column in columns])
    assert task is not None
    return task


def _update(
    request: Request,
    task_id: UUID,
    version: int,
    data: TaskChanges,
    at: Loc,
    data_at: Loc,
    if_match: bool = False,
) -> Row:
    changes = data.changes()
    completes = changes.get("status") == "done"
    if completes:
        request.db.atomic()  # the event commits with the write (before its first statement)
    update = sql.SQL(
        "update public.tasks t set {} where t.id = %s and t.version = %s returning {}"
    ).format(sql.SQL(", ").join(_SET[column] for column in changes), _SELECTED)
    with _database_errors(data_at, "edit tasks"):
        task = request.db.one(update, [*changes.values(), task_id, version])
    if task is None:  # hidden, not allowed or stale: find out which, in that order
        found = request.db.one(
            f"select t.version, {_CAN_EDIT} as allowed from public.tasks t where t.id = %s",
            (task_id,),
        )
        _explain_miss(found, version, at, "edit tasks", if_match)
    assert task is not None
    if completes:
        request.emit("task.completed", _completed(request, task), key=str(task["id"]))
    return task


def _completed(request: Request, task: Row) -> Row:
    """The `task.completed` event: sent after commit to the outbox's sinks (shared.outbox)."""
    keep = ("id", "workspace_id", "project_id", "title", "version", "completed_at")
    return {**{name: task[name] for name in keep}, "completed_by": request.user_id}


def _delete(
    request: Request, task_id: UUID, version: int | None, at: Loc, if_match: bool = False
) -> Row:
    gone = request.db.one(
        "delete from public.tasks t where t.id = %s"
        " and t.version = coalesce(%s::integer, t.version) returning t.id, t.workspace_id",
        (task_id, version),
    )
    if gone is None:
        found = request.db.one(
            f"select t.version, {_CAN_DELETE} as allowed from public.tasks t where t.id = %s",
            (task_id,),
        )
        _explain_miss(found, version, at, "delete this task", if_match)
    assert gone is not None
    return gone


def _explain_miss(
    found: Row | None, version: int | None, at: Loc, action: str, if_match: bool
) -> None:
    """A write that touched no row: 404 if hidden, 403 if the role forbids it, else stale:
    412 when the version came in `If-Match`, 409 when it came in the body."""
    if found is None:
        raise NotFound("Task not found", details=[detail(at, "not_found", "Task not found")])
    if not found["allowed"]:
        message = f"Your role in this workspace may not {action}"
        raise Forbidden(message, details=[detail(at, "forbidden", message)])
    message = (
        f"The task changed: it is at version {found['version']}, not {version}."
        " Read it again and retry."
    )
    if if_match:
        raise PreconditionFailed(message, details=[detail(at, "precondition_failed", message)])
    raise VersionConflict(message, details=[detail(at, "version_conflict", message)])


# ---- helpers --------------------------------------------------------------------------------


def _invalid(loc: Loc, message: str, kind: str) -> ValidationFailed:
    return ValidationFailed(message, details=[detail(loc, kind, message)])


def _require_scope_visible(request: Request, column: str, scope_id: UUID | None) -> None:
    sql = (
        "select exists (select 1 from public.projects where id = %s)"
        if column == "project_id"
        else "select private.is_member(%s)"
    )
    if not request.db.value(sql, (scope_id,)):
        raise NotFound("Project not found" if column == "project_id" else "Workspace not found")


@contextmanager
def _database_errors(data_at: Loc, action: str) -> Iterator[None]:
    """Name the field behind a database refusal; the transaction is rolled back anyway.

    The constraints' meanings live here because the field they point at depends on where the
    task sits in the body (a bulk op names its index); anything else goes to `app.errors`.
    """
    try:
        yield
    except psycopg.errors.ForeignKeyViolation as exc:
        if diagnostic(exc, "constraint_name") == "tasks_assignee_is_member":
            message = "The assignee is not a member of the task's workspace"
            raise _invalid([*data_at, "assignee_id"], message, "assignee_not_member") from None
        if "belongs to another workspace" in diagnostic(exc, "message_primary"):
            message = "Tasks cannot move to a project of another workspace"
            raise _invalid([*data_at, "project_id"], message, "project_other_workspace") from None
        raise _invalid([*data_at, "project_id"], "Project not found", "not_found") from None
    except psycopg.errors.InsufficientPrivilege:
        message = f"Your role in this workspace may not {action}"
        raise Forbidden(message, details=[detail(data_at, "forbidden", message)]) from None


@contextmanager
def _naming_op(index: int) -> Iterator[None]:
    """Make any error of a bulk op name the op: `details[0].loc` starts with its index."""
    try:
        yield
    except ApiError as error:
        error.message = f"ops[{index}]: {error.message}"
        if not error.details:
            error.details = [detail(["body", "ops", index], error.code.lower(), error.message)]
        raise


handler = app.handler
