"""Telemetry on, with in-memory exporters: the spans and metrics the served functions make.

The functions are the session's served ones (real HTTP, real Postgres as the roles, real Redis
behind the Upstash bridge); only the exporters are in memory. Telemetry is switched on for
this process by giving `shared.tracecontext.active` a `Telemetry` over in-memory providers,
and off again after each test. tests/test_telemetry_otlp.py does the same end to end through
the `OTEL_*` variables and a real OTLP/HTTP receiver.
"""

from __future__ import annotations

import io
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased
from opentelemetry.trace import SpanKind, StatusCode

from shared import logs, tracecontext
from shared.telemetry import Telemetry
from shared.telemetry.console import render
from tests.fixtures.server import ACME, ACME_PROJECTS, Served, as_user

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


@dataclass
class Memory:
    telemetry: Telemetry
    spans: InMemorySpanExporter
    metrics: InMemoryMetricReader

    def finished(self) -> list[ReadableSpan]:
        return list(self.spans.get_finished_spans())

    def server_span(self, trace_id: str) -> ReadableSpan:
        found = [
            s
            for s in self.finished()
            if s.kind == SpanKind.SERVER and f"{s.context.trace_id:032x}" == trace_id
        ]
        assert len(found) == 1, [s.name for s in found]
        return found[0]

    def children(self, span: ReadableSpan) -> list[ReadableSpan]:
        return [
            s
            for s in self.finished()
            if s.parent is not None and s.parent.span_id == span.context.span_id
        ]

    def points(self, name: str) -> list[Any]:
        data = self.metrics.get_metrics_data()
        assert data is not None
        return [
            point
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
            if metric.name == name
            for point in metric.data.data_points
        ]


@pytest.fixture
def memory() -> Iterator[Memory]:
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider(sampler=ParentBased(ALWAYS_ON), shutdown_on_exit=False)
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    telemetry = Telemetry(tracer_provider, meter_provider)
    assert tracecontext.active is None
    tracecontext.active = telemetry
    try:
        yield Memory(telemetry, spans, reader)
    finally:
        tracecontext.active = None
        telemetry.shutdown()


def traceparent(trace_id: str = TRACE, span_id: str = PARENT, flags: str = "01") -> str:
    return f"00-{trace_id}-{span_id}-{flags}"


def new_trace() -> str:
    import uuid

    return uuid.uuid4().hex


