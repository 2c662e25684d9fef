"""`Telemetry`: the one object the runtime calls when telemetry is on.

It holds the tracer, the meter's instruments and the providers (so a test can give in-memory
ones); each hook is a thin method over the module that does that job.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, TypeVar

from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider

from shared.telemetry import clients, outbox, server
from shared.telemetry.instruments import Instruments
from shared.tracecontext import TraceIds

if TYPE_CHECKING:
    import urllib.request

    import flask

    from shared.db import Row, Transaction
    from shared.settings import Settings

T = TypeVar("T")
SCOPE = "fnkit"


class Telemetry:
    """Traces and metrics for one process."""

    def __init__(self, tracer_provider: TracerProvider, meter_provider: MeterProvider) -> None:
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self.tracer = tracer_provider.get_tracer(SCOPE)
        self.metrics = Instruments(meter_provider.get_meter(SCOPE))

    # ---- spans ---------------------------------------------------------------------------

    def serve(
        self, function: str, http: flask.Request, handle: Callable[[flask.Request], Any]
    ) -> Any:
        """One request under its SERVER span (see `shared.telemetry.server`)."""
        return server.serve(self, function, http, handle)

    def db_call(self, tx: Transaction, sql: Any, params: Any, run: Callable[[Any, Any], T]) -> T:
        """One Postgres round trip under a CLIENT span."""
        return clients.db_call(self, tx, sql, params, run)

    def db_commit(self, tx: Transaction, commit: Callable[[Any], None], conn: Any) -> None:
        """The COMMIT round trip (with what rides on it) under a CLIENT span."""
        clients.db_call(self, tx, "COMMIT", None, lambda _sql, _params: commit(conn))

    def upstash_call(
        self, post: Callable[[str, dict[str, str], Any], T], url: str, headers: Any, body: Any
    ) -> T:
        """One Upstash REST call under a CLIENT span."""
        return clients.upstash_call(self, post, url, headers, body)

    def webhook_call(
        self, request: urllib.request.Request, send: Callable[[urllib.request.Request], int]
    ) -> int:
        """An outbound webhook under a CLIENT span, sending `traceparent`."""
        return clients.webhook_call(self, request, send)

    def deliver(
        self, settings: Settings, row: Row, deliver: Callable[[Settings, Row], None]
    ) -> None:
        """One outbox delivery, linked to the request that emitted it."""
        outbox.deliver(self, settings, row, deliver)

    def internal(self, name: str) -> AbstractContextManager[Any]:
        """An INTERNAL span around some work (the dispatcher's run), current while it runs."""
        return self.tracer.start_as_current_span(name)

    # ---- metrics -------------------------------------------------------------------------

    def rate_limit(self, function: str, policy: str, decision: str) -> None:
        self.metrics.rate_limit.add(
            1,
            {"fnkit.function": function, "fnkit.rate_limit.policy": policy,
             "fnkit.rate_limit.decision": decision},
        )  # fmt: skip

    def idempotent_replay(self, function: str, route: str) -> None:
        self.metrics.idempotent_replays.add(1, {"fnkit.function": function, "fnkit.route": route})

    def cache_lookup(self, function: str, namespace: str, hit: bool) -> None:
        self.metrics.cache_lookups.add(
            1,
            {"fnkit.function": function, "fnkit.cache.namespace": namespace,
             "fnkit.cache.hit": hit},
        )  # fmt: skip

    def dead_letters(self, count: int) -> None:
        self.metrics.dead_letters.add(count)

    # ---- context -------------------------------------------------------------------------

    def current_ids(self) -> TraceIds | None:
        """The current span's ids, for the log lines."""
        context = trace.get_current_span().get_span_context()
        if not context.is_valid:
            return None
        return TraceIds(
            f"{context.trace_id:032x}", f"{context.span_id:016x}", context.trace_flags.sampled
        )

    def traceparent(self) -> str | None:
        """The current span as a W3C `traceparent`, or None outside any span."""
        context = trace.get_current_span().get_span_context()
        if not context.is_valid:
            return None
        return f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"

    def flush(self) -> None:
        """Export what is buffered now (tests, and the end of a short-lived process)."""
        self.tracer_provider.force_flush()
        self.meter_provider.force_flush()

    def shutdown(self) -> None:
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()
