"""A compact tree of each request's spans on the console (`FNKIT_TRACE_CONSOLE=1 make dev`).

Spans are kept by trace until their local root (the SERVER span, or a delivery's span) ends,
then printed as one block:

    POST /tasks/bulk 200  14.2 ms  trace 4bf92f3577b34da6a3ce929d0e0e4736
    ├─ SELECT  2.1 ms  select * from private.idempotency_claim(%s, %s, %s, %s, %s)
    ├─ UPDATE  1.3 ms  update public.tasks t set "status" = %s where t.id = %s ...
    └─ COMMIT  0.9 ms
"""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict
from typing import Any, TextIO

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor

MAX_PENDING_TRACES = 1000
_DETAIL = ("db.query.text", "messaging.message.id", "url.full")


def _ms(span: ReadableSpan) -> float:
    return ((span.end_time or 0) - (span.start_time or 0)) / 1e6


def _line(span: ReadableSpan) -> str:
    attributes = span.attributes or {}
    text = span.name
    status = attributes.get("http.response.status_code")
    if status is not None:
        text += f" {status}"
    text += f"  {_ms(span):.1f} ms"
    for key in _DETAIL:
        value = attributes.get(key)
        if value is not None:
            detail = " ".join(str(value).split())
            text += f"  {detail[:100]}{'...' if len(detail) > 100 else ''}"
            break
    if span.links:
        text += f"  (linked to trace {span.links[0].context.trace_id:032x})"
    return text


def render(root: ReadableSpan, spans: list[ReadableSpan]) -> str:
    """The tree under `root` (children in start order), one span a line."""
    children: dict[int, list[ReadableSpan]] = {}
    for span in spans:
        if span.parent is not None and span is not root:
            children.setdefault(span.parent.span_id, []).append(span)
    assert root.context is not None
    lines = [f"{_line(root)}  trace {root.context.trace_id:032x}"]

    def walk(span: ReadableSpan, indent: str) -> None:
        assert span.context is not None
        kids = sorted(children.get(span.context.span_id, []), key=lambda s: s.start_time or 0)
        for index, kid in enumerate(kids):
            last = index == len(kids) - 1
            lines.append(f"{indent}{'└─ ' if last else '├─ '}{_line(kid)}")
            walk(kid, indent + ("   " if last else "│  "))

    walk(root, "")
    return "\n".join(lines) + "\n"


class ConsoleTree(SpanProcessor):
    """Print each local trace when its root span ends."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream
        self._pending: OrderedDict[int, list[ReadableSpan]] = OrderedDict()
        self._lock = threading.Lock()

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        if span.context is None:
            return
        trace_id = span.context.trace_id
        local_root = span.parent is None or span.parent.is_remote
        with self._lock:
            spans = self._pending.setdefault(trace_id, [])
            spans.append(span)
            if not local_root:
                while len(self._pending) > MAX_PENDING_TRACES:
                    self._pending.popitem(last=False)
                return
            del self._pending[trace_id]
        stream = self._stream or sys.stderr
        stream.write(render(span, spans))
        stream.flush()

    def shutdown(self) -> None:
        self._pending.clear()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
