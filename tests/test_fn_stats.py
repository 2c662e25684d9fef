"""The stats function over real HTTP: the numbers, the permission matrix, the cache.

The numbers are checked two ways: on the seed's Acme against an independent computation
(plain SQL through db_admin plus Python for weeks and the median), and on a fresh workspace
whose tasks are placed at known times, against numbers written out by hand.
"""

from __future__ import annotations

import json
import statistics
import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests import envelope
from tests.envelope import ok_body
from tests.fixtures.server import ACME, OUTPOST, SEED_USERS, Served, as_user

STATUSES = ["todo", "in_progress", "blocked", "done"]


def fails(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    error = envelope.fails(response, status, code)
    assert "cache" not in response.json()["meta"]
    return error


def stats(client: httpx.Client, ws: str) -> tuple[dict[str, Any], str]:
    body = ok_body(client.get("/stats", params={"workspace_id": ws}))
    return body["data"], body["meta"]["cache"]


def make_project(db_admin, ws: str) -> str:
    return str(
        db_admin.execute(
            "insert into public.projects (workspace_id, name, created_by) values (%s, 'P', %s)"
            " returning id",
            (ws, SEED_USERS["owner"]),
        ).fetchone()[0]
    )


def add_task(
    db_admin,
    project: str,
    status: str = "todo",
    *,
    assignee: str | None = None,
    due: date | None = None,
    created: datetime | None = None,
    completed: datetime | None = None,
) -> str:
    return str(
        db_admin.execute(
            "insert into public.tasks (project_id, title, status, assignee_id, due_date,"
            " created_by, created_at, completed_at)"
            " values (%s, 't', %s, %s, %s, %s, coalesce(%s, now()), %s) returning id",
            (
                project,
                status,
                SEED_USERS[assignee] if assignee else None,
                due,
                SEED_USERS["owner"],
                created,
                completed,
            ),
        ).fetchone()[0]
    )


def this_monday() -> datetime:
    now = datetime.now(UTC)
    return datetime(now.year, now.month, now.day, tzinfo=UTC) - timedelta(days=now.weekday())


def expected_from_db(db_admin, ws: str) -> dict[str, Any]:
    """The stats of a workspace computed independently: raw rows, counted in Python."""
    rows = db_admin.execute(
        "select status, due_date, assignee_id::text, created_at, completed_at"
        " from public.tasks where workspace_id = %s",
        (ws,),
    ).fetchall()
    today = datetime.now(UTC).date()
    monday = this_monday().date()
    weeks = [monday - timedelta(weeks=11 - i) for i in range(12)]
    done_weeks = Counter(
        (c.astimezone(UTC).date() - timedelta(days=c.astimezone(UTC).weekday()))
        for *_, c in rows
        if c is not None
    )
    open_counts = Counter(a for s, _, a, _, _ in rows if s != "done")
    hours = [(c - cr).total_seconds() / 3600 for *_, cr, c in rows if c is not None]
    return {
        "workspace_id": ws,
        "as_of": today.isoformat(),
        "total": len(rows),
        "by_status": {s: sum(1 for r in rows if r[0] == s) for s in STATUSES},
        "overdue": sum(1 for s, d, *_ in rows if d is not None and d < today and s != "done"),
        "completed_per_week": [
            {"week_start": w.isoformat(), "count": done_weeks.get(w, 0)} for w in weeks
        ],
        "open_per_assignee": sorted(
            ({"assignee_id": a, "count": n} for a, n in open_counts.items()),
            key=lambda x: (-x["count"], x["assignee_id"] is None, x["assignee_id"] or ""),
        ),
        "median_hours_to_done": round(statistics.median(hours), 2) if hours else None,
    }


# ---- the numbers ----------------------------------------------------------------------


def test_acme_numbers_match_an_independent_computation(served: Served, db_admin) -> None:
    with as_user(served, "viewer") as viewer:
        data, _ = stats(viewer, ACME)
    expected = expected_from_db(db_admin, ACME)
    median = data.pop("median_hours_to_done")
    assert median == pytest.approx(expected.pop("median_hours_to_done"), abs=0.011)
    assert data == expected
    # The seed's shape, so the comparison above compared something.
    assert data["total"] >= 600
    assert list(data["by_status"]) == STATUSES
    assert data["overdue"] > 0
    assert sum(w["count"] for w in data["completed_per_week"]) > 0
    assert None in [a["assignee_id"] for a in data["open_per_assignee"]]


def test_known_tasks_give_known_numbers(
    served: Served, team: str, make_team: Any, db_admin
) -> None:
    project = make_project(db_admin, team)
    today = datetime.now(UTC).date()
    monday = this_monday()
    # Open work: 2 overdue (yesterday, 3 days ago), one due today (not overdue), one undated.
    add_task(db_admin, project, "todo", assignee="member", due=today - timedelta(days=1))
    add_task(db_admin, project, "todo", assignee="member", due=today)
    add_task(db_admin, project, "in_progress", due=today - timedelta(days=3))
    add_task(db_admin, project, "blocked", assignee="admin")

    def done(completed: datetime, hours: float, **kw: Any) -> None:
        add_task(
            db_admin,
            project,
            "done",
            created=completed - timedelta(hours=hours),
            completed=completed,
            **kw,
        )

    # Done work (overdue never counts done tasks, even with a past due date):
    done(monday, 10, due=today - timedelta(days=10))  # this week, on its first instant
    done(monday - timedelta(weeks=1) + timedelta(hours=1), 31)  # last week
    done(monday - timedelta(seconds=1), 4)  # last week, on its last second
    done(monday - timedelta(weeks=3), 7.5)  # three weeks ago
    done(monday - timedelta(weeks=11) + timedelta(days=1), 2)  # the oldest bucket
    done(monday - timedelta(weeks=12) + timedelta(days=1), 100)  # before the window
    # Another workspace's tasks never count.
    add_task(db_admin, make_project(db_admin, make_team()), "todo", due=today - timedelta(days=1))

    with as_user(served, "member") as member:
        data, cache = stats(member, team)
    assert cache == "miss"
    weeks = [(monday - timedelta(weeks=11 - i)).date().isoformat() for i in range(12)]
    counts = [1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 2, 1]
    assert data == {
        "workspace_id": team,
        "as_of": today.isoformat(),
        "total": 10,
        "by_status": {"todo": 2, "in_progress": 1, "blocked": 1, "done": 6},
        "overdue": 2,
        "completed_per_week": [
            {"week_start": w, "count": c} for w, c in zip(weeks, counts, strict=True)
        ],
        "open_per_assignee": [
            {"assignee_id": SEED_USERS["member"], "count": 2},
            {"assignee_id": SEED_USERS["admin"], "count": 1},
            {"assignee_id": None, "count": 1},
        ],
        # hours 2, 4, 7.5, 10, 31, 100: the median of an even count is the mean of the middle
        "median_hours_to_done": 8.75,
    }
    assert data == expected_from_db(db_admin, team)


def test_an_empty_workspace_has_zeros_and_no_median(served: Served, team: str) -> None:
    with as_user(served, "owner") as owner:
        data, _ = stats(owner, team)
    assert data["total"] == 0
    assert data["by_status"] == dict.fromkeys(STATUSES, 0)
    assert data["overdue"] == 0
    assert [w["count"] for w in data["completed_per_week"]] == [0] * 12
    assert data["completed_per_week"][-1]["week_start"] == this_monday().date().isoformat()
    assert data["open_per_assignee"] == []
    assert data["median_hours_to_done"] is None


# ---- who may read ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "status", "code"),
    [
        ("owner", 200, None),
        ("admin", 200, None),
        ("member", 200, None),
        ("viewer", 200, None),
        ("outsider", 404, "NOT_FOUND"),
        ("anon", 401, "UNAUTHENTICATED"),
    ],
)
def test_permission_matrix(served: Served, role: str, status: int, code: str | None) -> None:
    with as_user(served, "owner") as owner:
        warm, _ = stats(owner, ACME)  # an entry is in the cache for everyone to (not) see
    with as_user(served, role) as client:
        response = client.get("/stats", params={"workspace_id": ACME})
    if code is None:
        body = ok_body(response)
        assert body["data"] == warm
        assert body["meta"]["cache"] == "hit"  # every member shares one entry
    else:
        fails(response, status, code)
        answer = response.json()
        del answer["meta"]["request_id"]  # random hex may hold the digits by chance
        assert str(warm["total"]) not in json.dumps(answer)


