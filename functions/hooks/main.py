"""hooks: what Supabase itself calls. Two Auth hooks and one database webhook receiver.

* `POST /custom-access-token`: Supabase Auth's Custom Access Token hook. Adds `memberships`
  (`{"<workspace id>": "<role>"}`) to the claims it is given, read in one query, and keeps every
  other claim. What it is for: a client shows the right workspaces and buttons without a query.
  RLS stays the authority (no policy reads it), and it is as stale as the token: a membership
  change shows in the claim when the token is next refreshed.
* `POST /before-user-created`: Supabase Auth's Before User Created hook. Refuses a sign-up from
  a domain (or subdomain) in `public.signup_denied_domains`, unless the address is in
  `public.signup_invitations`; the refusal is in the hook's own format.
* `POST /task-assigned`: the database webhook on `public.tasks`. Records one notification per
  assignment change (a change delivered twice records one) and publishes it on the Upstash
  channel `notifications:<user id>` after the commit.

Auth hooks are signed with Standard Webhooks (AUTH_HOOK_SECRETS) and answer in the hook's own
JSON; Supabase Auth waits 5 seconds for an HTTP hook, so they read one row set and return.
The database webhook sends a bearer secret (DB_WEBHOOK_SECRET). None is rate limited: the
caller is Supabase, from a few addresses, and every call is verified first.
"""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from shared import App, Forbidden, Request, Schema
from shared.envelope import dumps
from shared.errors import ValidationFailed
from shared.logs import log
from shared.shared_secret import SharedSecret
from shared.standard_webhooks import StandardWebhook

app = App("hooks", title="Hooks", description=__doc__)

AUTH_HOOK = StandardWebhook()
DATABASE_WEBHOOK = SharedSecret()
MAX_MEMBERSHIPS = 100  # keeps the token small; beyond it the claim says it is truncated


# ---- models ---------------------------------------------------------------------------------


class HookModel(BaseModel):
    """Supabase adds fields to hook payloads over time: unknown fields are ignored, not 422."""

    model_config = ConfigDict(extra="ignore")


class AccessTokenEvent(HookModel):
    user_id: UUID
    claims: dict[str, Any]
    authentication_method: str | None = None


class AccessTokenAnswer(Schema):
    claims: dict[str, Any]


class SignupUser(HookModel):
    id: UUID | None = None
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = None


class UserCreatedEvent(HookModel):
    metadata: dict[str, Any] = Field(default_factory=dict)
    user: SignupUser


class TaskRecord(HookModel):
    id: UUID
    workspace_id: UUID
    assignee_id: UUID | None = None
    version: int = Field(ge=1)
    title: str


class TaskChange(HookModel):
    """The payload of Supabase's `supabase_functions.http_request` for a row change."""

    type: Literal["INSERT", "UPDATE", "DELETE"]
    table: str
    schema_name: str = Field(alias="schema")
    record: TaskRecord | None = None
    old_record: TaskRecord | None = None


class Delivery(Schema):
    recorded: bool
    reason: str | None = None
    notification_id: UUID | None = None


# ---- routes and handlers --------------------------------------------------------------------


@app.post(
    "/custom-access-token",
    auth=AUTH_HOOK,
    response=AccessTokenAnswer,
    answer="auth_hook",
    rate=None,
    idempotent=False,
    single_statement=True,
)
def custom_access_token(request: Request, body: AccessTokenEvent) -> dict[str, Any]:
    """Supabase's Custom Access Token hook: the claims plus `memberships`, in one query."""
    rows = request.db.all(
        "select m.workspace_id, m.role from public.workspace_members m"
        " where m.user_id = %s order by m.created_at, m.workspace_id limit %s",
        (body.user_id, MAX_MEMBERSHIPS + 1),
    )
    claims = dict(body.claims)
    claims["memberships"] = {str(r["workspace_id"]): r["role"] for r in rows[:MAX_MEMBERSHIPS]}
    if len(rows) > MAX_MEMBERSHIPS:
        claims["memberships_truncated"] = True
    return {"claims": claims}


@app.post(
    "/before-user-created",
    auth=AUTH_HOOK,
    answer="auth_hook",
    rate=None,
    idempotent=False,
    single_statement=True,
)
def before_user_created(request: Request, body: UserCreatedEvent) -> dict[str, Any]:
    """Supabase's Before User Created hook: deny-listed domains are refused unless invited."""
    email = (body.user.email or "").strip().lower()
    domain = email.rpartition("@")[2] if "@" in email else ""
    if not domain:
        return {}  # a phone or anonymous sign-up: no domain to judge
    labels = domain.split(".")
    suffixes = [".".join(labels[i:]) for i in range(len(labels) - 1)]  # a.b.c -> a.b.c, b.c
    row = request.db.one(
        "select exists (select 1 from public.signup_denied_domains d where d.domain = any(%s))"
        " as denied,"
        " exists (select 1 from public.signup_invitations i where i.email = %s) as invited",
        (suffixes, email),
    )
    assert row is not None
    if row["denied"] and not row["invited"]:
        raise Forbidden(f"Sign-ups with an e-mail address at {domain} are not allowed")
    return {}


@app.post(
    "/task-assigned",
    auth=DATABASE_WEBHOOK,
    response=Delivery,
    rate=None,
    idempotent=False,
    single_statement=True,
)
def task_assigned(request: Request, body: TaskChange) -> Delivery:
    """A task's assignee changed: one notification for the new assignee, published on Upstash.

    The notification's key is the task's id and version, which every change moves: a change
    delivered twice finds its key taken and records (and publishes) nothing.
    """
    wrong = [
        {"loc": ["body", name], "type": "value_error", "message": f"Expected {expected!r}"}
        for name, got, expected in (
            ("schema", body.schema_name, "public"),
            ("table", body.table, "tasks"),
        )
        if got != expected
    ]
    if wrong:
        raise ValidationFailed("This receiver takes changes to the tasks table", details=wrong)
    task, old = body.record, body.old_record
    if body.type == "DELETE" or task is None or task.assignee_id is None:
        return Delivery(recorded=False, reason="no assignee")
    if body.type == "UPDATE" and old is not None and old.assignee_id == task.assignee_id:
        return Delivery(recorded=False, reason="assignee unchanged")
    payload = {"task_id": str(task.id), "title": task.title, "version": task.version}
    row = request.db.one(
        "insert into public.notifications"
        " (user_id, workspace_id, task_id, kind, event_key, payload)"
        " values (%s, %s, %s, 'task_assigned', %s, %s::jsonb)"
        " on conflict (event_key) do nothing"
        " returning id, user_id, workspace_id, task_id, kind, payload, created_at",
        (
            task.assignee_id,
            task.workspace_id,
            task.id,
            f"task_assigned:{task.id}:{task.version}",
            dumps(payload),
        ),
    )
    if row is None:
        return Delivery(recorded=False, reason="already recorded")
    request.after_commit.append(lambda: _publish(request, row))
    return Delivery(recorded=True, notification_id=row["id"])


def _publish(request: Request, notification: dict[str, Any]) -> None:
    """PUBLISH on `notifications:<user id>`; the row is the record, so a failure only logs."""
    from shared.redis_client import get_redis

    channel = f"notifications:{notification['user_id']}"
    try:
        get_redis(request.settings).publish(channel, dumps(notification))
    except Exception as exc:
        log(
            "WARNING",
            "notification not published",
            request_id=request.request_id,
            function=request.function,
            channel=channel,
            exception=type(exc).__name__,
        )


handler = app.handler
