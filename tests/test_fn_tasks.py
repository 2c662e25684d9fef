"""The tasks function over real HTTP: single-task routes, permissions, concurrency, idempotency.

Tests that write work in a fresh workspace of their own (`team`), where the seed's owner, admin,
member and viewer hold those roles and the outsider is not a member; it is deleted afterwards.
Listing and pagination are in test_fn_tasks_list.py, bulk in test_fn_tasks_bulk.py.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from tests.envelope import assert_error, ok
from tests.fixtures.server import ACME_PROJECTS, SEED_USERS, Served, as_user

OWNER, ADMIN, MEMBER, VIEWER, OUTSIDER = (
    SEED_USERS[r] for r in ("owner", "admin", "member", "viewer", "outsider")
)


# ---- helpers shared by the tasks test files ---------------------------------------------------


@dataclass
class Team:
    workspace: str
    project: str
    other_project: str


def make_team(db: psycopg.Connection[Any]) -> Iterator[Team]:
    """A workspace with the seed users in their seed roles and two projects; dropped after."""
    ws = str(
        db.execute(
            "insert into public.workspaces (name, created_by) values (%s, %s) returning id",
            (f"Tasks test {uuid.uuid4().hex[:8]}", OWNER),
        ).fetchone()[0]  # type: ignore[index]
    )
    db.execute(
        "insert into public.workspace_members (workspace_id, user_id, role)"
        " values (%s, %s, 'admin'), (%s, %s, 'member'), (%s, %s, 'viewer')",
        (ws, ADMIN, ws, MEMBER, ws, VIEWER),
    )
    projects = [
        str(
            db.execute(
                "insert into public.projects (workspace_id, name, created_by)"
                " values (%s, %s, %s) returning id",
                (ws, name, OWNER),
            ).fetchone()[0]  # type: ignore[index]
        )
        for name in ("Alpha", "Beta")
    ]
    yield Team(ws, projects[0], projects[1])
    db.execute("delete from public.workspaces where id = %s", (ws,))


def add_task(db: psycopg.Connection[Any], project: str, **columns: Any) -> dict[str, Any]:
    """Insert a task directly (setup only); returns the row."""
    columns.setdefault("title", f"task {uuid.uuid4().hex[:8]}")
    columns.setdefault("created_by", OWNER)
    names = ", ".join(["project_id", *columns])
    marks = ", ".join(["%s"] * (len(columns) + 1))
    with db.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            f"insert into public.tasks ({names}) values ({marks}) returning *",
            (project, *columns.values()),
        ).fetchone()
    assert row is not None
    return row


def task_row(db: psycopg.Connection[Any], task_id: Any) -> dict[str, Any] | None:
    with db.cursor(row_factory=dict_row) as cur:
        return cur.execute("select * from public.tasks where id = %s", (task_id,)).fetchone()


def task_version(db: Any, workspace: str) -> int:
    """The workspace's task version, which the stats cache follows (0 before any write)."""
    row = db.execute(
        "select version from private.workspace_task_versions where workspace_id = %s",
        (workspace,),
    ).fetchone()
    return int(row[0]) if row else 0


@pytest.fixture
def team(db_admin: psycopg.Connection[Any]) -> Iterator[Team]:
    yield from make_team(db_admin)


# ---- happy paths ------------------------------------------------------------------------------


