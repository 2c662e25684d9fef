"""stats: a workspace's task numbers for a dashboard, computed in one query and cached.

What is cached, and why it is safe:
* The whole answer for one workspace and one day (UTC), in Upstash for 60 seconds, under the
  workspace's task version (`private.task_version`), which the database bumps in every
  transaction that changes the workspace's tasks (any route, cascades included), so the next
  read after a write is a miss that recomputes; the TTL only bounds how long an unused entry
  lives. Writers never touch the cache.
* Membership is checked in the database (the same query reads the version) before the cache
  is read, so a non-member gets 404 and never a cached answer. Every member sees every task
  of their workspace (RLS), so the answer is the same for all members and the key says
  "member" rather than a user id.
* The key holds everything that changes the answer: the workspace, the caller's visibility
  and the day ("overdue" and the week buckets move at midnight UTC).
* The version is read before the numbers are computed, so a write that commits in between
  is in the numbers but not in the version the entry is stored under: such an entry is
  never trusted again, and an entry is never stored under a version newer than its data.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

from shared import READ, App, Model, NotFound, Request, Result, Schema
from shared.cache import cached

app = App("stats", title="Stats", description="Task statistics of a workspace, cached.")

STATUSES = ["todo", "in_progress", "blocked", "done"]
WEEKS = 12
TTL_SECONDS = 60


# ---- models ---------------------------------------------------------------------------


class StatsQuery(Model):
    workspace_id: UUID


class WeekCount(Schema):
    week_start: date
    count: int


class AssigneeCount(Schema):
    assignee_id: UUID | None
    count: int


class Stats(Schema):
    workspace_id: UUID
    as_of: date
    total: int
    by_status: dict[str, int]
    overdue: int
    completed_per_week: list[WeekCount]
    open_per_assignee: list[AssigneeCount]
    median_hours_to_done: float | None


# ---- the query ------------------------------------------------------------------------

# One statement, one round trip, run as the caller (RLS applies). Definitions:
# * overdue: a due date before today (UTC) and not done;
# * completed per week: done tasks by the Monday (UTC) of their completed_at, the current
#   week and the 11 before it, oldest first, weeks without completions as 0;
# * open per assignee: tasks not done, per assignee (null = unassigned), most first;
# * median hours to done: over done tasks, completed_at - created_at, 2 decimals.
STATS_SQL = """
with t as (
  select status, due_date, assignee_id, created_at, completed_at
  from public.tasks where workspace_id = %(ws)s
),
totals as (
  select count(*) as total,
         count(*) filter (where due_date < %(today)s and status <> 'done') as overdue,
         round((percentile_cont(0.5) within group (
           order by extract(epoch from completed_at - created_at) / 3600.0
         ))::numeric, 2) as median_hours
  from t
),
statuses as (
  select s.status, s.n, count(t.status) as count
  from unnest(%(statuses)s::text[]) with ordinality as s(status, n)
  left join t on t.status = s.status
  group by s.status, s.n
),
weeks as (
  select (date_trunc('week', %(today)s::timestamp) - i * interval '1 week')::date as week_start
  from generate_series(0, %(weeks)s - 1) as i
),
done_weeks as (
  select date_trunc('week', completed_at at time zone 'UTC')::date as week_start, count(*) as n
  from t where completed_at is not null group by 1
),
open_by_assignee as (
  select assignee_id, count(*) as count from t where status <> 'done' group by assignee_id
)
select json_build_object(
  'total', totals.total,
  'by_status', (select json_object_agg(status, count order by n) from statuses),
  'overdue', totals.overdue,
  'completed_per_week', (
    select json_agg(json_build_object('week_start', w.week_start, 'count', coalesce(d.n, 0))
                    order by w.week_start)
    from weeks w left join done_weeks d using (week_start)
  ),
  'open_per_assignee', (
    select coalesce(json_agg(json_build_object('assignee_id', assignee_id, 'count', count)
                             order by count desc, assignee_id nulls last), '[]'::json)
    from open_by_assignee
  ),
  'median_hours_to_done', totals.median_hours
) as stats
from totals
"""


# ---- routes and handlers --------------------------------------------------------------


@app.get("/", response=Stats, rate=READ)
def workspace_stats(request: Request, query: StatsQuery) -> Result:
    """Tasks by status, overdue, completed per week (12), open per assignee, median hours to
    done; `meta.cache` says whether the answer came from the cache (`hit`) or not (`miss`).

    Cached for a minute per workspace and day; every task write invalidates it at once.
    Non-members get 404 before the cache is consulted.
    """
    workspace = query.workspace_id
    version = request.db.value("select private.task_version(%s)", (workspace,))
    if version is None:  # not a member
        raise NotFound("Workspace not found")
    today = datetime.now(UTC).date()

    def compute() -> dict[str, Any]:
        stats: dict[str, Any] = request.db.value(
            STATS_SQL,
            {"ws": workspace, "today": today, "statuses": STATUSES, "weeks": WEEKS},
        )
        return {"workspace_id": str(workspace), "as_of": today.isoformat(), **stats}

    params = {"workspace_id": str(workspace), "visibility": "member", "day": today.isoformat()}
    value, hit = cached(request, "stats", version, params, compute, ttl=TTL_SECONDS)
    return Result(value, meta={"cache": "hit" if hit else "miss"})


handler = app.handler