def test_unknown_workspace_and_bad_input(served: Served) -> None:
    with as_user(served, "owner") as owner:
        fails(owner.get("/stats", params={"workspace_id": str(uuid.uuid4())}), 404, "NOT_FOUND")
        fails(owner.get("/stats", params={"workspace_id": OUTPOST}), 404, "NOT_FOUND")
        for params in ({}, {"workspace_id": "acme"}, {"workspace_id": ACME, "extra": "1"}):
            fails(owner.get("/stats", params=params), 422, "VALIDATION_FAILED")


# ---- the cache ------------------------------------------------------------------------


def test_miss_hit_then_a_fresh_miss_after_a_project_delete(
    served: Served, team: str, db_admin
) -> None:
    keep, doomed = make_project(db_admin, team), make_project(db_admin, team)
    add_task(db_admin, keep, "todo")
    for _ in range(3):
        add_task(db_admin, doomed, "in_progress")
    with as_user(served, "member") as member, as_user(served, "admin") as admin:
        first, cache1 = stats(member, team)
        second, cache2 = stats(member, team)
        assert (cache1, cache2) == ("miss", "hit")
        assert first == second and first["total"] == 4

        # Archiving changes no task: the entry stays valid.
        assert admin.patch(f"/projects/{doomed}", json={"archived": True}).status_code == 200
        assert stats(member, team)[1] == "hit"

        # A write made straight in SQL, no function involved, moves the version too...
        add_task(db_admin, keep, "blocked")
        third, cache3 = stats(member, team)
        assert (cache3, third["total"]) == ("miss", 5)
        assert stats(member, team)[1] == "hit"

        # ...and a project delete (which deletes tasks) makes the next read a fresh miss.
        assert admin.delete(f"/projects/{doomed}").status_code == 200
        fresh, cache4 = stats(member, team)
        assert cache4 == "miss"
        assert fresh["total"] == 2
        assert fresh["by_status"] == {"todo": 1, "in_progress": 0, "blocked": 1, "done": 0}
        assert fresh == expected_from_db(db_admin, team)
        assert stats(member, team) == (fresh, "hit")