def test_create_read_patch_delete(served: Served, team: Team, db_admin: Any) -> None:
    with as_user(served, "member") as client:
        created = client.post(
            "/tasks",
            json={
                "project_id": team.project,
                "title": "  Write the launch post  ",
                "description": "With screenshots",
                "priority": 4,
                "assignee_id": ADMIN,
                "due_date": "2030-01-31",
            },
        )
        task = ok(created, 201)
        assert created.headers["ETag"] == '"1"'
        assert task["version"] == 1
        assert task["workspace_id"] == team.workspace
        assert task["title"] == "Write the launch post"
        assert task["status"] == "todo" and task["completed_at"] is None
        assert task["created_by"] == MEMBER
        assert task["due_date"] == "2030-01-31" and task["assignee_id"] == ADMIN
        assert set(task) == {
            "id", "workspace_id", "project_id", "title", "description", "status", "priority",
            "assignee_id", "due_date", "position", "version", "completed_at", "created_by",
            "created_at", "updated_at",
        }  # fmt: skip

        read = client.get(f"/tasks/{task['id']}")
        assert ok(read) == task
        assert read.headers["ETag"] == '"1"'

        patched = client.patch(
            f"/tasks/{task['id']}",
            json={"status": "done", "assignee_id": None},
            headers={"If-Match": read.headers["ETag"]},
        )
        changed = ok(patched)
        assert patched.headers["ETag"] == '"2"'
        assert changed["version"] == 2 and changed["status"] == "done"
        assert changed["completed_at"] is not None and changed["assignee_id"] is None
        assert changed["title"] == task["title"]

        # version in the body instead of If-Match; weak and unquoted forms of If-Match
        again = ok(client.patch(f"/tasks/{task['id']}", json={"status": "todo", "version": 2}))
        assert again["version"] == 3 and again["completed_at"] is None
        weak = client.patch(
            f"/tasks/{task['id']}", json={"priority": 0}, headers={"If-Match": 'W/"3"'}
        )
        assert ok(weak)["version"] == 4
        bare = client.patch(
            f"/tasks/{task['id']}", json={"position": 1.5}, headers={"If-Match": "4"}
        )
        assert ok(bare)["position"] == 1.5 and bare.headers["ETag"] == '"5"'

        deleted = client.delete(f"/tasks/{task['id']}")
        assert ok(deleted) == {"id": task["id"], "deleted": True}
        assert_error(client.get(f"/tasks/{task['id']}"), 404, "NOT_FOUND")
    assert task_row(db_admin, task["id"]) is None


def test_patch_can_move_a_task_within_its_workspace(
    served: Served, team: Team, db_admin: Any
) -> None:
    task = add_task(db_admin, team.project)
    with as_user(served, "owner") as client:
        moved = ok(
            client.patch(
                f"/tasks/{task['id']}", json={"project_id": team.other_project, "version": 1}
            )
        )
        assert moved["project_id"] == team.other_project
        # ACME is the owner's too, but tasks never change workspace
        other = client.patch(
            f"/tasks/{task['id']}",
            json={"project_id": ACME_PROJECTS[0]},
            headers={"If-Match": '"2"'},
        )
        body = assert_error(other, 422, "VALIDATION_FAILED")
        assert body["error"]["details"][0]["loc"] == ["body", "project_id"]
    assert task_row(db_admin, task["id"])["version"] == 2  # type: ignore[index]


def test_delete_with_if_match(served: Served, team: Team, db_admin: Any) -> None:
    task = add_task(db_admin, team.project)
    with as_user(served, "owner") as client:
        stale = client.delete(f"/tasks/{task['id']}", headers={"If-Match": '"7"'})
        assert_error(stale, 412, "PRECONDITION_FAILED")
        assert task_row(db_admin, task["id"]) is not None
        assert_error(
            client.delete(f"/tasks/{task['id']}", headers={"If-Match": "soon"}),
            422,
            "VALIDATION_FAILED",
        )
        ok(client.delete(f"/tasks/{task['id']}", headers={"If-Match": '"1"'}))
        assert_error(client.delete(f"/tasks/{task['id']}"), 404, "NOT_FOUND")
    assert task_row(db_admin, task["id"]) is None


def test_every_write_moves_its_workspace_task_version(
    served: Served, team: Team, db_admin: Any
) -> None:
    start = task_version(db_admin, team.workspace)
    with as_user(served, "member") as client:
        task = ok(client.post("/tasks", json={"project_id": team.project, "title": "cached"}), 201)
        assert task_version(db_admin, team.workspace) == start + 1
        ok(client.patch(f"/tasks/{task['id']}", json={"title": "cached 2", "version": 1}))
        assert task_version(db_admin, team.workspace) == start + 2
        failed = client.patch(f"/tasks/{task['id']}", json={"title": "stale", "version": 1})
        assert_error(failed, 409, "VERSION_CONFLICT")
        ok(client.get(f"/tasks/{task['id']}"))
        ok(client.get("/tasks", params={"workspace_id": team.workspace}))
        # refused writes and reads move nothing
        assert task_version(db_admin, team.workspace) == start + 2
        ok(client.delete(f"/tasks/{task['id']}"))
        assert task_version(db_admin, team.workspace) == start + 3


