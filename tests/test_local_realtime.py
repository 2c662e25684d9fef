"""The local Realtime over real websockets: protocol, broadcast, presence, private channels.

Served with werkzeug's threaded server on the session database (the machine's Postgres, which
may run with wal_level=replica: Postgres Changes are tested on a logical-decoding server in
test_local_realtime_changes.py). Clients are realtime-py's AsyncRealtimeClient, as supabase-py
uses it, and raw `websockets` clients for the wire format and hostile frames.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import jwt
import psycopg
import pytest
from realtime import AsyncRealtimeChannel, AsyncRealtimeClient, RealtimeSubscribeStates
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect
from werkzeug.serving import BaseWSGIServer, make_server

from fnkit.devenv import DEV_ANON_KEY, DEV_JWT_SECRET, DEV_SERVICE_ROLE_KEY
from fnkit.local.config import LocalConfig
from fnkit.local.keys import KeyRing
from fnkit.local.realtime import RealtimeApp, create_app
from fnkit.local.realtime.changes import NOT_LOGICAL
from fnkit.tokens import claims
from tests.rls_helpers import Conn, World, build_world

T = TypeVar("T")

# ---- serving and clients (also used by test_local_realtime_changes.py) ----------------------


@dataclass
class Realtime:
    """The served app, its URL and a signing key ring to mint user tokens with."""

    app: RealtimeApp
    server: BaseWSGIServer
    url: str
    config: LocalConfig

    def token(self, sub: uuid.UUID | str | None, **options: Any) -> str:
        """A user's access token as the local Auth signs it (ES256, the ring's key)."""
        key = self.config.keys.signing_key()
        if sub is None:
            return DEV_ANON_KEY
        payload = claims(str(sub), issuer=self.config.issuer, **options)
        return jwt.encode(payload, key.private, algorithm="ES256", headers={"kid": key.kid})

    def raw(self, vsn: str = "1.0.0", apikey: str = DEV_ANON_KEY) -> ClientConnection:
        ws_url = self.url.replace("http://", "ws://")
        return connect(f"{ws_url}/websocket?apikey={apikey}&vsn={vsn}", open_timeout=5)

    def client(self, token: str | None = None) -> AsyncRealtimeClient:
        client = AsyncRealtimeClient(self.url, DEV_ANON_KEY, auto_reconnect=False, timeout=5)
        if token is not None:
            client.access_token = token
        return client


def serve_realtime(database_url: str, data_dir: Path) -> Realtime:
    ring = KeyRing()
    ring.add_key("realtime-test")
    config = LocalConfig(
        base_url="http://127.0.0.1:1", database_url=database_url, data_dir=data_dir, keys=ring
    )
    app = create_app(config)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return Realtime(app, server, f"http://127.0.0.1:{server.server_port}", config)


def stop_realtime(rt: Realtime) -> None:
    rt.server.shutdown()
    rt.app.close()


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


@dataclass
class Listener:
    """A channel's subscribe states and what arrived on it."""

    states: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)

    def on_event(self, event: dict[str, Any]) -> None:
        """A callback that also notes when the event arrived (time.monotonic())."""
        self.events.append(event)
        self.arrivals.append(time.monotonic())

    def on_state(self, state: RealtimeSubscribeStates, error: Exception | None) -> None:
        self.states.append(state.value)
        if error is not None:
            self.errors.append(str(error))

    async def wait(self, check: Callable[[], bool], seconds: float = 10.0) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if check():
                return True
            await asyncio.sleep(0.02)
        return check()


async def subscribe(channel: AsyncRealtimeChannel, listener: Listener) -> None:
    await channel.subscribe(listener.on_state)


def send(ws: ClientConnection, topic: str, event: str, payload: Any, ref: str | None) -> None:
    ws.send(json.dumps({"topic": topic, "event": event, "payload": payload, "ref": ref}))


# Deadlines only (a loaded 2-core CI machine is slow, never a timing that is asserted).
def receive(ws: ClientConnection, seconds: float = 10.0) -> Any:
    frame = ws.recv(timeout=seconds)
    return json.loads(frame) if isinstance(frame, str) else frame


def receive_until(
    ws: ClientConnection, wanted: Callable[[Any], bool], seconds: float = 10.0
) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        message = receive(ws, max(0.01, deadline - time.monotonic()))
        if wanted(message):
            return message


def drain(ws: ClientConnection, seconds: float = 0.3) -> list[Any]:
    """Whatever arrives within `seconds` of quiet."""
    got = []
    while not nothing_more(ws, seconds, got):
        pass
    return got


