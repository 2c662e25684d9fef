"""Round trips to Postgres per kind of request, counted from outside by a TCP proxy.

The proxy (the benchmark's) counts exchanges: the client sent, then waited for an answer.
Each case first opens the pool's connection with a read, so the counts hold only the case.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from fnkit.bench.proxy import CountingProxy
from shared import App
from shared.db import Transaction, close_pools
from shared.settings import Settings
from tests.fixtures.proxy import ROUND_TRIP_DELAY_S, proxied_database_url
from tests.fixtures.server import ACME_PROJECTS, SEED_USERS
from tests.rls_helpers import settings_for, user_claims

MEMBER = uuid.UUID(SEED_USERS["member"])


@pytest.fixture
def counted(database_url: str) -> Iterator[tuple[CountingProxy, Settings]]:
    _, upstream = proxied_database_url(database_url, 0)
    proxy = CountingProxy(upstream, delay=ROUND_TRIP_DELAY_S).start()
    url, _ = proxied_database_url(database_url, proxy.port)
    settings = settings_for(url)
    warm = Transaction(settings, user_claims(MEMBER), "authenticated", "GET", "/", {})
    assert warm.value("select 1") == 1
    warm.finish(commit=True)
    yield proxy, settings
    close_pools()
    proxy.stop()


def _tx(settings: Settings, method: str, single_statement: bool = False) -> Transaction:
    return Transaction(
        settings,
        user_claims(MEMBER),
        "authenticated",
        method,
        "/tasks",
        {},
        single_statement=single_statement,
    )


def _insert(tx: Transaction, title: str) -> Any:
    return tx.value(
        "insert into public.tasks (project_id, title) values (%s, %s) returning id",
        (ACME_PROJECTS[0], title),
    )


def _titled(db_admin: psycopg.Connection[Any], title: str) -> int:
    row = db_admin.execute(
        "select count(*) from public.tasks where title = %s", (title,)
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_a_read_is_one_round_trip(counted: tuple[CountingProxy, Settings]) -> None:
    proxy, settings = counted
    before = proxy.counts()
    tx = _tx(settings, "GET")
    assert tx.value("select (select auth.uid())::text") == str(MEMBER)
    tx.finish(commit=True)
    spent = proxy.counts() - before
    assert (spent.exchanges, spent.connections) == (1, 0)


def test_a_single_statement_write_is_one_round_trip_and_commits(
    counted: tuple[CountingProxy, Settings], db_admin: psycopg.Connection[Any]
) -> None:
    proxy, settings = counted
    title = f"one trip {uuid.uuid4().hex[:8]}"
    before = proxy.counts()
    tx = _tx(settings, "POST", single_statement=True)
    assert _insert(tx, title) is not None
    tx.finish(commit=True)
    spent = proxy.counts() - before
    assert (spent.exchanges, spent.connections) == (1, 0)
    assert _titled(db_admin, title) == 1


def test_a_write_transaction_is_one_round_trip_per_statement_plus_commit(
    counted: tuple[CountingProxy, Settings], db_admin: psycopg.Connection[Any]
) -> None:
    proxy, settings = counted
    title = f"two trips {uuid.uuid4().hex[:8]}"
    before = proxy.counts()
    tx = _tx(settings, "POST")
    _insert(tx, title)
    assert _titled(db_admin, title) == 0  # not visible before COMMIT
    tx.finish(commit=True)
    spent = proxy.counts() - before
    assert (spent.exchanges, spent.connections) == (2, 0)
    assert _titled(db_admin, title) == 1


def test_atomic_turns_a_single_statement_route_back_into_one_transaction(
    counted: tuple[CountingProxy, Settings], db_admin: psycopg.Connection[Any]
) -> None:
    _, settings = counted
    title = f"atomic {uuid.uuid4().hex[:8]}"
    tx = _tx(settings, "POST", single_statement=True)
    tx.atomic()
    _insert(tx, title)
    _insert(tx, title)
    tx.finish(commit=False)
    assert _titled(db_admin, title) == 0  # both rolled back together


def test_atomic_after_a_single_statement_write_is_refused(
    counted: tuple[CountingProxy, Settings],
) -> None:
    _, settings = counted
    tx = _tx(settings, "POST", single_statement=True)
    _insert(tx, f"too late {uuid.uuid4().hex[:8]}")
    with pytest.raises(RuntimeError, match="before the first statement"):
        tx.atomic()
    tx.finish(commit=True)


def test_a_failed_single_statement_write_leaves_nothing_and_the_connection_usable(
    counted: tuple[CountingProxy, Settings], db_admin: psycopg.Connection[Any]
) -> None:
    _, settings = counted
    title = f"refused {uuid.uuid4().hex[:8]}"
    tx = _tx(settings, "POST", single_statement=True)
    with pytest.raises(psycopg.errors.NotNullViolation):
        tx.value(
            "insert into public.tasks (project_id, title) values (%s, %s), (%s, null) returning id",
            (ACME_PROJECTS[0], title, ACME_PROJECTS[0]),
        )
    tx.finish(commit=False)
    assert _titled(db_admin, title) == 0
    again = _tx(settings, "POST", single_statement=True)
    assert _insert(again, title) is not None
    again.finish(commit=True)
    assert _titled(db_admin, title) == 1


def test_single_statement_is_refused_on_a_read_route() -> None:
    app = App("probe", settings=settings_for("postgresql://nobody@127.0.0.1:9/x"))
    with pytest.raises(ValueError, match="single_statement is for writes"):
        app.get("/", single_statement=True)(lambda request: None)


def test_a_statement_sent_with_commit_costs_no_extra_round_trip(
    counted: tuple[CountingProxy, Settings], db_admin: psycopg.Connection[Any]
) -> None:
    proxy, settings = counted
    title = f"with commit {uuid.uuid4().hex[:8]}"
    before = proxy.counts()
    tx = _tx(settings, "POST")
    _insert(tx, title)
    tx.execute_with_commit(
        "insert into public.tasks (project_id, title) values (%s, %s)",
        (ACME_PROJECTS[0], title),
    )
    assert _titled(db_admin, title) == 0
    tx.finish(commit=True)
    spent = proxy.counts() - before
    assert (spent.exchanges, spent.connections) == (2, 0)
    assert _titled(db_admin, title) == 2


def test_a_failing_statement_sent_with_commit_commits_nothing(
    counted: tuple[CountingProxy, Settings], db_admin: psycopg.Connection[Any]
) -> None:
    _, settings = counted
    title = f"failed commit {uuid.uuid4().hex[:8]}"
    tx = _tx(settings, "POST")
    _insert(tx, title)
    tx.execute_with_commit(
        "insert into public.tasks (project_id, title) values (%s, null)", (ACME_PROJECTS[0],)
    )
    with pytest.raises(psycopg.errors.NotNullViolation):
        tx.finish(commit=True)
    assert _titled(db_admin, title) == 0
    again = _tx(settings, "GET")  # the pooled connection came back clean
    assert again.value("select 1") == 1
    again.finish(commit=True)


def test_a_rollback_drops_what_was_to_be_sent_with_commit(
    counted: tuple[CountingProxy, Settings], db_admin: psycopg.Connection[Any]
) -> None:
    _, settings = counted
    title = f"dropped {uuid.uuid4().hex[:8]}"
    tx = _tx(settings, "POST")
    _insert(tx, title)
    tx.execute_with_commit(
        "insert into public.tasks (project_id, title) values (%s, %s)",
        (ACME_PROJECTS[0], title),
    )
    tx.finish(commit=False)
    assert _titled(db_admin, title) == 0
