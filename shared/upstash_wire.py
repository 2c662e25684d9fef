"""The runtime's Upstash calls as HTTP/1.1 written and read on a kept-alive socket per thread.

`KeepAliveTransport` (shared/redis_client.py) drives `http.client`, whose request building
(putrequest, putheader, endheaders) and response object cost ~100 µs of CPU per call here;
the rate limit makes one such call on nearly every request. `WireTransport` sends the same
bytes in one `sendall` (request line, `Host`, `Accept-Encoding: identity`, `Content-Length`,
then the caller's headers, as `http.client` orders them) and reads the reply as `http.client`
reads it (status line, 100 Continue skipped, headers by `ResponseHeaders`, body by
Content-Length, chunked, or until close; keep-alive decided by `http.client`'s own rules), at
~30 µs. Connections are made as `http.client` makes them: `socket.create_connection` with
the timeout, TCP_NODELAY, and for https the default TLS context with ALPN `http/1.1`.

tests/test_upstash_wire.py runs both transports against the same scripted server and compares
the bytes sent, the replies read and when a connection is reused; test_ratelimit_parity.py
drives the rate limit through it against real Redis. No retries, as before: a rate-limit
script that reached Upstash must not run twice. A connection the server closed while idle is
found by one `select` before sending and replaced.
"""

from __future__ import annotations

import http.client
import select
import socket
import ssl
from typing import Any
from urllib.parse import urlsplit

import orjson

from shared.http_response import ResponseHeaders
from shared.redis_client import HttpReply, ThreadTransport

_MAX_LINE = 65536  # http.client's _MAXLINE
_MAX_HEADERS = 100  # http.client's _MAXHEADERS


