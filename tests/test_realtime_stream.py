"""Realtime, database side and subscriber side.

Database: on a Postgres of its own started with `wal_level=logical` (the embedded server, in a
temporary folder), a task change made as a member through the runtime's impersonation lands in
the `supabase_realtime` publication's stream, read from a logical replication slot with the
`pgoutput` plugin Supabase Realtime uses, and on the broadcast topic `workspace:<id>`, whose
messages only the workspace's members may read.

Subscriber: examples/subscribe.py, run through the real supabase-py and realtime-py clients
against a stand-in Realtime server that speaks the Phoenix protocol and sends the change the
database produced.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import struct
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import psycopg
import pytest

from fnkit import db
from fnkit.devenv import DEV_ANON_KEY
from shared.db import close_pools
from tests.rls_helpers import Conn, World, acting_as, build_world, settings_for

ROOT = Path(__file__).resolve().parents[1]
SLOT = "fnkit_realtime_test"


# ---- a logical-decoding server --------------------------------------------------------------


@pytest.fixture(scope="module")
def logical_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An embedded Postgres restarted with wal_level=logical, bootstrapped and migrated."""
    from fnkit.embedded_pg import start_embedded, stop_embedded

    data_dir = tmp_path_factory.mktemp("pg-logical") / "pgdata"
    url = start_embedded(data_dir)  # stopped below, whatever happens
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("alter system set wal_level = logical")
        stop_embedded(data_dir)
        url = start_embedded(data_dir)
        with psycopg.connect(url, autocommit=True) as conn:
            assert conn.execute("show wal_level").fetchone() == ("logical",)
        db.bootstrap(url)
        db.migrate(url, ROOT / "supabase" / "migrations")
        yield url
    finally:
        close_pools()
        stop_embedded(data_dir)


@pytest.fixture
def admin(logical_url: str) -> Iterator[Conn]:
    with psycopg.connect(logical_url, autocommit=True) as conn:
        yield conn


@pytest.fixture
def world(admin: Conn) -> World:
    return build_world(admin)


@pytest.fixture
def slot(admin: Conn) -> Iterator[str]:
    """A logical replication slot on the publication, created after the world was built."""
    admin.execute("select pg_create_logical_replication_slot(%s, 'pgoutput')", (SLOT,))
    try:
        yield SLOT
    finally:
        admin.execute("select pg_drop_replication_slot(%s)", (SLOT,))


# ---- reading pgoutput ----------------------------------------------------------------------


@dataclass
class Change:
    op: str
    table: str
    old: dict[str, str | None] | None = None
    new: dict[str, str | None] | None = None


@dataclass
class _Reader:
    data: bytes
    at: int = 0

    def take(self, n: int) -> bytes:
        chunk = self.data[self.at : self.at + n]
        self.at += n
        return chunk

    def int(self, fmt: str) -> int:
        (value,) = struct.unpack(fmt, self.take(struct.calcsize(fmt)))
        return int(value)

    def string(self) -> str:
        end = self.data.index(b"\0", self.at)
        text = self.data[self.at : end].decode()
        self.at = end + 1
        return text

    def tuple(self, columns: list[str]) -> dict[str, str | None]:
        values: dict[str, str | None] = {}
        for name in columns[: self.int("!h")]:
            kind = self.take(1)
            values[name] = self.take(self.int("!i")).decode() if kind == b"t" else None
        return values


@dataclass
class Stream:
    relations: dict[int, tuple[str, list[str]]] = field(default_factory=dict)
    changes: list[Change] = field(default_factory=list)


def decode(messages: list[bytes]) -> list[Change]:
    """The row changes of pgoutput (protocol 1) messages: Relation, Insert, Update, Delete."""
    stream = Stream()
    ops = {b"I": "INSERT", b"U": "UPDATE", b"D": "DELETE"}
    for message in messages:
        kind, reader = message[:1], _Reader(message, 1)
        if kind == b"R":
            relid = reader.int("!I")
            name = f"{reader.string()}.{reader.string()}"
            reader.take(1)  # replica identity setting
            columns = []
            for _ in range(reader.int("!h")):
                reader.take(1)  # flags
                columns.append(reader.string())
                reader.take(8)  # type oid, type modifier
            stream.relations[relid] = (name, columns)
        elif kind in ops:
            name, columns = stream.relations[reader.int("!I")]
            change = Change(ops[kind], name)
            tag = reader.take(1)
            if tag in (b"K", b"O"):  # the old row (all columns with REPLICA IDENTITY FULL)
                change.old = reader.tuple(columns)
                tag = reader.take(1) if kind == b"U" else b""
            if tag == b"N":
                change.new = reader.tuple(columns)
            stream.changes.append(change)
    return stream.changes


def peek(admin: Conn, slot: str) -> list[Change]:
    rows = admin.execute(
        "select data from pg_logical_slot_peek_binary_changes(%s, null, null,"
        " 'proto_version', '1', 'publication_names', 'supabase_realtime')",
        (slot,),
    ).fetchall()
    return decode([bytes(row[0]) for row in rows])


# ---- the database side ----------------------------------------------------------------------


