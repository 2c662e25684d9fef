"""The SQL `GET /tasks?workspace_id=&limit=50` and `POST /tasks` send, for the floor and the peer.

Kept identical to what functions/tasks/main.py sends for those two requests (the column list,
the keyset order, `limit + 1` rows, the insert with `returning`), and the impersonation is
the runtime's own statement, so floor, peer and function ask Postgres for the same work.
"""

from __future__ import annotations

import json
from typing import Any

from shared.db import _IMPERSONATE

IMPERSONATE = _IMPERSONATE  # the exact text the runtime sends

COLUMNS = (
    "t.id, t.workspace_id, t.project_id, t.title, t.description, t.status, t.priority,"
    " t.assignee_id, t.due_date, t.position, t.version, t.completed_at, t.created_by,"
    " t.created_at, t.updated_at"
)
LIST = (
    f"select {COLUMNS} from public.tasks t where t.workspace_id = %s"
    " order by t.created_at desc, t.id desc limit %s"
)
INSERT = f"insert into public.tasks as t (project_id, title) values (%s, %s) returning {COLUMNS}"
PAGE = 50
HEADERS = {"host": "127.0.0.1", "accept": "*/*", "user-agent": "bench"}


def impersonation(claims: dict[str, Any], method: str, path: str) -> tuple[str, ...]:
    """The parameters of IMPERSONATE for a caller, as shared.db.Transaction builds them."""
    role = str(claims.get("role", "authenticated"))
    return (
        role,
        json.dumps(claims, separators=(",", ":")),
        str(claims.get("sub") or ""),
        role,
        method,
        path,
        json.dumps(HEADERS, separators=(",", ":")),
        "8000ms",
    )