def nothing_more(ws: ClientConnection, seconds: float = 0.3, into: list[Any] | None = None) -> bool:
    try:
        frame = ws.recv(timeout=seconds)
    except TimeoutError:
        return True
    if into is not None:
        into.append(frame)
    return False


# ---- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rt(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Realtime]:
    served = serve_realtime(database_url, tmp_path_factory.mktemp("realtime"))
    yield served
    stop_realtime(served)


@pytest.fixture
def admin(database_url: str) -> Iterator[Conn]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        yield conn


@pytest.fixture
def world(admin: Conn, rt: Realtime) -> Iterator[World]:
    made = build_world(admin)
    assert rt.app.messages.sync()  # the world's own broadcasts are out before the test joins
    yield made
    admin.execute("delete from public.workspaces where id = %s", (made.workspace,))


# ---- the socket -----------------------------------------------------------------------------


def test_the_socket_wants_an_upgrade_and_the_projects_apikey(rt: Realtime) -> None:
    plain = httpx.get(f"{rt.url}/websocket", params={"apikey": DEV_ANON_KEY})
    assert plain.status_code == 426 and plain.headers["upgrade"] == "websocket"
    missing = httpx.get(f"{rt.url}/websocket")
    assert (missing.status_code, missing.json()) == (401, {"error": "API key is missing"})
    foreign = httpx.get(f"{rt.url}/websocket", params={"apikey": rt.token(uuid.uuid4())})
    assert foreign.status_code == 401
    with pytest.raises(Exception, match="401"):
        rt.raw(apikey="not-a-key")
    no_key = httpx.get(  # an upgrade without Sec-WebSocket-Key: websockets' 400
        f"{rt.url}/websocket",
        params={"apikey": DEV_ANON_KEY},
        headers={"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13"},
    )
    assert no_key.status_code == 400 and b"Sec-WebSocket-Key" in no_key.content
    assert httpx.get(f"{rt.url}/elsewhere").status_code == 404


def test_heartbeat_join_leave_and_unmatched_topics_in_phoenix_shapes(rt: Realtime) -> None:
    with rt.raw() as ws:
        send(ws, "phoenix", "heartbeat", {}, "1")
        assert receive(ws) == {"topic": "phoenix", "event": "phx_reply", "ref": "1",
                               "payload": {"status": "ok", "response": {}}}  # fmt: skip
        send(ws, "realtime:room", "phx_join", {"config": {}}, "2")
        assert receive(ws) == {"topic": "realtime:room", "event": "phx_reply", "ref": "2",
                               "payload": {"status": "ok",
                                           "response": {"postgres_changes": []}}}  # fmt: skip
        send(ws, "realtime:room", "phx_leave", {}, "3")
        assert receive(ws)["payload"] == {"status": "ok", "response": {}}
        send(ws, "realtime:room", "broadcast", {"event": "x", "payload": {}}, "4")
        assert receive(ws)["payload"] == {"status": "error",
                                          "response": {"reason": "unmatched topic"}}  # fmt: skip
        send(ws, "elsewhere", "phx_join", {}, "5")
        assert receive(ws)["payload"]["response"] == {"reason": "unmatched topic"}
        send(ws, "realtime:", "phx_join", {}, "6")
        assert receive(ws)["payload"]["response"] == {
            "reason": "TopicNameRequired: You must provide a topic name"
        }


def test_joins_with_bad_tokens_get_realtimes_errors(rt: Realtime) -> None:
    user = uuid.uuid4()
    forged = jwt.encode(claims(str(user)), "not-the-secret-" * 3, algorithm="HS256")
    expired = rt.token(user, expires_in=-120)
    no_role = jwt.encode({"sub": "x", "exp": int(time.time()) + 60}, DEV_JWT_SECRET, "HS256")
    unknown_kid = jwt.encode(
        claims(str(user)), KeyRing().add_key("stranger").private, "ES256", {"kid": "stranger"}
    )
    cases = {
        "not-a-jwt": "MalformedJWT: The token provided is not a valid JWT",
        forged: "JwtSignatureError: Failed to validate JWT signature",
        no_role: "InvalidJWTToken: Fields `role` and `exp` are required in JWT",
        unknown_kid: 'JwtSignerError: Failed to generate JWT signer for key ID (kid) "stranger",'
        " check your JWT secret or JWKS configuration",
    }
    with rt.raw() as ws:
        for n, (token, reason) in enumerate(cases.items()):
            send(ws, "realtime:room", "phx_join", {"config": {}, "access_token": token}, str(n))
            assert receive(ws)["payload"] == {"status": "error", "response": {"reason": reason}}
        send(ws, "realtime:room", "phx_join", {"config": {}, "access_token": expired}, "9")
        reason = receive(ws)["payload"]["response"]["reason"]
        assert reason.startswith("InvalidJWTToken: Token has expired 1") and reason.endswith(
            " seconds ago"
        )


