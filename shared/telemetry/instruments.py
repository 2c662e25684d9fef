"""The runtime's metrics: the semantic conventions' durations and the runtime's own counters.

Durations are in seconds with the conventions' advisory buckets, so Managed Service for
Prometheus (or any OTLP backend) gets the histograms the conventions' dashboards expect. The
runtime's own counters are named under `fnkit.`: they count what only this runtime knows
(rate-limit decisions, idempotent replays, cache hits, the outbox's lag and dead letters).
"""

from __future__ import annotations

from opentelemetry.metrics import Meter

# http.server.request.duration's advisory buckets (semantic conventions, stable HTTP metrics).
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
# db.client.operation.duration's advisory buckets (semantic conventions, database metrics).
DB_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0)
# From an emit to its delivery: the response's own thread (ms), the next scheduled run
# (a minute), retries with backoff (up to an hour).
LAG_BUCKETS = (0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0)


class Instruments:
    """Every instrument, created once per process."""

    def __init__(self, meter: Meter) -> None:
        self.http_server_duration = meter.create_histogram(
            "http.server.request.duration",
            unit="s",
            description="Duration of HTTP server requests.",
            explicit_bucket_boundaries_advisory=HTTP_BUCKETS,
        )
        self.db_duration = meter.create_histogram(
            "db.client.operation.duration",
            unit="s",
            description="Duration of database client operations (Postgres and Upstash).",
            explicit_bucket_boundaries_advisory=DB_BUCKETS,
        )
        self.rate_limit = meter.create_counter(
            "fnkit.rate_limit.decisions",
            unit="{decision}",
            description="Rate-limit checks by policy and outcome.",
        )
        self.idempotent_replays = meter.create_counter(
            "fnkit.idempotency.replays",
            unit="{request}",
            description="Requests answered from a stored outcome (Idempotent-Replayed).",
        )
        self.cache_lookups = meter.create_counter(
            "fnkit.cache.lookups",
            unit="{lookup}",
            description="Read-through cache lookups by namespace and hit.",
        )
        self.outbox_lag = meter.create_histogram(
            "fnkit.outbox.lag",
            unit="s",
            description="From a message's commit to its delivery.",
            explicit_bucket_boundaries_advisory=LAG_BUCKETS,
        )
        self.dead_letters = meter.create_counter(
            "fnkit.outbox.dead_letters",
            unit="{message}",
            description="Outbox messages moved to the dead letter.",
        )
