"""The comments function over real HTTP: CRUD, keyset pagination, author and admin rules."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import httpx
import pytest

from tests.envelope import fails, ok_body
from tests.fixtures.server import SEED_USERS, Served, as_user

ROLES = ["owner", "admin", "member", "viewer", "outsider", "anon"]
# Seed: every third Acme task has two comments (task 3: comments ...6 and ...7).
ACME_TASK_3 = "c0000000-0000-4000-8000-000000000003"
OUTPOST_TASK = "c0000000-0000-4000-8000-000000001001"


def add_comment(db_admin, task: str, author: str, body: str = "seeded", at: str = "now()") -> str:
    """A comment written directly (setup only); `at` is an SQL expression for created_at."""
    return str(
        db_admin.execute(
            "insert into public.task_comments (task_id, author_id, body, created_at)"
            f" values (%s, %s, %s, {at}) returning id",
            (task, SEED_USERS.get(author, author), body),
        ).fetchone()[0]
    )


def read_all(client: httpx.Client, task: str, limit: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"task_id": task, "limit": limit}
        if cursor:
            params["cursor"] = cursor
        body = ok_body(client.get("/comments", params=params))
        rows += body["data"]
        cursor = body["meta"]["pagination"]["next_cursor"]
        if cursor is None:
            return rows


# ---- happy path -----------------------------------------------------------------------


def test_post_list_edit_delete(served: Served, task: str) -> None:
    with as_user(served, "member") as member:
        created = ok_body(member.post("/comments", json={"task_id": task, "body": " Hello "}), 201)
        comment = created["data"]
        assert comment["body"] == "Hello"
        assert comment["author_id"] == SEED_USERS["member"]
        assert comment["task_id"] == task

        listed = ok_body(member.get("/comments", params={"task_id": task}))
        assert listed["data"] == [comment]
        assert listed["meta"]["pagination"] == {"next_cursor": None, "limit": 50}

        edited = ok_body(member.patch(f"/comments/{comment['id']}", json={"body": "Hello again"}))
        assert edited["data"]["body"] == "Hello again"
        assert edited["data"]["created_at"] == comment["created_at"]
        assert edited["data"]["updated_at"] >= comment["updated_at"]

        gone = ok_body(member.delete(f"/comments/{comment['id']}"))
        assert gone["data"] == {"id": comment["id"], "deleted": True}
        assert ok_body(member.get("/comments", params={"task_id": task}))["data"] == []
        fails(member.delete(f"/comments/{comment['id']}"), 404, "NOT_FOUND")


def test_seed_comments_are_listed_oldest_first(served: Served) -> None:
    with as_user(served, "viewer") as viewer:
        data = ok_body(viewer.get("/comments", params={"task_id": ACME_TASK_3}))["data"]
    seed = [c for c in data if c["id"].startswith("d0000000-")]
    assert [c["id"] for c in seed] == [
        "d0000000-0000-4000-8000-000000000006",
        "d0000000-0000-4000-8000-000000000007",
    ]
    keys = [(c["created_at"], c["id"]) for c in data]
    assert keys == sorted(keys)


# ---- pagination -----------------------------------------------------------------------


def test_pages_neither_skip_nor_repeat_while_comments_are_added(
    served: Served, task: str, db_admin
) -> None:
    # Ten comments, four of them sharing one created_at: the id breaks the tie.
    for n in range(6):
        add_comment(db_admin, task, "owner", f"old {n}", at=f"now() - interval '{60 - n} minutes'")
    for n in range(4):
        add_comment(db_admin, task, "admin", f"tie {n}", at="now() - interval '30 minutes'")
    expected = [
        str(row[0])
        for row in db_admin.execute(
            "select id from public.task_comments where task_id = %s order by created_at, id",
            (task,),
        )
    ]
    seen: list[str] = []
    added: list[str] = []
    with as_user(served, "member") as member:
        cursor = None
        while True:
            params: dict[str, Any] = {"task_id": task, "limit": 3}
            if cursor:
                params["cursor"] = cursor
            body = ok_body(member.get("/comments", params=params))
            assert len(body["data"]) <= 3
            seen += [c["id"] for c in body["data"]]
            cursor = body["meta"]["pagination"]["next_cursor"]
            assert body["meta"]["pagination"]["limit"] == 3
            if cursor is None:
                break
            if len(added) < 3:  # someone comments while we page
                new = ok_body(member.post("/comments", json={"task_id": task, "body": "new"}), 201)
                added.append(new["data"]["id"])
    assert len(seen) == len(set(seen)), "a row was repeated"
    assert seen == expected + added, "a row was skipped or out of order"


def test_default_and_maximum_page_sizes(served: Served, task: str, db_admin) -> None:
    db_admin.execute(
        "insert into public.task_comments (task_id, author_id, body, created_at)"
        " select %s, %s, 'c' || n, now() - (200 - n) * interval '1 second'"
        " from generate_series(1, 120) n",
        (task, SEED_USERS["owner"]),
    )
    with as_user(served, "viewer") as viewer:
        first = ok_body(viewer.get("/comments", params={"task_id": task}))
        assert len(first["data"]) == 50
        assert first["meta"]["pagination"]["limit"] == 50
        assert first["meta"]["pagination"]["next_cursor"]
        biggest = ok_body(viewer.get("/comments", params={"task_id": task, "limit": 100}))
        assert len(biggest["data"]) == 100
        everything = read_all(viewer, task, 50)
    assert [c["body"] for c in everything] == [f"c{n}" for n in range(1, 121)]


@pytest.mark.parametrize(
    ("params", "loc"),
    [
        ({}, ["query", "task_id"]),
        ({"task_id": "nope"}, ["query", "task_id"]),
        ({"task_id": ACME_TASK_3, "limit": 0}, ["query", "limit"]),
        ({"task_id": ACME_TASK_3, "limit": 101}, ["query", "limit"]),
        ({"task_id": ACME_TASK_3, "limit": "ten"}, ["query", "limit"]),
        ({"task_id": ACME_TASK_3, "cursor": "garbage"}, ["query", "cursor"]),
        ({"task_id": ACME_TASK_3, "bogus": "1"}, ["query", "bogus"]),
    ],
)
def test_bad_list_queries_are_a_422(served: Served, params: dict[str, Any], loc: list) -> None:
    with as_user(served, "member") as member:
        error = fails(member.get("/comments", params=params), 422, "VALIDATION_FAILED")
    assert loc in [d["loc"] for d in error["details"]], error


def test_a_cursor_only_works_for_the_task_that_made_it(served: Served, task: str, db_admin) -> None:
    for n in range(3):
        add_comment(db_admin, task, "owner", f"c{n}")
    with as_user(served, "member") as member:
        page1 = ok_body(member.get("/comments", params={"task_id": task, "limit": 1}))
        cursor = page1["meta"]["pagination"]["next_cursor"]
        fails(
            member.get("/comments", params={"task_id": ACME_TASK_3, "cursor": cursor}),
            422,
            "VALIDATION_FAILED",
        )
        # A cursor of ours with forged values is refused the same way, never a 500.
        padded = cursor + "=" * (-len(cursor) % 4)
        fingerprint, values = json.loads(base64.urlsafe_b64decode(padded))
        for forged_values in (["yesterday", values[1]], [values[0], "not-a-uuid"], [1, 2]):
            forged = (
                base64.urlsafe_b64encode(json.dumps([fingerprint, forged_values]).encode())
                .rstrip(b"=")
                .decode()
            )
            fails(
                member.get("/comments", params={"task_id": task, "cursor": forged}),
                422,
                "VALIDATION_FAILED",
            )


# ---- the permission matrix ------------------------------------------------------------

OK, CREATED = (200, None), (201, None)
FORBIDDEN, NOT_FOUND, UNAUTH = (403, "FORBIDDEN"), (404, "NOT_FOUND"), (401, "UNAUTHENTICATED")
NON_MEMBERS = dict(outsider=NOT_FOUND, anon=UNAUTH)

# Actions on a comment written by the member.
MATRIX: dict[str, dict[str, tuple[int, str | None]]] = {
    "list": dict(owner=OK, admin=OK, member=OK, viewer=OK, **NON_MEMBERS),
    "create": dict(owner=CREATED, admin=CREATED, member=CREATED, viewer=FORBIDDEN, **NON_MEMBERS),
    "edit": dict(owner=FORBIDDEN, admin=FORBIDDEN, member=OK, viewer=FORBIDDEN, **NON_MEMBERS),
    "delete": dict(owner=OK, admin=OK, member=OK, viewer=FORBIDDEN, **NON_MEMBERS),
}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", list(MATRIX))
def test_permission_matrix(served: Served, task: str, db_admin, action: str, role: str) -> None:
    comment = add_comment(db_admin, task, "member", "the member's words")
    status, code = MATRIX[action][role]
    with as_user(served, role) as client:
        response = {
            "list": lambda: client.get("/comments", params={"task_id": task}),
            "create": lambda: client.post("/comments", json={"task_id": task, "body": "mine"}),
            "edit": lambda: client.patch(f"/comments/{comment}", json={"body": "rewritten"}),
            "delete": lambda: client.delete(f"/comments/{comment}"),
        }[action]()
    if code is None:
        ok_body(response, status)
    else:
        fails(response, status, code)
        assert "the member's words" not in response.text
    rows = db_admin.execute(
        "select body from public.task_comments where task_id = %s order by created_at", (task,)
    ).fetchall()
    bodies = [r[0] for r in rows]
    if action == "create":
        assert bodies == (
            ["the member's words", "mine"] if code is None else ["the member's words"]
        )
    elif action == "edit":
        assert bodies == (["rewritten"] if code is None else ["the member's words"])
    elif action == "delete":
        assert bodies == ([] if code is None else ["the member's words"])


def test_author_and_admin_rules(served: Served, task: str, db_admin) -> None:
    by_admin = add_comment(db_admin, task, "admin", "admin's")
    by_owner = add_comment(db_admin, task, "owner", "owner's")
    by_member = add_comment(db_admin, task, "member", "member's")
    with (
        as_user(served, "owner") as owner,
        as_user(served, "admin") as admin,
        as_user(served, "member") as member,
    ):
        # Authors edit their own; nobody else rewrites them, not even owners.
        ok_body(admin.patch(f"/comments/{by_admin}", json={"body": "admin's, edited"}))
        ok_body(owner.patch(f"/comments/{by_owner}", json={"body": "owner's, edited"}))
        error = fails(admin.patch(f"/comments/{by_owner}", json={"body": "x"}), 403, "FORBIDDEN")
        assert "author" in error["message"]
        fails(member.patch(f"/comments/{by_admin}", json={"body": "x"}), 403, "FORBIDDEN")
        # A member deletes only their own; admins delete anyone's, the owner's included.
        fails(member.delete(f"/comments/{by_admin}"), 403, "FORBIDDEN")
        ok_body(admin.delete(f"/comments/{by_owner}"))
        ok_body(owner.delete(f"/comments/{by_admin}"))
        ok_body(member.delete(f"/comments/{by_member}"))
    left = db_admin.execute(
        "select count(*) from public.task_comments where task_id = %s", (task,)
    ).fetchone()[0]
    assert left == 0


def test_a_demoted_author_may_no_longer_edit_or_delete(
    served: Served, team: str, task: str, db_admin
) -> None:
    mine = add_comment(db_admin, task, "member", "before")
    db_admin.execute(
        "update public.workspace_members set role = 'viewer' where workspace_id = %s"
        " and user_id = %s",
        (team, SEED_USERS["member"]),
    )
    with as_user(served, "member") as member:
        assert ok_body(member.get("/comments", params={"task_id": task}))["data"][0]["id"] == mine
        fails(member.patch(f"/comments/{mine}", json={"body": "after"}), 403, "FORBIDDEN")
        fails(member.delete(f"/comments/{mine}"), 403, "FORBIDDEN")
    body = db_admin.execute(
        "select body from public.task_comments where id = %s", (mine,)
    ).fetchone()[0]
    assert body == "before"


def test_other_workspaces_and_missing_rows_are_not_found(served: Served) -> None:
    with as_user(served, "owner") as owner, as_user(served, "outsider") as outsider:
        fails(owner.get("/comments", params={"task_id": OUTPOST_TASK}), 404, "NOT_FOUND")
        fails(
            owner.post("/comments", json={"task_id": OUTPOST_TASK, "body": "hi"}),
            404,
            "NOT_FOUND",
        )
        fails(owner.get("/comments", params={"task_id": str(uuid.uuid4())}), 404, "NOT_FOUND")
        fails(owner.patch(f"/comments/{uuid.uuid4()}", json={"body": "x"}), 404, "NOT_FOUND")
        fails(owner.delete(f"/comments/{uuid.uuid4()}"), 404, "NOT_FOUND")
        seed_comment = "d0000000-0000-4000-8000-000000000006"
        fails(outsider.patch(f"/comments/{seed_comment}", json={"body": "x"}), 404, "NOT_FOUND")
        fails(outsider.delete(f"/comments/{seed_comment}"), 404, "NOT_FOUND")
        fails(outsider.get("/comments", params={"task_id": ACME_TASK_3}), 404, "NOT_FOUND")


@pytest.mark.parametrize(
    ("method", "path", "body", "loc"),
    [
        ("post", "/comments", {"task_id": ACME_TASK_3}, ["body", "body"]),
        ("post", "/comments", {"task_id": ACME_TASK_3, "body": "   "}, ["body", "body"]),
        ("post", "/comments", {"task_id": ACME_TASK_3, "body": "x" * 10001}, ["body", "body"]),
        ("post", "/comments", {"task_id": "nope", "body": "x"}, ["body", "task_id"]),
        (
            "post",
            "/comments",
            {"task_id": ACME_TASK_3, "body": "x", "author_id": SEED_USERS["owner"]},
            ["body", "author_id"],
        ),
        ("patch", "/comments/d0000000-0000-4000-8000-000000000006", {}, ["body", "body"]),
        (
            "patch",
            "/comments/d0000000-0000-4000-8000-000000000006",
            {"body": "x", "task_id": ACME_TASK_3},
            ["body", "task_id"],
        ),
        ("patch", "/comments/nope", {"body": "x"}, ["path", "id"]),
    ],
)
def test_bad_bodies_are_a_422(
    served: Served, method: str, path: str, body: dict[str, Any], loc: list
) -> None:
    with as_user(served, "member") as member:
        error = fails(getattr(member, method)(path, json=body), 422, "VALIDATION_FAILED")
    assert loc in [d["loc"] for d in error["details"]], error


def test_post_is_idempotent(served: Served, task: str, db_admin) -> None:
    headers = {"Idempotency-Key": f"comment-{uuid.uuid4()}"}
    with as_user(served, "member") as member:
        first = member.post("/comments", json={"task_id": task, "body": "once"}, headers=headers)
        again = member.post("/comments", json={"task_id": task, "body": "once"}, headers=headers)
    assert ok_body(first, 201)["data"] == ok_body(again, 201)["data"]
    assert again.headers["Idempotent-Replayed"] == "true"
    count = db_admin.execute(
        "select count(*) from public.task_comments where task_id = %s", (task,)
    ).fetchone()[0]
    assert count == 1