def wait_for(find: Any, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = find()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError("never happened")


def test_a_post_that_emits_has_db_and_upstash_children_and_its_delivery_links_to_it(
    served: Served, memory: Memory
) -> None:
    trace_id = new_trace()
    with as_user(served, "member") as client:
        created = client.post("/tasks", json={"project_id": ACME_PROJECTS[0], "title": "otel"})
        assert created.status_code == 201, created.text
        task = created.json()["data"]
        done = client.post(
            "/tasks/bulk",
            json={"ops": [{"op": "update", "id": task["id"], "version": task["version"],
                           "data": {"status": "done", "title": "secret title 7781"}}]},
            headers={"traceparent": traceparent(trace_id), "tracestate": "vendor=1",
                     "User-Agent": "telemetry-test/1"},
        )  # fmt: skip
        assert done.status_code == 200, done.text

    server = memory.server_span(trace_id)
    assert server.name == "POST /tasks/bulk"
    assert server.parent is not None and server.parent.is_remote
    assert f"{server.parent.span_id:016x}" == PARENT
    assert server.context.trace_state.get("vendor") == "1"
    attributes = dict(server.attributes or {})
    assert attributes["http.request.method"] == "POST"
    assert attributes["http.route"] == "/tasks/bulk"
    assert attributes["http.response.status_code"] == 200
    assert attributes["url.scheme"] == "http"
    assert attributes["server.address"] == "127.0.0.1"
    assert attributes["user_agent.original"] == "telemetry-test/1"
    assert "error.type" not in attributes
    assert server.status.status_code == StatusCode.UNSET

    children = memory.children(server)
    postgres = [c for c in children if c.attributes.get("db.system.name") == "postgresql"]
    upstash = [c for c in children if c.attributes.get("db.system.name") == "redis"]
    assert all(c.kind == SpanKind.CLIENT for c in children)
    assert postgres and upstash
    operations = [c.attributes["db.operation.name"] for c in postgres]
    assert "UPDATE" in operations and operations[-1] == "COMMIT"
    update = next(c for c in postgres if c.attributes["db.operation.name"] == "UPDATE")
    assert "%s" in update.attributes["db.query.text"]
    for span in postgres:  # placeholders only, never a value
        assert "secret title 7781" not in span.attributes.get("db.query.text", "")
        assert task["id"] not in span.attributes.get("db.query.text", "")
    assert upstash[0].attributes["db.operation.name"] in ("EVALSHA", "EVAL")  # the rate limit
    assert all(c.start_time >= server.start_time and c.end_time <= server.end_time
               for c in children)  # fmt: skip

    # The delivery (a thread started after the response) links to the emitting request.
    def delivery() -> list[ReadableSpan]:
        return [
            s
            for s in memory.finished()
            if s.name == "process task.completed"
            and any(f"{link.context.trace_id:032x}" == trace_id for link in s.links)
        ]

    process = wait_for(delivery)[0]
    assert process.kind == SpanKind.CONSUMER
    link = process.links[0]
    assert link.context.span_id == server.context.span_id
    assert process.attributes["messaging.destination.name"] == "task.completed"
    published = memory.children(process)
    assert [s.attributes["db.operation.name"] for s in published] == ["PUBLISH"]
    tree = render(server, [server, *children])
    assert tree.startswith("POST /tasks/bulk 200") and "└─ COMMIT" in tree


def test_the_parent_comes_from_x_cloud_trace_context_when_no_traceparent_is_sent(
    served: Served, memory: Memory
) -> None:
    cloud_trace, w3c_trace = new_trace(), new_trace()
    stream = io.StringIO()
    logs.set_stream(stream)
    try:
        with served.client() as client:
            only_cloud = client.get(
                "/health/openapi.json",
                headers={"X-Cloud-Trace-Context": f"{cloud_trace}/1234567;o=1",
                         "X-Request-Id": "otel-cloud"},
            )  # fmt: skip
            both = client.get(
                "/health/openapi.json",
                headers={"X-Cloud-Trace-Context": f"{cloud_trace}/99;o=1",
                         "traceparent": traceparent(w3c_trace, PARENT, "01"),
                         "X-Request-Id": "otel-both"},
            )  # fmt: skip
    finally:
        logs.set_stream(sys.stdout)
    assert only_cloud.status_code == both.status_code == 200
    from_cloud = memory.server_span(cloud_trace)
    assert from_cloud.name == "GET /health/openapi.json"
    assert from_cloud.parent is not None and from_cloud.parent.span_id == 1234567
    from_w3c = memory.server_span(w3c_trace)  # traceparent wins over the Cloud header
    assert f"{from_w3c.parent.span_id:016x}" == PARENT
    # The log lines agree: the same trace, and the server span's own id.
    lines = {
        line["request_id"]: line
        for line in map(json.loads, stream.getvalue().splitlines())
        if "request_id" in line
    }
    for request_id, span in (("otel-cloud", from_cloud), ("otel-both", from_w3c)):
        line = lines[request_id]
        assert line["logging.googleapis.com/trace"].endswith(f"{span.context.trace_id:032x}")
        assert line["logging.googleapis.com/spanId"] == f"{span.context.span_id:016x}"
        assert line["logging.googleapis.com/trace_sampled"] is True


def test_only_5xx_is_an_error_and_an_unmatched_path_is_named_by_its_method(
    served: Served, memory: Memory
) -> None:
    traces = {what: new_trace() for what in ("404", "500", "422")}
    with served.client() as client:
        client.get("/echo/no/such/route", headers={"traceparent": traceparent(traces["404"])})
        client.get("/echo/boom", headers={"traceparent": traceparent(traces["500"])})
    with as_user(served, "member") as client:
        client.post(
            "/tasks", json={"title": 1}, headers={"traceparent": traceparent(traces["422"])}
        )
    missing = memory.server_span(traces["404"])
    assert missing.name == "GET" and "http.route" not in missing.attributes
    assert missing.attributes["http.response.status_code"] == 404
    assert missing.status.status_code == StatusCode.UNSET
    invalid = memory.server_span(traces["422"])
    assert invalid.name == "POST /tasks" and invalid.status.status_code == StatusCode.UNSET
    assert "error.type" not in invalid.attributes
    failed = memory.server_span(traces["500"])
    assert failed.status.status_code == StatusCode.ERROR
    assert failed.attributes["http.response.status_code"] == 500
    assert failed.attributes["error.type"] == "500"

    durations = memory.points("http.server.request.duration")
    routes = {(p.attributes.get("http.route"), p.attributes["http.response.status_code"])
              for p in durations}  # fmt: skip
    assert ("/tasks", 422) in routes and (None, 404) in routes
    errors = [p for p in durations if p.attributes.get("error.type") == "500"]
    assert errors and errors[0].explicit_bounds[:3] == (0.005, 0.01, 0.025)


def test_metrics_for_the_clients_the_rate_limit_and_the_cache(
    served: Served, memory: Memory
) -> None:
    with as_user(served, "member") as client:
        listed = client.get(f"/tasks?project_id={ACME_PROJECTS[0]}&limit=5")
        assert listed.status_code == 200, listed.text
        for _ in range(2):  # the second read of unchanged stats is a cache hit
            stats = client.get("/stats", params={"workspace_id": ACME})
            assert stats.status_code == 200, stats.text
    systems = {
        p.attributes["db.system.name"] for p in memory.points("db.client.operation.duration")
    }
    assert systems == {"postgresql", "redis"}
    lookups = {p.attributes["fnkit.cache.hit"] for p in memory.points("fnkit.cache.lookups")}
    assert True in lookups
    decisions = memory.points("fnkit.rate_limit.decisions")
    assert any(
        p.attributes["fnkit.rate_limit.decision"] == "allowed"
        and p.attributes["fnkit.function"] == "tasks"
        for p in decisions
    )


def test_an_idempotent_replay_is_counted(served: Served, memory: Memory) -> None:
    body = {"project_id": ACME_PROJECTS[0], "title": "replayed"}
    with as_user(served, "member") as client:
        key = {"Idempotency-Key": new_trace()}
        first = client.post("/tasks", json=body, headers=key)
        again = client.post("/tasks", json=body, headers=key)
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    replays = memory.points("fnkit.idempotency.replays")
    assert [p.attributes["fnkit.route"] for p in replays] == ["POST /"]


def test_an_unsampled_parent_is_not_recorded_but_its_ids_reach_the_logs(
    served: Served, memory: Memory
) -> None:
    """Parent-based sampling (the default): a caller's `-00` flags keep the request out."""
    trace_id = new_trace()
    stream = io.StringIO()
    logs.set_stream(stream)
    try:
        with served.client() as client:
            response = client.get(
                "/health/openapi.json",
                headers={"traceparent": traceparent(trace_id, PARENT, "00"),
                         "X-Request-Id": "otel-unsampled"},
            )  # fmt: skip
    finally:
        logs.set_stream(sys.stdout)
    assert response.status_code == 200
    assert not [s for s in memory.finished() if f"{s.context.trace_id:032x}" == trace_id]
    line = next(
        line
        for line in map(json.loads, stream.getvalue().splitlines())
        if line.get("request_id") == "otel-unsampled"
    )
    assert line["logging.googleapis.com/trace"].endswith(trace_id)
    assert line["logging.googleapis.com/trace_sampled"] is False
    assert line["logging.googleapis.com/spanId"] != PARENT  # the request's own (unsampled) span
    # Metrics do not depend on sampling.
    assert any(
        p.attributes.get("http.route") == "/health/openapi.json"
        for p in memory.points("http.server.request.duration")
    )


def test_the_standard_variables_choose_sampler_exporters_and_service(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from shared.telemetry.console import ConsoleTree
    from shared.telemetry.setup import endpoint, from_environment

    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.25")
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    env = {"FNKIT_TRACE_CONSOLE": "1", "K_SERVICE": "tasks"}
    assert tracecontext.wanted(env) and not tracecontext.wanted({})
    assert not tracecontext.wanted({**env, "OTEL_SDK_DISABLED": "true"})
    built = from_environment(env)
    try:
        assert "TraceIdRatioBased{0.25}" in built.tracer_provider.sampler.get_description()
        assert built.tracer_provider.resource.attributes["service.name"] == "tasks"
        processors = built.tracer_provider._active_span_processor._span_processors
        assert [type(p) for p in processors] == [ConsoleTree]  # no endpoint: nothing exported
    finally:
        built.shutdown()
    base = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/"}
    assert endpoint(base, "traces") == "http://collector:4318/v1/traces"
    assert endpoint({**base, "OTEL_METRICS_EXPORTER": "none"}, "metrics") is None
    own = {"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://m:4318/custom"}
    assert endpoint(own, "metrics") == "http://m:4318/custom" and endpoint(own, "traces") is None