# ---- broadcast ------------------------------------------------------------------------------


def test_broadcast_between_clients_with_self_and_ack(rt: Realtime) -> None:
    async def scenario() -> tuple[Listener, Listener, Listener]:
        alice, bob = rt.client(), rt.client()
        heard = {name: Listener() for name in ("alice", "bob", "elsewhere")}
        a = alice.channel("lobby", {"config": {"broadcast": {"self": True, "ack": True}}})
        b = bob.channel("lobby")
        other = bob.channel("another-room")
        for name, channel in (("alice", a), ("bob", b), ("elsewhere", other)):
            channel.on_broadcast("hello", heard[name].events.append)
            await subscribe(channel, heard[name])
        await a.send_broadcast("hello", {"n": 1})
        await heard["bob"].wait(lambda: len(heard["bob"].events) == 1)
        await heard["alice"].wait(lambda: len(heard["alice"].events) == 1)
        await b.send_broadcast("hello", {"n": 2})  # bob has no `self`: only alice hears it
        await heard["alice"].wait(lambda: len(heard["alice"].events) == 2)
        await asyncio.sleep(0.2)
        await alice.close()
        await bob.close()
        return heard["alice"], heard["bob"], heard["elsewhere"]

    alice, bob, elsewhere = run(scenario())
    assert alice.states == bob.states == ["SUBSCRIBED"]
    assert [e["payload"] for e in alice.events] == [{"n": 1}, {"n": 2}]
    assert [e["payload"] for e in bob.events] == [{"n": 1}]
    assert elsewhere.events == []


def test_ack_reply_and_the_wire_shape_of_a_broadcast(rt: Realtime) -> None:
    with rt.raw() as sender, rt.raw() as receiver:
        config = {"config": {"broadcast": {"ack": True}}}
        send(sender, "realtime:wire", "phx_join", config, "1")
        send(receiver, "realtime:wire", "phx_join", {"config": {}}, "1")
        receive(sender), receive(receiver)
        body = {"type": "broadcast", "event": "ping", "payload": {"at": 1}}
        send(sender, "realtime:wire", "broadcast", body, "2")
        assert receive(sender) == {"topic": "realtime:wire", "event": "phx_reply", "ref": "2",
                                   "payload": {"status": "ok", "response": {}}}  # fmt: skip
        assert receive(receiver) == {"topic": "realtime:wire", "event": "broadcast",
                                     "payload": body, "ref": None}  # fmt: skip


def test_rest_broadcast_reaches_public_subscribers(rt: Realtime) -> None:
    async def scenario() -> Listener:
        client = rt.client()
        heard = Listener()
        channel = client.channel("news")
        channel.on_broadcast("*", heard.events.append)
        await subscribe(channel, heard)
        response = httpx.post(
            f"{rt.url}/api/broadcast",
            headers={"apikey": DEV_ANON_KEY},
            json={"messages": [{"topic": "news", "event": "story", "payload": {"n": 1}}]},
        )
        assert response.status_code == 202 and response.content == b""
        await channel.http_send("story", {"n": 2})  # the single-message endpoint
        await heard.wait(lambda: len(heard.events) == 2)
        await client.close()
        return heard

    heard = run(scenario())
    assert [(e["event"], e["payload"]) for e in heard.events] == [
        ("story", {"n": 1}),
        ("story", {"n": 2}),
    ]
    bad = httpx.post(f"{rt.url}/api/broadcast", headers={"apikey": DEV_ANON_KEY}, json={})
    assert bad.status_code == 422
    no_key = httpx.post(f"{rt.url}/api/broadcast", json={"messages": []})
    assert no_key.status_code == 401


# ---- private channels -----------------------------------------------------------------------


def private(topic: str, **config: Any) -> Any:
    return {"config": {"private": True, **config}}


