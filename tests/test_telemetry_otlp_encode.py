"""The lean span encoder (shared/telemetry/otlp.py) against the stock OTLP exporter.

Spans are recorded by the real SDK (every field the encoder writes: remote and local parents,
`tracestate`, kinds, text/bool/int/float/sequence attributes, dropped attributes, events from
`record_exception`, links with attributes, error status with a description, two resources and
scopes with versions and schema URLs); the stock encoder's `ExportTraceServiceRequest` and the
lean one, decoded with opentelemetry-proto, must be the same message. Then both exporters post
to a receiver on loopback: the same bodies (gzip too), the same headers, the same verdicts.
"""

from __future__ import annotations

import gzip
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
    set_span_in_context,
)
from werkzeug.serving import make_server
from werkzeug.wrappers import Request as WRequest
from werkzeug.wrappers import Response as WResponse

from shared.telemetry.batch import EncodingBatchProcessor
from shared.telemetry.otlp import Encoder, LeanSpanExporter, varint

REMOTE = SpanContext(
    0x4BF92F3577B34DA6A3CE929D0E0E4736,
    0x00F067AA0BA902B7,
    is_remote=True,
    trace_flags=TraceFlags(TraceFlags.SAMPLED),
    trace_state=TraceState([("rojo", "00f067aa0ba902b7"), ("congo", "t61rcWkgMzE")]),
)


def _spans() -> list[ReadableSpan]:
    memory = InMemorySpanExporter()
    for service, limits in (("tasks", SpanLimits(max_span_attributes=12)), ("hooks", None)):
        resource = Resource.create({"service.name": service, "fnkit.count": 3}, "https://s/1")
        provider = TracerProvider(resource=resource, span_limits=limits, shutdown_on_exit=False)
        provider.add_span_processor(SimpleSpanProcessor(memory))
        tracer = provider.get_tracer("fnkit", "1.2.3", schema_url="https://opentelemetry.io/s")
        plain = provider.get_tracer("other")
        parent = set_span_in_context(NonRecordingSpan(REMOTE))
        server = tracer.start_span(
            "GET /tasks/{id}",
            context=parent,
            kind=SpanKind.SERVER,
            attributes={"http.request.method": "GET", "server.port": 8080, "url.path": "/t/é"},
        )
        server.set_attributes(
            {"http.response.status_code": 503, "fnkit.hit": False, "fnkit.ratio": 0.25,
             "fnkit.big": -(2**40), "fnkit.tags": ("a", "b"), "fnkit.flags": (True, False),
             "fnkit.ints": (1, -2), "fnkit.floats": (1.5,), "fnkit.empty": "", "fnkit.zero": 0}
        )  # fmt: skip
        server.record_exception(ValueError("no"), attributes={"fnkit.extra": 1})
        server.add_event("")
        server.set_status(Status(StatusCode.ERROR, "ValueError"))
        child = set_span_in_context(server)
        for n in range(3):
            client = tracer.start_span("SELECT", context=child, kind=SpanKind.CLIENT)
            client.set_attribute("db.query.text", "select 1 where a = %s")
            client.end()
        linked = Link(REMOTE, {"fnkit.link": "emitted_by"})
        local = Link(server.get_span_context())
        consumer = plain.start_span("process t", kind=SpanKind.CONSUMER, links=[linked, local])
        consumer.set_status(Status(StatusCode.OK))
        consumer.end()
        tracer.start_span("internal").end()
        server.end()
    return list(memory.get_finished_spans())


def test_the_lean_request_is_the_stock_request() -> None:
    spans = _spans()
    assert any(span.dropped_attributes for span in spans)
    stock = encode_spans(spans)
    lean = ExportTraceServiceRequest.FromString(Encoder().request(spans))
    assert lean == stock
    assert len(lean.resource_spans) == 2 and len(lean.resource_spans[0].scope_spans) == 2
    encoder = Encoder()  # its caches hold across batches
    for batch in (spans[:3], spans, spans[5:]):
        assert ExportTraceServiceRequest.FromString(encoder.request(batch)) == encode_spans(batch)
    assert Encoder().request([]) == encode_spans([]).SerializeToString() == b""


