"""Postgres Changes from the local Realtime, on a database that decodes its own WAL.

The machine's Postgres may run with wal_level=replica, so this module runs on the session's
embedded Postgres with wal_level=logical (the `logical_url` fixture), bootstrapped and
migrated. Beside the project's published
tables it gets `rt_probe` (published, no RLS: typed filters), `rt_todo` (published, RLS letting
every signed-in user read and write, as the supabase-py suite's `todos`) and `rt_hidden` (not
published).
Subscribers are realtime-py and supabase-py (through examples/subscribe.py), served over real
websockets; changes are committed as the project's users through the runtime's impersonation.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import re
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import psycopg
import pytest
from realtime import RealtimePostgresChangesListenEvent as Event
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.serving import make_server
from werkzeug.wrappers import Response

from fnkit.devenv import DEV_ANON_KEY
from tests.rls_helpers import Conn, World, acting_as, build_world, settings_for
from tests.test_local_realtime import (
    Listener,
    Realtime,
    nothing_more,
    receive,
    run,
    send,
    serve_realtime,
    stop_realtime,
)

ROOT = Path(__file__).resolve().parents[1]

PROBE_TABLES = """
create table public.rt_probe (id int primary key, n int, label text, flag boolean,
                              at timestamptz not null default now());
create table public.rt_hidden (id int primary key);
grant select on public.rt_probe, public.rt_hidden to anon, authenticated;
create table public.rt_todo (id uuid primary key default gen_random_uuid(), description text,
                             is_completed boolean default false);
alter table public.rt_todo enable row level security;
create policy rt_todo_all on public.rt_todo for all to authenticated using (true)
  with check (true);
