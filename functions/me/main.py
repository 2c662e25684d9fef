"""me: who the caller is, as the database sees it inside their own transaction."""

from __future__ import annotations

from pydantic import BaseModel

from shared import App, Request

app = App("me", title="Me", description="The caller as Postgres sees them under RLS.")


# ---- models ---------------------------------------------------------------------------


class Me(BaseModel):
    sub: str | None
    role: str
    db_role: str
    email: str | None
    aal: str | None
    is_anonymous: bool


# ---- handlers -------------------------------------------------------------------------


@app.get("/", response=Me)
def me(request: Request) -> Me:
    """The caller: `auth.uid()`, role and claims read back from the database."""
    row = request.db.one(
        "select auth.uid()::text as sub, auth.role() as role, current_user as db_role,"
        " auth.email() as email, auth.jwt() ->> 'aal' as aal,"
        " coalesce((auth.jwt() ->> 'is_anonymous')::boolean, false) as is_anonymous"
    )
    assert row is not None
    return Me(**row)


handler = app.handler
