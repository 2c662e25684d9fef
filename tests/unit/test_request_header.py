"""`Request.header` reads a header from the WSGI environ as werkzeug's `headers.get` does.

The pipeline reads its headers (request id, origin, credentials, body length and type) through
it on every request; werkzeug's `EnvironHeaders.get` is the reference for every name, present
or absent, in any spelling."""

from __future__ import annotations

import pytest
from werkzeug.datastructures import Headers
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request as WerkzeugRequest

from shared.request import Request, _environ_headers, _safe_headers
from shared.settings import Settings

SETTINGS = Settings(
    supabase_url="http://127.0.0.1:1",
    database_url="postgresql://x@127.0.0.1/x",
    upstash_url="http://127.0.0.1:1",
    upstash_token="t",
)
SENT = [
    ("Authorization", "Bearer a.b.c"),
    ("apikey", "sb_publishable_x"),
    ("Origin", "https://app.example"),
    ("X-Request-Id", "req-1"),
    ("X-Forwarded-For", "203.0.113.9, 10.0.0.1"),
    ("X-Custom_Header", "under_score"),
    ("Accept", "application/json"),
    ("Cookie", "a=1"),
    ("Cafe", "caf\xe9"),  # latin-1 bytes as WSGI hands them over
    ("Empty", ""),
]
NAMES = [
    "Authorization", "authorization", "AUTHORIZATION", "apikey", "ApiKey", "Origin",
    "X-Request-Id", "x-request-id", "X-Forwarded-For", "X-Custom-Header", "X_Custom_Header",
    "Accept", "Cookie", "Cafe", "Empty", "Content-Type", "content-type", "Content-Length",
    "Content_Length", "If-Match", "Idempotency-Key", "traceparent", "Host", "Missing",
]  # fmt: skip


def _pair(body: bytes | None, content_type: str | None) -> tuple[WerkzeugRequest, Request]:
    environ = EnvironBuilder(
        method="POST" if body is not None else "GET",
        path="/x",
        headers=SENT,
        data=body,
        content_type=content_type,
    ).get_environ()
    http = WerkzeugRequest(environ)
    ours = Request(
        function="f", method=http.method, path="/x", headers=http.headers,
        query_string=b"", request_id="r", client_ip="127.0.0.1", settings=SETTINGS,
        environ=environ,
    )  # fmt: skip
    return http, ours


@pytest.mark.parametrize("body", [None, b"{}", b""])
@pytest.mark.parametrize("name", NAMES)
def test_header_is_werkzeugs(name: str, body: bytes | None) -> None:
    http, ours = _pair(body, "application/json" if body else None)
    assert ours.header(name) == http.headers.get(name)
    assert ours.header(name) == ours.header(name)  # the cached key gives the same


@pytest.mark.parametrize("name", NAMES)
def test_without_environ_it_asks_the_headers(name: str) -> None:
    headers = Headers(SENT)
    ours = Request(
        function="f", method="GET", path="/x", headers=headers, query_string=b"",
        request_id="r", client_ip="127.0.0.1", settings=SETTINGS,
    )  # fmt: skip
    assert ours.header(name) == headers.get(name)


@pytest.mark.parametrize("body", [None, b"{}", b""])
def test_the_headers_sql_sees_are_werkzeugs(body: bytes | None) -> None:
    """What `Request.db` hands the transaction (`request.headers` in SQL)."""
    http, _ = _pair(body, "application/json" if body else None)
    environ = http.environ
    environ["HTTP_X_ODD_\xdf\xb5"] = "latin-1 name"  # title() then lower() is not lower()
    environ["CONTENT_TYPE"] = environ.get("CONTENT_TYPE", "")
    for _ in range(2):  # the second time from the cached names
        assert _environ_headers(environ) == _safe_headers(http.headers)
        assert list(_environ_headers(environ)) == list(_safe_headers(http.headers))
    assert "authorization" not in _environ_headers(environ)
    assert "cookie" not in _environ_headers(environ)
