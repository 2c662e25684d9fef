"""`LeanResponse` reports what `http.client.HTTPResponse` reports, for the same bytes.

Each case is a raw response as a server would send it. Both classes read it from the same
kind of socket; everything the transport and upstash-redis look at must agree: status,
reason, version, header lookups (any case, repeated names, continuation lines), the
stdlib's framing decisions (length, chunked, will_close) and the body read through them.
"""

from __future__ import annotations

import http.client
import io

import pytest

from shared.http_response import LeanResponse, ResponseHeaders


class _Socket:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def makefile(self, mode: str) -> io.BufferedReader:
        return io.BufferedReader(io.BytesIO(self._data))  # type: ignore[arg-type]


def _read(cls: type[http.client.HTTPResponse], data: bytes, method: str) -> dict[str, object]:
    response = cls(_Socket(data), method=method)  # type: ignore[arg-type]
    response.begin()
    names = ["content-type", "Content-Length", "X-Repeated", "x-folded", "missing", "Set-Cookie"]
    seen = {
        "status": response.status,
        "reason": response.reason,
        "version": response.version,
        "chunked": response.chunked,
        "length": response.length,
        "will_close": response.will_close,
        "get": {name: response.headers.get(name) for name in names},
        "getheader": {name: response.getheader(name) for name in names},
        "items": list(response.headers.items()),
        "getheaders": response.getheaders(),
    }
    seen["body"] = response.read()
    return seen


CASES = {
    "content-length": (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n"
        b'{"result":"OK"}'
    ),
    "chunked": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 99\r\n\r\n"
        b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    ),
    "close": b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
    "no length: read to the end": b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it",
    "http/1.0": b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
    "http/1.0 keep-alive": b"HTTP/1.0 200 OK\r\nKeep-Alive: timeout=5\r\nContent-Length: 2\r\n\r\nok",
    "100 continue first": (
        b"HTTP/1.1 100 Continue\r\nX-Interim: 1\r\n\r\n"
        b"HTTP/1.1 201 Created\r\nContent-Length: 3\r\n\r\nnew"
    ),
    "204": b"HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n",
    "repeated and odd case": (
        b"HTTP/1.1 401 Unauthorized\r\nx-repeated: one\r\nX-REPEATED: two\r\n"
        b"set-cookie: a=1\r\nSet-Cookie: b=2\r\ncontent-length: 4\r\n\r\nnope"
    ),
    "blanks around values": (
        b"HTTP/1.1 200 OK\r\nContent-Type:\t application/json  \r\nContent-Length:2\r\n\r\nok"
    ),
    "folded header": (
        b"HTTP/1.1 200 OK\r\nX-Folded: first\r\n  second\r\n\tthird\r\nContent-Length: 2\r\n\r\nok"
    ),
    "bare LF line ends": b"HTTP/1.1 200 OK\nContent-Length: 2\nX-Repeated: lf\n\nok",
    "no reason phrase": b"HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok",
    "latin-1 value": b"HTTP/1.1 200 OK\r\nX-Repeated: caf\xe9\r\nContent-Length: 2\r\n\r\nok",
    "negative length": b"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\nto the end",
    "bad length": b"HTTP/1.1 200 OK\r\nContent-Length: many\r\n\r\nto the end",
    "a line that is no header ends the headers": (
        b"HTTP/1.1 200 OK\r\nX-Repeated: kept\r\nnot a header\r\nContent-Length: 2\r\n\r\nok"
    ),
}


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("method", ["POST", "HEAD"])
def test_the_same_bytes_read_the_same(name: str, method: str) -> None:
    data = CASES[name]
    assert _read(LeanResponse, data, method) == _read(http.client.HTTPResponse, data, method)


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"", http.client.RemoteDisconnected),
        (b"SPDY/3 200 OK\r\n\r\n", http.client.BadStatusLine),
        (b"HTTP/2 200 OK\r\n\r\n", http.client.UnknownProtocol),
        (b"HTTP/1.1 200 OK\r\nX: " + b"a" * 70_000 + b"\r\n\r\n", http.client.LineTooLong),
        (b"HTTP/1.1 200 OK\r\n" + b"X: 1\r\n" * 101 + b"\r\n", http.client.HTTPException),
    ],
)
def test_what_the_stdlib_refuses_is_refused_alike(data: bytes, error: type[Exception]) -> None:
    for cls in (LeanResponse, http.client.HTTPResponse):
        with pytest.raises(error):
            cls(_Socket(data), method="POST").begin()  # type: ignore[arg-type]


def test_headers_answer_like_a_message() -> None:
    headers = ResponseHeaders.parse([b"A: 1\r\n", b"b: 2\r\n", b"a: 3\r\n", b"\r\n"])
    assert headers["a"] == "1" and headers.get("B") == "2" and headers.get("c", "x") == "x"
    assert headers.get_all("A") == ["1", "3"] and headers.get_all("c") is None
    assert "A" in headers and "c" not in headers and len(headers) == 3
    assert list(headers) == ["A", "b", "a"]


def test_without_the_stdlib_header_reader_the_stdlib_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Python without `http.client._read_headers` gets the stdlib's own `begin()`."""
    from shared import http_response

    monkeypatch.setattr(http_response, "_READ_HEADERS", None)
    data = CASES["repeated and odd case"]
    response = LeanResponse(_Socket(data), method="POST")  # type: ignore[arg-type]
    response.begin()
    assert isinstance(response.headers, http.client.HTTPMessage)
    assert _read(LeanResponse, data, "POST") == _read(http.client.HTTPResponse, data, "POST")
