"""Trace context without OpenTelemetry: the switch, and the one rule for a request's parent.

Telemetry is opt-in by the standard variables: on when `OTEL_EXPORTER_OTLP_ENDPOINT` (or the
traces or metrics endpoint of its own) is set, or when `FNKIT_TRACE_CONSOLE` asks `make dev` to
print each request's spans; always off with `OTEL_SDK_DISABLED=true`. `activate()` decides once,
when a function is created; only when it is on does it import `shared.telemetry` (and with it
the OpenTelemetry SDK). Everywhere else the runtime asks `tracecontext.active is not None`: the
one check an off request (and each Postgres or Upstash round trip) pays.

`parse()` is the rule for the caller's trace context, used by the server span for its parent and
by the logs for their trace fields whether telemetry is on or off: a valid W3C `traceparent`
wins; without one, Cloud Run's `X-Cloud-Trace-Context` (`TRACE/SPAN;o=1`, the span in decimal).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from shared.telemetry import Telemetry

# The OpenTelemetry hooks when telemetry is on (set by `activate`), else None.
active: Telemetry | None = None

ENDPOINTS = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
)
CONSOLE = "FNKIT_TRACE_CONSOLE"
# Where `App.handle` leaves the request's `Request` in the WSGI environ (the span reads its route).
REQUEST_KEY = "fnkit.request"
_TRUE = {"1", "true", "yes", "on"}
# The two headers are checked with slices and sets, not regexes: on Cloud Run every request
# carries both, so compiling the patterns (~0.3 ms) fell to each instance's first request.
# The rules are these patterns' (tests/unit/test_tracecontext.py holds the code to them):
#   traceparent            ([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?\Z
#   X-Cloud-Trace-Context  ([0-9a-fA-F]{32})(?:/([0-9]{1,20}))?(?:;o=([0-9]+))?\Z
_LOWER_HEX = frozenset("0123456789abcdef")
_HEX = frozenset("0123456789abcdefABCDEF")
_DIGITS = frozenset("0123456789")
_ZERO_TRACE, _ZERO_SPAN = "0" * 32, "0" * 16


class TraceIds(NamedTuple):
    """A trace context as the logs and the propagator need it (lowercase hex)."""

    trace_id: str  # 32 hex digits
    span_id: str | None  # 16 hex digits (None: X-Cloud-Trace-Context without a span)
    sampled: bool
    w3c: bool = False  # from `traceparent` (then `tracestate` goes with it)


def wanted(env: Mapping[str, str]) -> bool:
    """Do the standard variables ask for telemetry?"""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if env.get(CONSOLE, "").strip().lower() in _TRUE:
        return True
    return any(env.get(name, "").strip() for name in ENDPOINTS)


def activate(env: Mapping[str, str] | None = None) -> Telemetry | None:
    """Turn telemetry on for this process if the environment asks for it (once)."""
    global active
    if active is None and wanted(os.environ if env is None else env):
        from shared.telemetry import from_environment

        active = from_environment(os.environ if env is None else env)
    return active


def parse(traceparent: str | None, cloud: str | None) -> TraceIds | None:
    """The caller's trace context: `traceparent` when valid, else `X-Cloud-Trace-Context`."""
    if traceparent:
        found = _traceparent(traceparent.strip())
        if found is not None:
            version, trace_id, span_id, flags, rest = found
            if (
                version != "ff"
                and not (version == "00" and rest)
                and trace_id != _ZERO_TRACE
                and span_id != _ZERO_SPAN
            ):
                return TraceIds(trace_id, span_id, bool(int(flags, 16) & 1), True)
    if cloud:
        cloud_found = _cloud(cloud.strip())
        if cloud_found is not None:
            trace_id, span, options = cloud_found
            trace_id = trace_id.lower()
            if trace_id == _ZERO_TRACE:
                return None
            span_hex = f"{int(span):016x}" if span and 0 < int(span) < 2**64 else None
            return TraceIds(trace_id, span_hex, options == "1")
    return None


def _traceparent(value: str) -> tuple[str, str, str, str, str] | None:
    """version, trace id, span id, flags and the rest (from its `-`), or None."""
    head, rest = value[:55], value[55:]
    if len(head) != 55 or head[2] + head[35] + head[52] != "---" or head.count("-") != 3:
        return None
    if not _LOWER_HEX.issuperset(head.replace("-", "")):
        return None
    if rest and (rest[0] != "-" or "\n" in rest):  # the pattern's `.` is anything but \n
        return None
    return head[:2], head[3:35], head[36:52], head[53:], rest


def _cloud(value: str) -> tuple[str, str | None, str | None] | None:
    """`TRACE[/SPAN][;o=OPTIONS]`: the trace id, the span and the options as written, or None."""
    trace_id, rest = value[:32], value[32:]
    if len(trace_id) != 32 or not _HEX.issuperset(trace_id):
        return None
    span = options = None
    if rest[:1] == "/":
        span, semicolon, after = rest[1:].partition(";")
        rest = semicolon + after
        if not (0 < len(span) <= 20 and _DIGITS.issuperset(span)):
            return None
    if rest:
        options = rest[3:]
        if rest[:3] != ";o=" or not options or not _DIGITS.issuperset(options):
            return None
    return trace_id, span, options


def from_environ(environ: Mapping[str, object]) -> TraceIds | None:
    """`parse` on a WSGI environ's headers."""
    traceparent, cloud = environ.get("HTTP_TRACEPARENT"), environ.get("HTTP_X_CLOUD_TRACE_CONTEXT")
    return parse(
        traceparent if isinstance(traceparent, str) else None,
        cloud if isinstance(cloud, str) else None,
    )


def current_traceparent() -> str | None:
    """The current span as a `traceparent` (what the outbox stores with a message), or None."""
    return active.traceparent() if active is not None else None
