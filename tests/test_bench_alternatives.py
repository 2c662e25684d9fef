"""The page-reading strategies the runtime does not take (fnkit/bench/alternatives.py) read the
same page as the one it takes, under RLS, so their measured costs compare like for like."""

from __future__ import annotations

from typing import Any

import orjson

from fnkit.bench import alternatives
from tests.fixtures.server import SEED_USERS
from tests.fixtures.teams import create_task


def _read(url: str, name: str, page: alternatives.Page) -> list[dict[str, Any]]:
    read, threshold = alternatives.STRATEGIES[name]
    with alternatives.connect(url, threshold) as conn:
        for _ in range(3):  # the third read of `prepared` runs the prepared statement
            body = read(conn, page)
    data: list[dict[str, Any]] = orjson.loads(body)["data"]
    return data


def test_every_strategy_reads_the_same_page(database_url: str, team: str, db_admin: Any) -> None:
    made = [create_task(db_admin, team, f"Task {n}") for n in range(3)]
    member = alternatives.Page(team, SEED_USERS["member"])
    pages = {name: _read(database_url, name, member) for name in alternatives.STRATEGIES}
    expected = [(row["id"], row["title"]) for row in pages["runtime"]]
    assert sorted(task_id for task_id, _ in expected) == sorted(made)
    for rows in pages.values():
        assert [(row["id"], row["title"]) for row in rows] == expected
        assert set(rows[0]) == set(pages["runtime"][0])
    assert pages["prepared"] == pages["runtime"]


def test_rls_applies_to_every_strategy(database_url: str, team: str, db_admin: Any) -> None:
    create_task(db_admin, team)
    outsider = alternatives.Page(team, SEED_USERS["outsider"])
    for name in alternatives.STRATEGIES:
        assert _read(database_url, name, outsider) == []


def test_measure_reports_both_sides_of_every_strategy(database_url: str, team: str) -> None:
    figures = alternatives.measure(database_url, requests=30, rounds=3, page=alternatives.Page(team))
    assert set(figures) == set(alternatives.STRATEGIES)
    assert all(row["client_us"] > 0 and row["postgres_us"] >= 0 for row in figures.values())
