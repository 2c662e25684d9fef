"""housekeeping: the scheduled work nobody requests (outbox delivery, expiry, trimming).

Every route here is a scheduled route: only the scheduler calls it (Cloud Scheduler's OIDC
token, or the service role key from pg_cron + pg_net or `make dev`), one run at a time (an
overlapping run answers `{"ran": false, ...}`), and each is safe to repeat. Each step commits
on its own (`shared.service_sql`), so a run cut short keeps what it finished.
"""

from __future__ import annotations

from typing import Any

from shared import App, Request, Schema
from shared.dispatch import dispatch
from shared.service_sql import run

app = App(
    "housekeeping",
    title="Housekeeping",
    description=(
        "Scheduled work: outbox delivery, expiry of idempotency keys, trimming of old history."
        " Only the scheduler may call these routes (Cloud Scheduler's OIDC token, or the service"
        ' role); one run at a time (an overlapping run answers `{"ran": false, ...}`), and every'
        " run is safe to repeat."
    ),
)

EXPIRE_BATCH = 1000
EXPIRE_MAX_BATCHES = 50  # at most 50,000 keys an hour; the next run takes the rest
TRIM_BATCH = 5000
TRIM_MAX_BATCHES = 20
REALTIME_DAYS = 3
OUTBOX_DAYS = 7

# ---- models ---------------------------------------------------------------------------------


class Ran(Schema):
    ran: bool
    reason: str | None = None


class Dispatched(Ran):
    delivered: int = 0
    retrying: int = 0
    dead: int = 0


class Expired(Ran):
    expired: int = 0
    batches: int = 0


class Trimmed(Ran):
    realtime_messages: int = 0
    outbox: int = 0


# ---- routes and handlers --------------------------------------------------------------------


@app.post("/outbox/dispatch", schedule="* * * * *", response=Dispatched)
def dispatch_outbox(request: Request) -> dict[str, Any]:
    """Deliver due outbox messages: retries, backoff, dead letters (see shared.dispatch)."""
    return dispatch(request.settings)


@app.post("/idempotency-keys/expire", schedule="0 * * * *", response=Expired)
def expire_idempotency_keys(request: Request) -> dict[str, Any]:
    """Remove expired Idempotency-Key records in bounded batches, each its own transaction."""
    total = batches = 0
    while batches < EXPIRE_MAX_BATCHES:
        removed = int(
            run(request.settings, "select private.idempotency_expire(%s) as n", (EXPIRE_BATCH,))[0][
                "n"
            ]
        )
        batches += 1
        total += removed
        if removed < EXPIRE_BATCH:
            break
    return {"expired": total, "batches": batches}


@app.post("/history/trim", schedule="15 3 * * *", response=Trimmed)
def trim_history(request: Request) -> dict[str, Any]:
    """Trim broadcast messages older than 3 days and outbox rows delivered over 7 days ago."""
    totals = {"realtime_messages": 0, "outbox": 0}
    for _ in range(TRIM_MAX_BATCHES):
        row = run(
            request.settings,
            "select * from private.trim_history(%s, %s, %s)",
            (TRIM_BATCH, REALTIME_DAYS, OUTBOX_DAYS),
        )[0]
        for name in totals:
            totals[name] += int(row[name])
        if row["realtime_messages"] < TRIM_BATCH and row["outbox"] < TRIM_BATCH:
            break
    return totals


handler = app.handler