def test_private_channels_admit_only_who_the_policies_let_read(rt: Realtime, world: World) -> None:
    reason = (
        f"Unauthorized: You do not have permissions to read from this Channel topic: {world.topic}"
    )
    for n, who in enumerate(("member", "viewer", "outsider")):
        with rt.raw() as ws:
            token = rt.token(world.users[who])
            payload = {"config": {"private": True}, "access_token": token}
            send(ws, f"realtime:{world.topic}", "phx_join", payload, str(n))
            reply = receive(ws)["payload"]
            if who == "outsider":
                assert reply == {"status": "error", "response": {"reason": reason}}
            else:
                assert reply["status"] == "ok", reply
    with rt.raw() as ws:  # anon (the apikey's role) may not read either
        send(ws, f"realtime:{world.topic}", "phx_join", {"config": {"private": True}}, "9")
        assert receive(ws)["payload"]["response"] == {"reason": reason}


def test_a_change_broadcast_by_a_trigger_reaches_the_workspaces_members(
    rt: Realtime, admin: Conn, world: World
) -> None:
    async def scenario() -> tuple[Listener, Listener]:
        member = rt.client(rt.token(world.users["member"]))
        public = rt.client(rt.token(world.users["member"]))
        heard, public_heard = Listener(), Listener()
        channel = member.channel(world.topic, {"config": {"private": True}})
        channel.on_broadcast("UPDATE", heard.events.append)
        await subscribe(channel, heard)
        same_name = public.channel(world.topic)  # the public topic of the same name
        same_name.on_broadcast("*", public_heard.events.append)
        await subscribe(same_name, public_heard)
        admin.execute("update public.tasks set title = 'Broadcast' where id = %s", (world.task,))
        await heard.wait(lambda: bool(heard.events))
        await asyncio.sleep(0.2)
        await member.close()
        await public.close()
        return heard, public_heard

    heard, public_heard = run(scenario())
    assert heard.states == ["SUBSCRIBED"]
    (event,) = heard.events
    assert event["event"] == "UPDATE"
    body = event["payload"]
    assert (body["operation"], body["table"], body["schema"]) == ("UPDATE", "tasks", "public")
    assert (body["record"]["title"], body["old_record"]["title"]) == ("Broadcast", "Task")
    assert event["meta"]["id"] == body["id"]  # realtime.send's message id, in both places
    assert public_heard.events == []


def test_private_sends_need_the_insert_policy(rt: Realtime, world: World) -> None:
    """The project grants no INSERT policy on realtime.messages: members may listen on their
    workspace's topic but not send; the service role (BYPASSRLS) may, over REST."""
    member = rt.token(world.users["member"])
    with rt.raw() as listener, rt.raw() as speaker:
        join = {"config": {"private": True, "broadcast": {"ack": True}}, "access_token": member}
        send(listener, f"realtime:{world.topic}", "phx_join", join, "1")
        send(speaker, f"realtime:{world.topic}", "phx_join", join, "1")
        assert receive(listener)["payload"]["status"] == receive(speaker)["payload"]["status"]
        send(speaker, f"realtime:{world.topic}", "broadcast",
             {"type": "broadcast", "event": "x", "payload": {}}, "2")  # fmt: skip
        assert nothing_more(listener) and nothing_more(speaker, 0.05)
        message = {"topic": world.topic, "event": "note", "payload": {"n": 1}, "private": True}
        as_member = httpx.post(
            f"{rt.url}/api/broadcast",
            headers={"apikey": DEV_ANON_KEY, "Authorization": f"Bearer {member}"},
            json={"messages": [message]},
        )
        assert as_member.status_code == 202 and nothing_more(listener)
        as_service = httpx.post(
            f"{rt.url}/api/broadcast",
            headers={"apikey": DEV_SERVICE_ROLE_KEY},
            json={"messages": [message]},
        )
        assert as_service.status_code == 202
        got = receive(listener)
        assert (got["event"], got["payload"]["payload"]) == ("broadcast", {"n": 1})


def test_a_token_refresh_for_a_user_who_lost_access_closes_the_channel(
    rt: Realtime, admin: Conn, world: World
) -> None:
    member = world.users["member"]
    with rt.raw() as ws:
        join = {"config": {"private": True}, "access_token": rt.token(member)}
        send(ws, f"realtime:{world.topic}", "phx_join", join, "1")
        assert receive(ws)["payload"]["status"] == "ok"
        # the same user, a fresh token: still a member, nothing happens
        send(ws, f"realtime:{world.topic}", "access_token",
             {"access_token": rt.token(member, expires_in=600)}, None)  # fmt: skip
        assert drain(ws) == []
        admin.execute(
            "delete from public.workspace_members where workspace_id = %s and user_id = %s",
            (world.workspace, member),
        )
        send(ws, f"realtime:{world.topic}", "access_token",
             {"access_token": rt.token(member, expires_in=900)}, None)  # fmt: skip
        system = receive(ws)
        assert system == {"topic": f"realtime:{world.topic}", "event": "system", "ref": None,
                          "payload": {"extension": "system", "status": "error",
                                      "channel": world.topic,
                                      "message": "You do not have permissions to read from this"
                                      f" Channel topic: {world.topic}"}}  # fmt: skip
        assert receive(ws)["event"] == "phx_close"
        send(ws, f"realtime:{world.topic}", "broadcast", {"event": "x", "payload": {}}, "5")
        assert receive(ws)["payload"]["response"] == {"reason": "unmatched topic"}


