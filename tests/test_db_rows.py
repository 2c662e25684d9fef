"""`Transaction.all` gives exactly the rows psycopg's `dict_row` gives (it makes the dicts
itself from the rows' tuples, in one comprehension), in every mode of sending: a read (one
implicit transaction), a single-statement write, an explicit transaction, prepared or not."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from shared.db import Transaction, close_pools
from shared.settings import Settings
from tests.fixtures.server import ACME_PROJECTS, SEED_USERS
from tests.rls_helpers import user_claims

MEMBER = uuid.UUID(SEED_USERS["member"])
QUERIES: list[tuple[str, tuple[Any, ...]]] = [
    ("select * from public.tasks where project_id = %s order by id limit 60", (ACME_PROJECTS[0],)),
    ("select 1 as a, 'x' as a, null as b, 2.5::numeric as c", ()),  # a name twice: the last wins
    ("select", ()),  # a row without columns
    ("select 1 as one where false", ()),  # no rows
    ("select now() as t, current_date as d, '{1,2}'::int[] as l, '{\"k\": 1}'::jsonb as j", ()),
    ('select %s::text as "Mixed Case", %s::uuid as u', ("zoë", str(MEMBER))),
]


@pytest.fixture(params=["off", "on"])
def settings(database_url: str, request: pytest.FixtureRequest) -> Iterator[Settings]:
    yield Settings(
        supabase_url="http://127.0.0.1:54321",
        database_url=database_url,
        upstash_url="http://127.0.0.1:1",
        upstash_token="unused",
        db_prepared_statements=request.param == "on",
    )
    close_pools()


def _expected(database_url: str, sql: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
    with psycopg.connect(database_url, autocommit=True, row_factory=dict_row) as conn:
        conn.execute("set role authenticated")
        claims = psycopg.types.json.Jsonb(user_claims(MEMBER))
        conn.execute("select set_config('request.jwt.claims', %s::text, false)", (claims,))
        return conn.execute(sql, params).fetchall()


@pytest.mark.parametrize(("sql", "params"), QUERIES)
@pytest.mark.parametrize(("method", "single"), [("GET", False), ("POST", True), ("PATCH", False)])
def test_all_is_dict_row(
    settings: Settings,
    database_url: str,
    sql: str,
    params: tuple[Any, ...],
    method: str,
    single: bool,
) -> None:
    expected = _expected(database_url, sql, params)
    for _ in range(3):  # past a prepared statement's threshold
        tx = Transaction(settings, user_claims(MEMBER), "authenticated", method, "/", {}, single)
        rows = tx.all(sql, params)
        tx.finish(commit=False)
        if "now()" not in sql:
            assert rows == expected
        assert [list(row) for row in rows] == [list(row) for row in expected]
        assert [[type(v) for v in row.values()] for row in rows] == [
            [type(v) for v in row.values()] for row in expected
        ]
    assert expected or "false" in sql


def test_a_statement_without_rows_fails_as_before(settings: Settings) -> None:
    tx = Transaction(settings, user_claims(MEMBER), "authenticated", "PATCH", "/", {})
    with pytest.raises(psycopg.ProgrammingError):
        tx.all("set local statement_timeout = '5s'")
    tx.finish(commit=False)
