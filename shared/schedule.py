"""Scheduled routes: a cron expression in the route declaration, one run at a time.

`@app.post("/purge", schedule="*/30 * * * *")` makes a route the scheduler's: its auth is
`Scheduler` (Cloud Scheduler's OIDC token, or the service role key that pg_cron + pg_net and
`make dev` send), it is not rate limited and takes no `Idempotency-Key`, and its handler runs
under a transaction-scoped advisory lock. Why the lock: schedulers retry and runs overlap (a
slow run, a retry, a manual `fnkit schedule run`); the second run sees the lock taken and
answers `{"ran": false, ...}` instead of doing the work twice. A handler answers a dict of
what it did; the runtime adds `"ran": true`.

This module is imported only by functions that declare a schedule (cronsim is imported here).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.envelope import Result

if TYPE_CHECKING:
    from shared.request import Request

BUSY = {"ran": False, "reason": "another run holds the lock"}


@dataclass(frozen=True, slots=True)
class Schedule:
    """A cron expression (five fields, cronsim's dialect) in a time zone (UTC by default)."""

    cron: str
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        from cronsim import CronSim, CronSimError

        try:
            zone = ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"schedule: unknown time zone {self.timezone!r}") from None
        try:
            CronSim(self.cron, dt.datetime(2000, 1, 1, tzinfo=zone))
        except CronSimError as exc:
            raise ValueError(f"schedule: bad cron expression {self.cron!r}: {exc}") from None

    def runs_after(self, after: dt.datetime) -> Iterator[dt.datetime]:
        """The run times strictly after `after` (aware), in this schedule's zone."""
        from cronsim import CronSim

        return iter(CronSim(self.cron, after.astimezone(ZoneInfo(self.timezone))))

    def next_after(self, after: dt.datetime) -> dt.datetime:
        return next(self.runs_after(after))


def as_schedule(value: str | Schedule) -> Schedule:
    return value if isinstance(value, Schedule) else Schedule(value)


def lock_key(function: str, method: str, path: str) -> int:
    """A stable signed 64-bit advisory lock key for one scheduled route."""
    digest = hashlib.blake2b(f"fnkit schedule {function} {method} {path}".encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "big", signed=True)


def locked(key: int, endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """Run `endpoint` only if this run gets the route's advisory lock; say what happened.

    The lock is `pg_try_advisory_xact_lock` in the request's own transaction (made explicit
    here): it is released by COMMIT or ROLLBACK, so a run that dies cannot leave it held, and
    through Supavisor's transaction pooler it stays on one server connection.
    """

    @functools.wraps(endpoint)
    def run(request: Request, **models: Any) -> Any:
        request.db.atomic()
        if not request.db.value("select pg_try_advisory_xact_lock(%s)", (key,)):
            return dict(BUSY)
        out = endpoint(request, **models)
        data = out.data if isinstance(out, Result) else out
        if data is None:
            return {"ran": True}
        if not isinstance(data, dict):
            raise TypeError("a scheduled route answers a dict of what it did")
        return {"ran": True, **data}

    return run
