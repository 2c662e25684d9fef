"""The peer: `GET /tasks` and `POST /tasks` as a Python team would write them without fnkit.

FastAPI on uvicorn, PyJWT for the Supabase token (HS256, verified on every request), an async
psycopg pool, pydantic models for input and output, RLS through the same impersonation
statement and the same SQL as the function (fnkit/bench/sql.py). What it does not do, and the
function does: rate limiting (an Upstash round trip), request ids, CORS, the envelope, the
structured log line, idempotency. Serve with
`uvicorn fnkit.bench.peers.fastapi_tasks:app --workers 2`.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any
from uuid import UUID

import jwt
from fastapi import Depends, FastAPI, HTTPException, Query
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel, Field

from fnkit.bench import sql

SECRET = os.environ["SUPABASE_JWT_SECRET"]
ISSUER = os.environ["SUPABASE_URL"].rstrip("/") + "/auth/v1"
pool = AsyncConnectionPool(
    os.environ["DATABASE_URL"],
    min_size=1,
    max_size=int(os.environ.get("DB_POOL_MAX", "8")),
    kwargs={"row_factory": dict_row, "prepare_threshold": None},
    open=False,
)


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    await pool.open()
    yield
    await pool.close()


app = FastAPI(lifespan=lifespan)
bearer = HTTPBearer()


class Task(BaseModel):
    id: UUID
    workspace_id: UUID
    project_id: UUID
    title: str
    description: str | None
    status: str
    priority: int
    assignee_id: UUID | None
    due_date: dt.date | None
    position: float
    version: int
    completed_at: dt.datetime | None
    created_by: UUID | None
    created_at: dt.datetime
    updated_at: dt.datetime


class TaskIn(BaseModel):
    project_id: UUID
    title: str = Field(min_length=1, max_length=500)


def current_user(
    credentials: Annotated[HTTPAuthorizationCredentials, Depends(bearer)],
) -> dict[str, Any]:
    try:
        claims: dict[str, Any] = jwt.decode(
            credentials.credentials,
            SECRET,
            algorithms=["HS256"],
            audience="authenticated",
            issuer=ISSUER,
        )
    except jwt.PyJWTError:
        raise HTTPException(status_code=401, detail="invalid token") from None
    return claims


User = Annotated[dict[str, Any], Depends(current_user)]


@app.get("/tasks", response_model=list[Task])
async def list_tasks(
    user: User, workspace_id: UUID, limit: Annotated[int, Query(ge=1, le=100)] = sql.PAGE
) -> Any:
    async with pool.connection() as conn:
        await conn.execute(sql.IMPERSONATE, sql.impersonation(user, "GET", "/tasks"))
        cursor = await conn.execute(sql.LIST, (workspace_id, limit + 1))
        rows = await cursor.fetchall()
    return rows[:limit]


@app.post("/tasks", response_model=Task, status_code=201)
async def create_task(user: User, body: TaskIn) -> Any:
    async with pool.connection() as conn:
        await conn.execute(sql.IMPERSONATE, sql.impersonation(user, "POST", "/tasks"))
        cursor = await conn.execute(sql.INSERT, (body.project_id, body.title))
        return await cursor.fetchone()
