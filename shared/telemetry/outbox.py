"""The outbox's delivery span, linked to the request that emitted the message.

A message is delivered after its request ended (in a thread right after the response, or by the
scheduled run a minute later), so the delivery cannot be that request's child. The message
carries the emitting span's `traceparent` (`private.outbox.trace_context`); the delivery span
(`process {topic}`, CONSUMER) links to it, so a backend shows the request that caused a
delivery and the deliveries a request caused. The span's children are the Upstash PUBLISH or
the webhook POST (which sends its own `traceparent` on).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from opentelemetry.trace import Link, SpanContext, SpanKind, TraceFlags

from shared.tracecontext import parse

if TYPE_CHECKING:
    from shared.db import Row
    from shared.settings import Settings
    from shared.telemetry.core import Telemetry


def emitted_by(row: Row) -> list[Link]:
    """A link to the emitting request's span, when the message carries one."""
    ids = parse(row.get("trace_context"), None)
    if ids is None or ids.span_id is None:
        return []
    flags = TraceFlags(TraceFlags.SAMPLED if ids.sampled else TraceFlags.DEFAULT)
    context = SpanContext(int(ids.trace_id, 16), int(ids.span_id, 16), True, flags)
    return [Link(context, {"fnkit.link": "emitted_by"})]


def deliver(
    tel: Telemetry, settings: Settings, row: Row, send: Callable[[Settings, Row], None]
) -> None:
    topic = row["topic"]
    attributes: dict[str, Any] = {
        "messaging.system": "fnkit.outbox",
        "messaging.operation.type": "process",
        "messaging.operation.name": "deliver",
        "messaging.destination.name": topic,
        "messaging.message.id": str(row["message_id"]),
        "fnkit.outbox.sink": row["sink"],
        "fnkit.outbox.attempt": row["attempts"],
    }
    with tel.tracer.start_as_current_span(
        f"process {topic}", kind=SpanKind.CONSUMER, links=emitted_by(row), attributes=attributes
    ):
        send(settings, row)
    created: datetime | None = row.get("created_at")
    if created is not None:
        lag = time.time() - created.astimezone(UTC).timestamp()
        tel.metrics.outbox_lag.record(max(0.0, lag), {"fnkit.outbox.sink": row["sink"]})
