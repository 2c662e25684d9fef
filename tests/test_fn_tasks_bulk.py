"""POST /tasks/bulk: up to 100 ops in one transaction, all or nothing, failures name the op."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from tests.fixtures.server import OUTPOST_PROJECT, Served, as_user
from tests.test_fn_tasks import (
    ADMIN,
    MEMBER,
    OUTSIDER,
    Team,
    add_task,
    assert_error,
    make_team,
    ok,
    task_row,
    task_version,
)


@pytest.fixture
def team(db_admin: psycopg.Connection[Any]) -> Iterator[Team]:
    yield from make_team(db_admin)


def _count(db: psycopg.Connection[Any], title_prefix: str) -> int:
    row = db.execute(
        "select count(*) from public.tasks where title like %s", (f"{title_prefix}%",)
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_mixed_ops_apply_in_order(served: Served, team: Team, db_admin: Any) -> None:
    edited = add_task(db_admin, team.project, title="edit me")
    doomed = add_task(db_admin, team.project, title="delete me")
    tag = uuid.uuid4().hex[:8]
    ops = [
        {"op": "create", "data": {"project_id": team.project, "title": f"{tag} one"}},
        {"op": "update", "id": str(edited["id"]), "version": 1, "data": {"status": "done"}},
        {"op": "update", "id": str(edited["id"]), "version": 2, "data": {"title": "edited twice"}},
        {"op": "delete", "id": str(doomed["id"])},
        {
            "op": "create",
            "data": {"project_id": team.other_project, "title": f"{tag} two", "assignee_id": ADMIN},
        },
    ]
    start = task_version(db_admin, team.workspace)
    with as_user(served, "admin") as client:
        results = ok(client.post("/tasks/bulk", json={"ops": ops}))["results"]
    assert [(r["index"], r["op"]) for r in results] == [
        (0, "create"), (1, "update"), (2, "update"), (3, "delete"), (4, "create"),
    ]  # fmt: skip
    assert results[0]["task"]["title"] == f"{tag} one" and results[0]["task"]["version"] == 1
    assert results[0]["id"] == results[0]["task"]["id"]
    assert results[2]["task"]["version"] == 3 and results[2]["task"]["status"] == "done"
    assert results[3] == {"index": 3, "op": "delete", "id": str(doomed["id"]), "task": None}
    assert results[4]["task"]["assignee_id"] == ADMIN
    assert task_row(db_admin, edited["id"])["title"] == "edited twice"  # type: ignore[index]
    assert task_row(db_admin, doomed["id"]) is None
    assert _count(db_admin, tag) == 2
    assert task_version(db_admin, team.workspace) == start + len(ops)  # one per statement


def _bad_ops(
    team: Team, db: Any, tag: str
) -> dict[str, tuple[dict[str, Any], int, str, list[Any]]]:
    """A bad op of each kind, with the status, code and loc it must produce at index 3."""
    theirs = add_task(db, team.project, created_by=ADMIN)  # the member may not delete it
    at = ["body", "ops", 3]
    return {
        "missing task": ({"op": "delete", "id": str(uuid.uuid4())}, 404, "NOT_FOUND", at),
        "stale version": (
            {"op": "update", "id": str(theirs["id"]), "version": 5, "data": {"title": "x"}},
            409, "VERSION_CONFLICT", at,
        ),
        "forbidden delete": ({"op": "delete", "id": str(theirs["id"])}, 403, "FORBIDDEN", at),
        "assignee not a member": (
            {"op": "create", "data": {"project_id": team.project, "title": f"{tag} bad", "assignee_id": OUTSIDER}},
            422, "VALIDATION_FAILED", [*at, "data", "assignee_id"],
        ),
        "hidden project": (
            {"op": "create", "data": {"project_id": OUTPOST_PROJECT, "title": f"{tag} bad"}},
            422, "VALIDATION_FAILED", [*at, "data", "project_id"],
        ),
        "bad field": (
            {"op": "update", "id": str(theirs["id"]), "version": 1, "data": {"priority": 9}},
            422, "VALIDATION_FAILED", [*at, "update", "data", "priority"],
        ),
    }  # fmt: skip


@pytest.mark.parametrize(
    "kind",
    [
        "missing task",
        "stale version",
        "forbidden delete",
        "assignee not a member",
        "hidden project",
        "bad field",
    ],
)
def test_one_bad_op_changes_nothing(served: Served, team: Team, db_admin: Any, kind: str) -> None:
    tag = uuid.uuid4().hex[:8]
    edited = add_task(db_admin, team.project, created_by=MEMBER)
    doomed = add_task(db_admin, team.project, created_by=MEMBER)
    bad, status, code, loc = _bad_ops(team, db_admin, tag)[kind]
    ops = [
        {"op": "create", "data": {"project_id": team.project, "title": f"{tag} good"}},
        {"op": "update", "id": str(edited["id"]), "version": 1, "data": {"title": "changed"}},
        {"op": "delete", "id": str(doomed["id"])},
        bad,
        {"op": "create", "data": {"project_id": team.project, "title": f"{tag} after"}},
    ]
    start = task_version(db_admin, team.workspace)
    with as_user(served, "member") as client:
        response = client.post("/tasks/bulk", json={"ops": ops})
    body = assert_error(response, status, code)
    assert body["error"]["details"][0]["loc"] == loc, body
    if kind != "bad field":  # validation fails before any op runs; the others name the op
        assert body["error"]["message"].startswith("ops[3]: "), body
    assert _count(db_admin, tag) == 0
    assert task_row(db_admin, edited["id"]) == edited
    assert task_row(db_admin, doomed["id"]) == doomed
    assert task_version(db_admin, team.workspace) == start  # rolled back with the ops


def test_a_hundred_ops_are_fine_and_a_hundred_and_one_are_not(
    served: Served, team: Team, db_admin: Any
) -> None:
    tag = uuid.uuid4().hex[:8]
    ops = [
        {
            "op": "create",
            "data": {"project_id": team.project, "title": f"{tag} {i}", "priority": i % 5},
        }
        for i in range(100)
    ]
    with as_user(served, "member") as client:
        too_many = client.post("/tasks/bulk", json={"ops": [*ops, ops[0]]})
        body = assert_error(too_many, 422, "VALIDATION_FAILED")
        assert body["error"]["details"][0]["loc"] == ["body", "ops"]
        assert _count(db_admin, tag) == 0
        results = ok(client.post("/tasks/bulk", json={"ops": ops}))["results"]
    assert len(results) == 100
    assert [r["task"]["title"] for r in results] == [f"{tag} {i}" for i in range(100)]
    assert _count(db_admin, tag) == 100


@pytest.mark.parametrize(
    ("payload", "loc"),
    [
        ({"ops": []}, ["body", "ops"]),
        ({}, ["body", "ops"]),
        ({"ops": [{"op": "archive", "id": str(uuid.uuid4())}]}, ["body", "ops", 0]),
        ({"ops": [{"id": str(uuid.uuid4())}]}, ["body", "ops", 0]),
        (
            {"ops": [{"op": "update", "id": str(uuid.uuid4()), "data": {"title": "x"}}]},
            ["body", "ops", 0, "update", "version"],
        ),
        (
            {"ops": [{"op": "update", "id": str(uuid.uuid4()), "version": 1, "data": {}}]},
            ["body", "ops", 0, "update", "data"],
        ),
        ({"ops": [{"op": "delete", "id": "nope"}]}, ["body", "ops", 0, "delete", "id"]),
        (
            {"ops": [{"op": "create", "data": {"title": "x"}, "extra": 1}]},
            ["body", "ops", 0, "create", "extra"],
        ),
        ({"ops": "all of them"}, ["body", "ops"]),
    ],
)
def test_bulk_validation(served: Served, payload: dict[str, Any], loc: list[Any]) -> None:
    with as_user(served, "member") as client:
        body = assert_error(client.post("/tasks/bulk", json=payload), 422, "VALIDATION_FAILED")
    assert loc in [d["loc"] for d in body["error"]["details"]], body


def test_bulk_is_idempotent(served: Served, team: Team, db_admin: Any) -> None:
    tag = uuid.uuid4().hex[:8]
    payload = {"ops": [{"op": "create", "data": {"project_id": team.project, "title": f"{tag} x"}}]}
    with as_user(served, "member") as client:
        headers = {"Idempotency-Key": f"bulk-{tag}"}
        first = ok(client.post("/tasks/bulk", json=payload, headers=headers))
        again = client.post("/tasks/bulk", json=payload, headers=headers)
        assert ok(again) == first and again.headers["Idempotent-Replayed"] == "true"
    assert _count(db_admin, tag) == 1
