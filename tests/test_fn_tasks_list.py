"""GET /tasks: scope, filters, search, sorts, keyset pagination under inserts, cursors, plans."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from shared.db import Transaction
from shared.pagination import encode_cursor
from tests.fixtures.server import ACME, ACME_PROJECTS, OUTPOST, SEED_USERS, Served, as_user
from tests.test_fn_tasks import ADMIN, MEMBER, VIEWER, Team, add_task, assert_error, make_team, ok

TODAY = dt.date(2030, 6, 1)


@pytest.fixture
def team(db_admin: psycopg.Connection[Any]) -> Iterator[Team]:
    yield from make_team(db_admin)


def _ids(rows: list[dict[str, Any]]) -> list[str]:
    return [r["id"] for r in rows]


def _walk(client: Any, params: dict[str, Any], between: Any = None) -> list[dict[str, Any]]:
    """Every page of a query in order; `between()` runs after each page but the last."""
    rows: list[dict[str, Any]] = []
    cursor = None
    for _ in range(200):
        response = client.get("/tasks", params={**params, **({"cursor": cursor} if cursor else {})})
        body = response.json()
        assert response.status_code == 200, response.text
        assert len(body["data"]) <= body["meta"]["pagination"]["limit"]
        rows += body["data"]
        cursor = body["meta"]["pagination"]["next_cursor"]
        if cursor is None:
            return rows
        if between is not None:
            between()
    raise AssertionError("pagination did not end")


# ---- scope, filters and search ----------------------------------------------------------------


def test_lists_a_project_or_a_workspace(served: Served, team: Team, db_admin: Any) -> None:
    a = add_task(db_admin, team.project)
    b = add_task(db_admin, team.other_project)
    with as_user(served, "viewer") as client:
        response = client.get("/tasks", params={"project_id": team.project})
        assert _ids(ok(response)) == [str(a["id"])]
        assert response.json()["meta"]["pagination"] == {"next_cursor": None, "limit": 50}
        both = ok(client.get("/tasks", params={"workspace_id": team.workspace}))
        assert _ids(both) == [str(b["id"]), str(a["id"])]  # default: newest first
        assert both[0]["version"] == 1 and both[0]["workspace_id"] == team.workspace


def test_a_listed_task_is_exactly_the_task_as_read_alone(
    served: Served, team: Team, db_admin: Any
) -> None:
    """A task has one representation: in a page and read alone, byte for byte the same
    values, with every kind of column set (text to escape, a date, a fractional position,
    a completion time)."""
    full = add_task(
        db_admin,
        team.project,
        title='Ünïcode ✓ "quoted" \\ back\nline',
        description="tab\there",
        status="done",
        priority=4,
        assignee_id=MEMBER,
        due_date=dt.date(2027, 2, 28),
        position=1.5,
    )
    bare = add_task(db_admin, team.project, position=3)
    with as_user(served, "member") as client:
        listed = ok(client.get("/tasks", params={"project_id": team.project}))
        alone = [ok(client.get(f"/tasks/{task['id']}")) for task in (full, bare)]
    by_id = {item["id"]: item for item in listed}
    for task in alone:
        assert by_id[task["id"]] == task
    assert alone[0]["completed_at"] is not None and alone[0]["description"] == "tab\there"


def test_scope_must_be_exactly_one_and_visible(served: Served, team: Team) -> None:
    with as_user(served, "member") as client:
        for params in ({}, {"project_id": team.project, "workspace_id": team.workspace}):
            assert_error(client.get("/tasks", params=params), 422, "VALIDATION_FAILED")
        for params in (
            {"workspace_id": OUTPOST},
            {"workspace_id": str(uuid.uuid4())},
            {"project_id": "b0000000-0000-4000-8000-000000000004"},
            {"project_id": str(uuid.uuid4())},
        ):
            assert_error(client.get("/tasks", params=params), 404, "NOT_FOUND")
        # visible but empty is an empty page, not a 404
        assert ok(client.get("/tasks", params={"project_id": team.project})) == []
        assert ok(client.get("/tasks", params={"workspace_id": team.workspace})) == []


def test_filters(served: Served, team: Team, db_admin: Any) -> None:
    p = team.project
    rows = [
        add_task(db_admin, p, status="todo", assignee_id=MEMBER, due_date=TODAY),
        add_task(
            db_admin, p, status="done", assignee_id=MEMBER, due_date=TODAY - dt.timedelta(days=3)
        ),
        add_task(
            db_admin,
            p,
            status="in_progress",
            assignee_id=ADMIN,
            due_date=TODAY + dt.timedelta(days=3),
        ),
        add_task(db_admin, p, status="blocked", assignee_id=None, due_date=None),
        add_task(
            db_admin, p, status="todo", assignee_id=None, due_date=TODAY - dt.timedelta(days=1)
        ),
        add_task(db_admin, team.other_project, status="todo", assignee_id=VIEWER),
    ]
    ids = [str(r["id"]) for r in rows]

    def listing(**params: Any) -> set[str]:
        with as_user(served, "member") as client:
            return set(_ids(ok(client.get("/tasks", params={"project_id": p, **params}))))

    assert listing(status=["todo", "done"]) == {ids[0], ids[1], ids[4]}
    assert listing(status="todo,done") == {ids[0], ids[1], ids[4]}
    assert listing(status="blocked") == {ids[3]}
    assert listing(assignee_id=MEMBER) == {ids[0], ids[1]}
    assert listing(assignee_id="none") == {ids[3], ids[4]}
    assert listing(due_before=TODAY.isoformat()) == {ids[1], ids[4]}
    assert listing(status="todo", assignee_id="none", due_before=TODAY.isoformat()) == {ids[4]}
    assert listing(status="todo", assignee_id=ADMIN) == set()
    with as_user(served, "member") as client:
        workspace = ok(
            client.get("/tasks", params={"workspace_id": team.workspace, "status": "todo"})
        )
    assert set(_ids(workspace)) == {ids[0], ids[4], ids[5]}


def test_search(served: Served, team: Team, db_admin: Any) -> None:
    p = team.project
    kiwi = add_task(db_admin, p, title="Plant the kiwi orchard", description="north field")
    mango = add_task(db_admin, p, title="Harvest mango", description="the kiwi can wait")
    both = add_task(db_admin, p, title="Kiwi and mango smoothie")
    add_task(db_admin, p, title="Unrelated chores")

    def search(q: str, **params: Any) -> set[str]:
        with as_user(served, "member") as client:
            return set(_ids(ok(client.get("/tasks", params={"project_id": p, "q": q, **params}))))

    ids = {name: str(row["id"]) for name, row in (("kiwi", kiwi), ("mango", mango), ("both", both))}
    assert search("kiwi") == {ids["kiwi"], ids["mango"], ids["both"]}  # title and description
    assert search("KIWI mango") == {ids["mango"], ids["both"]}
    assert search("kiwi -mango") == {ids["kiwi"]}
    assert search('"mango smoothie"') == {ids["both"]}
    assert search("kiwi or mango", sort="priority") == set(ids.values())
    assert search("north") == {ids["kiwi"]}
    assert search("durian") == set()
    assert search("' ; drop table tasks; --") == set()
    assert search("kiwi", status="done") == set()


@pytest.mark.parametrize(
    ("params", "loc"),
    [
        ({"limit": 0}, ["query", "limit"]),
        ({"limit": 101}, ["query", "limit"]),
        ({"limit": -1}, ["query", "limit"]),
        ({"limit": "abc"}, ["query", "limit"]),
        ({"limit": ["5", "6"]}, ["query", "limit"]),
        ({"sort": "title"}, ["query", "sort"]),
        ({"sort": "created_at; drop table tasks"}, ["query", "sort"]),
        ({"status": "todo,finished"}, ["query", "status", 1]),
        ({"assignee_id": "nobody"}, ["query", "assignee_id"]),
        ({"due_before": "2030-13-01"}, ["query", "due_before"]),
        ({"q": "   "}, ["query", "q"]),
        ({"q": "x" * 201}, ["query", "q"]),
        ({"project_id": "nope"}, ["query", "project_id"]),
        ({"colour": "blue"}, ["query", "colour"]),
    ],
)
def test_bad_query_parameters(served: Served, params: dict[str, Any], loc: list[Any]) -> None:
    with as_user(served, "viewer") as client:
        response = client.get("/tasks", params={"workspace_id": ACME, **params})
    body = assert_error(response, 422, "VALIDATION_FAILED")
    assert loc in [d["loc"] for d in body["error"]["details"]], body


def test_limit_bounds_are_accepted(served: Served) -> None:
    with as_user(served, "viewer") as client:
        assert len(ok(client.get("/tasks", params={"workspace_id": ACME, "limit": 1}))) == 1
        full = client.get("/tasks", params={"workspace_id": ACME, "limit": 100})
        assert len(ok(full)) == 100
        assert full.json()["meta"]["pagination"]["limit"] == 100
        assert full.json()["meta"]["pagination"]["next_cursor"]


# ---- cursors ----------------------------------------------------------------------------------


def test_cursors_that_are_not_from_this_query_are_refused(served: Served, team: Team) -> None:
    base = {"workspace_id": ACME, "status": "todo", "sort": "due_date", "limit": 5}
    scope = {
        "project_id": None, "workspace_id": ACME, "status": ["todo"], "assignee_id": None,
        "q": None, "due_before": None, "sort": "due_date",
    }  # fmt: skip
    with as_user(served, "viewer") as client:
        first = client.get("/tasks", params=base)
        cursor = first.json()["meta"]["pagination"]["next_cursor"]
        assert ok(client.get("/tasks", params={**base, "cursor": cursor}))
        # the same scope encoded by hand is accepted: this checks the scope list above
        assert (
            ok(
                client.get(
                    "/tasks",
                    params={
                        **base,
                        "cursor": encode_cursor(scope, ["2030-01-01", str(uuid.uuid4())]),
                    },
                )
            )
            is not None
        )
        # status=a,b and status=b&status=a are one query, so one cursor serves both
        two = {**base, "status": "todo,done"}
        c2 = client.get("/tasks", params=two).json()["meta"]["pagination"]["next_cursor"]
        ok(client.get("/tasks", params={**two, "status": ["done", "todo"], "cursor": c2}))
        bad = [
            "garbage",
            "",
            "%%%",
            "x" * 5000,
            cursor[:-3],
            cursor + "AAAA",
            encode_cursor({"other": "query"}, ["2030-01-01", str(uuid.uuid4())]),
            encode_cursor(scope, ["not a date", str(uuid.uuid4())]),
            encode_cursor(scope, ["2030-01-01", "not-a-uuid"]),
            encode_cursor(scope, ["2030-01-01", None]),
            encode_cursor(scope, [20300101, str(uuid.uuid4())]),
            encode_cursor(scope, ["2030-01-01"]),
            encode_cursor(scope, {"a": 1}),  # type: ignore[arg-type]
        ]
        for forged in bad:
            response = client.get("/tasks", params={**base, "cursor": forged})
            if forged == "":  # an empty cursor is the first page
                ok(response)
                continue
            body = assert_error(response, 422, "VALIDATION_FAILED")
            assert body["error"]["details"][0]["loc"] == ["query", "cursor"]
        for other in (
            {**base, "status": "done"},
            {**base, "sort": "-due_date"},
            {**base, "workspace_id": team.workspace},
            {**base, "q": "kiwi"},
            {**base, "assignee_id": "none"},
            {**base, "due_before": "2030-01-01"},
        ):
            assert_error(
                client.get("/tasks", params={**other, "cursor": cursor}), 422, "VALIDATION_FAILED"
            )
        # the limit is not part of the query: a next page may be larger
        assert ok(client.get("/tasks", params={**base, "limit": 7, "cursor": cursor}))


@pytest.mark.parametrize("sort", ["priority", "-priority", "created_at"])
def test_typed_cursor_values_for_each_sort(served: Served, sort: str) -> None:
    scope = {
        "project_id": None, "workspace_id": ACME, "status": [], "assignee_id": None,
        "q": None, "due_before": None, "sort": sort,
    }  # fmt: skip
    params = {"workspace_id": ACME, "sort": sort, "limit": 3}
    with as_user(served, "viewer") as client:
        for values in (
            [True, str(uuid.uuid4())],
            [None, str(uuid.uuid4())],
            [1.5, str(uuid.uuid4())],
            ["yesterday", str(uuid.uuid4())],
        ):
            response = client.get(
                "/tasks", params={**params, "cursor": encode_cursor(scope, values)}
            )
            assert_error(response, 422, "VALIDATION_FAILED")


# ---- keyset pagination under concurrent inserts ------------------------------------------------


def _sort_key(sort: str) -> Any:
    column, descending = sort.lstrip("-"), sort.startswith("-")

    def key(row: dict[str, Any]) -> Any:
        value = row[column]
        if column == "due_date":  # nulls last in both directions
            value = (1, "") if value is None else (0, value if not descending else _invert(value))
            return (value, row["id"] if not descending else _invert(row["id"]))
        if column.endswith("_at"):
            value = dt.datetime.fromisoformat(value)
        return value, row["id"]

    return key


def _invert(text: str) -> tuple[int, ...]:
    return tuple(-ord(c) for c in text)


def _assert_ordered(rows: list[dict[str, Any]], sort: str) -> None:
    key = _sort_key(sort)
    keys = [key(r) for r in rows]
    if sort.lstrip("-") == "due_date" or not sort.startswith("-"):
        assert keys == sorted(keys)
    else:
        assert keys == sorted(keys, reverse=True)


def _seed_for_paging(db: Any, team: Team) -> None:
    """37 tasks with many ties: shared due dates, shared priorities, shared created_at."""
    same_moment = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    for i in range(37):
        add_task(
            db,
            team.project if i % 4 else team.other_project,
            status=("todo", "done", "blocked", "in_progress")[i % 4],
            priority=i % 3,
            due_date=None if i % 5 == 0 else TODAY + dt.timedelta(days=i % 4),
            created_at=same_moment if i % 6 == 0 else same_moment + dt.timedelta(minutes=i),
            updated_at=same_moment + dt.timedelta(minutes=i % 7),
            assignee_id=(MEMBER, ADMIN, None)[i % 3],
        )


PAGING_CASES = [
    ("created_at", {}),
    ("-created_at", {}),
    ("updated_at", {}),
    ("-updated_at", {"status": "todo,blocked"}),
    ("due_date", {}),
    ("-due_date", {}),
    ("due_date", {"status": ["todo", "in_progress"]}),
    ("-due_date", {"assignee_id": "none"}),
    ("priority", {"status": "todo,blocked"}),
    ("-priority", {}),
]


@pytest.mark.parametrize(("sort", "filters"), PAGING_CASES)
def test_pages_neither_skip_nor_repeat_while_rows_are_inserted(
    served: Served, team: Team, db_admin: Any, sort: str, filters: dict[str, Any]
) -> None:
    _seed_for_paging(db_admin, team)
    params = {"workspace_id": team.workspace, "sort": sort, "limit": 4, **filters}
    with as_user(served, "member") as client:
        before = ok(client.get("/tasks", params={**params, "limit": 100}))
        assert len(before) < 100
        inserted: list[str] = []
        counter = iter(range(1000))

        def insert_some() -> None:
            for _ in range(2):
                n = next(counter)
                row = add_task(
                    db_admin,
                    team.project,
                    status=("todo", "blocked", "in_progress", "done")[n % 4],
                    priority=n % 5,
                    due_date=None if n % 3 == 0 else TODAY + dt.timedelta(days=n % 6 - 2),
                    assignee_id=None if n % 2 else MEMBER,
                )
                inserted.append(str(row["id"]))

        walked = _walk(client, params, insert_some)
    ids = _ids(walked)
    assert len(ids) == len(set(ids)), "a row came twice"
    assert set(_ids(before)) <= set(ids), "a row that existed at the start was skipped"
    assert set(ids) <= set(_ids(before)) | set(inserted)
    assert inserted, "the walk must have inserted rows between pages"
    _assert_ordered(walked, sort)
    if sort.lstrip("-") == "due_date":  # the undated rows come last, in both directions
        dated = [r["due_date"] is not None for r in walked]
        assert dated == sorted(dated, reverse=True) and not all(dated) and any(dated)


def test_paging_a_large_workspace_matches_one_big_page(served: Served) -> None:
    params = {"workspace_id": ACME, "status": "todo,blocked", "sort": "-due_date"}
    with as_user(served, "viewer") as client:
        big = ok(client.get("/tasks", params={**params, "limit": 100}))
        walked = _walk(client, {**params, "limit": 9})
    assert _ids(walked)[:100] == _ids(big)
    assert len(walked) == len(set(_ids(walked)))
    _assert_ordered(walked, "-due_date")


# ---- query plans ------------------------------------------------------------------------------


def test_every_list_query_walks_its_composite_index(
    served: Served, db_admin: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each page is one range of a `(scope, column, id)` index: no sort, no full scan.

    Sorts, bitmap and sequential scans are switched off for the EXPLAIN: with them off a plan
    still sorts when no index gives the order, so this proves the index serves every page as
    one ordered range whatever the table size (on tables this small Postgres may otherwise
    prefer to sort the last few dozen rows)."""
    seen: list[tuple[str, Any]] = []
    original = Transaction.all

    def spy(self: Transaction, sql: Any, params: Any = None) -> Any:
        # The query's text; its identifiers are all lower case, so unquoting keeps it valid.
        text = (sql if isinstance(sql, str) else sql.as_string(None)).replace('"', "")
        if "from public.tasks t where" in text:
            seen.append((text, params))
        return original(self, sql, params)

    monkeypatch.setattr(Transaction, "all", spy)
    sorts = ["created_at", "-created_at", "updated_at", "-updated_at", "priority", "-priority"]
    with as_user(served, "owner") as client:
        for scope in ({"workspace_id": ACME}, {"project_id": ACME_PROJECTS[1]}):
            for sort in sorts:  # a first page and a keyset page
                first = client.get("/tasks", params={**scope, "sort": sort, "limit": 20})
                cursor = first.json()["meta"]["pagination"]["next_cursor"]
                ok(
                    client.get(
                        "/tasks", params={**scope, "sort": sort, "limit": 20, "cursor": cursor}
                    )
                )
            for sort in ("due_date", "-due_date"):  # through the dated range into the undated one
                _walk(client, {**scope, "sort": sort, "limit": 60})
    monkeypatch.undo()
    assert any("is null" in sql for sql, _ in seen) and any("t.id >" in sql for sql, _ in seen)
    db_admin.execute("analyze public.tasks")
    claims = json.dumps({"sub": SEED_USERS["owner"], "role": "authenticated"})
    for sql, params in seen:
        scope_column = "workspace" if "t.workspace_id = %s" in sql else "project"
        column = next(
            c for c in ("created", "updated", "due", "priority") if f"order by t.{c}" in sql
        )
        with db_admin.transaction():
            db_admin.execute(
                "select set_config('role', 'authenticated', true),"
                " set_config('request.jwt.claims', %s, true),"
                " set_config('enable_sort', 'off', true), set_config('enable_seqscan', 'off', true),"
                " set_config('enable_bitmapscan', 'off', true)",
                (claims,),
            )
            plan = "\n".join(r[0] for r in db_admin.execute("explain " + sql, params).fetchall())
            db_admin.execute("reset role")
        assert (
            f"Index Scan{' Backward' if ' desc' in sql else ''} using tasks_{scope_column}_{column}_idx"
            in plan
        ), (sql, plan)
        assert "Sort" not in plan and "Seq Scan" not in plan, (sql, plan)
        if "(t." in sql:  # the keyset is an index condition, not a filter
            assert "Index Cond" in plan and "ROW(" in plan.split("Index Cond")[1].split("\n")[0], (
                plan
            )
