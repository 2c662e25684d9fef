"""health: is this function's database and Redis reachable, and how fast."""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel

from shared import App, Request, Result
from shared.errors import Unavailable
from shared.upstash_rest import get_upstash

app = App("health", title="Health", description="Liveness of the database and Redis.")


# ---- models ---------------------------------------------------------------------------


class Check(BaseModel):
    ok: bool
    latency_ms: float
    error: str | None = None


class Health(BaseModel):
    status: str
    version: str
    checks: dict[str, Check]


# ---- handlers -------------------------------------------------------------------------


def _timed(probe: Any) -> Check:
    started = time.perf_counter()
    try:
        probe()
    except Exception as exc:  # a probe's failure is the answer, not an error
        return Check(ok=False, latency_ms=_ms(started), error=type(exc).__name__)
    return Check(ok=True, latency_ms=_ms(started))


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


@app.get("/", auth="public", response=Health)
def health(request: Request) -> Result:
    """Status of the database and Redis with their latency; 503 when one is down."""
    checks = {
        "database": _timed(lambda: request.db.value("select 1")),
        "redis": _timed(lambda: get_upstash(request.settings).command("PING")),
    }
    if not all(check.ok for check in checks.values()):
        raise Unavailable(
            "A dependency is down",
            # loc/type/message as every error detail has (ErrorDetail in the OpenAPI document)
            details=[
                {
                    "loc": ["checks", name],
                    "type": "ok" if check.ok else "unavailable",
                    "message": f"{name}: {'ok' if check.ok else check.error or 'down'}",
                    "check": name,
                    **check.model_dump(),
                }
                for name, check in checks.items()
            ],
        )
    return Result(Health(status="ok", version=request.settings.version, checks=checks))


handler = app.handler
