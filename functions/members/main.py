"""members: who belongs to a workspace, with which role; adding by email, inviting strangers.

Rules (the RLS policies say the same; the handler checks first so that a refusal is a clear
403 rather than an UPDATE that silently changes 0 rows):
- Members see the roster; a workspace the caller is not in is 404.
- Owners and admins add, change and remove members; admins never touch owners, nor make one.
- Granting or removing the owner role needs an `aal2` session (403 MFA_REQUIRED otherwise).
- Anyone may leave (delete their own membership); an owner leaving removes an owner, so aal2.
- A workspace keeps at least one owner: the database refuses the change (constraint
  `workspace_keeps_an_owner`), answered as 409 CONFLICT.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

import psycopg.errors
from pydantic import Field, field_validator

from shared import (
    READ,
    SENSITIVE,
    WRITE,
    App,
    Conflict,
    Forbidden,
    MfaRequired,
    Model,
    NotFound,
    Request,
    Result,
    Schema,
    Unavailable,
    supabase_admin,
)
from shared.db import Transaction

app = App("members", title="Members", description="Workspace members, roles and invitations.")
app.errors.constraint(
    "workspace_keeps_an_owner",
    Conflict,
    "A workspace must keep an owner: make another member owner first",
)
app.errors.constraint("workspace_members_pkey", Conflict, "That user is already a member")

Role = Literal["owner", "admin", "member", "viewer"]
MANAGERS = {"owner", "admin"}
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")

# ---- models ---------------------------------------------------------------------------


class WorkspaceQuery(Model):
    workspace_id: UUID


class MemberIn(Model):
    workspace_id: UUID
    email: str = Field(min_length=3, max_length=320)
    role: Role = "member"

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        if not _EMAIL.fullmatch(value):
            raise ValueError("must be an email address")
        return value.lower()


class MemberPath(Model):
    workspace_id: UUID
    user_id: UUID


class RoleIn(Model):
    role: Role


class Member(Schema):
    workspace_id: UUID
    user_id: UUID
    email: str | None
    role: Role
    created_at: datetime


class AddedMember(Member):
    invited: bool


# ---- routes and handlers --------------------------------------------------------------


@app.get("/", response=list[Member], rate=READ)
def list_members(request: Request, query: WorkspaceQuery) -> list[dict[str, Any]]:
    """The workspace's members with their email and role, oldest first.

    `member_directory` is empty unless the caller is a member, and a workspace always has
    at least the caller then: empty means "not yours" → 404.
    """
    rows = request.db.all(
        "select %s::uuid as workspace_id, d.user_id, d.email, d.role, d.created_at"
        " from private.member_directory(%s) d",
        (query.workspace_id, query.workspace_id),
    )
    if not rows:
        raise NotFound("Workspace not found")
    return rows


@app.post("/", response=AddedMember, status=201, rate=SENSITIVE)
def add_member(request: Request, body: MemberIn) -> Result:
    """Add a user by email; an email without an account is invited through Supabase Auth.

    The invite happens before the membership insert: Auth creates the user (the row in
    `auth.users` the membership references) and sends the email. The address is recorded in
    `public.signup_invitations` just before (see `_record_invitation`), so the Before User
    Created hook lets it through a denied domain without the service role adding it by hand.
    Should the insert then fail, the invited user exists without the membership, and a retry
    finds them by email and adds them: no duplicate invite, nothing half-written here.
    """
    # One round trip: the caller's role, and the email's account (answered to managers only).
    found = request.db.one(
        "select private.member_role(%s) as caller_role, private.user_id_by_email(%s) as user_id",
        (body.workspace_id, body.email),
    )
    assert found is not None
    caller_role = found["caller_role"]
    _require_manager(caller_role, "add members")
    _check_owner_change(request, caller_role, touches_owner=body.role == "owner")
    user_id, invited = found["user_id"], found["user_id"] is None
    if invited:
        _record_invitation(request, body.workspace_id, body.email)
        user_id = supabase_admin.invite_user_by_email(request.settings, body.email)
    try:
        row = request.db.one(
            "insert into public.workspace_members (workspace_id, user_id, role)"
            " values (%s, %s, %s) on conflict (workspace_id, user_id) do nothing"
            " returning workspace_id, user_id, role, created_at",
            (body.workspace_id, user_id, body.role),
        )
    except psycopg.errors.ForeignKeyViolation:
        if invited:
            # Auth said it created the user, but this database has no such auth.users row:
            # DATABASE_URL and SUPABASE_URL point at different projects.
            raise Unavailable(
                "Supabase Auth and the database disagree about the new user"
            ) from None
        raise
    if row is None:
        raise Conflict("This user is already a member of the workspace")
    return Result({**row, "email": body.email, "invited": invited}, status=201)


@app.patch("/{workspace_id}/{user_id}", response=Member, rate=WRITE)
def change_role(request: Request, path: MemberPath, body: RoleIn) -> dict[str, Any]:
    """Change a member's role (owners and admins; the owner role needs an owner and aal2)."""
    target = _member(request, path)
    caller_role = target.pop("caller_role")
    _require_manager(caller_role, "change roles")
    if target["role"] == body.role:
        return target
    _check_owner_change(request, caller_role, touches_owner="owner" in (target["role"], body.role))
    row = request.db.one(
        "update public.workspace_members set role = %s"
        " where workspace_id = %s and user_id = %s returning role",
        (body.role, path.workspace_id, path.user_id),
    )
    if row is None:
        raise Forbidden("You may not change this member's role")
    return {**target, **row}