class _Reader:
    """Buffered reads from a socket: lines and exact byte counts."""

    __slots__ = ("buffer", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def _more(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise http.client.RemoteDisconnected("Remote end closed connection without response")
        self.buffer += data

    def line(self) -> bytes:
        while (end := self.buffer.find(b"\n")) < 0:
            if len(self.buffer) > _MAX_LINE:
                raise http.client.LineTooLong("header line")
            self._more()
        line, self.buffer = self.buffer[: end + 1], self.buffer[end + 1 :]
        if len(line) > _MAX_LINE:
            raise http.client.LineTooLong("header line")
        return line

    def exactly(self, n: int) -> bytes:
        while len(self.buffer) < n:
            try:
                self._more()
            except http.client.RemoteDisconnected:
                raise http.client.IncompleteRead(self.buffer, n - len(self.buffer)) from None
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def rest(self) -> bytes:
        chunks = [self.buffer]
        while data := self.sock.recv(65536):
            chunks.append(data)
        self.buffer = b""
        return b"".join(chunks)


class _Connection:
    __slots__ = ("host_header", "origin", "reader", "sock")

    def __init__(self, origin: tuple[str, str], sock: socket.socket, host_header: str) -> None:
        self.origin = origin
        self.sock = sock
        self.reader = _Reader(sock)
        self.host_header = host_header


class WireTransport(ThreadTransport):
    """`post(url, headers=, json=)` as `KeepAliveTransport` offers it, one socket per thread."""

    def _post(self, url: str, headers: dict[str, str], json: Any) -> HttpReply:
        parts = urlsplit(url)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn = self._connection(parts.scheme, parts.netloc)
        body = orjson.dumps(json)
        head = [f"POST {path} HTTP/1.1", f"Host: {conn.host_header}", "Accept-Encoding: identity"]
        head.append(f"Content-Length: {len(body)}")
        for name, value in {**headers, "Content-Type": "application/json"}.items():
            _check_header(name, value)
            head.append(f"{name}: {value}")
        try:
            conn.sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
            reply, will_close = _read_reply(conn.reader)
        except BaseException:
            self._drop()
            raise
        if will_close:
            self._drop()
        return reply

    def _connection(self, scheme: str, netloc: str) -> _Connection:
        conn: _Connection | None = getattr(self._local, "conn", None)
        if conn is not None and (conn.origin != (scheme, netloc) or _closed_by_peer(conn)):
            self._drop()
            conn = None
        if conn is None:
            conn = self._connect(scheme, netloc)
            self._local.conn = conn
        return conn

    def _connect(self, scheme: str, netloc: str) -> _Connection:
        https = scheme == "https"
        cls = http.client.HTTPSConnection if https else http.client.HTTPConnection
        model = cls(netloc)  # the stdlib's parsing of host and port, never connected
        host, port = model.host, model.port
        shown = f"[{host}]" if ":" in host else host
        host_header = shown if port == model.default_port else f"{shown}:{port}"
        sock = socket.create_connection((host, port), self.timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if https:
                context = ssl.create_default_context()
                context.set_alpn_protocols(["http/1.1"])
                sock = context.wrap_socket(sock, server_hostname=host)
        except BaseException:
            sock.close()
            raise
        return _Connection((scheme, netloc), sock, host_header)

    def _drop(self) -> None:
        conn: _Connection | None = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            conn.sock.close()

    def close(self) -> None:
        self._drop()


def _check_header(name: str, value: str) -> None:
    """`http.client.putheader`'s refusals, with its messages."""
    if not http.client._is_legal_header_name(name.encode("latin-1")):  # type: ignore[attr-defined]
        raise ValueError(f"Invalid header name {name.encode('latin-1')!r}")
    if http.client._is_illegal_header_value(value.encode("latin-1")):  # type: ignore[attr-defined]
        raise ValueError(f"Invalid header value {value.encode('latin-1')!r}")


def _read_reply(reader: _Reader) -> tuple[HttpReply, bool]:
    """The reply and whether the server will close the connection (http.client's rules)."""
    while True:
        version, status = _status_line(reader.line())
        lines = _header_lines(reader)
        if status != http.client.CONTINUE:
            break
    headers = ResponseHeaders.parse(lines)
    will_close = _will_close(version, headers)
    transfer = headers.get("transfer-encoding")
    if status in (http.client.NO_CONTENT, http.client.NOT_MODIFIED) or 100 <= status < 200:
        body = b""
    elif transfer and transfer.lower() == "chunked":
        body = _chunked(reader)
    else:
        length = _length(headers.get("content-length"))
        if length is not None:
            body = reader.exactly(length)
        else:
            body, will_close = reader.rest(), True
    return HttpReply(status, headers, body), will_close


def _status_line(line: bytes) -> tuple[str, int]:
    text = line.decode("iso-8859-1")
    if not text:
        raise http.client.RemoteDisconnected("Remote end closed connection without response")
    version, status = [*text.split(None, 2), "", ""][:2]
    if not version.startswith("HTTP/"):
        raise http.client.BadStatusLine(text)
    try:
        code = int(status)
    except ValueError:
        raise http.client.BadStatusLine(text) from None
    if not 100 <= code <= 999:
        raise http.client.BadStatusLine(text)
    if version not in ("HTTP/1.0", "HTTP/0.9") and not version.startswith("HTTP/1."):
        raise http.client.UnknownProtocol(version)
    return version, code


def _header_lines(reader: _Reader) -> list[bytes]:
    lines = []
    while True:
        line = reader.line()
        lines.append(line)
        if len(lines) > _MAX_HEADERS:
            raise http.client.HTTPException(f"got more than {_MAX_HEADERS} headers")
        if line in (b"\r\n", b"\n", b""):
            return lines


def _will_close(version: str, headers: ResponseHeaders) -> bool:
    """`HTTPResponse._check_close`."""
    conn = headers.get("connection")
    if version.startswith("HTTP/1.") and version != "HTTP/1.0":
        return bool(conn and "close" in conn.lower())
    if headers.get("keep-alive"):
        return False
    if conn and "keep-alive" in conn.lower():
        return False
    proxy = headers.get("proxy-connection")
    return not (proxy and "keep-alive" in proxy.lower())


def _length(value: str | None) -> int | None:
    if not value:
        return None
    try:
        length = int(value)
    except ValueError:
        return None
    return length if length >= 0 else None


def _chunked(reader: _Reader) -> bytes:
    chunks: list[bytes] = []
    while True:
        size_line = reader.line().split(b";", 1)[0]
        try:
            size = int(size_line, 16)
        except ValueError:
            raise http.client.IncompleteRead(b"".join(chunks)) from None
        if size == 0:
            while reader.line() not in (b"\r\n", b"\n", b""):
                pass  # trailers, discarded as http.client discards them
            return b"".join(chunks)
        chunks.append(reader.exactly(size))
        reader.exactly(2)  # the CRLF after the chunk


def _closed_by_peer(conn: _Connection) -> bool:
    """An idle keep-alive connection has nothing to read unless the server hung up."""
    try:
        return bool(select.select([conn.sock], [], [], 0)[0])
    except (OSError, ValueError):
        return True
