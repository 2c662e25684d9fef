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
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest

from fnkit.local.realtime.pgoutput import Decoder
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


# ---- reading pgoutput (the local Realtime's decoder) ---------------------------------------


@dataclass
class Change:
    op: str
    table: str
    old: dict[str, object] | None = None
    new: dict[str, object] | None = None


def peek(admin: Conn, slot: str) -> list[Change]:
    rows = admin.execute(
        "select data from pg_logical_slot_peek_binary_changes(%s, null, null,"
        " 'proto_version', '1', 'publication_names', 'supabase_realtime')",
        (slot,),
    ).fetchall()
    decoded = Decoder().feed([bytes(row[0]) for row in rows])
    return [Change(c.op, f"{c.relation.schema}.{c.relation.table}", c.old, c.new) for c in decoded]


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
