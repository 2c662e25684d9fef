"""The database webhook end to end: an assignment made in SQL is queued by the local
supabase_functions.http_request, delivered by fnkit's deliverer over real HTTP to the served
hooks function, recorded once, and published on Upstash; also when delivered twice and when
the function was down for the first attempt."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from fnkit.devenv import DEV_DB_WEBHOOK_SECRET
from fnkit.local.webhooks import Deliverer, configure
from tests.fixtures.proxy import CuttableProxy
from tests.fixtures.server import ACME_PROJECTS, SEED_USERS, Served


@pytest.fixture
def webhook_to(database_url: str) -> Iterator[Any]:
    """Point the tasks webhook at a base URL; removed (trigger dropped) after the test."""

    def point(base_url: str) -> None:
        assert configure(database_url, base_url, DEV_DB_WEBHOOK_SECRET)

    yield point
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("delete from private.webhook_settings where name = 'task_assigned'")
        conn.execute("delete from supabase_functions.delivery_queue")


@pytest.fixture
def assignee(db_admin: psycopg.Connection[Any]) -> Iterator[str]:
    """A fresh user who is a member of a fresh workspace of the seed owner, with a task."""
    user, ws, project = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    db_admin.execute("insert into auth.users (id, email) values (%s, %s)", (user, f"{user}@x.test"))
    db_admin.execute(
        "insert into public.workspaces (id, name, slug, created_by) values (%s, 'Hooks', %s, %s)",
        (ws, f"hooks-{ws.hex[:12]}", SEED_USERS["owner"]),
    )
    db_admin.execute(
        "insert into public.workspace_members (workspace_id, user_id, role) values (%s, %s, 'member')",
        (ws, user),
    )
    db_admin.execute(
        "insert into public.projects (id, workspace_id, name) values (%s, %s, 'P')", (project, ws)
    )
    db_admin.execute(
        "insert into public.tasks (workspace_id, project_id, title) values (%s, %s, 'Write the hook')",
        (ws, project),
    )
    yield str(user)
    db_admin.execute("delete from public.workspaces where id = %s", (ws,))
    db_admin.execute("delete from auth.users where id = %s", (user,))


def assign(db: psycopg.Connection[Any], user: str) -> str:
    """Assign the user's workspace's task to them, in SQL; the task id."""
    row = db.execute(
        "update public.tasks t set assignee_id = %s from public.workspace_members m"
        " where m.user_id = %s and t.workspace_id = m.workspace_id returning t.id",
        (user, user),
    ).fetchone()
    assert row is not None
    return str(row[0])


def notifications(db: psycopg.Connection[Any], user: str) -> list[tuple[Any, ...]]:
    return db.execute(
        "select task_id::text, kind, payload->>'title' from public.notifications where user_id = %s",
        (user,),
    ).fetchall()


def queue(db: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    cur = db.execute(
        "select id, attempts, delivered_at is not null as delivered, last_status, last_error"
        " from supabase_functions.delivery_queue order by id"
    )
    names = [c.name for c in cur.description or []]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def test_an_assignment_in_sql_yields_one_notification_and_one_message(
    served: Served, database_url: str, db_admin: Any, webhook_to: Any, assignee: str, upstash: Any
) -> None:
    webhook_to(f"{served.url}/functions/v1")
    listener = upstash.redis.pubsub()
    listener.subscribe(f"notifications:{assignee}")
    listener.get_message(timeout=1)  # the subscribe confirmation
    task = assign(db_admin, assignee)
    assert Deliverer(database_url, verbose=False).run_once() == 1
    assert notifications(db_admin, assignee) == [(task, "task_assigned", "Write the hook")]
    [entry] = queue(db_admin)
    assert entry["delivered"] and entry["last_status"] == 200 and entry["attempts"] == 1
    message = listener.get_message(timeout=5)
    listener.close()
    assert message is not None and message["type"] == "message"
    published = json.loads(message["data"])
    assert published["user_id"] == assignee and published["task_id"] == task


def test_the_same_change_delivered_twice_records_one_notification(
    served: Served, database_url: str, db_admin: Any, webhook_to: Any, assignee: str
) -> None:
    webhook_to(f"{served.url}/functions/v1")
    assign(db_admin, assignee)
    deliverer = Deliverer(database_url, verbose=False)
    assert deliverer.run_once() == 1
    db_admin.execute("update supabase_functions.delivery_queue set delivered_at = null")
    assert deliverer.run_once() == 1  # at least once: the same call again
    assert len(notifications(db_admin, assignee)) == 1
    assert [e["last_status"] for e in queue(db_admin)] == [200]


def test_a_function_that_is_down_gets_the_change_when_it_is_back(
    served: Served, database_url: str, db_admin: Any, webhook_to: Any, assignee: str
) -> None:
    port = int(served.url.rsplit(":", 1)[1])
    proxy = CuttableProxy(("127.0.0.1", port))
    webhook_to(f"http://127.0.0.1:{proxy.port}/functions/v1")
    deliverer = Deliverer(database_url, base_backoff_s=0.2, verbose=False)
    proxy.cut()
    assign(db_admin, assignee)
    assert deliverer.run_once() == 1
    [entry] = queue(db_admin)
    assert not entry["delivered"] and entry["attempts"] == 1 and entry["last_error"]
    assert notifications(db_admin, assignee) == []
    proxy.restore()
    time.sleep(0.3)  # the backoff after one failed attempt
    assert deliverer.run_once() == 1
    [entry] = queue(db_admin)
    assert entry["delivered"] and entry["attempts"] == 2 and entry["last_status"] == 200
    assert len(notifications(db_admin, assignee)) == 1


def test_a_change_without_a_new_assignee_records_nothing(
    served: Served, database_url: str, db_admin: Any, webhook_to: Any, assignee: str
) -> None:
    webhook_to(f"{served.url}/functions/v1")
    assign(db_admin, assignee)
    db_admin.execute(
        "update public.tasks set assignee_id = null where assignee_id = %s", (assignee,)
    )
    assert Deliverer(database_url, verbose=False).run_once() == 2
    assert len(notifications(db_admin, assignee)) == 1
    assert [e["last_status"] for e in queue(db_admin)] == [200, 200]


def test_a_rolled_back_assignment_queues_nothing(
    database_url: str, db_admin: Any, webhook_to: Any, assignee: str, served: Served
) -> None:
    webhook_to(f"{served.url}/functions/v1")
    with pytest.raises(psycopg.errors.RaiseException), db_admin.transaction():
        assign(db_admin, assignee)
        db_admin.execute("do $$ begin raise exception 'abort'; end $$")
    assert queue(db_admin) == []


def test_without_settings_there_is_no_webhook_trigger(db_admin: Any) -> None:
    count = db_admin.execute(
        "select count(*) from pg_trigger where tgname = 'task_assigned_webhook'"
    ).fetchone()
    assert count == (0,)


def test_the_receiver_refuses_a_wrong_secret_and_records_nothing(
    served: Served, db_admin: Any, assignee: str
) -> None:
    change = {
        "type": "INSERT", "table": "tasks", "schema": "public", "old_record": None,
        "record": {"id": str(uuid.uuid4()), "workspace_id": ACME_PROJECTS[0],
                   "assignee_id": assignee, "version": 1, "title": "x"},
    }  # fmt: skip
    with served.client(Authorization="Bearer not-the-secret") as client:
        response = client.post("/hooks/task-assigned", json=change)
    assert response.status_code == 401
    assert notifications(db_admin, assignee) == []
