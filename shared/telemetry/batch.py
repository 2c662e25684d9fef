"""The batch span processor for OTLP/HTTP: each span encoded as it ends, batches posted by a thread.

The SDK's `BatchSpanProcessor` keeps every finished span (the span, its attributes, events,
links, a lock: a dozen objects) in a queue until its thread exports up to 512 of them. Queued
that long, they outlive the garbage collector's young generations and are promoted to the
oldest, whose full collections (tens of ms in a function's heap) then come more often: measured,
the stock pipeline's process paid a full collection every ~300 sampled requests. This one encodes
a sampled span into its OTLP bytes when it ends (`shared.telemetry.otlp.Encoder`, a few µs on
the request's thread) and keeps only those bytes, so the span's objects die young; its thread
posts them as the SDK's would: when `OTEL_BSP_MAX_EXPORT_BATCH_SIZE` wait or every
`OTEL_BSP_SCHEDULE_DELAY` ms, at most `OTEL_BSP_MAX_QUEUE_SIZE` waiting (more are dropped),
on `force_flush` and at shutdown; a forked child starts its own thread.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref

from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY, attach, detach, set_value
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from shared.telemetry.otlp import Encoder, Entry, LeanSpanExporter

_logger = logging.getLogger(__name__)


class EncodingBatchProcessor(SpanProcessor):
    """Sampled spans encoded at their end, posted in batches (see the module's docstring)."""

    def __init__(self, exporter: LeanSpanExporter) -> None:
        self.exporter = exporter
        self.encoder = Encoder()
        defaults = BatchSpanProcessor  # the SDK's own reading of the OTEL_BSP_* variables
        self.max_queue: int = defaults._default_max_queue_size()  # type: ignore[no-untyped-call]
        batch: int = defaults._default_max_export_batch_size()  # type: ignore[no-untyped-call]
        self.max_batch = min(batch, self.max_queue)
        delay: int = defaults._default_schedule_delay_millis()  # type: ignore[no-untyped-call]
        self.delay_s = delay / 1000
        self._pending: list[Entry] = []
        self._lock = threading.Lock()  # the pending list
        self._exporting = threading.Lock()  # one export at a time, in order
        self._shutdown = False
        self._start()
        if hasattr(os, "register_at_fork"):
            ref = weakref.WeakMethod(self._start)
            os.register_at_fork(after_in_child=lambda: (method := ref()) and method())

    def _start(self) -> None:
        self._pending = []
        self._lock, self._exporting = threading.Lock(), threading.Lock()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fnkit-span-export", daemon=True)
        self._thread.start()

    def on_end(self, span: ReadableSpan) -> None:
        context = span.context
        if self._shutdown or context is None or not context.trace_flags.sampled:
            return
        entry = self.encoder.entry(span)
        with self._lock:
            if len(self._pending) >= self.max_queue:
                _logger.warning("Queue full, dropping span.")
                return
            self._pending.append(entry)
            full = len(self._pending) >= self.max_batch
        if full:
            self._wake.set()

    def _run(self) -> None:
        while not self._shutdown:
            self._wake.wait(self.delay_s)
            self._wake.clear()
            self._export()

    def _export(self) -> None:
        """Post what waits, a batch at a time."""
        with self._exporting:
            while True:
                with self._lock:
                    batch = self._pending[: self.max_batch]
                    del self._pending[: self.max_batch]
                if not batch:
                    return
                token = attach(set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))
                try:
                    self.exporter.post(self.encoder.assemble(batch))
                except Exception:
                    _logger.exception("Exception while exporting spans.")
                finally:
                    detach(token)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        self._export()
        return True

    def shutdown(self) -> None:
        if self._shutdown:
            return
        self._shutdown = True
        self._wake.set()
        self._thread.join(30)  # an export under way may be retrying (the SDK's bound, too)
        self._export()
        self.exporter.shutdown()  # type: ignore[no-untyped-call]
