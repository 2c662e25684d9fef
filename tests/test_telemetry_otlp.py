"""Telemetry end to end: the standard `OTEL_*` variables, a real OTLP/HTTP export, a receiver.

The tasks function runs under functions-framework in its own process with only
`OTEL_EXPORTER_OTLP_ENDPOINT` (and faster batch and metric intervals) added to its settings;
a receiver on loopback decodes what arrives with opentelemetry-proto, as a collector would.
One `POST /tasks/bulk` that completes a task (and so emits `task.completed`) must yield a
trace whose SERVER span bears the route's name with Postgres and Upstash children, and the
dispatcher's delivery must link to it; the `http.server.request.duration` histogram arrives too.
"""

from __future__ import annotations

import gzip
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from werkzeug.serving import make_server
from werkzeug.wrappers import Request as WRequest
from werkzeug.wrappers import Response as WResponse

from tests.fixtures.server import ACME_PROJECTS, ROOT, SEED_USERS, Served


class Receiver:
    """An OTLP/HTTP (protobuf) receiver: keeps every span and metric name it decodes."""

    def __init__(self) -> None:
        self.spans: list[tuple[dict[str, Any], Span]] = []  # (resource attributes, span)
        self.metrics: dict[str, Any] = {}
        self.lock = threading.Lock()
        self.server = make_server("127.0.0.1", 0, self.wsgi, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = WRequest(environ)
        body = request.get_data()
        if request.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        assert request.headers["Content-Type"] == "application/x-protobuf"
        if request.path == "/v1/traces":
            traces = trace_service_pb2.ExportTraceServiceRequest.FromString(body)
            with self.lock:
                for resource_spans in traces.resource_spans:
                    resource = {a.key: a.value.string_value
                                for a in resource_spans.resource.attributes}  # fmt: skip
                    for scope in resource_spans.scope_spans:
                        self.spans += [(resource, span) for span in scope.spans]
            reply = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
        elif request.path == "/v1/metrics":
            metrics = metrics_service_pb2.ExportMetricsServiceRequest.FromString(body)
            with self.lock:
                for resource_metrics in metrics.resource_metrics:
                    for scope in resource_metrics.scope_metrics:
                        for metric in scope.metrics:
                            self.metrics[metric.name] = metric
            reply = metrics_service_pb2.ExportMetricsServiceResponse().SerializeToString()
        else:
            return WResponse("no", status=404)(environ, start_response)
        return WResponse(reply, content_type="application/x-protobuf")(environ, start_response)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.server.shutdown()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def tasks_process(function_env: dict[str, str], receiver: Receiver) -> Iterator[str]:
    """The tasks function under functions-framework, exporting to the receiver."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "FNKIT_TRACE"))}
    env.update(function_env)
    env.update(
        PYTHONPATH=str(ROOT),
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url,
        OTEL_SERVICE_NAME="tasks",
        OTEL_BSP_SCHEDULE_DELAY="100",
        OTEL_METRIC_EXPORT_INTERVAL="300",
    )
    argv = [sys.executable, "-m", "functions_framework", "--target", "handler",
            "--source", str(ROOT / "functions" / "tasks" / "main.py"),
            "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stderr.read().decode()[-3000:] if proc.stderr else ""
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the function never listened"
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _attributes(span: Span) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in span.attributes:
        kind = item.value.WhichOneof("value")
        out[item.key] = getattr(item.value, kind) if kind else None
    return out


def _wait(find: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = find()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError("not received in time")


def test_a_post_that_emits_is_one_exported_trace_and_its_delivery_links_to_it(
    served: Served, receiver: Receiver, tasks_process: str
) -> None:
    token = served.token(SEED_USERS["member"], email="member@example.com")
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=tasks_process, headers=headers, timeout=30) as client:
        created = client.post("/", json={"project_id": ACME_PROJECTS[0], "title": "otlp"})
        assert created.status_code == 201, created.text
        task = created.json()["data"]
        done = client.post(
            "/bulk",
            json={"ops": [{"op": "update", "id": task["id"], "version": task["version"],
                           "data": {"status": "done"}}]},
        )  # fmt: skip
        assert done.status_code == 200, done.text

    def server_span() -> list[tuple[dict[str, Any], Span]]:
        with receiver.lock:
            return [(r, s) for r, s in receiver.spans
                    if s.name == "POST /tasks/bulk" and s.kind == Span.SPAN_KIND_SERVER]  # fmt: skip

    resource, server = _wait(server_span)[0]
    assert resource["service.name"] == "tasks"
    attributes = _attributes(server)
    assert attributes["http.route"] == "/tasks/bulk"
    assert attributes["http.request.method"] == "POST"
    assert attributes["http.response.status_code"] == 200

    def delivery() -> list[Span]:
        with receiver.lock:
            return [s for _, s in receiver.spans if s.name == "process task.completed"
                    and any(link.span_id == server.span_id for link in s.links)]  # fmt: skip

    process = _wait(delivery)[0]
    assert process.links[0].trace_id == server.trace_id
    assert process.trace_id != server.trace_id  # its own trace, found through the link
    with receiver.lock:
        spans = [s for _, s in receiver.spans]
    children = [s for s in spans if s.parent_span_id == server.span_id]
    systems = {_attributes(s).get("db.system.name") for s in children}
    assert systems == {"postgresql", "redis"}
    assert all(s.kind == Span.SPAN_KIND_CLIENT for s in children)
    assert all(s.trace_id == server.trace_id for s in children)
    published = [s for s in spans if s.parent_span_id == process.span_id]
    assert [_attributes(s)["db.operation.name"] for s in published] == ["PUBLISH"]

    def routes(metric: Any) -> set[str | None]:
        return {
            next((a.value.string_value for a in p.attributes if a.key == "http.route"), None)
            for p in metric.histogram.data_points
        }

    def histogram() -> Any:  # an export after both requests (cumulative: it holds both)
        with receiver.lock:
            metric = receiver.metrics.get("http.server.request.duration")
        return metric if metric is not None and "/tasks/bulk" in routes(metric) else None

    metric = _wait(histogram)
    assert metric.unit == "s"
    assert {"/tasks", "/tasks/bulk"} <= routes(metric)
