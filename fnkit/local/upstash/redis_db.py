"""Each dev server's own logical Redis database, as each Upstash project has its own database.

A dev server over the machine Redis used DB 0, shared with whatever else uses that Redis, so
`SCAN`, `DBSIZE` and `FLUSHDB` answered for other people's keys, as no Upstash database
would. `fnkit dev` therefore claims the first free DB of 1..7 (tests use 9..15), keeps the
claim alive while it runs and releases it on exit; `fnkit env` shows which one a running dev
server has. Claims live in DB 8 (the test fixtures' claims DB), which nobody flushes: a claim
kept inside the claimed DB would vanish with the first FLUSHDB. A `REDIS_URL` that names a
database (`redis://host:6379/5`) is used as it is.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit, urlunsplit

import redis

CLAIMS_DB: Final = 8
DEV_DBS: Final = range(1, 8)
_TTL_SECONDS: Final = 60
"""A claim outlives a dev server that died without releasing it by at most a minute."""


def with_db(url: str, db: int) -> str:
    """The same Redis URL pointing at logical DB `db` (the URL path selects it)."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{db}"))


def named_db(url: str) -> int | None:
    """The DB a URL names (`/5`), None when it names none."""
    path = urlsplit(url).path.strip("/")
    return int(path) if path.isdigit() else None


def _connect(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_connect_timeout=2)


Connect = Callable[[str], redis.Redis]
"""How to reach the claims DB (tests without a machine Redis pass an embedded one)."""


def _claim_key(db: int) -> str:
    return f"fnkit:dev-server:{db}"


@dataclass
class DevDatabase:
    """A claimed DB: its URL, and the thread that keeps the claim alive until release()."""

    url: str
    db: int
    _claims: redis.Redis | None = None
    _stop: threading.Event | None = None

    def release(self) -> None:
        """Give the DB back (its data stays, as an Upstash database's would)."""
        if self._stop is None or self._claims is None:
            return
        self._stop.set()
        self._claims.delete(_claim_key(self.db))
        self._claims.close()


def claim(url: str, port: int, connect: Connect = _connect) -> DevDatabase:
    """The DB this dev server (its bridge on `port`) uses: the URL's own, else a free one."""
    if (db := named_db(url)) is not None:
        return DevDatabase(url, db)
    claims = connect(with_db(url, CLAIMS_DB))
    owner = f"{os.getpid()} {port}"
    for db in DEV_DBS:
        if claims.set(_claim_key(db), owner, nx=True, ex=_TTL_SECONDS):
            stop = threading.Event()
            threading.Thread(
                target=_keep_alive, args=(claims, db, owner, stop), daemon=True
            ).start()
            return DevDatabase(with_db(url, db), db, claims, stop)
    claims.close()
    raise RuntimeError(
        f"every dev Redis DB ({DEV_DBS.start}..{DEV_DBS.stop - 1}) is claimed by another "
        "dev server: set REDIS_URL to one with a DB (redis://127.0.0.1:6379/N)"
    )


def _keep_alive(claims: redis.Redis, db: int, owner: str, stop: threading.Event) -> None:
    """Refresh the claim's TTL while the dev server runs."""
    while not stop.wait(_TTL_SECONDS / 3):
        try:
            claims.set(_claim_key(db), owner, ex=_TTL_SECONDS)
        except redis.RedisError:
            continue  # Redis restarting: the next round tries again


def claimed_by_port(url: str, port: int, connect: Connect = _connect) -> int | None:
    """The DB a running dev server whose bridge listens on `port` has claimed, if any."""
    if (db := named_db(url)) is not None:
        return db
    claims = connect(with_db(url, CLAIMS_DB))
    try:
        for db in DEV_DBS:
            owner = claims.get(_claim_key(db))
            if owner is not None and owner.split()[-1] == str(port).encode():
                return db
    except redis.RedisError:
        return None
    finally:
        claims.close()
    return None
