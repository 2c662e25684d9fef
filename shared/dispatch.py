"""Events out, part two: deliver what `shared.outbox` stored, after commit, at least once.

A dispatcher run claims due messages with `FOR UPDATE SKIP LOCKED` and a lease (committed at
once, one statement), delivers them outside any transaction, then marks each delivered, or
schedules its retry with exponential backoff, or moves it to the dead letter (`status =
'dead'`, readable by the service role only) after its maximum number of attempts. A dispatcher
killed midway loses nothing: its claims' leases expire and the next run delivers them again
under the same message id (`webhook-id`, `id` in the published JSON), so receivers can drop
duplicates; at-least-once allows no more than that.

Ordering: messages emitted with the same `key` are delivered to each sink in the order they
were stored (a message waits while an earlier one of its key is pending, including its
backoff). Messages without a key, or of different keys, are in no particular order. A dead
message stops blocking its key.

It runs as the scheduled route `POST /housekeeping/outbox/dispatch` (every minute) and, when
the instance can (`OUTBOX_AFTER_RESPONSE`), in a thread started right after a committing
request emitted, for just those messages, so the response does not wait for it.
"""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from typing import Any

from shared import service_sql, tracecontext
from shared.db import Row
from shared.envelope import dumps
from shared.logs import log
from shared.settings import Settings

WEBHOOK_TIMEOUT_S = 10.0
MAX_BACKOFF_S = 3600.0
_CLAIM = """
with due as (
  select o.seq from private.outbox o
   where o.status = 'pending' and o.next_attempt_at <= now()
     and (o.lease_until is null or o.lease_until < now())
     and (%(ids)s::uuid[] is null or o.message_id = any(%(ids)s::uuid[]))
     and (o.key is null or not exists (
           select 1 from private.outbox e
            where e.key = o.key and e.sink = o.sink and e.target = o.target
              and e.status = 'pending' and e.seq < o.seq))
   order by o.seq
   limit %(limit)s
   for update skip locked
)
update private.outbox o
   set attempts = o.attempts + 1, lease_until = now() + make_interval(secs => %(lease)s)
  from due
 where o.seq = due.seq
returning o.seq, o.message_id, o.topic, o.key, o.payload, o.sink, o.target, o.attempts,
          o.created_at, o.trace_context
"""
_DELIVERED = """
update private.outbox set status = 'delivered', delivered_at = now(), lease_until = null,
       last_error = null
 where seq = any(%s) and status = 'pending'
returning seq
"""
_FAILED = """
update private.outbox o
   set status = case when o.attempts >= o.max_attempts then 'dead' else 'pending' end,
       next_attempt_at = now() + make_interval(
         secs => least(%s * power(2, o.attempts - 1), %s)),
       lease_until = null,
       last_error = left(f.error, 1000)
  from unnest(%s::bigint[], %s::integer[], %s::text[]) as f (seq, attempts, error)
 where o.seq = f.seq and o.attempts = f.attempts and o.status = 'pending'
returning o.status
"""


def message_body(row: Row) -> dict[str, Any]:
    """What a sink receives: the same JSON on every attempt."""
    created: datetime = row["created_at"]
    return {
        "id": str(row["message_id"]),
        "topic": row["topic"],
        "key": row["key"],
        "payload": row["payload"],
        "created_at": created.astimezone(UTC).isoformat(),
    }


def deliver(settings: Settings, row: Row) -> None:
    """Send one message to its sink; raise on any failure (the caller schedules a retry)."""
    body = dumps(message_body(row))
    if row["sink"] == "publish":
        from shared.upstash_rest import get_upstash  # no Redis client import in a function

        get_upstash(settings).command("PUBLISH", row["target"], body)
    elif row["sink"] == "webhook":
        _post_signed(settings, row["target"], str(row["message_id"]), body)
    else:
        raise ValueError(f"unknown sink {row['sink']!r}")


