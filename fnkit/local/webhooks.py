"""Deliver database webhooks locally: what pg_net does on Supabase, from a queue, with retries.

On Supabase a database webhook is a trigger calling `supabase_functions.http_request(...)`,
which posts through pg_net. fnkit's bootstrap gives plain Postgres the same trigger function,
but it writes the call to `supabase_functions.delivery_queue` (in the writing transaction)
instead. `make dev` runs a `Deliverer` that posts each queued call to its URL with its headers
and payload. Like Supabase, an answer under 500 counts as delivered. A connection error, a
timeout or a 5xx is retried with exponential backoff (0.5 s, 1 s, 2 s, ... capped at 60 s)
until `max_attempts`, then the row is marked failed (a dead letter to inspect). So a function
that is down when the change happens gets the call when it comes back, and nothing is lost.

Deliveries are at least once (a crash after the POST and before the row is marked sends it
again): receivers must be idempotent, as they must be on Supabase.
"""

from __future__ import annotations

import json
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row

_NEXT = """
select id, url, method, headers, params, payload, timeout_ms, attempts
  from supabase_functions.delivery_queue
 where delivered_at is null and failed_at is null and next_attempt_at <= now()
 order by id
 limit 1
 for update skip locked
"""


@dataclass
class Outcome:
    """What one attempt got: an HTTP status, or an error (no answer)."""

    status: int | None
    error: str | None = None

    @property
    def delivered(self) -> bool:
        return self.status is not None and self.status < 500


class Deliverer:
    """Drains the local webhook queue, in a background thread or one call at a time."""

    def __init__(
        self,
        database_url: str,
        *,
        poll_s: float = 0.25,
        max_attempts: int = 8,
        base_backoff_s: float = 0.5,
        max_backoff_s: float = 60.0,
        verbose: bool = True,
    ) -> None:
        self.database_url = database_url
        self.poll_s = poll_s
        self.max_attempts = max_attempts
        self.base_backoff_s = base_backoff_s
        self.max_backoff_s = max_backoff_s
        self.verbose = verbose
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def backoff(self, attempts: int) -> float:
        """Seconds to wait after the `attempts`-th failed attempt."""
        return float(min(self.base_backoff_s * 2 ** max(attempts - 1, 0), self.max_backoff_s))

    def run_once(self) -> int:
        """Attempt every call that is due now; the number attempted."""
        attempted = 0
        with psycopg.connect(self.database_url, row_factory=dict_row) as conn:
            while not self._stop.is_set():
                with conn.transaction():
                    row = conn.execute(_NEXT).fetchone()
                    if row is None:
                        return attempted
                    outcome = post(row)
                    self._record(conn, row, outcome)
                attempted += 1
        return attempted

    def _record(self, conn: psycopg.Connection[Any], row: dict[str, Any], out: Outcome) -> None:
        attempts = row["attempts"] + 1
        if out.delivered:
            conn.execute(
                "update supabase_functions.delivery_queue set attempts = %s, delivered_at = now(),"
                " last_status = %s, last_error = null where id = %s",
                (attempts, out.status, row["id"]),
            )
            self._say(f"webhook {row['id']} delivered to {row['url']} ({out.status})")
            return
        failed = attempts >= self.max_attempts
        delay = self.backoff(attempts)
        conn.execute(
            "update supabase_functions.delivery_queue set attempts = %s, last_status = %s,"
            " last_error = %s, next_attempt_at = now() + make_interval(secs => %s),"
            " failed_at = case when %s then now() end where id = %s",
            (attempts, out.status, out.error, delay, failed, row["id"]),
        )
        what = out.error or f"HTTP {out.status}"
        if failed:
            self._say(f"webhook {row['id']} failed after {attempts} attempts: {what}")
        else:
            self._say(f"webhook {row['id']} attempt {attempts}: {what}; retry in {delay:g}s")

    def _say(self, line: str) -> None:
        if self.verbose:
            print(f"fnkit: {line}", file=sys.stderr, flush=True)

    def start(self) -> Deliverer:
        """Deliver in a daemon thread until `stop()`."""
        self._thread = threading.Thread(target=self._loop, name="fnkit-webhooks", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except psycopg.Error as exc:  # the database restarting: try again next tick
                self._say(f"webhook delivery paused: {type(exc).__name__}: {exc}")
            self._stop.wait(self.poll_s)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


def post(row: dict[str, Any]) -> Outcome:
    """One HTTP attempt of a queued call, as pg_net would make it."""
    url = row["url"]
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        return Outcome(status=None, error=f"not an http(s) URL: {url[:100]}")
    params = row.get("params") or {}
    if params:
        url += ("&" if "?" in url else "?") + urllib.parse.urlencode(params)
    body = None if row["method"] == "GET" else json.dumps(row["payload"]).encode()
    headers = {str(k): str(v) for k, v in (row.get("headers") or {}).items()}
    request = urllib.request.Request(  # noqa: S310 (http and https only, checked above)
        url, data=body, headers=headers, method=row["method"]
    )
    timeout = max(row.get("timeout_ms") or 1000, 100) / 1000
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return Outcome(status=response.status)
    except urllib.error.HTTPError as exc:
        return Outcome(status=exc.code)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return Outcome(status=None, error=f"{type(exc).__name__}: {reason}"[:300])


def configure(database_url: str, base_url: str, secret: str, name: str = "task_assigned") -> bool:
    """Point the database webhook `name` at this environment's functions (`fnkit dev`, tests).

    Writes the row of private.webhook_settings the events-in migration reads; its trigger
    re-creates the webhook trigger. False when the database has no such table (not migrated).
    """
    path = {"task_assigned": "/hooks/task-assigned"}[name]
    with psycopg.connect(database_url, autocommit=True) as conn:
        exists = conn.execute("select to_regclass('private.webhook_settings')").fetchone()
        if exists is None or exists[0] is None:
            return False
        conn.execute(
            "insert into private.webhook_settings (name, url, authorization_header)"
            " values (%s, %s, %s) on conflict (name) do update"
            " set url = excluded.url, authorization_header = excluded.authorization_header,"
            " updated_at = now()",
            (name, base_url.rstrip("/") + path, f"Bearer {secret}"),
        )
    return True
