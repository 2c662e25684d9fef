"""echo: a test-only function that exercises every pipeline step with a body."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from shared import App, Model, RatePolicy, Request, Result

app = App("echo")


class Item(Model):
    name: str = Field(min_length=1, max_length=50)
    count: int = Field(ge=0, le=1000)
    tags: list[str] = []


class Filters(Model):
    status: list[str] = []
    limit: int = Field(default=10, ge=1, le=100)


TIGHT = RatePolicy("tight", limit=3, window=60, fail_open=False)


@app.post("/", status=201)
def create(request: Request, body: Item) -> dict[str, Any]:
    """Echo the validated body back."""
    return {"item": body.model_dump(), "user": request.user_id}


@app.get("/search", auth="public")
def search(request: Request, query: Filters) -> dict[str, Any]:
    return query.model_dump()


@app.get("/tight", rate=TIGHT)
def tight(request: Request) -> dict[str, bool]:
    return {"ok": True}


@app.get("/boom", auth="public")
def boom(request: Request) -> None:
    raise RuntimeError("secret internal detail /etc/passwd")


@app.get("/aal2", auth="user+aal2")
def strong(request: Request) -> dict[str, bool]:
    return {"ok": True}


@app.get("/service", auth="service_role")
def service(request: Request) -> dict[str, str]:
    return {"role": str(request.db.value("select current_user"))}


@app.post("/slow", auth="public", idempotent=False)
def slow(request: Request) -> None:
    """Runs past its statement timeout: the database cancels it (504)."""
    request.db.value("select set_config('statement_timeout', '100ms', true)")
    request.db.value("select pg_sleep(2)")


@app.post("/held", auth="public", idempotent=False, single_statement=True)
def held(request: Request) -> None:
    """Holds its backend for a while, so a test can terminate it mid-request (a write that
    may have committed is never sent twice, so this one is not retried)."""
    request.db.value("select pg_sleep(10) -- fnkit-held")


@app.get("/reads", auth="public")
def reads(request: Request) -> dict[str, Any]:
    """Two reads in one request: both see the caller's role."""
    first = request.db.value("select current_user")
    second = request.db.value("select current_setting('request.method')")
    return {"first": first, "second": second}


@app.get("/unencodable", auth="public")
def unencodable(request: Request) -> dict[str, Any]:
    """A value JSON cannot carry (a lone surrogate): the caller still gets the envelope."""
    return {"text": "\ud800", "big": 2**70}


@app.get("/split-header", auth="public")
def split_header(request: Request) -> Result:
    """A header value with a line break would split the response: refused, never sent."""
    return Result({"ok": True}, headers={"X-Echo": "a\r\nSet-Cookie: stolen=1"})


handler = app.handler
