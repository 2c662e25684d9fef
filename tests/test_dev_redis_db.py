"""Each dev server's own Redis database (issue 16): claims, their release, and `fnkit env`.

Against the machine Redis when it answers (claims live in its DB 8), else against an embedded
fakeredis server standing in for it, so the claim logic runs either way."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from fnkit.local.upstash import redis_db as dev_redis_db
from fnkit.local.upstash.bridge import resolve_redis_url

BIN = Path(sys.executable).parent


@pytest.fixture
def redis_url_and_connect() -> Iterator[tuple[str, Callable[[str], redis.Redis]]]:
    url = resolve_redis_url()
    if url is not None:
        yield url, lambda u: redis.Redis.from_url(u)
        return
    import fakeredis

    server = fakeredis.FakeServer()
    yield "redis://embedded:6379", lambda u: fakeredis.FakeRedis(server=server)


def test_two_dev_servers_get_different_databases(
    redis_url_and_connect: tuple[str, Callable[[str], redis.Redis]],
) -> None:
    url, connect = redis_url_and_connect
    first = dev_redis_db.claim(url, 48001, connect)
    second = dev_redis_db.claim(url, 48002, connect)
    try:
        assert first.db != second.db
        assert {first.db, second.db} <= set(dev_redis_db.DEV_DBS)
        assert first.url.endswith(f"/{first.db}") and second.url.endswith(f"/{second.db}")
        assert dev_redis_db.claimed_by_port(url, 48001, connect) == first.db
        assert dev_redis_db.claimed_by_port(url, 48002, connect) == second.db
    finally:
        first.release()
        second.release()
    assert dev_redis_db.claimed_by_port(url, 48001, connect) is None
    third = dev_redis_db.claim(url, 48003, connect)  # a released DB is free again
    third.release()
    assert third.db == min(first.db, second.db) or third.db in dev_redis_db.DEV_DBS


def test_a_url_that_names_a_database_is_used_as_it_is() -> None:
    named = dev_redis_db.claim("redis://127.0.0.1:6379/5", 48004)
    assert (named.db, named.url) == (5, "redis://127.0.0.1:6379/5")
    named.release()  # nothing was claimed: nothing to give back
    assert dev_redis_db.claimed_by_port("redis://127.0.0.1:6379/5", 1) == 5


def test_fnkit_env_names_the_dev_servers_database() -> None:
    url = resolve_redis_url()
    env = {k: v for k, v in os.environ.items() if k != "UPSTASH_REDIS_REST_URL"}
    env["FNKIT_UPSTASH_PORT"] = "48005"
    claimed = dev_redis_db.claim(url, 48005) if url is not None else None
    try:
        out = subprocess.run(
            [str(BIN / "fnkit"), "env"], env=env, capture_output=True, text=True, check=True
        ).stdout
    finally:
        if claimed is not None:
            claimed.release()
    line = [row for row in out.splitlines() if row.startswith("# Upstash bridge database")]
    if claimed is None:
        assert line == ["# Upstash bridge database: embedded fakeredis (no Redis answers)"]
    else:
        assert line == [f"# Upstash bridge database: {url} DB {claimed.db} (this dev server's own)"]
