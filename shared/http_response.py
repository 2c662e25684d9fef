"""`http.client`'s response, with its header block read without the `email` package.

`http.client` hands every response's header lines to `email.parser`, which builds a MIME
message to answer `headers.get(name)`: about 60 µs of CPU per Upstash reply here, on the rate
limit every request runs (`post()` costs ~160 µs with it). `LeanResponse` is the stdlib class
with `begin()` restated (CPython 3.11's logic, line for line) around one change: the header
lines, read by the stdlib's own `_read_headers` (same line and count limits), become
`ResponseHeaders`, which answers what `HTTPResponse` and upstash-redis ask of a header block
(`get`, `get_all`, `items`) with the email parser's results for well-formed HTTP: the first
value of a name, case-insensitive; the value as sent after the colon's leading blanks;
continuation lines kept; and, as the email parser does, every line after one that is not a
header ignored. Reading the body (length, chunked, close) is the stdlib's, untouched.

tests/unit/test_http_response.py feeds the same bytes to both classes and compares what they
report; `KeepAliveTransport` (shared/redis_client.py) is its only user.
"""

from __future__ import annotations

import http.client
import re
from collections.abc import Iterator

# The email parser's test for a header line: a name of printable ASCII but ':', then ':'.
_HEADER_LINE = re.compile(r"[\041-\071\073-\176]*:")
# The stdlib's private reader of a header block (3.11 to 3.13). Should a later Python drop it,
# LeanResponse steps aside and the stdlib reads the response as before.
_READ_HEADERS = getattr(http.client, "_read_headers", None)


class ResponseHeaders:
    """A response's header lines, looked up case-insensitively like `email.message.Message`."""

    __slots__ = ("_items",)

    def __init__(self, items: list[tuple[str, str]]) -> None:
        self._items = items

    @classmethod
    def parse(cls, lines: list[bytes]) -> ResponseHeaders:
        items: list[tuple[str, str]] = []
        for raw in lines:
            line = raw.decode("iso-8859-1")
            if line in ("\r\n", "\n", ""):
                break
            if line[0] in " \t" and items:  # a continuation: the email parser keeps it as is
                name, value = items[-1]
                items[-1] = (name, value + line)
                continue
            if not _HEADER_LINE.match(line):
                break  # the email parser takes the rest for a body: no more headers
            name, _, value = line.partition(":")
            items.append((name, value.lstrip(" \t")))
        return cls([(name, value.rstrip("\r\n")) for name, value in items])

    def get(self, name: str, default: str | None = None) -> str | None:
        wanted = name.lower()
        for key, value in self._items:
            if key.lower() == wanted:
                return value
        return default

    def get_all(self, name: str, default: list[str] | None = None) -> list[str] | None:
        wanted = name.lower()
        found = [value for key, value in self._items if key.lower() == wanted]
        return found or default

    def items(self) -> list[tuple[str, str]]:
        return list(self._items)

    def keys(self) -> list[str]:
        return [key for key, _ in self._items]

    def __getitem__(self, name: str) -> str | None:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self._items)


class LeanResponse(http.client.HTTPResponse):
    """`HTTPResponse` whose `headers` are `ResponseHeaders` (see the module's docstring)."""

    def begin(self) -> None:
        if _READ_HEADERS is None:
            super().begin()
            return
        if self.headers is not None:
            return
        while True:  # read until a response that is not 100 Continue
            version, status, reason = self._read_status()  # type: ignore[attr-defined]
            if status != http.client.CONTINUE:
                break
            _READ_HEADERS(self.fp)
        self.code = self.status = status
        self.reason = reason.strip()
        if version in ("HTTP/1.0", "HTTP/0.9"):
            self.version = 10
        elif version.startswith("HTTP/1."):
            self.version = 11
        else:
            raise http.client.UnknownProtocol(version)
        lines = _READ_HEADERS(self.fp)
        self.headers = self.msg = ResponseHeaders.parse(lines)  # type: ignore[assignment]
        transfer = self.headers.get("transfer-encoding")
        self.chunked = bool(transfer and transfer.lower() == "chunked")  # type: ignore[assignment]
        if self.chunked:
            self.chunk_left = None
        self.will_close = self._check_close()  # type: ignore[attr-defined]
        self.length = None
        length = self.headers.get("content-length")
        if length and not self.chunked:
            try:
                self.length = int(length)
            except ValueError:
                self.length = None
            else:
                if self.length < 0:
                    self.length = None
        if (
            status in (http.client.NO_CONTENT, http.client.NOT_MODIFIED)
            or 100 <= status < 200
            or self._method == "HEAD"  # type: ignore[attr-defined]
        ):
            self.length = 0
        if not self.will_close and not self.chunked and self.length is None:
            self.will_close = True
