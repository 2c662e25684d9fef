"""Broadcast from the database: the rows `realtime.send` writes to `realtime.messages`.

Realtime reads that table through a replication stream of its own; here it is polled, which
works on any server (also one without `wal_level=logical`). A row is delivered once: rows are
read from a window before the newest `inserted_at` seen (`inserted_at` is the writing
transaction's start, so a transaction that commits late still lands in the window) and the ids
already sent are remembered for as long as the window. A transaction that stays open longer
than the window loses its broadcasts.

Each row goes to its topic as Realtime sends it: to vsn 1.0.0 clients `{event, payload, type:
"broadcast", meta: {id}}`, to vsn 2.0.0 clients a binary "user broadcast" frame (JSON payload,
`{id}` metadata); private rows go to the private topic, whose members were authorized at join.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from fnkit.local.realtime.hub import Hub
from fnkit.local.realtime.serializers import BinaryPayload

__all__ = ["MessagePoller"]

_log = logging.getLogger(__name__)

WINDOW = timedelta(seconds=60)
IDLE_INTERVAL_S = 0.5

_NEW_ROWS = (
    "select id, topic, event, payload, coalesce(private, false), inserted_at"
    " from realtime.messages"
    " where extension = 'broadcast' and inserted_at > %s and payload is not null"
    " order by inserted_at"
)


class MessagePoller:
    def __init__(self, database_url: str, hub: Hub, interval_s: float = 0.05) -> None:
        self.database_url = database_url
        self.hub = hub
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._seen: dict[Any, datetime] = {}
        self._newest: datetime | None = None
        self._polls = 0
        self._missing = False
        self._polled = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="realtime-messages", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.hub.joined.set()
        self._thread.join(timeout=5)

    def _pause(self) -> None:
        """Poll often while channels are joined, rarely when none is (nobody would hear)."""
        idle = self.hub.empty()
        self.hub.joined.wait(IDLE_INTERVAL_S if idle else self.interval_s)
        self.hub.joined.clear()

    def sync(self, timeout: float = 5.0) -> bool:
        """Wait until a poll that started after this call has finished (tests and benches use
        it to know that what was committed before has been delivered)."""
        deadline = time.monotonic() + timeout
        with self._polled:
            target = self._polls + 2
            while self._polls < target and time.monotonic() < deadline:
                self.hub.joined.set()  # no idle pause: poll now
                self._polled.wait(0.05)
            return self._polls >= target

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.database_url, autocommit=True) as conn:
                    if self._newest is None:
                        row = conn.execute("select now()").fetchone()
                        assert row is not None
                        self._newest = row[0]
                    while not self._stop.is_set():
                        self.poll(conn)
                        with self._polled:
                            self._polls += 1
                            self._polled.notify_all()
                        self._pause()
            except psycopg.errors.UndefinedTable:
                if not self._missing:
                    _log.warning("realtime: no realtime.messages table (run the bootstrap):"
                                 " broadcast from the database is off until it exists")  # fmt: skip
                self._missing = True
                self._stop.wait(5.0)
            except psycopg.Error as exc:
                _log.warning("realtime: reading realtime.messages failed (%s); retrying", exc)
                self._stop.wait(1.0)
            except Exception:  # a bug must not end broadcast from the database for good
                _log.exception("realtime: delivering realtime.messages failed; retrying")
                self._stop.wait(1.0)

    def poll(self, conn: psycopg.Connection[Any]) -> int:
        """Deliver the rows not sent yet; how many."""
        assert self._newest is not None
        sent = 0
        for id_, topic, event, payload, private, inserted_at in conn.execute(
            _NEW_ROWS, (self._newest - WINDOW,)
        ):
            if id_ in self._seen:
                continue
            self._seen[id_] = inserted_at
            self._newest = max(self._newest, inserted_at)
            data = json.dumps(payload, separators=(",", ":")).encode()
            body = BinaryPayload(event, data, json=True, meta={"id": str(id_)})
            # Supabase's column is `timestamp` (UTC, no zone); the bootstrap's is timestamptz.
            written = inserted_at if inserted_at.tzinfo else inserted_at.replace(tzinfo=UTC)
            self.hub.broadcast((topic, bool(private)), body, written_at=written)
            sent += 1
        horizon = self._newest - WINDOW
        if len(self._seen) > 1000 or sent:
            self._seen = {k: v for k, v in self._seen.items() if v > horizon}
        return sent
