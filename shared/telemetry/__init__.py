"""OpenTelemetry traces and metrics for the runtime, imported only when telemetry is on.

`shared.tracecontext.activate()` imports this package when the standard `OTEL_*` variables ask
for telemetry; nothing here is imported otherwise (a test proves it in a fresh process). The
runtime calls one object, `Telemetry`, from the few places that do the work:

* `App.handle`: the SERVER span of each request and `http.server.request.duration`
  (`shared.telemetry.server`);
* `Transaction` and the Upstash transport: a CLIENT span and `db.client.operation.duration` per
  round trip, and the dispatcher's webhook POST (`shared.telemetry.clients`);
* the outbox: the emitting span's `traceparent` stored with each message, the delivery span
  linked to it (`shared.telemetry.outbox`);
* counters for rate-limit decisions, idempotent replays, cache hits and dead letters
  (`shared.telemetry.instruments`).

Spans come from the runtime's own layers, not from the contrib instrumentations: Flask's names
every functions-framework span `GET /<path:path>`, psycopg's misses the statements the runtime
sends as one simple-query message and mis-times pipelined ones.
"""

from __future__ import annotations

from shared.telemetry.core import Telemetry
from shared.telemetry.setup import from_environment

__all__ = ["Telemetry", "from_environment"]
