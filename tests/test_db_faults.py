"""The database side of the pipeline under faults: dead pooled connections, timeouts."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from tests.envelope import assert_error
from tests.fixtures.server import Served, as_user


def _kill_pool_connections(db_admin) -> int:
    """Terminate every other client connection and wait until they are gone, as a restart."""
    pids = [
        row[0]
        for row in db_admin.execute(
            "select pid from pg_stat_activity where datname = current_database()"
            " and pid <> pg_backend_pid() and backend_type = 'client backend'"
        ).fetchall()
    ]
    # pg_terminate_backend(pid, timeout) waits for each to exit (Postgres 14+).
    db_admin.execute("select pg_terminate_backend(pid, 5000) from unnest(%s::int[]) pid", (pids,))
    return len(pids)


def test_killed_pooled_connections_heal_without_an_error(served: Served, db_admin) -> None:
    with as_user(served, "member") as client:
        assert client.get("/me").status_code == 200
        assert client.post("/workspaces", json={"name": "before kill"}).status_code == 201
        assert _kill_pool_connections(db_admin) >= 1
        # Reads and writes both find their connection dead before sending, and take another.
        # (POST /workspaces is a single-statement write: a retry after sending could write
        # twice, so the check must happen before anything is sent.)
        assert client.get("/me").status_code == 200
        assert _kill_pool_connections(db_admin) >= 1
        response = client.post("/workspaces", json={"name": "after kill"})
    assert response.status_code == 201, response.text
    assert (
        db_admin.execute(
            "select count(*) from public.workspaces where name = 'after kill'"
        ).fetchone()[0]
        == 1
    )


def test_statement_timeout_is_504(served: Served) -> None:
    with served.client() as client:
        response = client.post("/echo/slow")
    assert_error(response, 504, "TIMEOUT")
    assert response.headers["Retry-After"] == "5"


def test_a_backend_terminated_mid_request_is_503_with_retry_after(served: Served, db_admin) -> None:
    with served.client() as client, ThreadPoolExecutor(1) as pool:
        pending = pool.submit(client.post, "/echo/held")
        deadline = time.monotonic() + 10
        killed = 0
        while not killed and time.monotonic() < deadline:
            time.sleep(0.05)
            killed = db_admin.execute(
                "select count(*) filter (where pg_terminate_backend(pid, 5000))"
                " from pg_stat_activity where query like %s and pid <> pg_backend_pid()",
                ("%pg_sleep(10) -- fnkit-held%",),
            ).fetchone()[0]
        assert killed == 1, "the held request never reached the database"
        response = pending.result(timeout=30)
    assert_error(response, 503, "UNAVAILABLE")
    assert response.headers["Retry-After"] == "5"


def test_reads_run_each_query_as_the_caller(served: Served) -> None:
    with as_user(served, "member") as client:
        data = client.get("/echo/reads").json()["data"]
    assert data == {"first": "authenticated", "second": "GET"}
