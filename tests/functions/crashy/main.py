"""crashy: a test-only function that dies where a test tells it to. Never deployed.

It writes a project as the caller, like `POST /projects`, through the same pipeline
(idempotency included), and then, when the process was started with `FNKIT_CRASHY_ARMED=1`
and the request says `X-Crash: <where>`, kills its own process with `os._exit` (no cleanup, no
response, as an OOM kill or a lost instance would):

* `before-commit`: after the INSERT, inside the open transaction;
* `after-commit`: in an `after_commit` callback, which the pipeline runs once COMMIT has
  returned and before the response is built.

Unarmed (the dev server and the `served` fixture load every test function), the header is
ignored.
"""

from __future__ import annotations

import os
from typing import Any
from uuid import UUID

from pydantic import Field

from shared import App, Model, Request, Result

app = App("crashy", title="Crashy (tests only)")

ARMED = os.environ.get("FNKIT_CRASHY_ARMED") == "1"


class ProjectIn(Model):
    workspace_id: UUID
    name: str = Field(min_length=1, max_length=200)


def _die() -> None:
    os._exit(17)


@app.post("/", status=201, rate=None)
def create(request: Request, body: ProjectIn) -> Result:
    """Insert a project as the caller; die before or after COMMIT when told to."""
    row: dict[str, Any] | None = request.db.one(
        "insert into public.projects (workspace_id, name) values (%s, %s)"
        " returning id, workspace_id, name",
        (body.workspace_id, body.name),
    )
    where = request.headers.get("X-Crash") if ARMED else None
    if where == "before-commit":
        _die()
    if where == "after-commit":
        request.after_commit.append(_die)
    return Result(row, status=201)


handler = app.handler
