"""Growth: `GET /tasks?workspace_id=&limit=50` p50 with 1k, 10k and 100k tasks in the workspace.

Three workspaces of their own (the bench users are members of each), one per size, are each
filled by one `insert ... select from generate_series` as superuser with
`session_replication_role = replica`: that skips the triggers (audit trail, realtime
broadcast, versioning, workspace inheritance) and the foreign-key checks, which would make
100k inserts take minutes, so the rows carry every value those triggers would have set.
`analyze` follows each fill, as autovacuum would. Then sequential requests against the tasks
function (gunicorn, 1 worker), rotating the bench users' tokens, the sizes taking turns in
rounds; p50 of the whole request and of the `db` part of its `Server-Timing` header.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import psycopg

from fnkit.bench import servers
from fnkit.bench.services import OWNER, ROOT, Services, add_members
from fnkit.bench.stats import percentile

SIZES = (1_000, 10_000, 100_000)

FILL = """
insert into public.tasks (
  workspace_id, project_id, title, status, priority, position, created_by,
  created_at, updated_at, version, completed_at
)
select %(workspace)s, %(project)s, 'Growth task ' || n, s.status, n %% 5, n, %(owner)s,
  now() - n * interval '1 minute', now() - n * interval '1 minute', 1,
  case when s.status = 'done' then now() - n * interval '1 minute' end
from generate_series(%(first)s::int, %(last)s::int) as n
cross join lateral (
  select (array['todo', 'in_progress', 'blocked', 'done'])[n %% 4 + 1] as status
) as s
"""


def _setup(url: str, users: list[str]) -> tuple[str, str]:
    workspace, project = str(uuid.uuid4()), str(uuid.uuid4())
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "insert into public.workspaces (id, name, slug, created_by) values (%s, %s, %s, %s)",
            (workspace, "Growth", f"growth-{workspace[:8]}", OWNER),
        )
        conn.execute(
            "insert into public.projects (id, workspace_id, name, created_by)"
            " values (%s, %s, %s, %s)",
            (project, workspace, "Growth", OWNER),
        )
    add_members(url, users, workspace)
    return workspace, project


def _fill(url: str, workspace: str, project: str, first: int, last: int) -> float:
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("set statement_timeout = '180s'")
        conn.execute("set session_replication_role = replica")
        conn.execute(
            FILL,
            {
                "workspace": workspace,
                "project": project,
                "owner": OWNER,
                "first": first,
                "last": last,
            },
        )
        conn.execute("set session_replication_role = origin")
        conn.execute("analyze public.tasks")
    return time.perf_counter() - started


def _db_ms(header: str) -> float | None:
    for part in header.split(","):
        name, _, rest = part.strip().partition(";dur=")
        if name == "db" and rest:
            return float(rest)
    return None


def measure(services: Services, quick: bool) -> dict[str, Any]:
    """Each size in a workspace of its own, all filled first, then measured in interleaved
    rounds (every size once per round, as the cold-start and load sections run their
    targets), so a slow spell of the machine lands on all three sizes alike."""
    n, warm, rounds = (60, 10, 2) if quick else (300, 30, 5)
    users = services.users[:300]
    tokens = services.tokens[:300]
    paths: dict[int, str] = {}
    results: dict[str, Any] = {"requests": n, "rounds": rounds, "sizes": {}}
    for size in SIZES:
        workspace, project = _setup(services.database_url, users)
        fill_s = _fill(services.database_url, workspace, project, 1, size)
        paths[size] = f"/tasks?workspace_id={workspace}&limit=50"
        results["sizes"][str(size)] = {"fill_s": fill_s}
    server = servers.gunicorn(
        "tasks-growth", ROOT / "functions" / "tasks" / "main.py", services, workers=1, threads=4
    )
    totals: dict[int, list[float]] = {size: [] for size in SIZES}
    dbs: dict[int, list[float]] = {size: [] for size in SIZES}
    try:
        server.wait()
        services.bridge.flush()
        with httpx.Client(base_url=server.url, timeout=30) as client:

            def get(size: int, i: int) -> None:
                token = tokens[i % len(tokens)]
                started = time.perf_counter()
                response = client.get(paths[size], headers={"Authorization": f"Bearer {token}"})
                elapsed = (time.perf_counter() - started) * 1000
                if response.status_code != 200 or len(response.json()["data"]) != 50:
                    raise RuntimeError(f"growth: {response.status_code} {response.text[:200]}")
                totals[size].append(elapsed)
                db = _db_ms(response.headers.get("Server-Timing", ""))
                if db is not None:
                    dbs[size].append(db)

            for size in SIZES:  # warm-up, not counted
                for i in range(warm):
                    get(size, i)
                totals[size].clear()
                dbs[size].clear()
            for round_ in range(rounds):
                for size in SIZES:
                    for i in range(n // rounds):
                        get(size, round_ * n + i)
    finally:
        server.stop()
    for size in SIZES:
        ordered, db_ordered = sorted(totals[size]), sorted(dbs[size])
        results["sizes"][str(size)].update(
            {
                "p50_ms": percentile(ordered, 50),
                "p99_ms": percentile(ordered, 99),
                "db_p50_ms": percentile(db_ordered, 50) if db_ordered else None,
            }
        )
    return results