def test_the_task_version_is_readable_by_members_only(
    database_url: str, team: Team, db_admin: Any
) -> None:
    from tests.rls_helpers import acting_as, settings_for

    add_task(db_admin, team.project)
    settings = settings_for(database_url)
    sql = "select private.task_version(%s)"
    with acting_as(settings, uuid.UUID(MEMBER)) as tx:
        assert tx.value(sql, (team.workspace,)) == task_version(db_admin, team.workspace) > 0
    with acting_as(settings, uuid.UUID(OUTSIDER)) as tx:
        assert tx.value(sql, (team.workspace,)) is None
    # The table itself is out of reach of API roles.
    with acting_as(settings, uuid.UUID(MEMBER)) as tx, pytest.raises(psycopg.Error) as refused:
        tx.value("select version from private.workspace_task_versions")
    assert refused.value.sqlstate == "42501"


def test_openapi_documents_every_route(served: Served) -> None:
    with served.client() as client:
        doc = client.get("/tasks/openapi.json").json()
    assert set(doc["paths"]) == {"/tasks", "/tasks/{id}", "/tasks/bulk", "/tasks/openapi.json"}
    assert set(doc["paths"]["/tasks"]) == {"get", "post"}
    assert set(doc["paths"]["/tasks/{id}"]) == {"get", "patch", "delete"}
    assert doc["paths"]["/tasks"]["post"]["x-rate-limit"]["policy"] == "write"
    assert doc["paths"]["/tasks"]["get"]["x-rate-limit"]["policy"] == "read"


# ---- the permission matrix --------------------------------------------------------------------

ROLES = ["owner", "admin", "member", "viewer", "outsider", "anon"]

# role -> (list, read, create, patch, delete someone else's task, bulk update)
MATRIX: dict[str, tuple[Any, ...]] = {
    "owner": (200, 200, 201, 200, 200, 200),
    "admin": (200, 200, 201, 200, 200, 200),
    "member": (200, 200, 201, 200, (403, "FORBIDDEN"), 200),
    "viewer": (200, 200, (403, "FORBIDDEN"), (403, "FORBIDDEN"), (403, "FORBIDDEN"), (403, "FORBIDDEN")),
    "outsider": (
        (404, "NOT_FOUND"), (404, "NOT_FOUND"), (422, "VALIDATION_FAILED"), (404, "NOT_FOUND"),
        (404, "NOT_FOUND"), (404, "NOT_FOUND"),
    ),
    "anon": tuple([(401, "UNAUTHENTICATED")] * 6),
}  # fmt: skip


def _expect(response: Any, expected: Any) -> None:
    if isinstance(expected, int):
        ok(response, expected)
    else:
        assert_error(response, *expected)


@pytest.mark.parametrize("role", ROLES)
def test_permission_matrix(served: Served, team: Team, db_admin: Any, role: str) -> None:
    listing, reading, creating, patching, deleting, bulk = MATRIX[role]
    task = add_task(db_admin, team.project, created_by=OWNER)
    doomed = add_task(db_admin, team.project, created_by=OWNER)
    bulked = add_task(db_admin, team.project, created_by=OWNER)
    with as_user(served, role) as client:
        _expect(client.get("/tasks", params={"project_id": team.project}), listing)
        _expect(client.get("/tasks", params={"workspace_id": team.workspace}), listing)
        _expect(client.get(f"/tasks/{task['id']}"), reading)
        created = client.post("/tasks", json={"project_id": team.project, "title": f"by {role}"})
        _expect(created, creating)
        patched = client.patch(
            f"/tasks/{task['id']}", json={"title": "x"}, headers={"If-Match": '"1"'}
        )
        _expect(patched, patching)
        _expect(client.delete(f"/tasks/{doomed['id']}"), deleting)
        ops = [{"op": "update", "id": str(bulked["id"]), "version": 1, "data": {"priority": 0}}]
        _expect(client.post("/tasks/bulk", json={"ops": ops}), bulk)
    assert (task_row(db_admin, task["id"])["version"] == 2) is (patching == 200)  # type: ignore[index]
    assert (task_row(db_admin, doomed["id"]) is None) is (deleting == 200)
    assert (task_row(db_admin, bulked["id"])["priority"] == 0) is (bulk == 200)  # type: ignore[index]
    if creating == 422:
        assert created.json()["error"]["details"][0]["loc"] == ["body", "project_id"]