def test_an_expired_token_closes_the_channel_in_realtime_py(rt: Realtime) -> None:
    """The token outlives the join by seconds (a loaded machine once took over a second to
    join, and a token already expired is refused at the join instead), then expires."""

    async def scenario() -> Listener:
        client = rt.client(rt.token(uuid.uuid4(), expires_in=4))
        heard = Listener()
        channel = client.channel("short-lived")
        channel.on_system(heard.events.append)
        await subscribe(channel, heard)
        await heard.wait(lambda: "CLOSED" in heard.states, seconds=15)
        await client.close()
        return heard

    heard = run(scenario())
    assert heard.states == ["SUBSCRIBED", "CHANNEL_ERROR", "CLOSED"]
    assert heard.errors and "Token has expired" in heard.errors[0]


# ---- presence -------------------------------------------------------------------------------


def test_presence_syncs_between_two_clients(rt: Realtime) -> None:
    async def scenario() -> tuple[list[Any], list[Any], dict[str, Any]]:
        alice, bob = rt.client(), rt.client()
        joins: list[Any] = []
        leaves: list[Any] = []
        a = alice.channel("desk", {"config": {"presence": {"key": "alice"}}})
        b = bob.channel("desk", {"config": {"presence": {"key": "bob"}}})
        b.on_presence_join(lambda key, current, new: joins.append((key, new)))
        b.on_presence_leave(lambda key, current, left: leaves.append(key))
        heard = Listener()
        await subscribe(b, heard)
        await subscribe(a, heard)
        await a.track({"status": "online"})
        await heard.wait(lambda: "alice" in b.presence_state())
        state = dict(b.presence_state())
        await a.untrack()
        await heard.wait(lambda: "alice" in leaves)
        await alice.close()
        await bob.close()
        return joins, leaves, state

    joins, leaves, state = run(scenario())
    assert [key for key, _ in joins] == ["alice"]
    ((meta,),) = [new for _, new in joins]
    assert meta["status"] == "online" and meta["presence_ref"]
    assert state["alice"][0]["status"] == "online"
    assert leaves == ["alice"]


def test_presence_state_and_diff_on_the_wire(rt: Realtime) -> None:
    with rt.raw() as a, rt.raw() as b:
        join = {"config": {"presence": {"key": "a", "enabled": True}}}
        send(a, "realtime:wire-desk", "phx_join", join, "1")
        assert receive(a)["payload"]["status"] == "ok"
        assert receive(a) == {"topic": "realtime:wire-desk", "event": "presence_state",
                              "payload": {}, "ref": None}  # fmt: skip
        send(a, "realtime:wire-desk", "presence",
             {"type": "presence", "event": "track", "payload": {"v": 1}}, "2")  # fmt: skip
        replies = [receive(a), receive(a)]
        diff = next(m for m in replies if m["event"] == "presence_diff")["payload"]
        (meta,) = diff["joins"]["a"]["metas"]
        assert diff["leaves"] == {} and meta["v"] == 1 and isinstance(meta["phx_ref"], str)
        send(b, "realtime:wire-desk", "phx_join",
             {"config": {"presence": {"key": "b", "enabled": True}}}, "1")  # fmt: skip
        receive(b)
        state = receive(b)
        assert state["event"] == "presence_state"
        assert state["payload"] == {"a": {"metas": [meta]}}
        send(a, "realtime:wire-desk", "presence", {"event": "track", "payload": "x"}, "3")
        assert receive(a)["payload"] == {
            "status": "error",
            "response": {"reason": "Presence track payload must be a map"},
        }


# ---- a database that cannot decode ----------------------------------------------------------


