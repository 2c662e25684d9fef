"""The Upstash client's keep-alive transport: real commands, stale connections, no retries.

Against the Upstash REST bridge (real Redis behind it) for the commands, and against small
socket servers that misbehave on purpose for what a network does to a keep-alive connection.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from upstash_ratelimit import Ratelimit, SlidingWindow

from shared.redis_client import KeepAliveTransport, _build
from shared.settings import Settings

RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 17\r\n\r\n"
    b'{"result":"PONG"}'
)


def _settings(url: str, token: str = "t", timeout: float = 2.0) -> Settings:
    return Settings(
        supabase_url="http://127.0.0.1:54321",
        database_url="postgresql://nobody@127.0.0.1:9/unused",
        upstash_url=url,
        upstash_token=token,
        redis_timeout_s=timeout,
    )


def test_commands_and_the_rate_limiter_run_through_the_transport(upstash: Any) -> None:
    client = _build(_settings(upstash.url, upstash.token))
    assert isinstance(client._http._client, KeepAliveTransport)
    key = f"transport:{uuid.uuid4().hex}"
    assert client.set(key, "ü ✓", ex=60) is True
    assert client.get(key) == "ü ✓"
    assert client.incr(f"{key}:n") == 1
    assert client.mget(key, f"{key}:missing") == ["ü ✓", None]
    limiter = Ratelimit(redis=client, limiter=SlidingWindow(max_requests=3, window=60))
    outcomes = [limiter.limit(key).allowed for _ in range(4)]
    assert outcomes == [True, True, True, False]


def test_the_client_matches_what_upstash_redis_builds_but_for_the_transport() -> None:
    """`_build` sets the client up field by field (to skip an httpx client nobody uses): the
    same fields, with the same values, as upstash-redis's own constructor would give."""
    from upstash_redis import Redis

    settings = _settings("https://example.upstash.io", "secret-token", timeout=1.5)
    ours = _build(settings)
    theirs = Redis(
        settings.upstash_url,
        settings.upstash_token,
        rest_retries=0,
        rest_retry_interval=0,
        allow_telemetry=False,
        read_your_writes=False,
    )
    assert vars(ours).keys() == vars(theirs).keys()
    assert vars(ours._http).keys() == vars(theirs._http).keys()
    for name in ("_url", "_read_your_writes", "_sync_token", "_allow_telemetry", "_headers"):
        assert getattr(ours, name) == getattr(theirs, name), name
    for name in ("_encoding", "_retries", "_retry_interval"):
        assert getattr(ours._http, name) == getattr(theirs._http, name), name
    assert type(ours._json) is type(theirs._json) and ours._json.client is ours
    assert type(ours._search) is type(theirs._search)
    assert ours._http._sync_token_cb.__self__ is ours  # type: ignore[attr-defined]
    assert isinstance(ours._http._client, KeepAliveTransport)
    assert ours._http._client.timeout == 1.5


def test_threads_each_get_their_own_connection(upstash: Any) -> None:
    client = _build(_settings(upstash.url, upstash.token))
    key = f"transport:{uuid.uuid4().hex}"
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: client.incr(key), range(200)))
    assert client.get(key) == "200"


class _Server:
    """A loopback HTTP/1.1 server whose behaviour per connection the test decides."""

    def __init__(self, serve: Callable[[socket.socket, _Server], None]) -> None:
        self.serve = serve
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.connections = 0
        self.requests = 0
        self.closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self.serve, args=(conn, self), daemon=True).start()

    def read_request(self, conn: socket.socket) -> bool:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return False
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = int(
            next(
                line.split(b":", 1)[1]
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
        )
        while len(body) < length:
            body += conn.recv(65536)
        self.requests += 1
        return True


@pytest.fixture
def server() -> Iterator[Callable[[Callable[[socket.socket, _Server], None]], _Server]]:
    started: list[_Server] = []

    def start(serve: Callable[[socket.socket, _Server], None]) -> _Server:
        started.append(_Server(serve))
        return started[-1]

    yield start
    for s in started:
        s.listener.close()


def test_a_connection_the_server_closed_while_idle_is_replaced_before_sending(server) -> None:
    def one_answer_then_hang_up(conn: socket.socket, srv: _Server) -> None:
        # Keep-alive in the headers, then closed anyway: an idle timeout on the server's side.
        if srv.read_request(conn):
            conn.sendall(RESPONSE)
        conn.close()
        srv.closed.set()

    srv = server(one_answer_then_hang_up)
    transport = KeepAliveTransport(timeout=2)
    assert transport.post(srv.url, headers={}, json=["PING"]).json() == {"result": "PONG"}
    assert srv.closed.wait(2)
    time.sleep(0.05)  # the FIN reaches the client's socket
    assert transport.post(srv.url, headers={}, json=["PING"]).json() == {"result": "PONG"}
    assert (srv.connections, srv.requests) == (2, 2)


def test_a_failure_after_sending_is_raised_and_never_retried(server) -> None:
    def read_then_hang_up(conn: socket.socket, srv: _Server) -> None:
        srv.read_request(conn)
        conn.close()

    srv = server(read_then_hang_up)
    transport = KeepAliveTransport(timeout=2)
    with pytest.raises(http.client.RemoteDisconnected):
        transport.post(srv.url, headers={}, json=["INCR", "k"])
    time.sleep(0.1)
    assert srv.requests == 1  # a rate-limit script that reached the server runs once


def test_a_silent_server_times_out(server) -> None:
    def never_answer(conn: socket.socket, srv: _Server) -> None:
        srv.read_request(conn)
        time.sleep(5)
        conn.close()

    srv = server(never_answer)
    transport = KeepAliveTransport(timeout=0.3)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        transport.post(srv.url, headers={}, json=["PING"])
    assert time.monotonic() - started < 2
