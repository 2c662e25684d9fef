"""OTLP/HTTP span export with the request body encoded by hand (protobuf wire format).

The stock `OTLPSpanExporter` builds a tree of protobuf objects for every batch (a `KeyValue` and
an `AnyValue` per attribute, a `Span` per span) and serializes it: ~25 µs of CPU per span, more
than the span itself costs to record, paid by the process for every sampled span. This module
writes the same `ExportTraceServiceRequest` bytes directly (~6 µs a span; the attribute
`KeyValue`s that repeat, such as `db.query.text` or `http.route`, are encoded once and reused).
`LeanSpanExporter` is the stock exporter with only that step replaced: the HTTP part (headers,
compression, timeout, retries, TLS) and the variables it reads are the stock exporter's own.
tests/test_telemetry_otlp_encode.py decodes both outputs with opentelemetry-proto and finds the
same request for the same spans.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult

_logger = logging.getLogger(__name__)
_DOUBLE = struct.Struct("<d").pack
_FIXED64 = struct.Struct("<Q").pack
_FIXED32 = struct.Struct("<I").pack
_SMALL = [bytes((n,)) for n in range(128)]
# SpanFlags: the context-has-is-remote bit always, the is-remote bit for a remote parent.
_HAS_IS_REMOTE, _IS_REMOTE = 0x100, 0x200
_FLAGS_LOCAL = b"\x85\x01" + _FIXED32(_HAS_IS_REMOTE)  # Span.flags (field 16, fixed32)
_FLAGS_REMOTE = b"\x85\x01" + _FIXED32(_HAS_IS_REMOTE | _IS_REMOTE)
_CACHE_LIMIT = 4096
# A span encoded, with its resource and scope (the request groups spans by them).
Entry = tuple[Any, Any, bytes]


def varint(n: int) -> bytes:
    """An int64 (or a length) as a protobuf varint."""
    if 0 <= n < 128:
        return _SMALL[n]
    if not -(1 << 63) <= n < 1 << 63:
        raise ValueError(f"Value out of range: {n}")  # as protobuf refuses it
    if n < 0:
        n += 1 << 64  # two's complement, ten bytes
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field (a string, bytes or an embedded message)."""
    return tag + varint(len(payload)) + payload


def any_value(value: Any) -> bytes:
    """An `AnyValue` message, as the stock encoder chooses its case."""
    if value is None:
        return b""
    if isinstance(value, bool):
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, str):
        return field(b"\x0a", value.encode())
    if isinstance(value, int):
        return b"\x18" + varint(value)
    if isinstance(value, float):
        return b"\x21" + _DOUBLE(value)
    if isinstance(value, bytes):
        return field(b"\x3a", value)
    if isinstance(value, Sequence):
        return field(b"\x2a", b"".join(field(b"\x0a", any_value(v)) for v in value))
    if isinstance(value, Mapping):
        pairs = b"".join(field(b"\x0a", key_value(str(k), v)) for k, v in value.items())
        return field(b"\x32", pairs)
    raise TypeError(f"Invalid type {type(value)} of value {value}")


def key_value(key: str, value: Any) -> bytes:
    return field(b"\x0a", key.encode()) + field(b"\x12", any_value(value))


