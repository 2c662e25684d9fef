"""Postgres Changes from the database's own change stream, as Realtime reads it.

A temporary logical replication slot on `pgoutput` (so a crash leaves no slot holding WAL: it
goes with its session) is read through SQL every few milliseconds with the `supabase_realtime`
publication; only the publication's tables ever appear. Each change is matched against the
channels' bindings (event, schema, table, filters), checked per subscriber against its SELECT
policies (`records.visible`), and sent as `postgres_changes` with the ids of the bindings it
matched, one message per channel.

A server without `wal_level=logical` cannot decode: the feed says so once, clearly, and
channels that ask for Postgres Changes get that message as their `system` error; broadcast and
presence are unaffected.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from typing import TYPE_CHECKING, Any

import psycopg

from fnkit.local.realtime import records
from fnkit.local.realtime.bindings import Binding
from fnkit.local.realtime.pgoutput import Change, Decoder, Relation
from fnkit.local.realtime.serializers import Message
from fnkit.local.tokens import role_of

if TYPE_CHECKING:
    from fnkit.local.realtime.channel import Channel

__all__ = ["NOT_LOGICAL", "ChangeFeed"]

_log = logging.getLogger(__name__)

PUBLICATION = "supabase_realtime"
IDLE_INTERVAL_S = 0.5
QUIET_INTERVAL_S = 0.1
NOT_LOGICAL = (
    "Postgres Changes are unavailable: the database runs with wal_level={level}, and reading"
    " its changes needs wal_level=logical (set it with `alter system set wal_level = logical`"
    " and restart the server, or use the embedded Postgres); broadcast and presence still work"
)
NO_PUBLICATION = (
    "Postgres Changes are unavailable: the database has no `supabase_realtime` publication"
    " (the project's bootstrap creates it); broadcast and presence still work"
)
TABLE_INFO_TTL_S = 5.0
_HAS_COLUMN = (
    "select 1 from pg_attribute where attname = %s and attnum > 0 and not attisdropped"
    " and attrelid = format('%%I.%%I', %s::text, %s::text)::regclass"
)
_READ = (
    "select data from pg_logical_slot_get_binary_changes(%s, null, null,"
    " 'proto_version', '1', 'publication_names', %s)"
)


class ChangeFeed:
    def __init__(self, database_url: str, interval_s: float = 0.02) -> None:
        self.database_url = database_url
        self.interval_s = interval_s
        self.slot = f"fnkit_realtime_{os.getpid()}_{secrets.token_hex(4)}"
        self.problem: str | None = None
        self.ready = threading.Event()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._subs: dict[Channel, tuple[int, list[Binding]]] = {}
        self._tables: dict[Relation, tuple[float, records.TableInfo]] = {}
        self._thread = threading.Thread(target=self._run, name="realtime-changes", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=5)

    def _pause(self, quiet: int) -> None:
        """Poll often while someone listens, at Realtime's own pace (100 ms) once nothing has
        changed for a second; rarely when nobody listens (the slot must still be drained)."""
        if not self._subs:
            timeout = IDLE_INTERVAL_S
        elif quiet * self.interval_s < 1.0:
            timeout = self.interval_s
        else:
            timeout = QUIET_INTERVAL_S
        self._wake.wait(timeout)
        self._wake.clear()

    # ---- subscriptions ----------------------------------------------------------------

    def subscribe(self, channel: Channel, bindings: list[Binding]) -> str | None:
        """Register the channel's bindings once the slot reads; the error to report, if any."""
        if not self.ready.wait(timeout=15):
            return "Realtime was unable to connect to the project database"
        if self.problem is not None:
            return self.problem
        try:
            error, since = self._check(bindings)
        except psycopg.Error as exc:
            return f"Unable to subscribe to changes with given parameters: {exc}"
        if error is None:
            with self._lock:
                self._subs[channel] = (since, list(bindings))
            self._wake.set()
        return error

    def unsubscribe(self, channel: Channel) -> None:
        with self._lock:
            self._subs.pop(channel, None)

    def _check(self, bindings: list[Binding]) -> tuple[str | None, int]:
        """Realtime refuses a binding that matches no published table or filters a column
        the table lacks. Also the WAL position from which the subscription hears changes:
        a transaction that committed before it was subscribed is not sent to it, even when
        the slot is read after the subscription."""
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            row = conn.execute("select (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint").fetchone()
            since = int(row[0]) if row else 0
            published = conn.execute(
                "select schemaname, tablename from pg_publication_tables where pubname = %s",
                (PUBLICATION,),
            ).fetchall()
            for binding in bindings:
                tables = [
                    (s, t)
                    for s, t in published
                    if binding.schema in ("*", s) and binding.table in ("*", t)
                ]
                if not tables:
                    return (
                        "Unable to subscribe to changes with given parameters. Please check"
                        " Realtime is enabled for the given connect parameters: [event:"
                        f" {binding.event}, schema: {binding.schema}, table: {binding.table},"
                        f" filters: {[(f.column, f.op, f.value) for f in binding.filters]}]",
                        since,
                    )
                for f in binding.filters:
                    if (
                        binding.table != "*"
                        and not conn.execute(
                            _HAS_COLUMN,
                            (f.column, binding.schema, binding.table),
                        ).fetchone()
                    ):
                        return f"invalid column for filter {f.column}", since
        return None, since

    # ---- the stream ---------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.database_url, autocommit=True) as conn:
                    if not self._open(conn):
                        return
                    decoder = Decoder()
                    quiet = 0
                    while not self._stop.is_set():
                        quiet = 0 if self.poll(conn, decoder) else quiet + 1
                        if quiet:
                            self._pause(quiet - 1)
            except psycopg.Error as exc:
                _log.warning("realtime: the change stream failed (%s); reconnecting", exc)
                self._stop.wait(1.0)
            except Exception:  # a bug must not end Postgres Changes for good
                _log.exception("realtime: the change stream failed; reconnecting")
                self._stop.wait(1.0)

    def _open(self, conn: psycopg.Connection[Any]) -> bool:
        row = conn.execute("show wal_level").fetchone()
        level = str(row[0]) if row else "unknown"
        published = conn.execute(
            "select 1 from pg_publication where pubname = %s", (PUBLICATION,)
        ).fetchone()
        if level != "logical" or published is None:
            self.problem = NOT_LOGICAL.format(level=level) if level != "logical" else NO_PUBLICATION
            _log.warning("realtime: %s", self.problem)
            self.ready.set()
            return False
        conn.execute(
            "select pg_create_logical_replication_slot(%s, 'pgoutput', true)", (self.slot,)
        )
        records.install_probe(conn)
        self.problem = None
        self.ready.set()
        return True

    def poll(self, conn: psycopg.Connection[Any], decoder: Decoder) -> int:
        """Read and dispatch what the slot holds; the number of changes."""
        rows = conn.execute(_READ, (self.slot, PUBLICATION)).fetchall()
        if not rows:
            return 0
        changes = decoder.feed([bytes(row[0]) for row in rows])
        for change in changes:
            try:
                self._dispatch(conn, change)
            except psycopg.OperationalError:
                raise  # the session is gone: reconnect
            except Exception:  # one change that cannot be sent must not stop the stream
                _log.exception("realtime: could not deliver a change to %s", change.relation)
        return len(changes) or len(rows)

    def _table(self, conn: psycopg.Connection[Any], relation: Relation) -> records.TableInfo:
        """A table's columns, key, RLS flag and grants, re-read every few seconds (a Relation
        message only comes with a column change; a GRANT or ENABLE RLS sends none)."""
        cached = self._tables.get(relation)
        now = time.monotonic()
        if cached is None or now - cached[0] > TABLE_INFO_TTL_S:
            cached = self._tables[relation] = (now, records.table_info(conn, relation))
        return cached[1]

    def _dispatch(self, conn: psycopg.Connection[Any], change: Change) -> None:
        schema, table = change.relation.schema, change.relation.table
        with self._lock:
            wanted = [
                (channel, [b for b in bindings if b.wants(change.op, schema, table)])
                for channel, (since, bindings) in self._subs.items()
                if change.commit_lsn >= since
            ]
        wanted = [(channel, bindings) for channel, bindings in wanted if bindings]
        if not wanted:
            return
        info = self._table(conn, change.relation)
        new, old = records.typed_rows(conn, change)
        row = old if change.op == "DELETE" else new
        types = info.types
        matches = []
        for channel, bindings in wanted:
            passing = [b for b in bindings if b.passes(row or {}, types)]
            # One message per distinct `select` (Realtime fans out per selected columns), each
            # with the ids of the bindings it answers.
            for select in dict.fromkeys(b.select for b in passing):
                matches.append((channel, select, [b.id for b in passing if b.select == select]))
        if not matches:
            return
        refused = records.refusal(change, info)
        payloads: dict[tuple[str, tuple[str, ...] | None], dict[str, Any]] = {}
        allowed = []
        for channel, select, ids in matches:
            role = role_of(channel.identity.claims)
            error = refused or records.role_refusal(change, info, role)
            if error is None:
                allowed.append((channel, select, ids))
            else:  # Realtime tells the subscriber why it gets no row
                channel.push("postgres_changes", {"ids": ids, "data": error})
        if info.rls and change.op != "DELETE" and new is not None and allowed:
            viewers = [(role_of(c.identity.claims), c.identity.claims_json) for c, _, _ in allowed]
            seen = records.visible(conn, change, info, new, viewers)
            allowed = [m for m, ok in zip(allowed, seen, strict=True) if ok]
        frames: dict[tuple[str, str, tuple[int, ...]], dict[str, str | bytes | None]] = {}
        for channel, select, ids in allowed:
            role = role_of(channel.identity.claims)
            if (role, select) not in payloads:
                payloads[role, select] = records.build_payload(change, info, role, new, old, select)
            message = Message(channel.topic, "postgres_changes",
                              {"ids": ids, "data": payloads[role, select]})  # fmt: skip
            shared = frames.setdefault((channel.topic, role, tuple(ids)), {})
            channel.session.push(message, shared)  # encoded once for alike subscribers
