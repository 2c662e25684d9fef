"""Helpers for the row-level security tests: callers, a fresh workspace per test, outcomes.

Every probe runs through `shared.db.Transaction`, the impersonation the functions use
(`role`, `request.jwt.claims`, ... set transaction-locally), never as superuser. Fixtures are
built as superuser, each test on rows of its own, so tests neither see nor disturb each other
and do not depend on the seed.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from shared.db import Transaction
from shared.settings import Settings

Conn = psycopg.Connection[TupleRow]

# The callers of the matrix, in the order its rows list them. The world also has `bystander`,
# a member who is never the caller (whose rows are "someone else's"), and `newbie`, a user in
# no workspace yet.
CALLERS = ("owner", "admin", "member", "viewer", "outsider", "anon")


@dataclass(frozen=True)
class Rows:
    """The statement succeeded and saw (select) or changed (insert/update/delete) n rows."""

    n: int

    def __repr__(self) -> str:
        return f"{self.n} rows"


@dataclass(frozen=True)
class Fails:
    """The statement failed with this SQLSTATE."""

    sqlstate: str

    def __repr__(self) -> str:
        return f"error {self.sqlstate}"


Outcome = Rows | Fails

DENIED = Fails("42501")  # insufficient_privilege: a privilege is missing or WITH CHECK failed
NOT_FOUND = Fails("23503")  # foreign_key_violation: the parent row is not visible (or absent)
LAST_OWNER = Fails("23514")  # check_violation workspace_keeps_an_owner


def cells(**by_caller: int | Fails) -> dict[str, Outcome]:
    """One row of the matrix: an outcome for each caller, ints meaning "n rows"."""
    assert set(by_caller) == set(CALLERS), f"every caller needs a cell: {sorted(by_caller)}"
    return {
        caller: Rows(value) if isinstance(value, int) else value
        for caller, value in by_caller.items()
    }


def settings_for(database_url: str) -> Settings:
    return Settings(
        supabase_url="http://127.0.0.1:54321",
        database_url=database_url,
        upstash_url="http://127.0.0.1:1",
        upstash_token="unused",
    )


def user_claims(
    user_id: uuid.UUID | None, email: str | None = None, aal: str = "aal2"
) -> dict[str, Any]:
    """The JWT claims Supabase Auth gives a signed-in user (or anon when user_id is None).

    aal2 by default: the matrix is about roles; what aal1 may not do is tested on its own."""
    if user_id is None:
        return {"role": "anon"}
    return {
        "sub": str(user_id),
        "role": "authenticated",
        "aud": "authenticated",
        "aal": aal,
        "email": email or f"{user_id}@example.test",
    }


@contextmanager
def acting_as(
    settings: Settings, user_id: uuid.UUID | None, *, commit: bool = False, aal: str = "aal2"
) -> Iterator[Transaction]:
    """A transaction impersonating the user (anon when None); rolled back unless commit."""
    role = "anon" if user_id is None else "authenticated"
    tx = Transaction(settings, user_claims(user_id, aal=aal), role, "POST", "/rls-test", {})
    ok = False
    try:
        yield tx
        ok = True
    finally:
        tx.finish(commit=commit and ok)


def outcome(run: Callable[[], int]) -> Outcome:
    """Rows(n) for what `run` returns, Fails(sqlstate) for a database error."""
    try:
        return Rows(run())
    except psycopg.Error as exc:
        assert exc.sqlstate is not None, exc
        return Fails(exc.sqlstate)


# --- the world: a fresh workspace with one caller of each role --------------------------------


@dataclass
class World:
    """A workspace of its own, its users, and one row of each kind made by the bystander."""

    users: dict[str, uuid.UUID]
    workspace: uuid.UUID
    project: uuid.UUID
    task: uuid.UUID
    comment: uuid.UUID
    attachment: uuid.UUID
    object_name: str
    extra: dict[str, Any] = field(default_factory=dict)

    def caller_id(self, caller: str) -> uuid.UUID | None:
        return None if caller == "anon" else self.users[caller]

    @property
    def topic(self) -> str:
        return f"workspace:{self.workspace}"


def scalar(
    conn: Conn, query: str | sql.Composed, params: tuple[Any, ...] | dict[str, Any] = ()
) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


def create_user(conn: Conn, label: str = "user") -> uuid.UUID:
    user_id = uuid.uuid4()
    conn.execute(
        "insert into auth.users (id, email) values (%s, %s)",
        (user_id, f"{label}-{user_id.hex[:12]}@example.test"),
    )
    return user_id


def build_world(conn: Conn) -> World:
    """Create (as superuser) a workspace whose owner, admin, member and viewer are fresh users,
    an outsider and a newbie in no workspace, and a project, task, comment, attachment and
    storage object made by the bystander, a member who is never the caller."""
    users = {
        label: create_user(conn, label)
        for label in ("owner", "admin", "member", "viewer", "outsider", "bystander", "newbie")
    }
    workspace = scalar(
        conn,
        "insert into public.workspaces (name, created_by) values (%s, %s) returning id",
        ("World", users["owner"]),
    )
    roles = {"owner": "owner", "admin": "admin", "member": "member", "viewer": "viewer"}
    for label, role in {**roles, "bystander": "member"}.items():
        conn.execute(
            "insert into public.workspace_members (workspace_id, user_id, role)"
            " values (%s, %s, %s) on conflict do nothing",
            (workspace, users[label], role),
        )
    bystander = users["bystander"]
    project = scalar(
        conn,
        "insert into public.projects (workspace_id, name, created_by) values (%s, %s, %s)"
        " returning id",
        (workspace, "Project", bystander),
    )
    task = insert_task(conn, project, created_by=bystander)
    comment = insert_comment(conn, task, author=bystander)
    attachment, object_name = insert_attachment(conn, task, uploaded_by=bystander)
    conn.execute(
        "insert into storage.objects (bucket_id, name, owner) values ('attachments', %s, %s)",
        (object_name, bystander),
    )
    return World(users, workspace, project, task, comment, attachment, object_name)


def insert_task(conn: Conn, project: uuid.UUID, *, created_by: uuid.UUID | None) -> uuid.UUID:
    return scalar(  # type: ignore[no-any-return]
        conn,
        "insert into public.tasks (project_id, title, created_by) values (%s, %s, %s) returning id",
        (project, "Task", created_by),
    )


def insert_comment(conn: Conn, task: uuid.UUID, *, author: uuid.UUID | None) -> uuid.UUID:
    return scalar(  # type: ignore[no-any-return]
        conn,
        "insert into public.task_comments (task_id, body, author_id) values (%s, %s, %s)"
        " returning id",
        (task, "Comment", author),
    )


def insert_attachment(
    conn: Conn, task: uuid.UUID, *, uploaded_by: uuid.UUID | None
) -> tuple[uuid.UUID, str]:
    row = conn.execute(
        "insert into public.attachments (task_id, filename, content_type, size_bytes, uploaded_by)"
        " values (%s, 'notes.txt', 'text/plain', 5, %s) returning id, storage_path",
        (task, uploaded_by),
    ).fetchone()
    assert row is not None
    return row[0], row[1]
