"""Telemetry off: no OpenTelemetry module is loaded, and the log lines still carry the trace.

The import test runs in a fresh interpreter (this one has imported OpenTelemetry for the other
telemetry tests): it loads the tasks function and serves a request through it, with no `OTEL_*`
variable, then with an endpoint but `OTEL_SDK_DISABLED=true`, and, as the control, with an
endpoint set.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from shared import logs, tracecontext
from tests.fixtures.server import ROOT, Served

PROBE = """
import importlib.util, io, json, sys
import flask
from shared import logs
spec = importlib.util.spec_from_file_location("tasks_main", sys.argv[1])
module = sys.modules["tasks_main"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
app = flask.Flask("probe")
app.add_url_rule("/<path:path>", "fn", lambda path: module.handler(flask.request))
stream = io.StringIO()
logs.set_stream(stream)
headers = {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
response = app.test_client().get("/tasks/openapi.json", headers=headers)
line = json.loads(stream.getvalue().splitlines()[-1])
loaded = sorted(name for name in sys.modules if name.split(".")[0] == "opentelemetry")
print(json.dumps({"status": response.status_code, "loaded": loaded, "line": line, "log": stream.getvalue()[-2000:]}))
"""


def _probe(function_env: dict[str, str], **otel: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(function_env)
    env.update(otel)
    env.pop("FNKIT_TRACE_CONSOLE", None)
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(ROOT / "functions" / "tasks" / "main.py")],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    assert result["status"] == 200, result["log"]
    return result


def test_no_opentelemetry_module_is_loaded_when_telemetry_is_off(
    function_env: dict[str, str],
) -> None:
    off = _probe(function_env)
    assert off["loaded"] == []
    disabled = _probe(
        function_env,
        OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9",
        OTEL_SDK_DISABLED="true",
    )
    assert disabled["loaded"] == []
    # The log line still carries the caller's trace, from the headers.
    line = off["line"]
    assert line["logging.googleapis.com/trace"].endswith("4bf92f3577b34da6a3ce929d0e0e4736")
    assert line["logging.googleapis.com/spanId"] == "00f067aa0ba902b7"
    assert line["logging.googleapis.com/trace_sampled"] is True
    # The control: an endpoint turns it on (nothing listens there; nothing is sent yet).
    on = _probe(
        function_env,
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT="http://127.0.0.1:9/v1/traces",
        OTEL_BSP_SCHEDULE_DELAY="60000",
    )
    assert "opentelemetry.sdk.trace" in on["loaded"]
    assert on["line"]["logging.googleapis.com/trace"].endswith("4bf92f3577b34da6a3ce929d0e0e4736")
    assert on["line"]["logging.googleapis.com/spanId"] != "00f067aa0ba902b7"  # its own span


@pytest.mark.parametrize(
    ("headers", "trace", "span", "sampled"),
    [
        (
            {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"},
            "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", False,
        ),
        (
            {"X-Cloud-Trace-Context": "105445aa7843bc8bf206b12000100000/10;o=1"},
            "105445aa7843bc8bf206b12000100000", "000000000000000a", True,
        ),
        (  # traceparent wins, as it does for the server span's parent
            {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
             "X-Cloud-Trace-Context": "105445aa7843bc8bf206b12000100000/10;o=1"},
            "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", True,
        ),
        (  # an invalid traceparent is ignored; the Cloud header stands
            {"traceparent": "00-00000000000000000000000000000000-b7ad6b7169203331-01",
             "X-Cloud-Trace-Context": "105445aa7843bc8bf206b12000100000/10;o=0"},
            "105445aa7843bc8bf206b12000100000", "000000000000000a", False,
        ),
    ],
)  # fmt: skip
def test_log_lines_carry_trace_and_span_ids_with_telemetry_off(
    served: Served, headers: dict[str, str], trace: str, span: str, sampled: bool
) -> None:
    assert tracecontext.active is None
    stream = io.StringIO()
    logs.set_stream(stream)
    try:
        with served.client() as client:
            # /echo/boom logs the exception and the request: every line carries the ids.
            response = client.get("/echo/boom", headers={**headers, "X-Request-Id": "off-ids"})
    finally:
        logs.set_stream(sys.stdout)
    assert response.status_code == 500
    lines = [json.loads(x) for x in stream.getvalue().splitlines()]
    mine = [line for line in lines if line.get("request_id") == "off-ids"]
    assert len(mine) == 2  # the exception's line and the request's
    for line in mine:
        assert line["logging.googleapis.com/trace"].endswith(trace)
        assert line["logging.googleapis.com/spanId"] == span
        assert line["logging.googleapis.com/trace_sampled"] is sampled


def test_the_functions_folder_has_no_opentelemetry_import() -> None:
    """Only shared/telemetry/ imports OpenTelemetry (shared.tracecontext imports it lazily)."""
    offenders = [
        path
        for folder in ("shared", "functions")
        for path in Path(ROOT, folder).rglob("*.py")
        if "opentelemetry" in path.read_text() and "telemetry" not in path.parts
    ]
    assert offenders == []


def test_every_bundle_can_turn_telemetry_on() -> None:
    """The SDK and the exporter are in a bundle's requirements (pinned), unused until asked."""
    from fnkit import bundle

    found = bundle.scan(ROOT / "functions" / "health" / "main.py", ROOT / "shared")
    names = {pin.name for pin in bundle.requirements_for(found.modules)}
    assert {"opentelemetry-sdk", "opentelemetry-exporter-otlp-proto-http"} <= names