BROADCAST = (
    "select event, payload from realtime.messages where topic = %(topic)s"
    " and extension = 'broadcast' and event = 'UPDATE' and payload -> 'record' ->> 'id' = %(task)s"
)


def test_a_task_change_lands_in_the_stream_and_on_the_members_topic(
    logical_url: str, admin: Conn, world: World, slot: str
) -> None:
    settings = settings_for(logical_url)
    with acting_as(settings, world.users["member"], commit=True) as tx:
        assert (
            tx.execute(
                "update public.tasks set title = 'Renamed', status = 'in_progress' where id = %s",
                (world.task,),
            )
            == 1
        )

    changes = peek(admin, slot)
    # Only published tables: the audit row (task_events) and the broadcast row
    # (realtime.messages) written by triggers in the same transaction are not in it.
    assert [(c.op, c.table) for c in changes] == [("UPDATE", "public.tasks")]
    change = changes[0]
    assert change.new is not None and change.old is not None
    assert (change.new["id"], change.new["workspace_id"]) == (str(world.task), str(world.workspace))
    assert (change.old["title"], change.new["title"]) == ("Task", "Renamed")
    assert (change.old["status"], change.new["status"]) == ("todo", "in_progress")

    params = {"topic": world.topic, "task": str(world.task)}
    ((event, payload),) = admin.execute(BROADCAST, params).fetchall()
    assert event == "UPDATE"
    assert (payload["table"], payload["operation"]) == ("tasks", "UPDATE")
    assert (payload["record"]["title"], payload["old_record"]["title"]) == ("Renamed", "Task")

    def readable_by(who: str) -> int:
        # What Realtime does when a user joins the private channel: as that user, with the
        # topic set, select the topic's broadcast messages; RLS decides.
        with acting_as(settings, world.users[who]) as tx:
            tx.value("select set_config('realtime.topic', %s, true)", (world.topic,))
            return len(tx.all(BROADCAST, params))

    assert {who: readable_by(who) for who in ("owner", "member", "viewer", "outsider")} == {
        "owner": 1,
        "member": 1,
        "viewer": 1,
        "outsider": 0,
    }
    with acting_as(settings, None) as tx:  # anon: no rows, or no privilege at all
        tx.value("select set_config('realtime.topic', %s, true)", (world.topic,))
        with contextlib.suppress(psycopg.errors.InsufficientPrivilege):
            assert tx.all(BROADCAST, params) == []


def test_inserts_and_deletes_carry_the_workspace_for_filters(
    logical_url: str, admin: Conn, world: World, slot: str
) -> None:
    """Subscribers filter on workspace_id: a DELETE's old row must carry it (replica
    identity full), or filtered subscribers would never hear of deletes."""
    with acting_as(settings_for(logical_url), world.users["admin"], commit=True) as tx:
        task = tx.value(
            "insert into public.tasks (project_id, title) values (%s, 'Brief') returning id",
            (world.project,),
        )
    with acting_as(settings_for(logical_url), world.users["admin"], commit=True) as tx:
        assert tx.execute("delete from public.tasks where id = %s", (task,)) == 1
    changes = [c for c in peek(admin, slot) if c.table == "public.tasks"]
    assert [c.op for c in changes] == ["INSERT", "DELETE"]
    inserted, deleted = changes
    assert inserted.new is not None and inserted.new["workspace_id"] == str(world.workspace)
    assert deleted.new is None and deleted.old is not None
    assert (deleted.old["id"], deleted.old["workspace_id"]) == (str(task), str(world.workspace))


# ---- the subscriber example against a stand-in Realtime server ------------------------------


def _example() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "fnkit_example_subscribe", ROOT / "examples" / "subscribe.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


