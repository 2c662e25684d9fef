"""The SERVER span of one request, and `http.server.request.duration`.

Named `{method} {route}` by the route template (`POST /tasks/bulk`, `GET /tasks/{task_id}`:
the function's name, then the route's path), `{method}` alone when no route matched, never by
the URL. The parent comes from `shared.tracecontext.parse`, the rule the log lines use too:
`traceparent` (with `tracestate`), else Cloud Run's `X-Cloud-Trace-Context`. Only a 5xx is an
error (`error.type` is its status code, or the exception's class when none was sent).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry import context as context_api
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags, TraceState
from opentelemetry.trace.status import Status, StatusCode

from shared.tracecontext import REQUEST_KEY, from_environ

if TYPE_CHECKING:
    import flask

    from shared.telemetry.core import Telemetry

_KNOWN_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
)


def parent_context(environ: Mapping[str, Any]) -> Context | None:
    """The caller's span as a remote parent, or None (the request starts a trace)."""
    ids = from_environ(environ)
    if ids is None or ids.span_id is None:
        return None
    state = None
    tracestate = environ.get("HTTP_TRACESTATE")
    if ids.w3c and tracestate:
        state = TraceState.from_header([tracestate])
    remote = SpanContext(
        int(ids.trace_id, 16),
        int(ids.span_id, 16),
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED if ids.sampled else TraceFlags.DEFAULT),
        trace_state=state,
    )
    return trace.set_span_in_context(NonRecordingSpan(remote), Context())


def http_route(function: str, request: Any) -> str | None:
    """The matched route's template as the caller addresses it, or None."""
    route = getattr(request, "route", None)
    if route is None:
        return None
    return f"/{function}" if route.path == "/" else f"/{function}{route.path}"


def serve(
    tel: Telemetry, function: str, http: flask.Request, handle: Callable[[flask.Request], Any]
) -> Any:
    started = time.perf_counter()
    environ = http.environ
    method = http.method.upper()
    if method not in _KNOWN_METHODS:
        method = "_OTHER"
    # One dict at the start: the SDK cleans attributes one call at a time, under a lock.
    attributes: dict[str, Any] = {
        "http.request.method": method,
        "url.scheme": environ.get("wsgi.url_scheme", "http"),
        "url.path": http.path,
    }
    host, sep, port = str(environ.get("HTTP_HOST") or environ.get("SERVER_NAME", "")).rpartition(
        ":"
    )
    if sep and port.isdigit():
        attributes["server.address"], attributes["server.port"] = host, int(port)
    elif host or port:
        attributes["server.address"] = host + sep + port
    agent = environ.get("HTTP_USER_AGENT")
    if agent:
        attributes["user_agent.original"] = agent
    span = tel.tracer.start_span(
        method, context=parent_context(environ), kind=SpanKind.SERVER, attributes=attributes
    )
    recording = span.is_recording()
    token = context_api.attach(trace.set_span_in_context(span))
    status: int | None = None
    error_type: str | None = None
    try:
        response = handle(http)
        status = response.status_code
        return response
    except BaseException as exc:
        error_type = type(exc).__qualname__
        if recording:
            span.record_exception(exc)
        raise
    finally:
        context_api.detach(token)
        route = http_route(function, environ.get(REQUEST_KEY))
        # What only the end knows; the span has the method and scheme already (each attribute
        # set on a span is checked again, under its lock), the metric gets them below.
        ending: dict[str, Any] = {}
        if route is not None:
            ending["http.route"] = route
        if status is not None:
            ending["http.response.status_code"] = status
            if status >= 500:
                error_type = str(status)
        if error_type is not None:
            ending["error.type"] = error_type
        if recording:
            span.update_name(f"{method} {route}" if route is not None else method)
            span.set_attributes(ending)
            if error_type is not None:
                span.set_status(Status(StatusCode.ERROR))
        span.end()
        ending["http.request.method"], ending["url.scheme"] = method, attributes["url.scheme"]
        tel.metrics.http_server_duration.record(time.perf_counter() - started, ending)
