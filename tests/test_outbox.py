"""The transactional outbox: a message exists iff its transaction commits, and is delivered
at least once, in order per key, with retries, backoff and a dead letter.

Real Postgres (RLS as the roles), real Redis behind the Upstash bridge, real HTTP receivers
that verify our Standard Webhooks signature."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from standardwebhooks import Webhook
from werkzeug.serving import make_server
from werkzeug.wrappers import Request as WRequest
from werkzeug.wrappers import Response as WResponse

from fnkit.bench.proxy import CountingProxy
from shared import service_sql
from shared.db import Transaction, close_pools
from shared.dispatch import dispatch
from shared.outbox import enqueue
from shared.settings import Settings
from tests.fixtures.proxy import ROUND_TRIP_DELAY_S, proxied_database_url
from tests.fixtures.server import ACME_PROJECTS, SEED_USERS, Served, as_user
from tests.rls_helpers import settings_for, user_claims

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MEMBER = uuid.UUID(SEED_USERS["member"])


class Receiver:
    """A webhook receiver over real HTTP: verifies our signature, fails on demand."""

    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.calls = 0
        self.accepted: list[dict[str, Any]] = []
        self.ids: list[str] = []
        self.server = make_server("127.0.0.1", 0, self.wsgi, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = WRequest(environ)
        body = request.get_data()
        self.calls += 1
        message = Webhook(SECRET).verify(body, dict(request.headers))  # raises if forged
        self.ids.append(request.headers["webhook-id"])
        if self.calls <= self.fail_first:
            return WResponse("try later", status=503)(environ, start_response)
        self.accepted.append(message)
        return WResponse("ok")(environ, start_response)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()


def settings_with(database_url: str, upstash: Any, **changes: Any) -> Settings:
    base = settings_for(database_url)._replace(
        upstash_url=upstash.url,
        upstash_token=upstash.token,
        outbox_publish=False,
        outbox_backoff_s=0.01,
        outbox_after_response=False,
    )
    return base._replace(**changes)


def write_and_emit(settings: Settings, topic: str, payload: Any, commit: bool, **kw: Any) -> str:
    """A member's write transaction that inserts a task and emits, then commits or not."""
    tx = Transaction(settings, user_claims(MEMBER), "authenticated", "POST", "/tasks", {})
    tx.value(
        "insert into public.tasks (project_id, title) values (%s, %s) returning id",
        (ACME_PROJECTS[0], f"outbox {topic}"),
    )
    message_id = enqueue(tx, settings, topic, payload, **kw)
    assert message_id is not None
    tx.finish(commit=commit)
    return message_id


def rows(db_admin: psycopg.Connection[Any], topic: str) -> list[tuple[Any, ...]]:
    return db_admin.execute(
        "select message_id::text, status, attempts, last_error from private.outbox"
        " where topic = %s order by seq",
        (topic,),
    ).fetchall()


def drain(settings: Settings, done: Any, rounds: int = 200) -> None:
    """Run the dispatcher until `done()` (retries wait out their small backoff)."""
    for _ in range(rounds):
        dispatch(settings)
        if done():
            return
        threading.Event().wait(0.02)
    raise AssertionError("the dispatcher never got there")


def test_a_committed_write_reaches_the_signed_webhook(
    database_url: str, upstash: Any, receiver: Receiver, db_admin: Any
) -> None:
    settings = settings_with(
        database_url, upstash, outbox_webhook_url=receiver.url, outbox_webhook_secret=SECRET
    )
    topic = f"test.commit.{uuid.uuid4().hex[:8]}"
    message_id = write_and_emit(settings, topic, {"hello": "world"}, commit=True)
    assert rows(db_admin, topic) == [(message_id, "pending", 0, None)]
    assert dispatch(settings)["delivered"] >= 1
    assert [m["id"] for m in receiver.accepted] == [message_id]
    assert receiver.accepted[0]["payload"] == {"hello": "world"}
    assert receiver.accepted[0]["topic"] == topic
    assert rows(db_admin, topic) == [(message_id, "delivered", 1, None)]
    dispatch(settings)
    assert len(receiver.accepted) == 1  # delivered once, not again


