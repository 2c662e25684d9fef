"""The hello world plus what a database function cannot skip before its first answer.

At load: psycopg and its pool, pydantic (one model with a constrained field, built), PyJWT
with cryptography (ES256 needs it, and PyJWT loads it for HS256 too), with the garbage
collector off while they load, as `shared` loads them. On the first request:
the pool opens its one connection to `DATABASE_URL` (as `shared.db` opens it, no prepared
statements, autocommit) and one `select 1` runs; the model validates. Every function that
reads Postgres pays for that connection (TCP, startup, password exchange) on its first
request whatever its code, so the floor pays it too. Nothing of the runtime's: no token
check, no rate limit, no envelope (those are the runtime's share).

The cold-start section launches this beside the hello world and the functions
(fnkit/bench/coldstart.py), so the table shows how much of a function's start the libraries
and the database take and how much is left to `shared/` and the function itself.
"""

from __future__ import annotations

import gc
import os
import threading
from typing import Any

# As shared/__init__.py does around the same imports (the collector off while they load, what
# they leave frozen): the floor gets the same switch, so the gap to it stays the runtime's own.
_collecting = gc.isenabled()
gc.disable()
try:
    import jwt
    import psycopg
    import psycopg_pool
    from pydantic import BaseModel, Field

    gc.freeze()
finally:
    if _collecting:
        gc.enable()


class Query(BaseModel):
    limit: int = Field(default=50, ge=1, le=100)


LOADED = (jwt.algorithms.has_crypto, psycopg.__version__)
_pool: list[psycopg_pool.ConnectionPool[Any]] = []
_lock = threading.Lock()


def pool() -> psycopg_pool.ConnectionPool[Any]:
    with _lock:
        if not _pool:
            _pool.append(
                psycopg_pool.ConnectionPool(
                    os.environ["DATABASE_URL"],
                    min_size=1,
                    kwargs={"prepare_threshold": None, "autocommit": True},
                    open=True,
                )
            )
        return _pool[0]


def handler(request: Any) -> str:
    Query.model_validate({"limit": 10})
    with pool().connection() as conn:
        conn.execute("select 1").fetchone()
    return "Hello World!"