grant select, insert, update, delete on public.rt_todo to authenticated;
alter publication supabase_realtime add table public.rt_probe, public.rt_todo;
"""


@pytest.fixture(scope="module")
def probe_tables(logical_url: str) -> None:
    """rt_probe and rt_hidden, once (the session's logical database outlives this module)."""
    with psycopg.connect(logical_url, autocommit=True) as conn:
        if conn.execute("select to_regclass('public.rt_probe')").fetchone() == (None,):
            conn.execute(PROBE_TABLES)


@pytest.fixture(scope="module")
def rt(
    logical_url: str, probe_tables: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Realtime]:
    served = serve_realtime(logical_url, tmp_path_factory.mktemp("realtime"))
    yield served
    stop_realtime(served)


@pytest.fixture
def admin(logical_url: str) -> Iterator[Conn]:
    with psycopg.connect(logical_url, autocommit=True) as conn:
        yield conn


@pytest.fixture
def world(admin: Conn) -> World:
    return build_world(admin)


def tasks_of(world: World) -> dict[str, Any]:
    return {"table": "tasks", "schema": "public", "filter": f"workspace_id=eq.{world.workspace}"}


# ---- Postgres Changes through realtime-py ---------------------------------------------------


def test_a_members_subscription_hears_a_new_task_an_outsiders_nothing(
    rt: Realtime, logical_url: str, world: World
) -> None:
    """The delay from COMMIT to arrival is a figure of `python -m fnkit.local.realtime.bench`
    (p50 and p99 with 100 subscribers), not asserted here: the wait is only a deadline."""

    async def scenario() -> tuple[Listener, Listener, Listener]:
        member = rt.client(rt.token(world.users["member"]))
        outsider = rt.client(rt.token(world.users["outsider"]))
        heard = {"member": Listener(), "outsider": Listener(), "system": Listener()}
        channels = {}
        for who, client in (("member", member), ("outsider", outsider)):
            channel = client.channel(f"tasks-{who}")
            channel.on_postgres_changes(Event.Insert, heard[who].on_event, **tasks_of(world))
            channels[who] = channel
        channels["member"].on_system(heard["system"].events.append)
        for who, channel in channels.items():
            await channel.subscribe(heard[who].on_state)
        with acting_as(settings_for(logical_url), world.users["member"], commit=True) as tx:
            tx.execute(
                "insert into public.tasks (project_id, title) values (%s, 'Live')", (world.project,)
            )
        await heard["member"].wait(lambda: bool(heard["member"].events), seconds=10.0)
        await asyncio.sleep(0.3)
        await member.close()
        await outsider.close()
        return heard["member"], heard["outsider"], heard["system"]

    member, outsider, system = run(scenario())
    assert member.states == outsider.states == ["SUBSCRIBED"], (member.errors, outsider.errors)
    assert [dict(s) for s in system.events] == [
        {"extension": "postgres_changes", "status": "ok", "message": "Subscribed to PostgreSQL",
         "channel": "tasks-member"}
    ]  # fmt: skip
    ((change,),) = [[e] for e in member.events]
    data = change["data"]
    assert (data["schema"], data["table"], data["type"]) == ("public", "tasks", "INSERT")
    assert data["errors"] is None
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", data["commit_timestamp"])
    record = data["record"]
    assert record["title"] == "Live" and record["workspace_id"] == str(world.workspace)
    assert record["priority"] == 2 and record["status"] == "todo"  # typed: a number, a string
    assert {"name": "priority", "type": "int2"} in data["columns"]
    assert "old_record" not in data
    assert len(change["ids"]) == 1
    assert outsider.events == []


def test_updates_carry_the_old_row_and_deletes_only_its_key_under_rls(
    rt: Realtime, logical_url: str, admin: Conn, world: World
) -> None:
    async def scenario() -> Listener:
        client = rt.client(rt.token(world.users["viewer"]))
        heard = Listener()
        channel = client.channel("tasks-all")
        channel.on_postgres_changes(Event.All, heard.events.append, **tasks_of(world))
        await channel.subscribe(heard.on_state)
        with acting_as(settings_for(logical_url), world.users["member"], commit=True) as tx:
            tx.execute("update public.tasks set title = 'Renamed' where id = %s", (world.task,))
        # The update is checked against the committed row: deleting it at once could hide it
        # (as on Realtime), so the delete waits for the update to arrive.
        await heard.wait(lambda: len(heard.events) == 1, seconds=10)
        admin.execute("delete from public.tasks where id = %s", (world.task,))
        await heard.wait(lambda: len(heard.events) == 2, seconds=10)
        await client.close()
        return heard

    heard = run(scenario())
    assert len(heard.events) == 2, heard.events
    update, delete = (e["data"] for e in heard.events)
    assert update["type"] == "UPDATE"
    assert (update["record"]["title"], update["old_record"]["title"]) == ("Renamed", "Task")
    assert delete["type"] == "DELETE" and "record" not in delete
    assert delete["old_record"] == {"id": str(world.task)}


# ---- bindings and filters on the wire -------------------------------------------------------

FILTERS = {
    "eq": "n=eq.5",
    "neq": "n=neq.5",
    "lt": "n=lt.5",
    "lte": "n=lte.5",
    "gt": "n=gt.5",
    "gte": "n=gte.5",
    "in": "n=in.(1,5)",
    "label": "label=eq.b",
    "not": "n=not.eq.5",
    "both": "n=gt.1,label=eq.b",
    "at": "at=gt.2026-06-01T00:00:00Z",
    "like": "label=like.%b%",
    "ilike": "label=ilike.B",
    "match": "label=match.^a$",
    "imatch": "label=imatch.^A",
    "is": "flag=is.null",
    "is-not": "flag=not.is.null",
    "isdistinct": "n=isdistinct.5",
    "quoted": 'label=eq."b"',
}


def test_filters_events_and_tables_as_realtime_applies_them(rt: Realtime, admin: Conn) -> None:
    with rt.raw() as ws:
        bindings = [{"event": "INSERT", "schema": "public", "table": "rt_probe", "filter": f}
                    for f in FILTERS.values()]  # fmt: skip
        bindings.append({"event": "UPDATE", "schema": "public", "table": "rt_probe"})
        send(ws, "realtime:probe", "phx_join", {"config": {"postgres_changes": bindings}}, "1")
        reply = receive(ws)["payload"]
        assert reply["status"] == "ok"
        echoed = reply["response"]["postgres_changes"]
        assert [{k: v for k, v in b.items() if k != "id"} for b in echoed] == bindings
        ids = {name: b["id"] for name, b in zip([*FILTERS, "update"], echoed, strict=True)}
        assert receive(ws)["payload"]["message"] == "Subscribed to PostgreSQL"
        for n, label, at in ((1, "a", "2026-01-01 10:00+00"), (5, "b", "2026-07-01 10:00+02"),
                             (9, "b", "2026-05-31 23:00-02")):  # fmt: skip
            admin.execute(
                "insert into public.rt_probe (id, n, label, at) values (%s, %s, %s, %s)",
                (n, n, label, at),
            )
        admin.execute("update public.rt_probe set flag = true where id = 9")
        got: dict[int, set[int]] = {}
        for _ in range(4):
            message = receive(ws)
            assert message["event"] == "postgres_changes"
            data = message["payload"]["data"]
            key = data["record"]["id"] if data["type"] == "INSERT" else -data["record"]["id"]
            got[key] = set(message["payload"]["ids"])
    names = {v: k for k, v in ids.items()}
    heard = {key: {names[i] for i in value} for key, value in got.items()}
    assert heard == {
        1: {"neq", "lt", "lte", "in", "not", "match", "imatch", "is", "isdistinct"},
        5: {"eq", "lte", "gte", "in", "label", "both", "at", "like", "ilike", "is", "quoted"},
        9: {
            "neq",
            "gt",
            "gte",
            "label",
            "not",
            "both",
            "at",
            "like",
            "ilike",
            "is",
            "isdistinct",
            "quoted",
        },
        -9: {"update"},
    }


def test_unpublished_tables_and_bad_filters_get_realtimes_system_errors(rt: Realtime) -> None:
    cases = {
        "hidden": ({"event": "*", "schema": "public", "table": "rt_hidden"},
                   "Unable to subscribe to changes with given parameters. Please check Realtime"
                   " is enabled for the given connect parameters: [event: *, schema: public,"
                   " table: rt_hidden, filters: []]"),
        "bad-op": ({"event": "*", "schema": "public", "table": "rt_probe",
                    "filter": "n=foo.5"}, 'Error parsing `filter` params: ["foo", "5"]'),
        "select-text": ({"event": "*", "schema": "public", "table": "rt_probe",
                         "select": "label"},
                        "Error parsing `select` params: expected a list of column name strings,"
                        ' e.g. select: ["col1", "col2"]'),
        "select-wildcard": ({"event": "*", "schema": "public", "select": ["label"]},
                            "Column selection is not supported for wildcard subscriptions."
                            " Provide an explicit schema and table name."),
        "bad-is": ({"event": "*", "schema": "public", "table": "rt_probe",
                    "filter": "flag=is.maybe"},
                   "invalid value for is filter: must be null, true, false, or unknown"),
        "bad-column": ({"event": "*", "schema": "public", "table": "rt_probe",
                        "filter": "nope=eq.1"}, "invalid column for filter nope"),
    }  # fmt: skip
    with rt.raw() as ws:
        for name, (binding, message) in cases.items():
            join = {"config": {"postgres_changes": [binding]}}
            send(ws, f"realtime:{name}", "phx_join", join, name)
            assert receive(ws)["payload"]["status"] == "ok"
            system = receive(ws)["payload"]
            assert (system["status"], system["message"]) == ("error", message), name


def test_select_narrows_a_bindings_changes_to_its_columns_and_the_key(
    rt: Realtime, admin: Conn
) -> None:
    """Realtime sends one message per distinct `select` of the channel's matching bindings,
    each narrowed to those columns and the primary key (realtime-py routes them by ids)."""
    narrow = {"event": "INSERT", "schema": "public", "table": "rt_probe", "select": ["label"]}
    full = {"event": "INSERT", "schema": "public", "table": "rt_probe"}
    with rt.raw() as ws:
        send(ws, "realtime:select", "phx_join", {"config": {"postgres_changes": [narrow, full]}},
             "1")  # fmt: skip
        narrow_id, full_id = (
            b["id"] for b in receive(ws)["payload"]["response"]["postgres_changes"]
        )
        assert receive(ws)["payload"]["message"] == "Subscribed to PostgreSQL"
        admin.execute("insert into public.rt_probe (id, n, label) values (3000, 7, 'picked')")
        got = {tuple(m["payload"]["ids"]): m["payload"]["data"] for m in (receive(ws), receive(ws))}
        assert nothing_more(ws)
    assert set(got) == {(narrow_id,), (full_id,)}
    assert got[(narrow_id,)]["record"] == {"id": 3000, "label": "picked"}
    assert [c["name"] for c in got[(narrow_id,)]["columns"]] == ["id", "label"]
    assert got[(full_id,)]["record"]["n"] == 7 and "flag" in got[(full_id,)]["record"]


# ---- the example subscriber (supabase-py) ---------------------------------------------------


def _example() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "fnkit_example_subscribe_local", ROOT / "examples" / "subscribe.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_the_example_subscriber_hears_both_kinds_of_change(
    rt: Realtime, logical_url: str, world: World
) -> None:
    """examples/subscribe.py, unchanged, through supabase-py against the app mounted at
    /realtime/v1 as the gateway mounts it."""
    mounted = DispatcherMiddleware(Response("not found", status=404), {"/realtime/v1": rt.app})
    server = make_server("127.0.0.1", 0, mounted, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    example = _example()
    lines: list[dict[str, Any]] = []

    def emit(line: dict[str, Any]) -> None:
        lines.append(line)
        subscribed = [x for x in lines if x.get("state") == "SUBSCRIBED"]
        if line.get("state") == "SUBSCRIBED" and len(subscribed) == 2:
            threading.Thread(target=change_a_task).start()

    def change_a_task() -> None:
        with acting_as(settings_for(logical_url), world.users["member"], commit=True) as tx:
            tx.execute("update public.tasks set title = 'Seen live' where id = %s", (world.task,))

    args = example.parse_args(
        [str(world.workspace), "--url", f"http://127.0.0.1:{server.server_port}",
         "--anon-key", DEV_ANON_KEY, "--access-token", rt.token(world.users["member"]),
         "--max-events", "2", "--seconds", "10"]
    )  # fmt: skip
    try:
        code = asyncio.run(example.run(args, emit=emit))
        # A user the private channel's policy refuses: the join fails and the example says so.
        refused: list[dict[str, Any]] = []
        outsider = example.parse_args(
            [str(world.workspace), "--url", f"http://127.0.0.1:{server.server_port}",
             "--anon-key", DEV_ANON_KEY, "--access-token", rt.token(world.users["outsider"]),
             "--max-events", "2", "--seconds", "10"]
        )  # fmt: skip
        refused_code = asyncio.run(example.run(outsider, emit=refused.append))
    finally:
        server.shutdown()
    assert refused_code == 1, refused
    assert {"via": "status", "channel": f"workspace:{world.workspace}",
            "state": "CHANNEL_ERROR"}.items() <= refused[-1].items()  # fmt: skip
    assert code == 0, lines
    events = {line["via"]: line for line in lines if line["via"] != "status"}
    assert events["postgres_changes"]["type"] == "UPDATE"
    assert events["postgres_changes"]["record"]["title"] == "Seen live"
    assert events["postgres_changes"]["old"]["title"] == "Task"
    assert events["broadcast"]["type"] == "UPDATE"
    assert events["broadcast"]["record"]["title"] == "Seen live"
    assert json.dumps(events, default=str)  # printable, as the example prints it


def test_notifications_reach_only_their_user_and_anon_gets_realtimes_401(
    rt: Realtime, admin: Conn, world: World
) -> None:
    """The README's path: an assignee subscribes to INSERTs on notifications; the SELECT
    policy (user_id = auth.uid()) picks who hears each one. anon has no SELECT on the table:
    Realtime sends it the change's error, not the row."""
    binding = {"event": "INSERT", "schema": "public", "table": "notifications"}
    sockets = {who: rt.raw() for who in ("member", "viewer", "anon")}
    try:
        for who, ws in sockets.items():
            token = rt.token(world.users[who]) if who != "anon" else DEV_ANON_KEY
            join = {"config": {"postgres_changes": [binding]}, "access_token": token}
            send(ws, "realtime:inbox", "phx_join", join, "1")
            assert receive(ws)["payload"]["status"] == "ok"
            assert receive(ws)["payload"]["message"] == "Subscribed to PostgreSQL"
        admin.execute(
            "insert into public.notifications (user_id, workspace_id, task_id, kind, event_key)"
            " values (%s, %s, %s, 'task_assigned', %s)",
            (world.users["member"], world.workspace, world.task, f"test:{world.task}"),
        )
        data = receive(sockets["member"])["payload"]["data"]
        assert data["record"]["user_id"] == str(world.users["member"])
        assert data["record"]["kind"] == "task_assigned" and data["errors"] is None
        denied = receive(sockets["anon"])["payload"]["data"]
        assert (denied["errors"], denied["record"]) == (["Error 401: Unauthorized"], None)
        assert nothing_more(sockets["viewer"], 0.5)
    finally:
        for ws in sockets.values():
            ws.close()


def test_the_stream_survives_losing_its_connection_and_leaves_no_slot(
    rt: Realtime, admin: Conn
) -> None:
    """The slot is temporary: when the feed's session dies, so does the slot (no WAL held);
    the feed reconnects with a new one and its subscribers keep hearing changes."""
    feed = rt.app.services.feed
    assert feed is not None
    with rt.raw() as ws:
        binding = {"event": "INSERT", "schema": "public", "table": "rt_probe"}
        send(ws, "realtime:survivor", "phx_join", {"config": {"postgres_changes": [binding]}}, "1")
        receive(ws), receive(ws)
        ((old_pid, temporary),) = admin.execute(
            "select active_pid, temporary from pg_replication_slots where slot_name = %s",
            (feed.slot,),
        ).fetchall()
        assert temporary is True
        admin.execute("select pg_terminate_backend(%s)", (old_pid,))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            row = admin.execute(
                "select active_pid from pg_replication_slots where slot_name = %s", (feed.slot,)
            ).fetchone()
            if row is not None and row[0] not in (None, old_pid):
                break
            time.sleep(0.1)
        assert admin.execute(
            "select count(*) from pg_replication_slots where slot_name = %s", (feed.slot,)
        ).fetchone() == (1,)
        admin.execute("insert into public.rt_probe (id, n) values (1000, 1)")
        message = receive(ws, 5)
        assert message["payload"]["data"]["record"]["id"] == 1000


def test_a_refreshed_token_changes_whose_policies_apply(
    rt: Realtime, logical_url: str, world: World
) -> None:
    """Realtime re-checks each change against the channel's current claims: a socket that
    refreshes from an outsider's token to a member's starts hearing the workspace's tasks."""
    with rt.raw() as ws:
        join = {"config": {"postgres_changes": [{"event": "INSERT", **tasks_of(world)}]},
                "access_token": rt.token(world.users["outsider"])}  # fmt: skip
        send(ws, "realtime:switch", "phx_join", join, "1")
        receive(ws), receive(ws)

        def insert(title: str) -> None:
            with acting_as(settings_for(logical_url), world.users["admin"], commit=True) as tx:
                tx.execute(
                    "insert into public.tasks (project_id, title) values (%s, %s)",
                    (world.project, title),
                )

        insert("Unseen")
        assert nothing_more(ws, 0.5)
        token = rt.token(world.users["member"])
        send(ws, "realtime:switch", "access_token", {"access_token": token}, None)
        time.sleep(0.2)
        insert("Seen")
        message = receive(ws, 5)
        assert message["payload"]["data"]["record"]["title"] == "Seen"


# ---- supabase-py's suite, its PostgREST half written in SQL -----------------------------------


def test_the_supabase_py_suites_postgres_changes_with_its_rows_written_in_sql(
    rt: Realtime, logical_url: str
) -> None:
    """supabase-py's `test_postgrest_changes` and `..._on_different_tables` write their rows
    through PostgREST, which is not served locally (`fnkit.local.realtime.suite` counts them
    out of scope at that write). Their Realtime half, replayed here with the same user's rows
    written in SQL: one channel's `*`, INSERT, UPDATE and DELETE bindings on a table under RLS,
    then INSERTs on two tables, each change reaching exactly the callbacks whose bindings
    match (realtime-py routes by the ids the server puts on each change)."""
    user = uuid.uuid4()

    def write(sql: str, *params: Any) -> None:
        with acting_as(settings_for(logical_url), user, commit=True) as tx:
            tx.execute(sql, params)

    async def one_table() -> dict[str, Listener]:
        client = rt.client(rt.token(user))
        heard = {kind: Listener() for kind in ("all", "insert", "update", "delete")}
        channel = client.channel("test-postgres-changes")
        for kind, event in (("all", Event.All), ("insert", Event.Insert),
                            ("update", Event.Update), ("delete", Event.Delete)):  # fmt: skip
            channel.on_postgres_changes(event, heard[kind].events.append, table="rt_todo")
        system = Listener()
        channel.on_system(system.events.append)
        await channel.subscribe(heard["all"].on_state)
        # As the suite does: the "Subscribed to PostgreSQL" system message, not the join's
        # reply, says the changes are heard (Realtime subscribes after it replies).
        await system.wait(lambda: bool(system.events), 10)
        todo = uuid.uuid4()
        write("insert into public.rt_todo (id, description) values (%s, 'Test todo')", todo)
        await heard["insert"].wait(lambda: bool(heard["insert"].events), 10)
        write("update public.rt_todo set description = 'Updated todo', is_completed = true"
              " where id = %s", todo)  # fmt: skip
        await heard["update"].wait(lambda: bool(heard["update"].events), 10)
        write("delete from public.rt_todo where id = %s", todo)
        await heard["delete"].wait(lambda: bool(heard["delete"].events), 10)
        await client.close()
        heard["all"].states.append(str(todo))
        return heard

    heard = run(one_table())
    state, todo = heard["all"].states
    assert state == "SUBSCRIBED", heard["all"].errors
    insert, update, delete = heard["all"].events
    assert insert["data"]["record"] == {"id": todo, "description": "Test todo",
                                        "is_completed": False}  # fmt: skip
    assert update["data"]["record"]["description"] == "Updated todo"
    assert update["data"]["record"]["is_completed"] is True
    assert delete["data"]["old_record"] == {"id": todo}
    assert (heard["insert"].events, heard["update"].events, heard["delete"].events) == (
        [insert],
        [update],
        [delete],
    )

    async def two_tables() -> tuple[Listener, Listener]:
        client = rt.client(rt.token(user))
        every, inserts = Listener(), Listener()
        channel = client.channel("test-postgres-changes")
        channel.on_postgres_changes(Event.All, every.events.append, table="rt_todo")
        channel.on_postgres_changes(Event.Insert, inserts.events.append, table="rt_todo")
        channel.on_postgres_changes(Event.Insert, inserts.events.append, table="rt_probe")
        system = Listener()
        channel.on_system(system.events.append)
        await channel.subscribe(every.on_state)
        await system.wait(lambda: bool(system.events), 10)
        write("insert into public.rt_todo (description) values ('Test todo')")
        await inserts.wait(lambda: len(inserts.events) == 1, 10)
        write("insert into public.rt_probe (id, n, label) values (2000, 1, 'Test message')")
        await inserts.wait(lambda: len(inserts.events) == 2, 10)
        await asyncio.sleep(0.2)
        await client.close()
        return every, inserts

    every, inserts = run(two_tables())
    assert every.states == ["SUBSCRIBED"], every.errors
    assert len(every.events) == 1 and inserts.events[0] == every.events[0]
    assert [e["data"]["table"] for e in inserts.events] == ["rt_todo", "rt_probe"]
    assert inserts.events[1]["data"]["record"]["label"] == "Test message"