def test_a_rolled_back_write_never_sends(
    database_url: str, upstash: Any, receiver: Receiver, db_admin: Any
) -> None:
    settings = settings_with(
        database_url, upstash, outbox_webhook_url=receiver.url, outbox_webhook_secret=SECRET
    )
    topic = f"test.rollback.{uuid.uuid4().hex[:8]}"
    write_and_emit(settings, topic, {"n": 1}, commit=False)
    dispatch(settings)
    assert rows(db_admin, topic) == []
    assert receiver.calls == 0


def test_a_receiver_failing_twice_gets_it_on_the_third_attempt(
    database_url: str, upstash: Any, db_admin: Any
) -> None:
    failing = Receiver(fail_first=2)
    settings = settings_with(
        database_url, upstash, outbox_webhook_url=failing.url, outbox_webhook_secret=SECRET
    )
    topic = f"test.retry.{uuid.uuid4().hex[:8]}"
    message_id = write_and_emit(settings, topic, {"n": 3}, commit=True)
    drain(settings, lambda: bool(failing.accepted))
    assert failing.calls == 3 and failing.ids == [message_id] * 3  # one stable id
    assert rows(db_admin, topic) == [(message_id, "delivered", 3, None)]
    failing.server.shutdown()


def test_dead_letter_after_max_attempts_visible_to_the_service_role_only(
    database_url: str, upstash: Any, db_admin: Any
) -> None:
    down = Receiver(fail_first=10**6)
    settings = settings_with(
        database_url,
        upstash,
        outbox_webhook_url=down.url,
        outbox_webhook_secret=SECRET,
        outbox_max_attempts=3,
    )
    topic = f"test.dead.{uuid.uuid4().hex[:8]}"
    message_id = write_and_emit(settings, topic, {"n": 4}, commit=True)
    drain(settings, lambda: rows(db_admin, topic)[0][1] == "dead")
    [(mid, status, attempts, error)] = rows(db_admin, topic)
    assert (mid, status, attempts) == (message_id, "dead", 3) and "503" in error
    dispatch(settings)
    assert down.calls == 3  # a dead letter is not retried
    seen = service_sql.run(
        settings, "select status from private.outbox where message_id = %s", (message_id,)
    )
    assert seen == [{"status": "dead"}]
    with psycopg.connect(database_url, autocommit=True) as conn:
        for role in ("authenticated", "anon"):
            conn.execute(f"set role {role}")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("select * from private.outbox")
            conn.execute("reset role")
    down.server.shutdown()


def test_a_dispatcher_killed_mid_run_loses_nothing(
    database_url: str, upstash: Any, receiver: Receiver, db_admin: Any
) -> None:
    """A run that claimed and died (its lease stays) is redelivered, same id, after the lease."""
    settings = settings_with(
        database_url, upstash, outbox_webhook_url=receiver.url, outbox_webhook_secret=SECRET
    )
    topic = f"test.killed.{uuid.uuid4().hex[:8]}"
    ids = [write_and_emit(settings, topic, {"i": i}, commit=True) for i in range(3)]
    # The killed run: it claimed everything (committed lease), delivered the first, died.
    from shared.dispatch import _CLAIM, deliver

    claimed = service_sql.run(settings, _CLAIM, {"ids": ids, "limit": 10, "lease": 3600})
    assert len(claimed) == 3
    deliver(settings, claimed[0])
    dispatch(settings)  # leases still held: nothing is delivered twice meanwhile
    assert [m["id"] for m in receiver.accepted] == [ids[0]]
    db_admin.execute(
        "update private.outbox set lease_until = now() - interval '1 second' where topic = %s",
        (topic,),
    )  # the lease runs out
    dispatch(settings)
    delivered = [m["id"] for m in receiver.accepted]
    assert sorted(set(delivered)) == sorted(ids)  # nothing lost
    assert delivered.count(ids[0]) == 2 and len(delivered) == 4  # only the in-flight one again
    assert {r[1] for r in rows(db_admin, topic)} == {"delivered"}


