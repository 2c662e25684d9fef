"""Telemetry from the standard OpenTelemetry variables.

* Export over OTLP/HTTP (protobuf): traces to `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, or
  `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`; metrics likewise (`/v1/metrics`). Either may be
  set alone. `OTEL_TRACES_EXPORTER=none` / `OTEL_METRICS_EXPORTER=none` turn one off. The
  exporters read their own variables too (headers, timeout, compression).
* Sampling by `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG`, parent-based (always on
  under no parent) by default: the SDK's own reading of them.
* `service.name`: `OTEL_SERVICE_NAME`, else Cloud Run's `K_SERVICE`, else `fnkit`;
  `OTEL_RESOURCE_ATTRIBUTES` adds to the resource.
* `FNKIT_TRACE_CONSOLE=1`: each request's span tree on stderr (`make dev`).

Spans leave in batches (`OTEL_BSP_*`; `shared.telemetry.batch`), metrics every
`OTEL_METRIC_EXPORT_INTERVAL` ms (60 s by default); both flush when the process exits.
"""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from shared.telemetry.core import Telemetry
from shared.tracecontext import CONSOLE

_TRUE = {"1", "true", "yes", "on"}


def endpoint(env: Mapping[str, str], signal: str) -> str | None:
    """Where a signal (`traces`, `metrics`) goes, or None when it is not exported."""
    if env.get(f"OTEL_{signal.upper()}_EXPORTER", "").strip().lower() == "none":
        return None
    own = env.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT", "").strip()
    if own:
        return own
    base = env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    return f"{base.rstrip('/')}/v1/{signal}" if base else None


def resource(env: Mapping[str, str]) -> Resource:
    attributes: dict[str, str] = {}
    if not env.get("OTEL_SERVICE_NAME", "").strip():
        attributes["service.name"] = env.get("K_SERVICE", "").strip() or "fnkit"
    return Resource.create(attributes)


def from_environment(env: Mapping[str, str]) -> Telemetry:
    """Providers and exporters as the environment asks (see the module's docstring)."""
    found = resource(env)
    tracer_provider = TracerProvider(resource=found)
    traces = endpoint(env, "traces")
    if traces is not None:
        from shared.telemetry.batch import EncodingBatchProcessor
        from shared.telemetry.otlp import LeanSpanExporter  # the stock one, leaner encoding

        tracer_provider.add_span_processor(EncodingBatchProcessor(LeanSpanExporter(traces)))
    if env.get(CONSOLE, "").strip().lower() in _TRUE:
        from shared.telemetry.console import ConsoleTree

        tracer_provider.add_span_processor(ConsoleTree())
    readers: list[MetricReader] = []
    metrics = endpoint(env, "metrics")
    if metrics is not None:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

        readers.append(PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=metrics)))
    meter_provider = MeterProvider(resource=found, metric_readers=readers)
    return Telemetry(tracer_provider, meter_provider)