def test_a_refused_delete_does_not_invalidate(served: Served, team: str, db_admin) -> None:
    project = make_project(db_admin, team)
    with as_user(served, "owner") as owner, as_user(served, "member") as member:
        assert stats(owner, team)[1] == "miss"
        assert member.delete(f"/projects/{project}").status_code == 403
        assert stats(owner, team)[1] == "hit"


def test_entries_are_per_workspace(served: Served, team: str, db_admin) -> None:
    add_task(db_admin, make_project(db_admin, team), "done")
    with as_user(served, "owner") as owner:
        acme, _ = stats(owner, ACME)
        mine, cache = stats(owner, team)
    assert cache == "miss"
    assert mine["total"] == 1 and acme["total"] >= 600


def test_a_non_member_never_gets_a_cached_answer_after_leaving(
    served: Served, team: str, db_admin
) -> None:
    with as_user(served, "member") as member:
        assert stats(member, team)[1] == "miss"
        db_admin.execute(
            "delete from public.workspace_members where workspace_id = %s and user_id = %s",
            (team, SEED_USERS["member"]),
        )
        fails(member.get("/stats", params={"workspace_id": team}), 404, "NOT_FOUND")


def test_a_task_written_through_the_tasks_function_invalidates(
    served: Served, team: str, db_admin
) -> None:
    project = make_project(db_admin, team)
    add_task(db_admin, project, "todo")
    with as_user(served, "member") as member:
        assert stats(member, team)[1] == "miss"
        assert stats(member, team)[1] == "hit"
        created = member.post("/tasks", json={"project_id": project, "title": "Fresh"})
        assert created.status_code == 201, created.text
        fresh, cache = stats(member, team)
    assert cache == "miss"
    assert fresh["total"] == 2 and fresh["by_status"]["todo"] == 2
    assert fresh == expected_from_db(db_admin, team)
