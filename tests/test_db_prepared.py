"""DB_PREPARED_STATEMENTS seen on the wire: a pooler in transaction mode never gets a prepared
statement; a session gets each statement prepared once and a read stays one round trip.

A proxy between the runtime and the test database reads the frontend protocol (what a pooler
receives): every Parse message with its statement name (a named one is a server-side prepared
statement; the unnamed one is not), and every simple query's text. Behind it, the bench's
counting proxy counts round trips. Both modes run the same reads and writes through
`shared.db.Transaction` and must return the same rows.
"""

from __future__ import annotations

import contextlib
import re
import socket
import struct
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from fnkit.bench.proxy import CountingProxy
from shared.db import Transaction, close_pools
from shared.settings import Settings, SettingsError, load_settings
from tests.fixtures.proxy import ROUND_TRIP_DELAY_S, proxied_database_url
from tests.fixtures.server import ACME_PROJECTS, SEED_USERS
from tests.rls_helpers import user_claims

MEMBER = uuid.UUID(SEED_USERS["member"])
_SPECIAL_REQUESTS = {80877103, 80877104, 80877102}  # SSLRequest, GSSENCRequest, CancelRequest
LIST = (
    "select t.id, t.title, t.status, t.priority, t.due_date, t.position, t.created_at"
    " from public.tasks t where t.project_id = %s order by t.created_at desc, t.id desc limit %s"
)


