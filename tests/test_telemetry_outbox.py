"""Telemetry and the outbox: the emitting span travels with the message to its webhook.

A write emits inside a span; the dispatcher's delivery span links to that span, the webhook
POST is its CLIENT child and sends that child's `traceparent` to the receiver; a message that
fails its only attempt counts as a dead letter, a delivered one records its lag. Real Postgres,
a real HTTP receiver; in-memory exporters (tests/test_telemetry.py's fixture).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request as WRequest
from werkzeug.wrappers import Response as WResponse

from shared.db import close_pools
from shared.dispatch import dispatch
from tests import test_telemetry
from tests.test_outbox import SECRET, settings_with, write_and_emit
from tests.test_telemetry import Memory

memory = test_telemetry.memory  # the in-memory exporters' fixture


class Headers:
    """A webhook receiver that keeps each request's headers; refuses while `refuse` is set."""

    def __init__(self) -> None:
        self.seen: list[dict[str, str]] = []
        self.refuse = False
        self.server = make_server("127.0.0.1", 0, self.wsgi, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        self.seen.append(dict(WRequest(environ).headers))
        status = 503 if self.refuse else 200
        return WResponse("x", status=status)(environ, start_response)


@pytest.fixture
def hook() -> Iterator[Headers]:
    found = Headers()
    yield found
    found.server.shutdown()


def test_the_webhook_gets_traceparent_and_the_delivery_links_to_the_emitter(
    database_url: str, upstash: Any, memory: Memory, hook: Headers
) -> None:
    settings = settings_with(
        database_url, upstash, outbox_webhook_url=hook.url, outbox_webhook_secret=SECRET
    )
    topic = f"test.otel.{uuid.uuid4().hex[:8]}"
    try:
        with memory.telemetry.tracer.start_as_current_span("emitter") as emitter:
            message_id = write_and_emit(settings, topic, {"n": 1}, commit=True)
        dispatch(settings, ids=[message_id])
    finally:
        close_pools()
    assert len(hook.seen) == 1
    spans = memory.finished()
    process = next(s for s in spans if s.name == f"process {topic}")
    assert [link.context.span_id for link in process.links] == [emitter.get_span_context().span_id]
    assert process.attributes["messaging.message.id"] == message_id
    post = next(
        s for s in spans if s.parent is not None and s.parent.span_id == process.context.span_id
    )
    assert post.name == "POST" and post.attributes["http.response.status_code"] == 200
    assert post.attributes["url.full"] == hook.url
    sent = hook.seen[0]["Traceparent"]
    flags = post.context.trace_flags
    assert flags.sampled
    assert sent == f"00-{post.context.trace_id:032x}-{post.context.span_id:016x}-{flags:02x}"
    lag = memory.points("fnkit.outbox.lag")
    assert lag and lag[0].attributes["fnkit.outbox.sink"] == "webhook"


def test_a_dead_letter_is_counted(
    database_url: str, upstash: Any, memory: Memory, hook: Headers
) -> None:
    settings = settings_with(
        database_url,
        upstash,
        outbox_webhook_url=hook.url,
        outbox_webhook_secret=SECRET,
        outbox_max_attempts=1,
    )
    hook.refuse = True
    topic = f"test.otel.{uuid.uuid4().hex[:8]}"
    try:
        message_id = write_and_emit(settings, topic, {"n": 2}, commit=True)
        assert dispatch(settings, ids=[message_id])["dead"] == 1
    finally:
        close_pools()
    assert sum(p.value for p in memory.points("fnkit.outbox.dead_letters")) == 1
    post = next(s for s in memory.finished() if s.name == "POST")
    assert post.attributes["error.type"] == "503"
    assert post.status.status_code.name == "ERROR"