@pytest.mark.parametrize("role", ["owner", "admin", "member"])
def test_writers_delete_the_tasks_they_created(
    served: Served, team: Team, db_admin: Any, role: str
) -> None:
    mine = add_task(db_admin, team.project, created_by=SEED_USERS[role])
    with as_user(served, role) as client:
        assert ok(client.delete(f"/tasks/{mine['id']}"))["deleted"] is True
    assert task_row(db_admin, mine["id"]) is None


def test_a_task_of_another_workspace_is_not_found(
    served: Served, team: Team, db_admin: Any
) -> None:
    task = add_task(db_admin, team.project)
    with as_user(served, "outsider") as client:
        for response in (
            client.get(f"/tasks/{task['id']}"),
            client.patch(f"/tasks/{task['id']}", json={"title": "x", "version": 1}),
            client.patch(f"/tasks/{task['id']}", json={"title": "x", "version": 9}),
            client.delete(f"/tasks/{task['id']}"),
            client.get(f"/tasks/{uuid.uuid4()}"),
        ):
            body = assert_error(response, 404, "NOT_FOUND")
            assert str(task["title"]) not in response.text
            assert body["error"]["message"] == "Task not found"


# ---- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"title": "no project"}, ["body", "project_id"]),
        ({"project_id": "nope", "title": "x"}, ["body", "project_id"]),
        ({"project_id": "{p}"}, ["body", "title"]),
        ({"project_id": "{p}", "title": "   "}, ["body", "title"]),
        ({"project_id": "{p}", "title": "x" * 501}, ["body", "title"]),
        ({"project_id": "{p}", "title": "x", "status": "doing"}, ["body", "status"]),
        ({"project_id": "{p}", "title": "x", "status": None}, ["body", "status"]),
        ({"project_id": "{p}", "title": "x", "priority": 5}, ["body", "priority"]),
        ({"project_id": "{p}", "title": "x", "priority": "high"}, ["body", "priority"]),
        ({"project_id": "{p}", "title": "x", "due_date": "tomorrow"}, ["body", "due_date"]),
        ({"project_id": "{p}", "title": "x", "workspace_id": "{p}"}, ["body", "workspace_id"]),
        ({"project_id": "{p}", "title": "x", "version": 3}, ["body", "version"]),
        ({"project_id": "{p}", "title": "x", "assignee_id": OUTSIDER}, ["body", "assignee_id"]),
        ({"project_id": str(uuid.uuid4()), "title": "x"}, ["body", "project_id"]),
    ],
)
def test_create_refuses_bad_input(
    served: Served, team: Team, body: dict[str, Any], loc: Any
) -> None:
    payload = {
        k: v.replace("{p}", team.project) if isinstance(v, str) else v for k, v in body.items()
    }
    with as_user(served, "member") as client:
        response = client.post("/tasks", json=payload)
    body = assert_error(response, 422, "VALIDATION_FAILED")
    assert loc in [d["loc"] for d in body["error"]["details"]], body


def test_create_refuses_an_infinite_position(served: Served, team: Team) -> None:
    raw = f'{{"project_id": "{team.project}", "title": "x", "position": 1e999}}'
    with as_user(served, "member") as client:
        response = client.post("/tasks", content=raw, headers={"Content-Type": "application/json"})
    body = assert_error(response, 422, "VALIDATION_FAILED")
    assert body["error"]["details"][0]["loc"] == ["body", "position"]


