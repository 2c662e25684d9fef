"""`WireTransport` behaves as `KeepAliveTransport` (http.client) does, byte for byte.

A scripted HTTP server on loopback records every request's bytes and answers with canned
replies; both transports go through the same script, and what the server received, what the
transports read and how many connections they opened must be the same. The real exchange with
the Upstash bridge and Redis is tests/test_ratelimit_parity.py's (the rate limit runs on it).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import Any

import pytest

from shared.redis_client import KeepAliveTransport
from shared.upstash_wire import WireTransport

HEADERS = {"Authorization": "Bearer token-1"}
CLOSE = b"<close>"  # in a script: the server closes the connection after that reply


def _reply(status: str, headers: list[str], body: bytes) -> bytes:
    return (
        f"HTTP/1.1 {status}\r\n" + "".join(f"{h}\r\n" for h in headers) + "\r\n"
    ).encode() + body


JSON_OK = _reply(
    "200 OK", ["Content-Type: application/json", "Content-Length: 15"], b'{"result":"OK"}'
)


class ScriptedServer:
    """Answers the n-th request it receives with script[n]."""

    def __init__(self, script: list[bytes]) -> None:
        self.script = list(script)
        self.requests: list[bytes] = []
        self.connections = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}/"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            buffer = b""
            while True:
                while b"\r\n\r\n" not in buffer:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buffer += data
                head, _, rest = buffer.partition(b"\r\n\r\n")
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                while len(rest) < length:
                    rest += conn.recv(65536)
                self.requests.append(head + b"\r\n\r\n" + rest[:length])
                buffer = rest[length:]
                reply = self.script.pop(0)
                close = reply.endswith(CLOSE)
                conn.sendall(reply.removesuffix(CLOSE))
                if close:
                    with contextlib.suppress(OSError):
                        conn.shutdown(socket.SHUT_RDWR)
                    return

    def close(self) -> None:
        self._listener.close()


def _run(transport_cls: type, script: list[bytes], commands: int) -> dict[str, Any]:
    server = ScriptedServer(script)
    transport = transport_cls(5.0)
    replies = []
    try:
        for n in range(commands):
            reply = transport.post(server.url, headers=HEADERS, json=["SET", f"k{n}", "v"])
            replies.append((reply.status_code, reply.body, reply.headers.items()))
            time.sleep(0.05)  # lets a closing server's FIN arrive before the next call
    finally:
        transport.close()
        server.close()
    port = server.url.rsplit(":", 1)[1].rstrip("/").encode()
    requests = [r.replace(b"127.0.0.1:" + port, b"127.0.0.1:PORT") for r in server.requests]
    return {"requests": requests, "replies": replies, "connections": server.connections}


SCRIPTS = {
    "keep-alive": [JSON_OK, JSON_OK, JSON_OK],
    "chunked with an extension and a trailer": [
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b'7;ext=1\r\n{"resul\r\n8\r\nt":"OK"}\r\n0\r\nX-Trailer: 1\r\n\r\n',
        JSON_OK,
    ],
    "Connection: close": [
        _reply("200 OK", ["Connection: close", "Content-Length: 15"], b'{"result":"OK"}'),
        JSON_OK,
    ],
    "HTTP/1.0, body until close": [
        b'HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{"result":1}' + CLOSE,
        JSON_OK,
    ],
    "100 Continue first": [b"HTTP/1.1 100 Continue\r\n\r\n" + JSON_OK, JSON_OK],
    "an error, duplicate and folded headers": [
        _reply(
            "400 Bad Request",
            ["X-A: 1", "x-a: 2", "X-Folded: one", " two", "Content-Length: 22"],
            b'{"error":"ERR syntax"}',
        ),
        JSON_OK,
    ],
    "the server drops an idle connection": [JSON_OK + CLOSE, JSON_OK + CLOSE, JSON_OK],
    "204 without a body": [b"HTTP/1.1 204 No Content\r\n\r\n", JSON_OK],
}


@pytest.mark.parametrize("name", SCRIPTS)
def test_same_bytes_same_replies_same_connections(name: str) -> None:
    script = SCRIPTS[name]
    theirs = _run(KeepAliveTransport, script, len(script))
    ours = _run(WireTransport, script, len(script))
    assert ours["requests"] == theirs["requests"]
    assert ours["replies"] == theirs["replies"]
    assert ours["connections"] == theirs["connections"]


def test_the_request_is_what_http_client_writes() -> None:
    got = _run(WireTransport, [JSON_OK], 1)["requests"][0]
    assert got == (
        b"POST / HTTP/1.1\r\nHost: 127.0.0.1:PORT\r\nAccept-Encoding: identity\r\n"
        b"Content-Length: 16\r\nAuthorization: Bearer token-1\r\n"
        b'Content-Type: application/json\r\n\r\n["SET","k0","v"]'
    )


@pytest.mark.parametrize("transport_cls", [KeepAliveTransport, WireTransport])
def test_a_header_that_could_split_the_request_is_refused(transport_cls: type) -> None:
    server = ScriptedServer([JSON_OK])
    try:
        with pytest.raises(ValueError, match="Invalid header value"):
            transport_cls(5.0).post(
                server.url, headers={"Authorization": "Bearer x\r\nX-Evil: 1"}, json=["PING"]
            )
    finally:
        server.close()


@pytest.mark.parametrize("transport_cls", [KeepAliveTransport, WireTransport])
def test_a_reply_cut_short_is_an_error(transport_cls: type) -> None:
    server = ScriptedServer([b'HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{"res' + CLOSE])
    try:
        with pytest.raises(Exception) as caught:
            transport_cls(5.0).post(server.url, headers=HEADERS, json=["PING"])
        assert caught.type.__module__ == "http.client"
    finally:
        server.close()