def _post_signed(settings: Settings, url: str, message_id: str, body: str) -> None:
    from standardwebhooks import Webhook

    if not settings.outbox_webhook_secret:
        raise RuntimeError("OUTBOX_WEBHOOK_SECRET is not set")
    now = datetime.now(UTC)
    signature = Webhook(settings.outbox_webhook_secret).sign(message_id, now, body)
    request = urllib.request.Request(  # noqa: S310 (the URL is an http(s) setting)
        url,
        data=body.encode(),
        method="POST",
        headers={
            "Content-Type": "application/json",
            "webhook-id": message_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signature,
        },
    )
    telemetry = tracecontext.active
    if telemetry is not None:  # a CLIENT span, and `traceparent` to the receiver
        telemetry.webhook_call(request, _send)
    else:
        _send(request)


class Refused(RuntimeError):
    """The receiver answered with an HTTP error status."""

    def __init__(self, status: int) -> None:
        super().__init__(f"the receiver answered HTTP {status}")
        self.status = status


def _send(request: urllib.request.Request) -> int:
    try:
        with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_S) as response:  # noqa: S310
            response.read()
            status: int = response.status
            return status
    except urllib.error.HTTPError as exc:
        raise Refused(exc.code) from None


def dispatch(
    settings: Settings,
    *,
    ids: list[str] | None = None,
    batch: int = 100,
    budget_s: float = 20.0,
) -> dict[str, int]:
    """Deliver due messages (only `ids` when given) until none is due or the budget is spent."""
    telemetry = tracecontext.activate()  # the dev worker runs this without creating a function
    if telemetry is not None:  # one span over the run: its claims, deliveries and marks
        with telemetry.internal("outbox dispatch"):
            return _dispatch(settings, ids, batch, budget_s)
    return _dispatch(settings, ids, batch, budget_s)


def _dispatch(
    settings: Settings, ids: list[str] | None, batch: int, budget_s: float
) -> dict[str, int]:
    totals = {"delivered": 0, "retrying": 0, "dead": 0}
    deadline = time.monotonic() + budget_s
    while time.monotonic() < deadline:
        claimed = service_sql.run(
            settings,
            _CLAIM,
            {"ids": ids, "limit": batch, "lease": settings.outbox_lease_s},
            "/outbox/dispatch",
        )
        if not claimed:
            break
        done: list[int] = []
        failed: list[tuple[int, int, str]] = []
        telemetry = tracecontext.active
        for row in claimed:
            try:
                if telemetry is not None:  # a span linked to the emitting request's
                    telemetry.deliver(settings, row, deliver)
                else:
                    deliver(settings, row)
                done.append(row["seq"])
            except Exception as exc:
                failed.append((row["seq"], row["attempts"], f"{type(exc).__name__}: {exc}"))
        _mark(settings, done, failed, totals)
    return totals


def _mark(
    settings: Settings,
    done: list[int],
    failed: list[tuple[int, int, str]],
    totals: dict[str, int],
) -> None:
    if done:
        service_sql.run(settings, _DELIVERED, (done,), "/outbox/dispatch")
        totals["delivered"] += len(done)
    if failed:
        seqs, attempts, errors = (list(column) for column in zip(*failed, strict=True))
        rows = service_sql.run(
            settings,
            _FAILED,
            (settings.outbox_backoff_s, MAX_BACKOFF_S, seqs, attempts, errors),
            "/outbox/dispatch",
        )
        dead = 0
        for row in rows:
            dead += row["status"] == "dead"
            totals["dead" if row["status"] == "dead" else "retrying"] += 1
        telemetry = tracecontext.active
        if dead and telemetry is not None:
            telemetry.dead_letters(dead)


def dispatch_in_background(settings: Settings, ids: list[str]) -> None:
    """Deliver these just-committed messages in a thread; failures wait for the next run."""

    def work() -> None:
        try:
            dispatch(settings, ids=ids, budget_s=5.0)
        except Exception as exc:  # the scheduled run delivers what this one could not
            log("WARNING", "outbox: delivery after the response failed", error=repr(exc))

    threading.Thread(target=work, name="fnkit-outbox", daemon=True).start()
