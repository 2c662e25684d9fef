"""CLIENT spans for the runtime's own round trips: Postgres, Upstash, outbound webhooks.

One span per network round trip, timed around it, so a statement pipelined with BEGIN and the
impersonation is one span as long as the exchange it rode on. `db.query.text` is the statement
as the code wrote it, with its placeholders (`%s`), never the values: the runtime sends values
as parameters, or inlines them only on the wire (`Transaction`'s simple-query reads), after this
text was taken. Upstash spans name the command (`EVALSHA`, `GET`, `PIPELINE`) and carry no key
or argument.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from opentelemetry.trace import Span, SpanKind, Status, StatusCode

if TYPE_CHECKING:
    import urllib.request

    from shared.db import Transaction
    from shared.telemetry.core import Telemetry

T = TypeVar("T")
MAX_QUERY_TEXT = 4096


@functools.lru_cache(maxsize=32)
def _server(url: str, default_port: int) -> dict[str, Any]:
    """`server.address` and `server.port` of a URL (no credentials), and the database name."""
    parts = urlsplit(url)
    found: dict[str, Any] = {}
    if parts.hostname:
        found["server.address"] = parts.hostname
        found["server.port"] = parts.port or default_port
    name = parts.path.lstrip("/")
    if name and default_port == 5432:
        found["db.namespace"] = name
    return found


def query_text(sql: Any, conn: Any) -> str:
    """The statement with its placeholders (composed SQL rendered, no parameter bound)."""
    text = sql if isinstance(sql, str) else sql.as_string(conn)
    return text if len(text) <= MAX_QUERY_TEXT else text[:MAX_QUERY_TEXT]


def operation_name(text: str) -> str:
    """The statement's first keyword (SELECT, INSERT, WITH, COMMIT ...)."""
    word = text.lstrip(" \t\r\n(").split(None, 1)
    return word[0].upper() if word else "QUERY"


def db_call(
    tel: Telemetry, tx: Transaction, sql: Any, params: Any, run: Callable[[Any, Any], T]
) -> T:
    text = query_text(sql, tx._conn)
    operation = operation_name(text)
    metric: dict[str, Any] = {"db.system.name": "postgresql", "db.operation.name": operation}
    attributes = {**metric, "db.query.text": text, **_server(tx._settings.database_url, 5432)}
    started = time.perf_counter()
    # Not made current: nothing runs under a round trip, and attaching costs every call.
    span = tel.tracer.start_span(operation, kind=SpanKind.CLIENT, attributes=attributes)
    try:
        return run(sql, params)
    except Exception as exc:
        code = getattr(exc, "sqlstate", None)
        metric["error.type"] = code or type(exc).__qualname__
        _failed(span, exc, {"db.response.status_code": code} if code else {}, metric)
        raise
    finally:
        span.end()
        tel.metrics.db_duration.record(time.perf_counter() - started, metric)


def _failed(span: Span, exc: Exception, extra: dict[str, Any], metric: dict[str, Any]) -> None:
    if span.is_recording():
        span.record_exception(exc)
        span.set_attributes({**extra, "error.type": metric["error.type"]})
        span.set_status(Status(StatusCode.ERROR, f"{type(exc).__qualname__}"))


def _command(url: str, body: Any) -> tuple[str, int | None]:
    if isinstance(body, list) and body and isinstance(body[0], str):
        return body[0].upper(), None
    batch = len(body) if isinstance(body, list) else None
    return ("MULTI" if url.rstrip("/").endswith("/multi-exec") else "PIPELINE"), batch


def upstash_call(
    tel: Telemetry,
    post: Callable[[str, dict[str, str], Any], T],
    url: str,
    headers: Any,
    body: Any,
) -> T:
    operation, batch = _command(url, body)
    metric: dict[str, Any] = {"db.system.name": "redis", "db.operation.name": operation}
    attributes = {**metric, **_server(url, 443 if url.startswith("https") else 80)}
    if batch is not None:
        attributes["db.operation.batch.size"] = batch
    started = time.perf_counter()
    span = tel.tracer.start_span(operation, kind=SpanKind.CLIENT, attributes=attributes)
    try:
        reply = post(url, headers, body)
    except Exception as exc:
        metric["error.type"] = type(exc).__qualname__
        _failed(span, exc, {}, metric)
        span.end()
        raise
    finally:
        tel.metrics.db_duration.record(time.perf_counter() - started, metric)
    status = getattr(reply, "status_code", None)
    if isinstance(status, int):
        span.set_attribute("http.response.status_code", status)
    span.end()
    return reply


def webhook_call(
    tel: Telemetry,
    request: urllib.request.Request,
    send: Callable[[urllib.request.Request], int],
) -> int:
    parts = urlsplit(request.full_url)
    attributes: dict[str, Any] = {
        "http.request.method": request.get_method(),
        # Scheme, host and path: a query string may hold a receiver's token.
        "url.full": f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}",
        **_server(request.full_url, 443 if parts.scheme == "https" else 80),
    }
    with tel.tracer.start_as_current_span(
        request.get_method(), kind=SpanKind.CLIENT, attributes=attributes
    ) as span:
        traceparent = tel.traceparent()
        if traceparent is not None:
            request.add_header("traceparent", traceparent)
            state = span.get_span_context().trace_state
            if state:
                request.add_header("tracestate", state.to_header())
        try:
            status = send(request)
        except Exception as exc:
            refused = getattr(exc, "status", None)
            if isinstance(refused, int):
                span.set_attribute("http.response.status_code", refused)
            span.set_attribute("error.type", str(refused or type(exc).__qualname__))
            raise
        span.set_attribute("http.response.status_code", status)
        return status