def test_without_logical_decoding_postgres_changes_say_why_and_broadcast_works(
    rt: Realtime, admin: Conn
) -> None:
    (level,) = admin.execute("show wal_level").fetchone() or ("?",)
    if level == "logical":
        pytest.skip("this server decodes: test_local_realtime_changes.py covers it")
    with rt.raw() as ws:
        join = {"config": {"postgres_changes": [{"event": "*", "schema": "public",
                                                 "table": "tasks"}],
                           "broadcast": {"self": True}}}  # fmt: skip
        send(ws, "realtime:no-wal", "phx_join", join, "1")
        reply = receive(ws)["payload"]
        assert reply["status"] == "ok"
        ((binding),) = reply["response"]["postgres_changes"]
        assert isinstance(binding.pop("id"), int)
        assert binding == {"event": "*", "schema": "public", "table": "tasks"}
        assert receive(ws)["payload"] == {
            "extension": "postgres_changes",
            "status": "error",
            "message": NOT_LOGICAL.format(level=level),
            "channel": "no-wal",
        }
        send(ws, "realtime:no-wal", "broadcast", {"event": "e", "payload": {"ok": 1}}, "2")
        assert receive(ws)["payload"]["payload"] == {"ok": 1}


# ---- vsn 2.0.0 ------------------------------------------------------------------------------


def test_vsn_2_arrays_and_binary_broadcasts(rt: Realtime) -> None:
    with rt.raw("2.0.0") as a, rt.raw("2.0.0") as b, rt.raw("1.0.0") as old:
        a.send(json.dumps(["1", "1", "realtime:bin", "phx_join", {"config": {}}]))
        assert json.loads(a.recv(timeout=3)) == [
            "1", "1", "realtime:bin", "phx_reply",
            {"status": "ok", "response": {"postgres_changes": []}},
        ]  # fmt: skip
        b.send(json.dumps(["7", "7", "realtime:bin", "phx_join", {"config": {}}]))
        b.recv(timeout=3)
        send(old, "realtime:bin", "phx_join", {"config": {}}, "1")
        receive(old)
        a.send(json.dumps([None, "2", "phoenix", "heartbeat", {}]))
        assert json.loads(a.recv(timeout=3)) == [
            None, "2", "phoenix", "phx_reply", {"status": "ok", "response": {}}
        ]  # fmt: skip
        # a JSON broadcast: arrays to vsn 2 clients, objects to vsn 1 ones
        a.send(json.dumps(["1", "3", "realtime:bin", "broadcast",
                           {"type": "broadcast", "event": "j", "payload": {"x": 1}}]))  # fmt: skip
        assert json.loads(b.recv(timeout=3)) == [
            None, None, "realtime:bin", "broadcast",
            {"type": "broadcast", "event": "j", "payload": {"x": 1}},
        ]  # fmt: skip
        assert receive(old)["payload"]["payload"] == {"x": 1}
        # a binary broadcast (kind 3, user broadcast push) arrives as kind 4 (user broadcast)
        topic, event, data = b"realtime:bin", b"blob", b"\x00\x01binary"
        push = bytes([3, 1, 1, len(topic), len(event), 0, 0]) + b"1" + b"4" + topic + event
        a.send(push + data)
        frame = b.recv(timeout=3)
        assert isinstance(frame, bytes)
        assert frame == bytes([4, len(topic), len(event), 0, 0]) + topic + event + data
        assert nothing_more(old)  # vsn 1.0.0 cannot carry bytes: Realtime skips it too


# ---- hostile clients ------------------------------------------------------------------------


def test_malformed_frames_unknown_events_and_floods_disturb_no_one(rt: Realtime) -> None:
    with rt.raw() as bystander, rt.raw() as hostile:
        send(bystander, "realtime:calm", "phx_join", {"config": {}}, "1")
        receive(bystander)
        for frame in ("not json", "[1, 2]", '{"topic": 1}', '{"topic": "t", "event": "e",'
                      ' "payload": []}', "null", "\u0000" * 10):  # fmt: skip
            hostile.send(frame)
        hostile.send(b"\x09\xff\xff")  # binary in vsn 1.0.0
        send(hostile, "realtime:calm", "phx_join", {"config": {"broadcast": "yes",
             "presence": 5, "postgres_changes": "all", "private": "no"}}, "1")  # fmt: skip
        assert receive(hostile)["payload"]["status"] == "ok"  # shapes fall back to defaults
        send(hostile, "realtime:calm", "no_such_event", {"x": 1}, "2")
        send(hostile, "realtime:calm", "presence", {"event": "dance"}, "3")
        assert receive(hostile)["payload"] == {"status": "error", "response": {}}
        send(hostile, "phoenix", "heartbeat", {}, "4")
        assert receive(hostile)["ref"] == "4"  # still served
        # a flood: Realtime's 100 events a second (bursts of 200) closes the channel
        for n in range(400):
            send(hostile, "realtime:calm", "broadcast", {"event": "f", "payload": {"n": n}}, None)
        system = receive_until(hostile, lambda m: m["event"] == "system")
        assert system["payload"]["message"] == "Too many messages per second"
        assert receive(hostile)["event"] == "phx_close"
        unmatched = drain(hostile)  # the rest of the flood hits a closed channel
        assert {json.loads(m)["payload"]["response"]["reason"] for m in unmatched} == {
            "unmatched topic"
        }
        heard = drain(bystander)
        assert 0 < len(heard) <= 250
        send(bystander, "phoenix", "heartbeat", {}, "9")
        assert receive(bystander)["ref"] == "9"


