"""The projects function over real HTTP: CRUD, the archived filter, the permission matrix."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.envelope import fails, ok
from tests.fixtures.server import (
    ACME,
    ACME_PROJECTS,
    OUTPOST,
    OUTPOST_PROJECT,
    SEED_USERS,
    Served,
    as_user,
)

ROLES = ["owner", "admin", "member", "viewer", "outsider", "anon"]


def expect(response: httpx.Response, outcome: tuple[int, str | None]) -> None:
    status, code = outcome
    if code is None:
        ok(response, status)
    else:
        fails(response, status, code)


def make_project(db_admin, ws: str, name: str = "Seeded", archived: bool = False) -> str:
    return str(
        db_admin.execute(
            "insert into public.projects (workspace_id, name, created_by, archived_at)"
            " values (%s, %s, %s, case when %s then now() end) returning id",
            (ws, name, SEED_USERS["owner"], archived),
        ).fetchone()[0]
    )


# ---- happy path -----------------------------------------------------------------------


def test_create_read_update_list_delete(served: Served, team: str) -> None:
    with as_user(served, "member") as member, as_user(served, "admin") as admin:
        created = ok(
            member.post(
                "/projects",
                json={"workspace_id": team, "name": "  Launch  ", "description": "Go live"},
            ),
            201,
        )
        assert created["name"] == "Launch"
        assert created["description"] == "Go live"
        assert created["workspace_id"] == team
        assert created["created_by"] == SEED_USERS["member"]
        assert created["archived"] is False and created["archived_at"] is None
        pid = created["id"]

        assert ok(member.get(f"/projects/{pid}")) == created

        renamed = ok(member.patch(f"/projects/{pid}", json={"name": "Launch v2"}))
        assert renamed["name"] == "Launch v2"
        assert renamed["description"] == "Go live"  # untouched
        assert renamed["updated_at"] >= created["updated_at"]

        cleared = ok(member.patch(f"/projects/{pid}", json={"description": None}))
        assert cleared["description"] is None and cleared["name"] == "Launch v2"

        listed = ok(member.get("/projects", params={"workspace_id": team}))
        assert [p["id"] for p in listed] == [pid]

        assert ok(admin.delete(f"/projects/{pid}")) == {"id": pid, "deleted": True}
        fails(member.get(f"/projects/{pid}"), 404, "NOT_FOUND")
        assert ok(member.get("/projects", params={"workspace_id": team})) == []


def test_list_is_scoped_to_the_workspace_and_oldest_first(served: Served) -> None:
    with as_user(served, "viewer") as viewer, as_user(served, "outsider") as outsider:
        acme = ok(viewer.get("/projects", params={"workspace_id": ACME}))
        outpost = ok(outsider.get("/projects", params={"workspace_id": OUTPOST}))
    assert [p["id"] for p in acme][:3] == ACME_PROJECTS  # seed projects are the oldest
    assert {p["workspace_id"] for p in acme} == {ACME}
    assert [p["id"] for p in outpost][:1] == [OUTPOST_PROJECT]
    assert OUTPOST_PROJECT not in {p["id"] for p in acme}
    keys = [(p["created_at"], p["id"]) for p in acme]
    assert keys == sorted(keys)


def test_delete_cascades_to_the_projects_tasks(served: Served, team: str, db_admin) -> None:
    pid = make_project(db_admin, team)
    db_admin.execute(
        "insert into public.tasks (project_id, title, created_by)"
        " select %s, 'task ' || n, %s from generate_series(1, 3) n",
        (pid, SEED_USERS["owner"]),
    )
    with as_user(served, "owner") as owner:
        ok(owner.delete(f"/projects/{pid}"))
    assert (
        db_admin.execute(
            "select count(*) from public.tasks where project_id = %s", (pid,)
        ).fetchone()[0]
        == 0
    )


def test_post_is_idempotent(served: Served, team: str, db_admin) -> None:
    body = {"workspace_id": team, "name": "Once"}
    headers = {"Idempotency-Key": f"proj-{uuid.uuid4()}"}
    with as_user(served, "owner") as owner:
        first = owner.post("/projects", json=body, headers=headers)
        again = owner.post("/projects", json=body, headers=headers)
        reused = owner.post("/projects", json={**body, "name": "Twice"}, headers=headers)
    assert ok(first, 201) == ok(again, 201)
    assert again.headers["Idempotent-Replayed"] == "true"
    fails(reused, 422, "IDEMPOTENCY_KEY_REUSED")
    count = db_admin.execute(
        "select count(*) from public.projects where workspace_id = %s", (team,)
    ).fetchone()[0]
    assert count == 1


# ---- the archived filter --------------------------------------------------------------


def test_archived_filter_and_archiving(served: Served, team: str) -> None:
    with as_user(served, "member") as member:
        active = ok(member.post("/projects", json={"workspace_id": team, "name": "Active"}), 201)
        old = ok(member.post("/projects", json={"workspace_id": team, "name": "Old"}), 201)

        archived = ok(member.patch(f"/projects/{old['id']}", json={"archived": True}))
        assert archived["archived"] is True and archived["archived_at"] is not None
        again = ok(member.patch(f"/projects/{old['id']}", json={"archived": True}))
        assert again["archived_at"] == archived["archived_at"]  # the first archive time stays

        def names(**params: str) -> list[str]:
            data = ok(member.get("/projects", params={"workspace_id": team, **params}))
            return [p["name"] for p in data]

        assert names() == ["Active"]  # default: active only
        assert names(archived="false") == ["Active"]
        assert names(archived="true") == ["Old"]
        # An archived project is still readable by id.
        assert ok(member.get(f"/projects/{old['id']}"))["archived"] is True

        restored = ok(member.patch(f"/projects/{old['id']}", json={"archived": False}))
        assert restored["archived"] is False and restored["archived_at"] is None
        assert names() == ["Active", "Old"]
        assert names(archived="true") == []
        assert active["id"] != old["id"]
        fails(
            member.get("/projects", params={"workspace_id": team, "archived": "maybe"}),
            422,
            "VALIDATION_FAILED",
        )


# ---- the permission matrix ------------------------------------------------------------

OK, CREATED = (200, None), (201, None)
FORBIDDEN, NOT_FOUND, UNAUTH = (403, "FORBIDDEN"), (404, "NOT_FOUND"), (401, "UNAUTHENTICATED")

MATRIX: dict[str, dict[str, tuple[int, str | None]]] = {
    "list": dict(owner=OK, admin=OK, member=OK, viewer=OK, outsider=NOT_FOUND, anon=UNAUTH),
    "get": dict(owner=OK, admin=OK, member=OK, viewer=OK, outsider=NOT_FOUND, anon=UNAUTH),
    "create": dict(
        owner=CREATED,
        admin=CREATED,
        member=CREATED,
        viewer=FORBIDDEN,
        outsider=NOT_FOUND,
        anon=UNAUTH,
    ),
    "update": dict(
        owner=OK, admin=OK, member=OK, viewer=FORBIDDEN, outsider=NOT_FOUND, anon=UNAUTH
    ),
    "delete": dict(
        owner=OK, admin=OK, member=FORBIDDEN, viewer=FORBIDDEN, outsider=NOT_FOUND, anon=UNAUTH
    ),
}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", list(MATRIX))
def test_permission_matrix(served: Served, team: str, db_admin, action: str, role: str) -> None:
    pid = make_project(db_admin, team, name="Target")
    outcome = MATRIX[action][role]
    with as_user(served, role) as client:
        response = {
            "list": lambda: client.get("/projects", params={"workspace_id": team}),
            "get": lambda: client.get(f"/projects/{pid}"),
            "create": lambda: client.post("/projects", json={"workspace_id": team, "name": "N"}),
            "update": lambda: client.patch(f"/projects/{pid}", json={"name": "Renamed"}),
            "delete": lambda: client.delete(f"/projects/{pid}"),
        }[action]()
    expect(response, outcome)
    if role in ("anon", "outsider"):
        assert "Target" not in response.text  # nothing about the row leaks
    name, exists = db_admin.execute(
        "select max(name), count(*) from public.projects where id = %s", (pid,)
    ).fetchone()
    created = db_admin.execute(
        "select count(*) from public.projects where workspace_id = %s and name = 'N'", (team,)
    ).fetchone()[0]
    # Refused requests change nothing.
    assert exists == (0 if action == "delete" and outcome == OK else 1)
    assert name in (None, "Renamed" if action == "update" and outcome == OK else "Target")
    assert created == (1 if outcome == CREATED else 0)


def test_a_project_of_another_workspace_is_not_found(served: Served) -> None:
    with as_user(served, "owner") as owner:
        for response in (
            owner.get(f"/projects/{OUTPOST_PROJECT}"),
            owner.patch(f"/projects/{OUTPOST_PROJECT}", json={"name": "Mine now"}),
            owner.delete(f"/projects/{OUTPOST_PROJECT}"),
            owner.get("/projects", params={"workspace_id": OUTPOST}),
            owner.post("/projects", json={"workspace_id": OUTPOST, "name": "Sneaky"}),
        ):
            fails(response, 404, "NOT_FOUND")
            assert "Scouting" not in response.text
        fails(owner.get(f"/projects/{uuid.uuid4()}"), 404, "NOT_FOUND")


# ---- bad input ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "loc"),
    [
        ("get", "/projects", {}, ["query", "workspace_id"]),
        ("get", "/projects", {"params": {"workspace_id": "nope"}}, ["query", "workspace_id"]),
        ("get", "/projects/not-a-uuid", {}, ["path", "id"]),
        ("post", "/projects", {"json": {"workspace_id": ACME}}, ["body", "name"]),
        ("post", "/projects", {"json": {"workspace_id": ACME, "name": "  "}}, ["body", "name"]),
        (
            "post",
            "/projects",
            {"json": {"workspace_id": ACME, "name": "x" * 201}},
            ["body", "name"],
        ),
        (
            "post",
            "/projects",
            {"json": {"workspace_id": ACME, "name": "x", "archived_at": "2020-01-01"}},
            ["body", "archived_at"],
        ),
        ("patch", f"/projects/{ACME_PROJECTS[0]}", {"json": {}}, ["body"]),
        ("patch", f"/projects/{ACME_PROJECTS[0]}", {"json": {"name": None}}, ["body", "name"]),
        (
            "patch",
            f"/projects/{ACME_PROJECTS[0]}",
            {"json": {"archived": None}},
            ["body", "archived"],
        ),
        (
            "patch",
            f"/projects/{ACME_PROJECTS[0]}",
            {"json": {"workspace_id": OUTPOST}},
            ["body", "workspace_id"],
        ),
    ],
)
def test_bad_input_is_a_422(
    served: Served, method: str, path: str, kwargs: dict[str, Any], loc: list[str]
) -> None:
    with as_user(served, "owner") as owner:
        error = fails(getattr(owner, method)(path, **kwargs), 422, "VALIDATION_FAILED")
    assert loc in [detail["loc"] for detail in error["details"]], error


def test_openapi_document_lists_the_routes(served: Served) -> None:
    with served.client() as client:
        doc = client.get("/projects/openapi.json").json()
    assert set(doc["paths"]["/projects"]) == {"get", "post"}
    assert set(doc["paths"]["/projects/{id}"]) == {"get", "patch", "delete"}
    assert doc["paths"]["/projects"]["post"]["x-rate-limit"]["policy"] == "write"
    assert doc["paths"]["/projects"]["get"]["x-rate-limit"]["policy"] == "read"
