"""Realtime, database side: what the migrations give Supabase Realtime to read.

On the session's Postgres with `wal_level=logical` (the `logical_url` fixture), a task change
made as a member through the runtime's impersonation lands in the `supabase_realtime`
publication's stream, read from a logical replication slot with the `pgoutput` plugin Supabase
Realtime uses, and on the broadcast topic `workspace:<id>`, whose messages only the workspace's
members may read. The subscriber side (the local Realtime, examples/subscribe.py through
supabase-py) is tests/test_local_realtime*.py.
"""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

import psycopg
import pytest

from tests.rls_helpers import Conn, World, acting_as, build_world, settings_for

SLOT = "fnkit_realtime_test"


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