@app.delete("/{workspace_id}/{user_id}", status=204, rate=WRITE)
def remove_member(request: Request, path: MemberPath) -> Result:
    """Remove a member (owners and admins), or leave the workspace (anyone, for themselves)."""
    target = _member(request, path)
    caller_role = target["caller_role"]
    if str(path.user_id) != request.user_id:
        _require_manager(caller_role, "remove other members")
    _check_owner_change(request, caller_role, touches_owner=target["role"] == "owner")
    deleted = request.db.execute(
        "delete from public.workspace_members where workspace_id = %s and user_id = %s",
        (path.workspace_id, path.user_id),
    )
    if deleted == 0:
        raise Forbidden("You may not remove this member")
    return Result(status=204)


# ---- helpers --------------------------------------------------------------------------


def _member(request: Request, path: MemberPath) -> dict[str, Any]:
    """The target membership plus the caller's role, in one query; 404 when either the
    caller or the target is not in the workspace (the directory is empty for outsiders)."""
    row = request.db.one(
        "select %s::uuid as workspace_id, d.user_id, d.email, d.role, d.created_at,"
        " private.member_role(%s) as caller_role"
        " from private.member_directory(%s) d where d.user_id = %s",
        (path.workspace_id, path.workspace_id, path.workspace_id, path.user_id),
    )
    if row is None:
        raise NotFound("Member not found")
    return row


def _record_invitation(request: Request, workspace_id: UUID, email: str) -> None:
    """Commit the address to `public.signup_invitations` before Auth is asked to invite it.

    Why its own statement, committed before the Auth call, and not in the request's
    transaction: Supabase Auth runs the Before User Created hook *during* the invite
    (`internal/api/invite.go` calls it before creating the user), and the hook reads the
    table from its own connection, which sees committed rows only. Written with the
    membership, the address would be invisible to the very check it exists for, and an
    invite to a denied domain would be refused. As the caller, through a `security definer`
    helper that checks the caller manages the workspace (the table is the service role's).

    The cost: when the invite or the membership then fails, the address stays invited. That
    is what an owner or admin asked for; a retry finds it there (`on conflict do nothing`).
    It takes a second pooled connection for one round trip (DB_POOL_MAX is 4 by default).
    """
    claims = request.claims
    assert claims is not None  # the route needs a user
    tx = Transaction(
        request.settings,
        claims.jwt,
        claims.role,
        request.method,
        request.path,
        {},
        single_statement=True,  # one implicit transaction: committed when it returns
    )
    try:
        tx.execute("select private.record_signup_invitation(%s, %s)", (workspace_id, email))
    finally:
        tx.finish(commit=True)


def _require_manager(caller_role: str | None, action: str) -> None:
    if caller_role is None:
        raise NotFound("Workspace not found")
    if caller_role not in MANAGERS:
        raise Forbidden(f"Only owners and admins may {action}")


def _check_owner_change(request: Request, caller_role: str | None, *, touches_owner: bool) -> None:
    """Only owners grant or remove the owner role, and only from an aal2 (MFA) session."""
    if not touches_owner:
        return
    if caller_role != "owner":
        raise Forbidden("Only owners may grant or remove the owner role")
    if request.claims is None or request.claims.aal != "aal2":
        raise MfaRequired("Granting or removing the owner role needs an aal2 (MFA) session")


handler = app.handler