def test_create_in_a_project_of_another_workspace_is_a_422(served: Served) -> None:
    with as_user(served, "member") as client:
        response = client.post(
            "/tasks", json={"project_id": "b0000000-0000-4000-8000-000000000004", "title": "x"}
        )
    body = assert_error(response, 422, "VALIDATION_FAILED")
    assert body["error"]["message"] == "Project not found"
    assert body["error"]["details"][0]["loc"] == ["body", "project_id"]


@pytest.mark.parametrize(
    ("json", "headers", "loc"),
    [
        ({"title": "x"}, {}, ["header", "If-Match"]),
        ({"title": "x"}, {"If-Match": "*"}, ["header", "If-Match"]),
        ({"title": "x"}, {"If-Match": '"1", "2"'}, ["header", "If-Match"]),
        ({"title": "x"}, {"If-Match": '"0"'}, ["header", "If-Match"]),
        ({"title": "x", "version": 2}, {"If-Match": '"1"'}, ["body", "version"]),
        ({"version": 1}, {}, ["body"]),
        ({}, {"If-Match": '"1"'}, ["body"]),
        ({"title": None, "version": 1}, {}, ["body", "title"]),
        ({"status": None, "version": 1}, {}, ["body", "status"]),
        ({"priority": -1, "version": 1}, {}, ["body", "priority"]),
        ({"version": 0, "title": "x"}, {}, ["body", "version"]),
        ({"created_by": OWNER, "version": 1}, {}, ["body", "created_by"]),
        ({"completed_at": None, "version": 1}, {}, ["body", "completed_at"]),
        ({"assignee_id": OUTSIDER, "version": 1}, {}, ["body", "assignee_id"]),
        ({"project_id": str(uuid.uuid4()), "version": 1}, {}, ["body", "project_id"]),
    ],
)
def test_patch_refuses_bad_input(
    served: Served, team: Team, db_admin: Any, json: Any, headers: dict[str, str], loc: list[str]
) -> None:
    task = add_task(db_admin, team.project)
    with as_user(served, "member") as client:
        body = assert_error(
            client.patch(f"/tasks/{task['id']}", json=json, headers=headers),
            422,
            "VALIDATION_FAILED",
        )
    assert loc in [d["loc"] for d in body["error"]["details"]], body
    assert task_row(db_admin, task["id"]) == task


def test_bad_ids_in_the_path(served: Served) -> None:
    with as_user(served, "owner") as client:
        for response in (
            client.get("/tasks/not-a-uuid"),
            client.patch("/tasks/123", json={"title": "x", "version": 1}),
            client.delete("/tasks/%27%3B%20drop%20table%20tasks"),
        ):
            body = assert_error(response, 422, "VALIDATION_FAILED")
            assert body["error"]["details"][0]["loc"] == ["path", "id"]


# ---- optimistic concurrency -------------------------------------------------------------------


def test_stale_if_match_is_a_412_and_changes_nothing(
    served: Served, team: Team, db_admin: Any
) -> None:
    task = add_task(db_admin, team.project, title="original")
    with as_user(served, "admin") as client:
        first = client.patch(
            f"/tasks/{task['id']}", json={"title": "first"}, headers={"If-Match": '"1"'}
        )
        assert ok(first)["version"] == 2 and first.headers["ETag"] == '"2"'
        before = task_row(db_admin, task["id"])
        stale = client.patch(
            f"/tasks/{task['id']}",
            json={"title": "second", "status": "done"},
            headers={"If-Match": '"1"'},
        )
        body = assert_error(stale, 412, "PRECONDITION_FAILED")  # RFC 9110 13.1.1
        assert "version 2" in body["error"]["message"]
        assert "ETag" not in stale.headers
        assert task_row(db_admin, task["id"]) == before
        current = client.get(f"/tasks/{task['id']}")
        assert current.headers["ETag"] == '"2"' and ok(current)["title"] == "first"