def test_varints_as_protobuf_writes_them() -> None:
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue

    for n in (0, 1, 127, 128, 300, 2**31, 2**63 - 1, -1, -(2**63)):
        assert b"\x18" + varint(n) == AnyValue(int_value=n).SerializeToString()
    for wrong in (2**63, -(2**63) - 1):
        with pytest.raises(ValueError):
            varint(wrong)
        with pytest.raises(ValueError):
            AnyValue(int_value=wrong)


class Receiver:
    """Keeps each request's headers and (decompressed) body; answers with `status`."""

    def __init__(self) -> None:
        self.status = 200
        self.bodies: list[tuple[dict[str, str], bytes]] = []
        self.server = make_server("127.0.0.1", 0, self.wsgi, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}/v1/traces"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = WRequest(environ)
        body = request.get_data()
        if request.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        kept = ("Content-Type", "Content-Encoding", "X-Team")
        self.bodies.append(({k: request.headers.get(k, "") for k in kept}, body))
        return WResponse(b"", status=self.status)(environ, start_response)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.server.shutdown()


@pytest.mark.parametrize("compression", [Compression.NoCompression, Compression.Gzip])
def test_the_lean_exporter_posts_what_the_stock_one_posts(
    receiver: Receiver, compression: Compression
) -> None:
    spans = _spans()
    options: dict[str, Any] = {"headers": {"X-Team": "a"}, "compression": compression}
    lean = LeanSpanExporter(endpoint=receiver.url, **options)
    stock = OTLPSpanExporter(endpoint=receiver.url, **options)
    assert lean.export(spans) == stock.export(spans) == SpanExportResult.SUCCESS
    (lean_headers, lean_body), (stock_headers, stock_body) = receiver.bodies
    assert lean_headers == stock_headers
    assert lean_headers["Content-Type"] == "application/x-protobuf"
    decoded = ExportTraceServiceRequest.FromString(lean_body)
    assert decoded == ExportTraceServiceRequest.FromString(stock_body) == encode_spans(spans)
    receiver.status = 400  # not retryable: both give up at once
    assert lean.export(spans) == stock.export(spans) == SpanExportResult.FAILURE
    lean.shutdown()
    stock.shutdown()
    assert lean.export(spans) == stock.export(spans) == SpanExportResult.FAILURE


def test_the_batch_processor_posts_the_sampled_spans(receiver: Receiver) -> None:
    """Spans encoded as they end, posted in batches of `OTEL_BSP_MAX_EXPORT_BATCH_SIZE` and on
    flush: what arrives is the stock request for the spans the SDK finished, sampled only."""
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    memory = InMemorySpanExporter()
    os.environ["OTEL_BSP_MAX_EXPORT_BATCH_SIZE"] = "4"
    try:
        processor = EncodingBatchProcessor(LeanSpanExporter(receiver.url))
    finally:
        del os.environ["OTEL_BSP_MAX_EXPORT_BATCH_SIZE"]
    provider = TracerProvider(sampler=ParentBased(TraceIdRatioBased(0.5)), shutdown_on_exit=False)
    provider.add_span_processor(processor)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("fnkit")
    for n in range(40):
        with tracer.start_as_current_span(f"GET /t{n}", kind=SpanKind.SERVER):
            tracer.start_span("SELECT", kind=SpanKind.CLIENT).end()
    finished = list(memory.get_finished_spans())  # the sampled ones only
    assert 0 < len(finished) < 80
    deadline = time.monotonic() + 30
    while len(receiver.bodies) < len(finished) // 4 and time.monotonic() < deadline:
        time.sleep(0.05)  # full batches leave without a flush
    assert len(receiver.bodies) >= len(finished) // 4
    provider.force_flush()
    received = [ExportTraceServiceRequest.FromString(body) for _, body in receiver.bodies]
    assert all(len(r.resource_spans[0].scope_spans[0].spans) <= 4 for r in received)
    merged = ExportTraceServiceRequest()
    for request in received:
        merged.MergeFrom(request)
    spans = [s for r in merged.resource_spans for ss in r.scope_spans for s in ss.spans]
    stock = [s for r in encode_spans(finished).resource_spans for ss in r.scope_spans
             for s in ss.spans]  # fmt: skip
    assert spans == stock
    posted = len(receiver.bodies)
    provider.shutdown()
    tracer.start_span("after").end()  # after shutdown: not queued, not posted
    processor.force_flush()
    assert len(receiver.bodies) == posted