def test_messages_of_one_key_are_delivered_in_order(
    database_url: str, upstash: Any, db_admin: Any
) -> None:
    flaky = Receiver(fail_first=1)  # the first message fails once; the second must wait
    settings = settings_with(
        database_url, upstash, outbox_webhook_url=flaky.url, outbox_webhook_secret=SECRET
    )
    topic = f"test.order.{uuid.uuid4().hex[:8]}"
    first = write_and_emit(settings, topic, {"i": 1}, commit=True, key="task-1")
    second = write_and_emit(settings, topic, {"i": 2}, commit=True, key="task-1")
    drain(settings, lambda: len(flaky.accepted) == 2)
    assert [m["id"] for m in flaky.accepted] == [first, second]
    assert flaky.ids[:2] == [first, first]
    flaky.server.shutdown()


def test_the_enqueue_adds_no_round_trip(database_url: str, upstash: Any) -> None:
    _, upstream = proxied_database_url(database_url, 0)
    proxy = CountingProxy(upstream, delay=ROUND_TRIP_DELAY_S).start()
    url, _ = proxied_database_url(database_url, proxy.port)
    settings = settings_with(url, upstash)._replace(outbox_publish=True)
    try:
        warm = Transaction(settings, user_claims(MEMBER), "authenticated", "GET", "/", {})
        assert warm.value("select 1") == 1
        warm.finish(commit=True)
        spent = []
        for emit in (False, True):
            before = proxy.counts()
            tx = Transaction(settings, user_claims(MEMBER), "authenticated", "POST", "/", {})
            tx.value(
                "insert into public.tasks (project_id, title) values (%s, 'rt') returning id",
                (ACME_PROJECTS[0],),
            )
            if emit:
                assert enqueue(tx, settings, "test.roundtrips", {"x": 1}) is not None
            tx.finish(commit=True)
            spent.append((proxy.counts() - before).exchanges)
        assert spent == [2, 2]  # the statement, then COMMIT (with the enqueue riding in it)
    finally:
        close_pools()
        proxy.stop()


def test_completing_a_task_publishes_to_the_upstash_channel(
    served: Served, upstash: Any, db_admin: Any
) -> None:
    """Through the served tasks function: PATCH status=done → PUBLISH task.completed."""
    subscriber = upstash.redis.pubsub()
    subscriber.subscribe("task.completed")
    assert subscriber.get_message(timeout=5)["type"] == "subscribe"
    with as_user(served, "member") as client:
        task = client.post("/tasks", json={"project_id": ACME_PROJECTS[0], "title": "finish me"})
        assert task.status_code == 201, task.text
        task_id, version = task.json()["data"]["id"], task.json()["data"]["version"]
        done = client.patch(f"/tasks/{task_id}", json={"status": "done", "version": version})
        assert done.status_code == 200, done.text
        # A refused completion (stale version) emits nothing.
        stale = client.patch(f"/tasks/{task_id}", json={"status": "done", "version": version})
        assert stale.status_code == 409
    with served.client(Authorization=f"Bearer {_service_key()}") as client:
        client.post("/housekeeping/outbox/dispatch")  # whatever the instance did not send yet
    received = []
    while (message := subscriber.get_message(timeout=2)) is not None:
        if message["type"] == "message":
            received.append(json.loads(message["data"]))
    mine = [m for m in received if m["payload"]["id"] == task_id]
    assert len(mine) == 1
    assert mine[0]["topic"] == "task.completed" and mine[0]["key"] == task_id
    assert mine[0]["payload"]["completed_by"] == SEED_USERS["member"]
    stored = db_admin.execute(
        "select status from private.outbox where key = %s", (task_id,)
    ).fetchall()
    assert stored == [("delivered",)]
    subscriber.close()


def test_an_emit_in_a_rolled_back_request_is_never_stored(served: Served, db_admin: Any) -> None:
    topic = f"test.http.{uuid.uuid4().hex[:8]}"
    with as_user(served, "member") as client:
        failed = client.post("/clockwork/emit", json={"topic": topic, "payload": {}, "fail": True})
        assert failed.status_code == 409
        ok = client.post("/clockwork/emit", json={"topic": topic, "payload": {"a": 1}})
        assert ok.status_code == 200, ok.text
    stored = db_admin.execute(
        "select message_id::text from private.outbox where topic = %s", (topic,)
    ).fetchall()
    assert stored == [(ok.json()["data"]["id"],)]


def _service_key() -> str:
    from fnkit.devenv import DEV_SERVICE_ROLE_KEY

    return DEV_SERVICE_ROLE_KEY