class FakeRealtime:
    """Enough of Supabase Realtime's Phoenix protocol (vsn 1.0.0) for one subscriber:
    joins (private ones need the user's token), heartbeats, leaves; once both channels are
    joined it sends the prepared postgres_changes and broadcast messages."""

    def __init__(self, token: str, outgoing: dict[str, dict[str, Any]]) -> None:
        self.token = token
        self.outgoing = outgoing  # topic prefix → message payload
        self.joins: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.loop = asyncio.new_event_loop()
        self.port = 0

    async def _handler(self, ws: Any) -> None:
        from websockets.exceptions import ConnectionClosed

        self.paths.append(ws.request.path)
        with contextlib.suppress(ConnectionClosed):  # the client hung up: a server shrugs
            await self._serve(ws)

    async def _serve(self, ws: Any) -> None:
        joined: list[str] = []
        async for raw in ws:
            message = json.loads(raw)
            topic, ref, event = message["topic"], message.get("ref"), message["event"]
            response: dict[str, Any] = {}
            status = "ok"
            if event == "phx_join":
                self.joins.append(message)
                config = message["payload"]["config"]
                if config.get("private") and message["payload"].get("access_token") != self.token:
                    status, response = "error", {"reason": "Unauthorized"}
                else:
                    response = {
                        "postgres_changes": [
                            {"id": 1000 + i, **binding}
                            for i, binding in enumerate(config.get("postgres_changes") or [])
                        ]
                    }
                    joined.append(topic)
            reply = {"topic": topic, "event": "phx_reply", "ref": ref,
                     "payload": {"status": status, "response": response}}  # fmt: skip
            await ws.send(json.dumps(reply))
            if event == "phx_join" and len(joined) == 2:
                for prefix, (kind, payload) in self.outgoing.items():
                    target = next(t for t in joined if t.startswith(prefix))
                    await ws.send(
                        json.dumps(
                            {"topic": target, "event": kind, "payload": payload, "ref": None}
                        )
                    )

    def start(self) -> None:
        from websockets.asyncio.server import serve

        async def boot() -> Any:
            return await serve(self._handler, "127.0.0.1", 0)

        self.server = self.loop.run_until_complete(boot())
        self.port = self.server.sockets[0].getsockname()[1]
        threading.Thread(target=self.loop.run_forever, daemon=True).start()

    def stop(self) -> None:
        async def shutdown() -> None:
            self.server.close()
            await self.server.wait_closed()

        asyncio.run_coroutine_threadsafe(shutdown(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)


def _realtime_messages(world: World, change: Change, payload: dict[str, Any]) -> dict[str, Any]:
    """What Realtime sends for the change the database produced: Postgres Changes (from the
    WAL change) and the broadcast (the realtime.messages row's payload)."""
    assert change.new is not None
    columns = [{"name": name, "type": "text"} for name in change.new]
    data = {
        "schema": "public", "table": "tasks", "commit_timestamp": "2026-01-01T00:00:00Z",
        "type": change.op, "errors": None, "columns": columns, "record": change.new,
        "old_record": change.old or {},
    }  # fmt: skip
    return {
        "realtime:tasks-of-": ("postgres_changes", {"ids": [1000], "data": data}),
        f"realtime:workspace:{world.workspace}": (
            "broadcast",
            {"event": "UPDATE", "payload": payload, "type": "broadcast", "meta": {"id": "1"}},
        ),
    }


def test_the_example_subscriber_prints_both_kinds_of_change(
    logical_url: str, admin: Conn, world: World, slot: str
) -> None:
    with acting_as(settings_for(logical_url), world.users["member"], commit=True) as tx:
        tx.execute("update public.tasks set title = 'Seen live' where id = %s", (world.task,))
    (change,) = [c for c in peek(admin, slot) if c.table == "public.tasks"]
    ((_, payload),) = admin.execute(
        BROADCAST, {"topic": world.topic, "task": str(world.task)}
    ).fetchall()

    example = _example()
    token = f"user-token-{uuid.uuid4()}"
    fake = FakeRealtime(token, _realtime_messages(world, change, payload))
    fake.start()
    try:

        def run(access_token: str) -> tuple[int, list[dict[str, Any]]]:
            lines: list[dict[str, Any]] = []
            args = example.parse_args(
                [
                    str(world.workspace), "--url", f"http://127.0.0.1:{fake.port}",
                    "--anon-key", DEV_ANON_KEY, "--access-token", access_token,
                    "--max-events", "2", "--seconds", "10",
                ]
            )  # fmt: skip
            return asyncio.run(example.run(args, emit=lines.append)), lines

        code, lines = run(token)
        assert code == 0, lines
        states = {line["channel"]: line["state"] for line in lines if line["via"] == "status"}
        assert states == {
            "postgres_changes": "SUBSCRIBED",
            f"workspace:{world.workspace}": "SUBSCRIBED",
        }
        events = {line["via"]: line for line in lines if line["via"] != "status"}
        assert events["postgres_changes"]["type"] == "UPDATE"
        assert events["postgres_changes"]["table"] == "public.tasks"
        assert events["postgres_changes"]["record"]["title"] == "Seen live"
        assert events["postgres_changes"]["old"]["title"] == "Task"
        assert events["broadcast"] == {
            "via": "broadcast",
            "type": "UPDATE",
            "table": "public.tasks",
            "record": {**events["broadcast"]["record"], "title": "Seen live"},
            "old": {**events["broadcast"]["old"], "title": "Task"},
        }
        assert events["broadcast"]["record"]["id"] == str(world.task)

        # What the client asked for: the filtered binding, and the private topic with the
        # user's token (Realtime authorizes it with the policy on realtime.messages).
        assert all(path.startswith("/realtime/v1/websocket") for path in fake.paths)
        by_topic = {join["topic"]: join["payload"] for join in fake.joins}
        changes_join = by_topic[f"realtime:tasks-of-{world.workspace}"]
        assert changes_join["config"]["postgres_changes"] == [
            {"event": "*", "schema": "public", "table": "tasks",
             "filter": f"workspace_id=eq.{world.workspace}"}
        ]  # fmt: skip
        private_join = by_topic[f"realtime:workspace:{world.workspace}"]
        assert private_join["config"]["private"] is True
        assert private_join["access_token"] == token

        # A token the server refuses: the private join fails and the example says so.
        code, lines = run("someone-elses-token")
        assert code == 1
        assert {"via": "status", "channel": f"workspace:{world.workspace}",
                "state": "CHANNEL_ERROR"}.items() <= lines[-1].items()  # fmt: skip
    finally:
        fake.stop()