class Encoder:
    """Encodes batches of finished spans; remembers the repeated parts (bounded)."""

    def __init__(self) -> None:
        self._pairs: dict[tuple[str, Any], bytes] = {}
        self._names: dict[str, bytes] = {}
        self._resources: dict[int, tuple[Any, bytes]] = {}

    def attributes(self, tag: bytes, attributes: Mapping[str, Any] | None) -> bytes:
        """Each attribute as a repeated `KeyValue` field (`tag`); text and int values cached."""
        if not attributes:
            return b""
        pairs, out = self._pairs, []
        for key, value in attributes.items():
            if type(value) is str or type(value) is int:  # not bool: True == 1
                encoded = pairs.get((key, value))
                if encoded is None:
                    if len(pairs) >= _CACHE_LIMIT:
                        pairs.clear()
                    encoded = pairs[key, value] = field(tag, key_value(key, value))
                out.append(encoded)
                continue
            try:
                out.append(field(tag, key_value(key, value)))
            except Exception as error:  # the stock encoder logs and skips it too
                _logger.exception("Failed to encode key %s: %s", key, error)
        return b"".join(out)

    def span(self, span: ReadableSpan) -> bytes:
        context, parent = span.context, span.parent
        assert context is not None and span.start_time is not None
        out = [b"\x0a\x10", context.trace_id.to_bytes(16, "big"), b"\x12\x08"]
        out.append(context.span_id.to_bytes(8, "big"))
        if context.trace_state:
            state = ",".join(f"{k}={v}" for k, v in context.trace_state.items())
            out.append(field(b"\x1a", state.encode()))
        if parent is not None:
            out.append(b"\x22\x08" + parent.span_id.to_bytes(8, "big"))
        name = self._names.get(span.name)
        if name is None:
            if len(self._names) >= _CACHE_LIMIT:
                self._names.clear()
            name = self._names[span.name] = field(b"\x2a", span.name.encode())
        out += (name, b"\x30", _SMALL[span.kind.value + 1])
        out += (b"\x39", _FIXED64(span.start_time), b"\x41", _FIXED64(span.end_time or 0))
        out.append(self.attributes(b"\x4a", span.attributes))
        if span.dropped_attributes:
            out.append(b"\x50" + varint(span.dropped_attributes))
        for event in span.events:
            body = b"\x09" + _FIXED64(event.timestamp) if event.timestamp else b""
            body += field(b"\x12", event.name.encode()) if event.name else b""
            body += self.attributes(b"\x1a", event.attributes)
            if event.dropped_attributes:
                body += b"\x20" + varint(event.dropped_attributes)
            out.append(field(b"\x5a", body))
        if span.dropped_events:
            out.append(b"\x60" + varint(span.dropped_events))
        for link in span.links:
            body = b"\x0a\x10" + link.context.trace_id.to_bytes(16, "big")
            body += b"\x12\x08" + link.context.span_id.to_bytes(8, "big")
            body += self.attributes(b"\x22", link.attributes)
            if link.dropped_attributes:
                body += b"\x28" + varint(link.dropped_attributes)
            flags = _HAS_IS_REMOTE | (_IS_REMOTE if link.context.is_remote else 0)
            out.append(field(b"\x6a", body + b"\x35" + _FIXED32(flags)))
        if span.dropped_links:
            out.append(b"\x70" + varint(span.dropped_links))
        status = span.status
        if status.description or status.status_code.value:
            body = field(b"\x12", status.description.encode()) if status.description else b""
            if status.status_code.value:
                body += b"\x18" + _SMALL[status.status_code.value]
            out.append(field(b"\x7a", body))
        else:
            out.append(b"\x7a\x00")  # the stock encoder always sets it
        out.append(_FLAGS_REMOTE if parent is not None and parent.is_remote else _FLAGS_LOCAL)
        return b"".join(out)

    def resource(self, resource: Any) -> bytes:
        """A `Resource` message (one per provider: encoded once, looked up by identity)."""
        cached = self._resources.get(id(resource))
        if cached is None or cached[0] is not resource:
            if len(self._resources) >= 16:
                self._resources.clear()
            cached = self._resources[id(resource)] = (
                resource,
                self.attributes(b"\x0a", resource.attributes),
            )
        return cached[1]

    def request(self, spans: Sequence[ReadableSpan]) -> bytes:
        """The `ExportTraceServiceRequest` for these spans."""
        return self.assemble([self.entry(span) for span in spans])

    def entry(self, span: ReadableSpan) -> Entry:
        """One span encoded (its `ScopeSpans.spans` field) with what groups it."""
        return span.resource, span.instrumentation_scope or None, field(b"\x12", self.span(span))

    def assemble(self, entries: Sequence[Entry]) -> bytes:
        """The request from encoded spans: grouped by resource, then by scope, in order of
        first appearance (as the stock encoder groups them; equal objects are one group)."""
        by_id: dict[tuple[int, int], tuple[Any, Any, list[bytes]]] = {}
        for resource, scope, encoded in entries:
            group = by_id.get((id(resource), id(scope)))
            if group is None:
                group = by_id[id(resource), id(scope)] = (resource, scope, [])
            group[2].append(encoded)
        grouped: dict[Any, dict[Any, list[bytes]]] = {}
        for resource, scope, spans in by_id.values():  # hashed once per group, not per span
            grouped.setdefault(resource, {}).setdefault(scope, []).extend(spans)
        out = []
        for resource, scopes in grouped.items():
            body = [field(b"\x0a", self.resource(resource))]
            for scope, spans_encoded in scopes.items():
                head = tail = b""
                if scope is not None:
                    head = field(b"\x0a", scope.name.encode()) if scope.name else b""
                    if scope.version:
                        head += field(b"\x12", scope.version.encode())
                    head += self.attributes(b"\x1a", scope.attributes)
                    if scope.schema_url:
                        tail = field(b"\x1a", scope.schema_url.encode())
                body.append(field(b"\x12", field(b"\x0a", head) + b"".join(spans_encoded) + tail))
            if resource.schema_url:
                body.append(field(b"\x1a", resource.schema_url.encode()))
            out.append(field(b"\x0a", b"".join(body)))
        return b"".join(out)


class LeanSpanExporter(OTLPSpanExporter):
    """`OTLPSpanExporter` with the request body written by `Encoder` (see the module's doc)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._encoder = Encoder()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._shutdown:
            _logger.warning("Exporter already shutdown, ignoring batch")
            return SpanExportResult.FAILURE
        try:
            data = self._encoder.request(spans)
        except Exception as error:
            _logger.error("Failed to encode span batch: %s", error)
            return SpanExportResult.FAILURE
        return self.post(data)

    def post(self, data: bytes) -> SpanExportResult:
        """Send an encoded request as the stock exporter sends its own."""
        if self._shutdown:
            _logger.warning("Exporter already shutdown, ignoring batch")
            return SpanExportResult.FAILURE
        if 0 < self._max_request_size < len(data):
            _logger.warning("Dropping span batch: %d bytes exceeds max_request_size", len(data))
            return SpanExportResult.FAILURE
        return (
            SpanExportResult.SUCCESS
            if self._client.export(data).success
            else SpanExportResult.FAILURE
        )
