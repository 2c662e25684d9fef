"""workspaces and me through real HTTP on the seeded database; idempotency on a real write."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest

from tests.envelope import assert_error
from tests.fixtures.server import ACME, OUTPOST, SEED_USERS, Served, as_user

ROLES = ["owner", "admin", "member", "viewer", "outsider", "anon"]


def _new_workspace(served: Served, who: str = "owner", name: str | None = None) -> dict[str, Any]:
    with as_user(served, who) as client:
        response = client.post("/workspaces", json={"name": name or f"WS {uuid.uuid4().hex[:8]}"})
    assert response.status_code == 201, response.text
    return response.json()["data"]


def _add_member(db_admin, workspace_id: str, who: str, role: str) -> None:
    db_admin.execute(
        "insert into public.workspace_members (workspace_id, user_id, role) values (%s, %s, %s)",
        (workspace_id, SEED_USERS[who], role),
    )


def _team(served: Served, db_admin) -> str:
    """A fresh workspace with the seed users in the same roles as in Acme."""
    ws = _new_workspace(served)["id"]
    for who in ("admin", "member", "viewer"):
        _add_member(db_admin, ws, who, who)
    return ws


# ---- me ---------------------------------------------------------------------------------


def test_me_lists_the_callers_workspaces_and_roles(served: Served) -> None:
    with as_user(served, "admin") as client:
        data = client.get("/me").json()["data"]
    assert data["sub"] == SEED_USERS["admin"]
    assert {"workspace_id": ACME, "name": "Acme", "slug": "acme", "role": "admin"} in data[
        "workspaces"
    ]
    assert all(w["workspace_id"] != OUTPOST for w in data["workspaces"])


# ---- list and read ----------------------------------------------------------------------


def test_list_shows_only_my_workspaces_with_my_role(served: Served) -> None:
    with as_user(served, "viewer") as client:
        mine = client.get("/workspaces").json()["data"]
    acme = next(w for w in mine if w["id"] == ACME)
    assert acme["role"] == "viewer" and acme["slug"] == "acme"
    assert OUTPOST not in {w["id"] for w in mine}
    with as_user(served, "anon") as client:
        assert_error(client.get("/workspaces"), 401, "UNAUTHENTICATED")


@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("owner", 200),
        ("admin", 200),
        ("member", 200),
        ("viewer", 200),
        ("outsider", 404),
        ("anon", 401),
    ],
)
def test_get_one_workspace(served: Served, who: str, status: int) -> None:
    with as_user(served, who) as client:
        response = client.get(f"/workspaces/{ACME}")
    assert response.status_code == status, response.text
    if status == 200:
        assert response.json()["data"]["role"] == who


def test_an_unknown_or_malformed_id(served: Served) -> None:
    with as_user(served, "owner") as client:
        assert_error(client.get(f"/workspaces/{uuid.uuid4()}"), 404, "NOT_FOUND")
        body = assert_error(client.get("/workspaces/not-a-uuid"), 422, "VALIDATION_FAILED")
    assert body["error"]["details"][0]["loc"] == ["path", "id"]


# ---- create -----------------------------------------------------------------------------


def test_create_makes_the_caller_owner(served: Served, db_admin) -> None:
    with as_user(served, "member") as client:
        response = client.post("/workspaces", json={"name": "  Rocket Team  "})
        assert response.status_code == 201, response.text
        created = response.json()["data"]
        assert created["role"] == "owner" and created["name"] == "Rocket Team"
        assert created["slug"].startswith("rocket-team-")
        assert created["created_by"] == SEED_USERS["member"]
        assert any(w["id"] == created["id"] for w in client.get("/workspaces").json()["data"])
    owners = db_admin.execute(
        "select user_id::text, role from public.workspace_members where workspace_id = %s",
        (created["id"],),
    ).fetchall()
    assert owners == [(SEED_USERS["member"], "owner")]


def test_create_with_a_taken_or_bad_slug(served: Served) -> None:
    with as_user(served, "member") as client:
        assert_error(
            client.post("/workspaces", json={"name": "x", "slug": "acme"}), 409, "CONFLICT"
        )
        for slug in ("Bad Slug", "-x", "x" * 64, ""):
            assert_error(
                client.post("/workspaces", json={"name": "x", "slug": slug}),
                422,
                "VALIDATION_FAILED",
            )
        assert_error(client.post("/workspaces", json={"name": " "}), 422, "VALIDATION_FAILED")
        assert_error(
            client.post("/workspaces", json={"name": "x", "owner": "me"}), 422, "VALIDATION_FAILED"
        )
    with as_user(served, "anon") as client:
        assert_error(client.post("/workspaces", json={"name": "x"}), 401, "UNAUTHENTICATED")


# ---- update -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "status", "code"),
    [
        ("owner", 200, None),
        ("admin", 200, None),
        ("member", 403, "FORBIDDEN"),
        ("viewer", 403, "FORBIDDEN"),
        ("outsider", 404, "NOT_FOUND"),
        ("anon", 401, "UNAUTHENTICATED"),
    ],
)
def test_update_permissions(
    served: Served, db_admin, who: str, status: int, code: str | None
) -> None:
    ws = _team(served, db_admin)
    new_name = f"Renamed by {who}"
    with as_user(served, who) as client:
        response = client.patch(f"/workspaces/{ws}", json={"name": new_name})
    assert response.status_code == status, response.text
    name = db_admin.execute("select name from public.workspaces where id = %s", (ws,)).fetchone()[0]
    if code:
        assert response.json()["error"]["code"] == code
        assert name != new_name
    else:
        assert response.json()["data"]["name"] == new_name == name


def test_an_empty_patch_is_refused(served: Served) -> None:
    ws = _new_workspace(served)["id"]
    with as_user(served, "owner") as client:
        assert_error(client.patch(f"/workspaces/{ws}", json={}), 422, "VALIDATION_FAILED")
        assert_error(
            client.patch(f"/workspaces/{ws}", json={"name": None}), 422, "VALIDATION_FAILED"
        )


# ---- delete -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "aal", "status", "code"),
    [
        ("owner", "aal2", 200, None),
        ("owner", "aal1", 403, "MFA_REQUIRED"),
        ("admin", "aal2", 403, "FORBIDDEN"),
        ("member", "aal2", 403, "FORBIDDEN"),
        ("viewer", "aal2", 403, "FORBIDDEN"),
        ("outsider", "aal2", 404, "NOT_FOUND"),
        ("anon", "aal1", 401, "UNAUTHENTICATED"),
    ],
)
def test_delete_needs_an_owner_with_aal2(
    served: Served, db_admin, who: str, aal: str, status: int, code: str | None
) -> None:
    ws = _team(served, db_admin)
    with as_user(served, who, aal=aal) as client:
        response = client.delete(f"/workspaces/{ws}")
    assert response.status_code == status, response.text
    exists = db_admin.execute(
        "select count(*) from public.workspaces where id = %s", (ws,)
    ).fetchone()[0]
    if code:
        assert response.json()["error"]["code"] == code
        assert exists == 1
    else:
        assert response.json()["data"] == {"id": ws, "deleted": True}
        assert exists == 0


# ---- idempotency ------------------------------------------------------------------------


def test_same_key_same_request_replays(served: Served, db_admin) -> None:
    key = f"create-{uuid.uuid4()}"
    name = f"Idem {uuid.uuid4().hex[:6]}"
    with as_user(served, "member") as client:
        first = client.post("/workspaces", json={"name": name}, headers={"Idempotency-Key": key})
        second = client.post("/workspaces", json={"name": name}, headers={"Idempotency-Key": key})
    assert first.status_code == second.status_code == 201
    assert "Idempotent-Replayed" not in first.headers
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.json()["data"] == first.json()["data"]
    assert second.json()["meta"]["request_id"] != first.json()["meta"]["request_id"]
    count = db_admin.execute(
        "select count(*) from public.workspaces where name = %s", (name,)
    ).fetchone()[0]
    assert count == 1


def test_same_key_different_request_is_422_and_changes_nothing(served: Served, db_admin) -> None:
    key = f"reuse-{uuid.uuid4()}"
    with as_user(served, "member") as client:
        assert (
            client.post(
                "/workspaces", json={"name": "First"}, headers={"Idempotency-Key": key}
            ).status_code
            == 201
        )
        reused = client.post(
            "/workspaces", json={"name": "Second one"}, headers={"Idempotency-Key": key}
        )
    assert_error(reused, 422, "IDEMPOTENCY_KEY_REUSED")
    assert (
        db_admin.execute(
            "select count(*) from public.workspaces where name = 'Second one'"
        ).fetchone()[0]
        == 0
    )


def test_keys_are_scoped_to_the_caller(served: Served) -> None:
    key = f"shared-{uuid.uuid4()}"
    with as_user(served, "member") as client:
        a = client.post("/workspaces", json={"name": "Mine"}, headers={"Idempotency-Key": key})
    with as_user(served, "viewer") as client:
        b = client.post("/workspaces", json={"name": "Theirs"}, headers={"Idempotency-Key": key})
    assert a.status_code == b.status_code == 201
    assert "Idempotent-Replayed" not in b.headers
    assert a.json()["data"]["id"] != b.json()["data"]["id"]


@pytest.mark.parametrize("key", ["", "x" * 256, "has space", "tab\tkey", "ünïcode"])
def test_malformed_keys_are_refused(served: Served, key: str) -> None:
    with as_user(served, "member") as client:
        response = client.post(
            "/workspaces", json={"name": "K"}, headers={"Idempotency-Key": key.encode()}
        )
    assert_error(response, 400, "BAD_REQUEST")


def test_a_failed_request_is_not_recorded(served: Served) -> None:
    key = f"fail-{uuid.uuid4()}"
    with as_user(served, "member") as client:
        failed = client.post(
            "/workspaces", json={"name": "x", "slug": "acme"}, headers={"Idempotency-Key": key}
        )
        assert_error(failed, 409, "CONFLICT")
        retried = client.post(
            "/workspaces", json={"name": "x", "slug": "acme"}, headers={"Idempotency-Key": key}
        )
    assert_error(retried, 409, "CONFLICT")
    assert "Idempotent-Replayed" not in retried.headers


def test_twenty_concurrent_identical_posts_make_one_row(served: Served, db_admin) -> None:
    key = f"race-{uuid.uuid4()}"
    name = f"Race {uuid.uuid4().hex[:6]}"
    token = served.token(SEED_USERS["member"])
    barrier = threading.Barrier(20)
    results: list[tuple[int, str | None, str | None]] = []
    lock = threading.Lock()

    def post() -> None:
        with served.client(Authorization=f"Bearer {token}") as client:
            barrier.wait()
            response = client.post(
                "/workspaces", json={"name": name}, headers={"Idempotency-Key": key}
            )
        body = response.json()
        with lock:
            results.append(
                (
                    response.status_code,
                    (body.get("data") or {}).get("id"),
                    body.get("error", {}).get("code"),
                )
            )

    threads = [threading.Thread(target=post) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(results) == 20
    ids = {workspace_id for status, workspace_id, _ in results if status == 201}
    assert len(ids) == 1, results
    assert all(status == 201 or code == "IDEMPOTENCY_KEY_IN_USE" for status, _, code in results), (
        results
    )
    count = db_admin.execute(
        "select count(*) from public.workspaces where name = %s", (name,)
    ).fetchone()[0]
    assert count == 1


def test_mixed_requests_under_one_key_never_both_succeed(served: Served, db_admin) -> None:
    key = f"mixed-{uuid.uuid4()}"
    token = served.token(SEED_USERS["member"])
    names = [f"Mixed A {uuid.uuid4().hex[:6]}", f"Mixed B {uuid.uuid4().hex[:6]}"]
    barrier = threading.Barrier(10)
    statuses: list[int] = []

    def post(name: str) -> None:
        with served.client(Authorization=f"Bearer {token}") as client:
            barrier.wait()
            statuses.append(
                client.post(
                    "/workspaces", json={"name": name}, headers={"Idempotency-Key": key}
                ).status_code
            )

    threads = [threading.Thread(target=post, args=(names[i % 2],)) for i in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    created = db_admin.execute(
        "select count(*) from public.workspaces where name = any(%s)", (names,)
    ).fetchone()[0]
    assert created == 1
    assert set(statuses) <= {201, 409, 422}
    assert statuses.count(422) >= 1
