"""Postgres unreachable, then back: 503 in the envelope, no partial write, the pool heals."""

from __future__ import annotations

import time
import uuid

from tests.envelope import assert_error
from tests.fixtures.server import Served, as_user


def test_database_down_then_back(served: Served, database_proxy, db_admin) -> None:
    proxy, _ = database_proxy
    name = f"during outage {uuid.uuid4().hex[:6]}"
    with as_user(served, "member") as client:
        assert client.get("/me").status_code == 200  # the pool holds live connections
        proxy.cut()
        try:
            started = time.monotonic()
            read = client.get("/me")
            write = client.post("/workspaces", json={"name": name})
            elapsed = time.monotonic() - started
            health = client.get("/health")
        finally:
            proxy.restore()
        assert_error(read, 503, "UNAVAILABLE")
        assert_error(write, 503, "UNAVAILABLE")
        assert elapsed < 15  # bounded by the pool timeout, twice
        assert_error(health, 503, "UNAVAILABLE")
        # Back without a restart of the function.
        deadline = time.monotonic() + 15
        while (status := client.get("/me").status_code) != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert status == 200
        assert client.post("/workspaces", json={"name": f"after {name}"}).status_code == 201
    # The write attempted during the outage left nothing behind.
    assert (
        db_admin.execute(
            "select count(*) from public.workspaces where name = %s", (name,)
        ).fetchone()[0]
        == 0
    )