def test_oversized_frames_close_only_their_connection(rt: Realtime) -> None:
    limit = rt.app.services.limits.max_frame_bytes
    with rt.raw() as bystander, rt.raw() as hostile:
        send(bystander, "realtime:big", "phx_join", {"config": {}}, "1")
        receive(bystander)
        send(hostile, "realtime:big", "phx_join", {"config": {}}, "1")
        receive(hostile)
        send(
            hostile,
            "realtime:big",
            "broadcast",
            {"event": "x", "payload": {"s": "x" * limit}},
            None,
        )
        with pytest.raises(Exception, match=r"1009|message too big|closed"):
            receive(hostile)
        send(bystander, "phoenix", "heartbeat", {}, "2")
        assert receive(bystander)["ref"] == "2"


def test_too_many_channels_on_one_socket(rt: Realtime) -> None:
    limit = rt.app.services.limits.max_channels_per_client
    with rt.raw() as ws:
        for n in range(limit):
            send(ws, f"realtime:many-{n}", "phx_join", {"config": {}}, str(n))
        replies = [receive(ws)["payload"]["status"] for _ in range(limit)]
        assert replies == ["ok"] * limit
        send(ws, "realtime:one-more", "phx_join", {"config": {}}, "x")
        assert receive(ws)["payload"]["response"] == {
            "reason": "ChannelRateLimitReached: Too many channels"
        }


def test_a_client_that_stops_reading_holds_up_no_one(rt: Realtime) -> None:
    with rt.raw() as sender, rt.raw() as reader, rt.raw() as stalled:
        for n, ws in enumerate((sender, reader, stalled)):
            send(ws, "realtime:firehose", "phx_join", {"config": {}}, str(n))
            receive(ws)
        chunk = "x" * 200_000  # 50 of them: far more than the stalled client's socket buffers
        for n in range(50):
            send(sender, "realtime:firehose", "broadcast",
                 {"event": "big", "payload": {"n": n, "data": chunk}}, None)  # fmt: skip
        # Were fan-out held up by the stalled client, the reader would wait past receive's
        # deadline for the next message.
        got = [receive(reader, 5)["payload"]["payload"]["n"] for _ in range(50)]
        assert got == list(range(50))
        stalled.close_timeout = 0.1  # its server side is still blocked writing: do not wait


def test_replay_sends_a_private_topics_latest_broadcasts_first(
    rt: Realtime, admin: Conn, world: World
) -> None:
    admin.execute("update public.tasks set title = 'Replayed' where id = %s", (world.task,))
    since = int((time.time() - 60) * 1000)
    member = rt.token(world.users["member"])
    with rt.raw() as ws:
        join = {"config": {"private": True, "broadcast": {"replay": {"since": since, "limit": 2}}},
                "access_token": member}  # fmt: skip
        send(ws, f"realtime:{world.topic}", "phx_join", join, "1")
        assert receive(ws)["payload"]["status"] == "ok"
        replayed = [receive(ws)["payload"] for _ in range(2)]
        assert all(m["meta"]["replayed"] is True for m in replayed)
        assert replayed[-1]["event"] == "UPDATE"  # the latest two, oldest first
        assert replayed[-1]["payload"]["record"]["title"] == "Replayed"
    with rt.raw() as ws:
        join = {"config": {"broadcast": {"replay": {"since": since}}}}
        send(ws, "realtime:public-replay", "phx_join", join, "1")
        assert receive(ws)["payload"]["response"] == {
            "reason": "UnableToReplayMessages: Replay is not allowed for public channels"
        }
        join = {"config": {"private": True, "broadcast": {"replay": {"since": "yesterday"}}},
                "access_token": member}  # fmt: skip
        send(ws, f"realtime:{world.topic}", "phx_join", join, "2")
        assert receive(ws)["payload"]["response"] == {
            "reason": "UnableToReplayMessages: Replay params are not valid"
        }


