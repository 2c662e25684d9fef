"""Structured JSON logs, one line per event, in the shape Cloud Logging reads.

`severity` and `message` are Cloud Logging's fields. Every line written while a request is
served carries its trace: `logging.googleapis.com/trace`, `.../spanId` and `.../trace_sampled`,
so logs group under the trace and sit beside its spans in the console. With telemetry on they
are the current span's; with it off they come from the request's headers by the rule the server
span uses for its parent (`shared.tracecontext.parse`: `traceparent`, else
`X-Cloud-Trace-Context`), so the lines still join the caller's trace.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import threading
import time
import traceback
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TextIO

import orjson

from shared import tracecontext
from shared.envelope import dumps

if TYPE_CHECKING:
    from shared.errors import ApiError
    from shared.request import Request

_lock = threading.Lock()
_stream: TextIO = sys.stdout


def set_stream(stream: TextIO) -> None:
    """Redirect log lines (tests capture them)."""
    global _stream
    _stream = stream


_PROJECT = os.environ.get("GOOGLE_CLOUD_PROJECT")


def trace_field(header_cloud: str | None, header_w3c: str | None) -> str | None:
    """Cloud Logging's trace reference from `traceparent`, else `X-Cloud-Trace-Context`."""
    ids = tracecontext.parse(header_w3c, header_cloud)
    return None if ids is None else _trace_name(ids.trace_id)


def _trace_name(trace_id: str) -> str:
    return f"projects/{_PROJECT}/traces/{trace_id}" if _PROJECT else trace_id


def _add_trace(record: dict[str, Any], environ: Mapping[str, Any] | None) -> None:
    """The trace fields: the current span's (telemetry on), else the request's headers."""
    ids = None
    telemetry = tracecontext.active
    if telemetry is not None:
        ids = telemetry.current_ids()
    if ids is None:
        if environ is None:
            environ = _request_environ()
        if environ is not None:
            ids = tracecontext.from_environ(environ)
    if ids is not None:
        record["logging.googleapis.com/trace"] = _trace_name(ids.trace_id)
        if ids.span_id is not None:
            record["logging.googleapis.com/spanId"] = ids.span_id
        record["logging.googleapis.com/trace_sampled"] = ids.sampled


def _request_environ() -> Mapping[str, Any] | None:
    """The WSGI environ of the request being served on this thread, if any (Flask's)."""
    flask = sys.modules.get("flask")
    if flask is None or not flask.has_request_context():
        return None
    environ: Mapping[str, Any] = flask.request.environ
    return environ


def log(severity: str, message: str, **fields: Any) -> None:
    """Write one JSON line; fields with value None are left out."""
    record: dict[str, Any] = {
        "severity": severity,
        "message": message,
        "time": dt.datetime.now(dt.UTC),  # orjson writes RFC 3339, as Cloud Logging reads
    }
    for key, value in fields.items():
        if value is not None:
            record[key] = value
    _write(record)


def _write(record: dict[str, Any], environ: Mapping[str, Any] | None = None) -> None:
    if "trace" in record:
        record["logging.googleapis.com/trace"] = record.pop("trace")
    else:
        _add_trace(record, environ)
    try:
        line = orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE).decode()
    except TypeError:  # a value orjson does not know (the envelope's encoder does)
        line = dumps(record) + "\n"
    with _lock:
        _stream.write(line)
        _stream.flush()


def log_request(
    function: str,
    request: Request,
    status: int,
    error: ApiError | None,
    started: float,
    environ: Mapping[str, Any],
) -> None:
    """The one line every request writes, whatever happened to it (built directly: it is
    on every request's path)."""
    route, claims = request.route, request.claims
    record: dict[str, Any] = {
        "severity": "ERROR" if status >= 500 else "WARNING" if status >= 400 else "INFO",
        "message": f"{request.method} {request.path} {status}",
        "time": dt.datetime.now(dt.UTC),
        "request_id": request.request_id,
        "function": function,
        "method": request.method,
        "path": request.path,
        "status": status,
        "latency_ms": round((time.perf_counter() - started) * 1000, 2),
    }
    if route is not None:
        record["route"] = route.path
    if claims is not None and claims.sub:
        record["user"] = claims.sub
    if error is not None:
        record["error"] = error.code
    _write(record, environ)


def log_exception(function: str, request: Request, exc: BaseException, error: ApiError) -> None:
    """A 5xx's cause, for the operator: the stack only for INTERNAL (an unknown failure)."""
    from shared.error_map import loggable

    log(
        "ERROR",
        f"{type(exc).__name__} while serving {request.method} {request.path}",
        request_id=request.request_id,
        function=function,
        error=error.code,
        exception=loggable(exc),
        stack="".join(traceback.format_tb(exc.__traceback__)) if error.code == "INTERNAL" else None,
    )