def test_twenty_concurrent_patches_with_one_version_make_one_change(
    served: Served, team: Team, db_admin: Any
) -> None:
    task = add_task(db_admin, team.project)
    barrier = threading.Barrier(20)
    responses: list[Any] = [None] * 20

    def patch(i: int) -> None:
        with as_user(served, "member") as client:
            barrier.wait()
            responses[i] = client.patch(
                f"/tasks/{task['id']}", json={"title": f"writer {i}"}, headers={"If-Match": '"1"'}
            )

    threads = [threading.Thread(target=patch, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [412] * 19, [
        r.text for r in responses if r.status_code not in (200, 412)
    ]
    assert all(
        r.json()["error"]["code"] == "PRECONDITION_FAILED"
        for r in responses
        if r.status_code == 412
    )
    winner = next(r for r in responses if r.status_code == 200).json()["data"]
    row = task_row(db_admin, task["id"])
    assert row is not None and row["version"] == 2 and row["title"] == winner["title"]
    events = db_admin.execute(
        "select count(*) from public.task_events where task_id = %s and action = 'update'",
        (task["id"],),
    ).fetchone()
    assert events == (1,)


# ---- idempotency ------------------------------------------------------------------------------


def test_idempotent_create_replays_and_refuses_another_body(
    served: Served, team: Team, db_admin: Any
) -> None:
    key = f"create-{uuid.uuid4()}"
    payload = {"project_id": team.project, "title": f"once {key}"}
    with as_user(served, "member") as client:
        first = client.post("/tasks", json=payload, headers={"Idempotency-Key": key})
        task = ok(first, 201)
        assert "Idempotent-Replayed" not in first.headers
        again = client.post("/tasks", json=payload, headers={"Idempotency-Key": key})
        assert ok(again, 201) == task
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.headers["ETag"] == '"1"'
        other = client.post(
            "/tasks", json={**payload, "title": "another"}, headers={"Idempotency-Key": key}
        )
        assert_error(other, 422, "IDEMPOTENCY_KEY_REUSED")
    count = db_admin.execute(
        "select count(*) from public.tasks where title = %s", (payload["title"],)
    ).fetchone()
    assert count == (1,)


def test_idempotent_patch_replays_instead_of_conflicting(
    served: Served, team: Team, db_admin: Any
) -> None:
    task = add_task(db_admin, team.project)
    key = f"patch-{uuid.uuid4()}"
    with as_user(served, "member") as client:
        url, body = f"/tasks/{task['id']}", {"status": "done", "version": 1}
        first = ok(client.patch(url, json=body, headers={"Idempotency-Key": key}))
        replay = client.patch(url, json=body, headers={"Idempotency-Key": key})
        assert ok(replay) == first and replay.headers["Idempotent-Replayed"] == "true"
        assert replay.headers["ETag"] == '"2"'
        assert_error(client.patch(url, json=body), 409, "VERSION_CONFLICT")  # no key: really stale
    assert task_row(db_admin, task["id"])["version"] == 2  # type: ignore[index]


def test_twenty_concurrent_identical_creates_make_one_row(
    served: Served, team: Team, db_admin: Any
) -> None:
    key = f"race-{uuid.uuid4()}"
    payload = {"project_id": team.project, "title": f"race {key}"}
    barrier = threading.Barrier(20)
    responses: list[Any] = [None] * 20

    def create(i: int) -> None:
        with as_user(served, "member") as client:
            barrier.wait()
            responses[i] = client.post("/tasks", json=payload, headers={"Idempotency-Key": key})

    threads = [threading.Thread(target=create, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    created = [r for r in responses if r.status_code == 201]
    busy = [r for r in responses if r.status_code != 201]
    for response in busy:  # the design allows "still in progress" instead of waiting
        assert_error(response, 409, "IDEMPOTENCY_KEY_IN_USE")
    assert created, [r.text for r in responses]
    assert len({r.json()["data"]["id"] for r in created}) == 1
    assert sum(1 for r in created if "Idempotent-Replayed" not in r.headers) == 1
    count = db_admin.execute(
        "select count(*) from public.tasks where title = %s", (payload["title"],)
    ).fetchone()
    assert count == (1,)