def test_private_presence_needs_the_presence_policies(rt: Realtime, world: World) -> None:
    """The project's policy lets members read broadcasts only: they join, but may neither see
    nor track presence on the private topic."""
    with rt.raw() as ws:
        join = {"config": {"private": True, "presence": {"enabled": True}},
                "access_token": rt.token(world.users["member"])}  # fmt: skip
        send(ws, f"realtime:{world.topic}", "phx_join", join, "1")
        assert receive(ws)["payload"]["status"] == "ok"
        send(ws, f"realtime:{world.topic}", "presence", {"event": "track", "payload": {}}, "2")
        assert receive(ws)["payload"] == {"status": "error", "response": {}}


def test_a_silent_socket_is_dropped_after_phoenixs_timeout(rt: Realtime) -> None:
    saved = rt.app.services.limits
    rt.app.services.limits = dataclasses.replace(saved, idle_timeout_s=0.3)
    try:
        with rt.raw() as ws, pytest.raises(ConnectionClosed):
            ws.recv(timeout=3)
    finally:
        rt.app.services.limits = saved


def test_oversized_broadcasts_and_presences_get_realtimes_answers(rt: Realtime) -> None:
    saved = rt.app.services.limits
    rt.app.services.limits = dataclasses.replace(saved, max_payload_bytes=1000)
    try:
        with rt.raw() as ws, rt.raw() as other:
            join = {"config": {"broadcast": {"ack": True}, "presence": {"key": "k"}}}
            send(ws, "realtime:heavy", "phx_join", join, "1")
            send(other, "realtime:heavy", "phx_join", {"config": {}}, "1")
            receive(ws), receive(other)
            big = {"event": "e", "payload": {"s": "x" * 2000}}
            send(ws, "realtime:heavy", "broadcast", big, "2")
            assert receive(ws)["payload"] == {
                "status": "error",
                "response": {"reason": "payload_size_exceeded"},
            }
            assert nothing_more(other)
            send(ws, "realtime:heavy", "presence", {"event": "track", "payload": big}, "3")
            system = receive_until(ws, lambda m: m["event"] == "system")
            assert system["payload"]["message"] == "Track message size exceeded"
    finally:
        rt.app.services.limits = saved


def test_database_broadcasts_reach_vsn_2_clients_as_binary_frames(
    rt: Realtime, admin: Conn, world: World
) -> None:
    topic = f"realtime:{world.topic}".encode()
    with rt.raw("2.0.0") as ws:
        join = {"config": {"private": True}, "access_token": rt.token(world.users["member"])}
        ws.send(json.dumps(["1", "1", topic.decode(), "phx_join", join]))
        assert json.loads(ws.recv(timeout=3))[4]["status"] == "ok"
        admin.execute("update public.tasks set title = 'Binary' where id = %s", (world.task,))
        frame = ws.recv(timeout=3)
    assert isinstance(frame, bytes) and frame[0] == 4  # kind 4: user broadcast
    topic_size, event_size, meta_size, encoding = frame[1:5]
    at = 5
    assert frame[at : at + topic_size] == topic
    at += topic_size
    assert frame[at : at + event_size] == b"UPDATE"
    at += event_size
    meta = json.loads(frame[at : at + meta_size])
    payload = json.loads(frame[at + meta_size :])
    assert encoding == 1 and meta == {"id": payload["id"]}
    assert payload["record"]["title"] == "Binary"


# ---- the supabase-py suite runner's bookkeeping (the run itself: fnkit.local.realtime.suite) --


def test_the_suite_counts_only_failed_postgrest_writes_out_of_scope() -> None:
    """A PostgREST test that failed before its write (in the subscription) is Realtime's
    failure, not out of scope."""
    from fnkit.local.realtime.suite import classify

    report = classify({
        "t.py::test_postgrest_changes": {
            "outcome": "failed", "message": "Exception: Failed to create todo. Status: 404"},
        "t.py::test_postgrest_changes_on_different_tables": {
            "outcome": "failed", "message": "TimeoutError"},
        "t.py::test_presence": {"outcome": "passed", "message": ""},
    })  # fmt: skip
    statuses = {o.name.split("::")[1]: o.status for o in report.outcomes}
    assert statuses == {
        "test_postgrest_changes": "out-of-scope",
        "test_postgrest_changes_on_different_tables": "failed",
        "test_presence": "passed",
    }
    assert report.outcomes[0].reason.startswith("rows written through PostgREST (/rest/v1)")