class ProtocolProxy:
    """Forwards to `upstream` and records the frontend messages: Parse names, query texts."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.parses: list[tuple[str, str]] = []  # (statement name, query)
        self.queries: list[str] = []  # simple-query texts
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            threading.Thread(target=self._up, args=(client, server), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client), daemon=True).start()

    def _up(self, client: socket.socket, server: socket.socket) -> None:
        buffer, started = b"", False
        try:
            while data := client.recv(65536):
                server.sendall(data)
                buffer += data
                while True:
                    if not started:  # startup-phase messages carry no type byte
                        if len(buffer) < 8:
                            break
                        (length,) = struct.unpack("!I", buffer[:4])
                        if len(buffer) < length:
                            break
                        (code,) = struct.unpack("!I", buffer[4:8])
                        started = code not in _SPECIAL_REQUESTS
                        buffer = buffer[length:]
                        continue
                    if len(buffer) < 5:
                        break
                    kind, (length,) = buffer[:1], struct.unpack("!I", buffer[1:5])
                    if len(buffer) < 1 + length:
                        break
                    self._record(kind, buffer[5 : 1 + length])
                    buffer = buffer[1 + length :]
        except OSError:
            pass
        finally:
            self._close(client, server)

    def _record(self, kind: bytes, body: bytes) -> None:
        with self._lock:
            if kind == b"P":
                name, rest = body.split(b"\0", 1)
                self.parses.append((name.decode(), rest.split(b"\0", 1)[0].decode()))
            elif kind == b"Q":
                self.queries.append(body.rstrip(b"\0").decode())

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            self._close(source, sink)

    @staticmethod
    def _close(*socks: socket.socket) -> None:
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def named_parses(self) -> list[tuple[str, str]]:
        with self._lock:
            return [(name, query) for name, query in self.parses if name]

    def close(self) -> None:
        self._listener.close()


@pytest.fixture
def wire(database_url: str) -> Iterator[tuple[ProtocolProxy, CountingProxy, str]]:
    """The protocol proxy in front of the counting proxy in front of the test database; the
    base URL through both (no TLS, so the proxy can read the messages)."""
    _, upstream = proxied_database_url(database_url, 0)
    # Two proxies in a row: the reader's own relay adds a thread hop between a pipeline's
    # sends, so the counting proxy holds replies longer than the other round-trip tests.
    counting = CountingProxy(upstream, delay=ROUND_TRIP_DELAY_S * 3).start()
    reader = ProtocolProxy(("127.0.0.1", counting.port))
    url, _ = proxied_database_url(database_url, reader.port)
    yield reader, counting, f"{url}?sslmode=disable&gssencmode=disable"
    close_pools()
    reader.close()
    counting.stop()


def _settings(url: str, **env: str) -> Settings:
    return load_settings(
        {
            "SUPABASE_URL": "http://127.0.0.1:54321",
            "DATABASE_URL": url,
            "UPSTASH_REDIS_REST_URL": "http://127.0.0.1:1",
            "UPSTASH_REDIS_REST_TOKEN": "unused",
            **env,
        }
    )


def _tx(settings: Settings, method: str, single_statement: bool = False) -> Transaction:
    return Transaction(
        settings, user_claims(MEMBER), "authenticated", method, "/tasks", {}, single_statement
    )


def _workload(settings: Settings) -> list[Any]:
    """Reads, single-statement writes, an explicit write transaction and a failed write,
    each repeated past any preparing threshold; returns what the reads saw."""
    seen: list[Any] = []
    title = f"wire {uuid.uuid4().hex[:8]}"
    for _ in range(7):
        tx = _tx(settings, "GET")
        seen.append(tx.value("select (select auth.uid())::text"))
        seen.append(tx.all(LIST, (ACME_PROJECTS[0], 5)))
        tx.finish(commit=True)
        tx = _tx(settings, "POST", single_statement=True)
        tx.value(
            "insert into public.tasks (project_id, title) values (%s, %s) returning id",
            (ACME_PROJECTS[0], title),
        )
        tx.finish(commit=True)
        tx = _tx(settings, "PATCH")
        tx.execute("update public.tasks set priority = 1 where title = %s", (title,))
        tx.finish(commit=True)
        tx = _tx(settings, "POST", single_statement=True)
        with pytest.raises(psycopg.errors.NotNullViolation):
            tx.value(
                "insert into public.tasks (project_id, title) values (%s, null)",
                (ACME_PROJECTS[0],),
            )
        tx.finish(commit=False)
    tx = _tx(settings, "GET")
    seen.append(tx.value("select count(*) from public.tasks where title = %s", (title,)))
    tx.finish(commit=True)
    return seen


def test_transaction_mode_never_sees_a_prepared_statement(
    wire: tuple[ProtocolProxy, CountingProxy, str],
) -> None:
    reader, _, url = wire
    pooler_url = f"{url}&pgbouncer=true"  # how Supabase writes a transaction-mode URL
    settings = _settings(pooler_url)  # DB_PREPARED_STATEMENTS unset: auto
    assert settings.db_prepared_statements is False
    seen = _workload(settings)
    assert seen[0] == str(MEMBER) and seen[-1] == 7  # it connected (pgbouncer= left out)
    assert reader.parses or reader.queries  # the proxy did read the traffic
    assert reader.named_parses() == []
    assert not [q for q in reader.queries if re.search(r"(^|;)\s*(prepare|execute)\s", q, re.I)]


def test_on_is_refused_for_a_transaction_mode_url(
    wire: tuple[ProtocolProxy, CountingProxy, str],
) -> None:
    _, _, url = wire
    with pytest.raises(SettingsError, match="DB_PREPARED_STATEMENTS=on"):
        _settings(f"{url}&pgbouncer=true", DB_PREPARED_STATEMENTS="on")
    pooler = "postgresql://postgres.ref:pw@aws-0-eu-central-1.pooler.supabase.com:6543/postgres"
    with pytest.raises(SettingsError, match="transaction-mode"):
        _settings(pooler, DB_PREPARED_STATEMENTS="on")


def test_a_session_prepares_each_statement_once_and_reads_stay_one_round_trip(
    wire: tuple[ProtocolProxy, CountingProxy, str],
) -> None:
    reader, counting, url = wire
    settings = _settings(url, DB_PREPARED_STATEMENTS="on", DB_POOL_MAX="1")
    assert settings.db_prepared_statements is True
    tx = _tx(settings, "GET")
    assert tx.value("select 1") == 1  # the pool's connection is open
    tx.finish(commit=True)
    for _ in range(3):
        before = counting.counts()
        tx = _tx(settings, "GET")
        rows = tx.all(LIST, (ACME_PROJECTS[0], 5))
        tx.finish(commit=True)
        spent = counting.counts() - before
        assert (spent.exchanges, spent.connections) == (1, 0)
        assert rows
    named = reader.named_parses()
    # One connection: the impersonation and the list each parsed once, then only bound.
    assert sum(1 for _, query in named if query.startswith("select set_config('role'")) == 1
    assert sum(1 for _, query in named if "from public.tasks t where t.project_id" in query) == 1
    assert not [q for q in reader.queries if "set_config" in q]  # no simple-query reads


def test_both_modes_read_and_write_alike(wire: tuple[ProtocolProxy, CountingProxy, str]) -> None:
    _, _, url = wire
    modes = {
        "off": _settings(url, DB_PREPARED_STATEMENTS="off"),
        "on": _settings(f"{url}&application_name=prepared", DB_PREPARED_STATEMENTS="on"),
    }
    assert modes["off"].database_url != modes["on"].database_url  # two pools
    done = {name: _workload(settings) for name, settings in modes.items()}
    assert done["on"][0] == done["off"][0] == str(MEMBER)
    assert done["on"][-1] == done["off"][-1] == 7
    pages = {}
    for name, settings in modes.items():  # the same page, now, both ways: same rows, same types
        tx = _tx(settings, "GET")
        pages[name] = tx.all(LIST, (ACME_PROJECTS[0], 20))
        tx.finish(commit=True)
    assert len(pages["on"]) == 20
    assert pages["on"] == pages["off"]
    assert [type(v) for v in pages["on"][0].values()] == [type(v) for v in pages["off"][0].values()]
