"""me: who the caller is, as the database sees it inside their own transaction."""

from __future__ import annotations

from uuid import UUID

from pydantic import BaseModel

from shared import App, Request

app = App("me", title="Me", description="The caller as Postgres sees them under RLS.")


# ---- models ---------------------------------------------------------------------------


class Membership(BaseModel):
    workspace_id: UUID
    name: str
    slug: str
    role: str


class Me(BaseModel):
    sub: str | None
    role: str
    db_role: str
    email: str | None
    aal: str | None
    is_anonymous: bool
    workspaces: list[Membership]


# ---- handlers -------------------------------------------------------------------------


@app.get("/", response=Me)
def me(request: Request) -> Me:
    """The caller: `auth.uid()`, role and claims read back from the database, and their
    workspaces with their role in each (one query, one round trip)."""
    row = request.db.one(
        "select auth.uid()::text as sub, auth.role() as role, current_user as db_role,"
        " auth.email() as email, auth.jwt() ->> 'aal' as aal,"
        " coalesce((auth.jwt() ->> 'is_anonymous')::boolean, false) as is_anonymous,"
        " coalesce((select json_agg(json_build_object('workspace_id', w.id, 'name', w.name,"
        "   'slug', w.slug, 'role', m.role) order by w.name, w.id)"
        "   from public.workspace_members m join public.workspaces w on w.id = m.workspace_id"
        "   where m.user_id = auth.uid()), '[]'::json) as workspaces"
    )
    assert row is not None
    return Me(**row)


handler = app.handler
