"""What telemetry costs: off, on and sampled, on and not sampled (issue 24's targets).

* Cold start to the first 2xx of `GET /tasks` (token, rate limit, database), the tasks bundle
  under functions-framework with the bundles' interpreter, as the cold-start section runs it;
  the three modes in rounds (each round in another order), a fresh process each, the median
  reported. "On" exports over OTLP/HTTP to a loopback sink that answers 200; "not sampled" is
  `OTEL_TRACES_SAMPLER=always_off` (metrics are still recorded and exported).
* CPU per request: the same process then serves `GET /tasks` sequentially; the CPU time of the
  whole process tree (psutil: user + system, exporter threads included) over the requests and
  the export of their last spans (every mode idles past the batch delay before the reading),
  divided by their number.
* The SDK's own import (sdk, resources, both OTLP/HTTP exporters) and `shared.telemetry` (with
  its span export) on top,
  each in a fresh interpreter: the part of the "on" cold start no runtime code can remove.
* Off: the OpenTelemetry modules a fresh process of the bundle loads (none, or the target is
  missed), and the runtime's off-path checks timed in this process (`App.handle`'s check and
  call, the environ store, one Postgres and one Upstash round trip's check, the rate limit's
  counter check: what a `GET /tasks` pays).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from fnkit.bench import runtime_env, servers
from fnkit.bench.coldstart import OWNER, first_response, probe_path
from fnkit.bench.services import ROOT, Services

MODES = ("off", "sampled", "not sampled")
# The batch span processor exports when 512 spans wait or after this delay (5 s by default);
# after its requests every mode idles twice this long, so the spans still queued are exported
# (encoded and posted by the processor's thread) within the CPU measured.
EXPORT_DELAY_MS = 500
SDK_IMPORT = (  # the runtime first (a function has it loaded already), then what "on" adds
    "import json, sys, time; sys.path.insert(0, sys.argv[1]); import shared.app\n"
    "began = time.perf_counter()\n"
    "import opentelemetry.sdk.trace, opentelemetry.sdk.metrics, opentelemetry.sdk.resources\n"
    "import opentelemetry.exporter.otlp.proto.http.trace_exporter\n"
    "import opentelemetry.exporter.otlp.proto.http.metric_exporter\n"
    "sdk = time.perf_counter() - began\n"
    "import shared.telemetry, shared.telemetry.batch\n"  # ours: the hooks, the export
    "print(json.dumps([sdk, time.perf_counter() - began - sdk]))\n"
)
LOADED_OFF = (
    "import importlib.util, os, sys; os.chdir(sys.argv[1]); sys.path.insert(0, sys.argv[1])\n"
    "spec = importlib.util.spec_from_file_location('main', 'main.py')\n"
    "module = sys.modules['main'] = importlib.util.module_from_spec(spec)\n"
    "spec.loader.exec_module(module)\n"
    "print(sum(name.split('.')[0] == 'opentelemetry' for name in sys.modules))\n"
)


class Sink:
    """An OTLP/HTTP endpoint on loopback that accepts everything and counts the bytes."""

    def __init__(self) -> None:
        from werkzeug.serving import WSGIRequestHandler, make_server

        class Quiet(WSGIRequestHandler):
            def log_request(self, *args: Any, **kwargs: Any) -> None:
                return None

        self.bytes = 0
        self.server = make_server("127.0.0.1", 0, self.wsgi, threaded=True, request_handler=Quiet)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wsgi(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        self.bytes += len(environ["wsgi.input"].read(length))
        start_response("200 OK", [("Content-Type", "application/x-protobuf")])
        return [b""]

    def stop(self) -> None:
        self.server.shutdown()


def mode_env(mode: str, sink: Sink) -> dict[str, str]:
    if mode == "off":
        return {}
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": sink.url, "OTEL_SERVICE_NAME": "tasks",
           "OTEL_BSP_SCHEDULE_DELAY": str(EXPORT_DELAY_MS)}  # fmt: skip
    if mode == "not sampled":
        env["OTEL_TRACES_SAMPLER"] = "always_off"
    return env


def _cpu_s(server: servers.Server) -> float:
    import psutil

    master = psutil.Process(server.proc.pid)
    total = 0.0
    for proc in [master, *master.children(recursive=True)]:
        times = proc.cpu_times()
        total += times.user + times.system
    return total


def cold_and_cpu(
    services: Services, runtime: runtime_env.RuntimeEnv, source: Path, env: dict[str, str],
    tokens: list[str], requests: int,
) -> tuple[float, float]:  # fmt: skip
    """(ms to the first 2xx, µs of CPU per request) of one fresh process. Requests rotate over
    the bench users' tokens, so none of them meets the route's rate limit."""
    path = probe_path("tasks")
    server = servers.functions_framework(
        "telemetry", source, services, python=runtime.python,
        python_env={**runtime.env(), **env}, bundle=True,
    )  # fmt: skip
    with server:
        cold = first_response(server, path, tokens[0])[0] * 1000
        auth = [{"Authorization": f"Bearer {token}"} for token in tokens]
        with httpx.Client(base_url=server.url, timeout=30) as client:
            for n in range(len(auth)):  # warm: pool, keep-alive connections, token cache
                client.get(path, headers=auth[n]).raise_for_status()
            before = _cpu_s(server)
            for n in range(requests):
                client.get(path, headers=auth[n % len(auth)]).raise_for_status()
            time.sleep(EXPORT_DELAY_MS / 1000 * 2)  # the last batch's export counts too
            cpu = (_cpu_s(server) - before) / requests * 1e6
    return cold, cpu


def _fresh(python: Path, code: str, folder: Path, env: dict[str, str]) -> str:
    done = subprocess.run(
        [str(python), "-P", "-c", code, str(folder)],
        capture_output=True, text=True, env=env, timeout=120, check=True,
    )  # fmt: skip
    return done.stdout.strip().splitlines()[-1]


def off_path_ns(loops: int = 200_000) -> dict[str, float]:
    """The runtime's telemetry checks with telemetry off, in ns each (this process)."""
    from shared import tracecontext
    from shared.app import App
    from shared.db import Transaction
    from shared.redis_client import KeepAliveTransport

    assert tracecontext.active is None

    def noop(*args: Any, **kwargs: Any) -> None:
        return None

    app, tx, transport = App.__new__(App), Transaction.__new__(Transaction), KeepAliveTransport(1)
    app.__dict__["_serve"] = tx.__dict__["_timed"] = transport.__dict__["_post"] = noop
    environ: dict[str, Any] = {}

    def per_call(call: Any) -> float:
        best = float("inf")
        for _ in range(5):
            began = time.perf_counter_ns()
            for _ in range(loops):
                call()
            best = min(best, (time.perf_counter_ns() - began) / loops)
        return best

    bare = per_call(lambda: noop(None))
    figures: dict[str, float] = {
        "handle": per_call(lambda: app.handle(None)) - bare,  # type: ignore[arg-type]
        "environ_store": per_call(lambda: environ.__setitem__("fnkit.request", app)) - bare,
        "postgres_round_trip": per_call(lambda: tx._run("select 1", None)) - bare,
        "upstash_round_trip": per_call(lambda: transport.post("u", headers={}, json=[])) - bare,
        "rate_limit_count": per_call(lambda: tracecontext.active is not None) - bare,
    }
    figures = {name: max(0.0, value) for name, value in figures.items()}  # below the noise: 0
    figures["get_tasks"] = sum(figures.values())
    return figures


def measure(services: Services, quick: bool) -> dict[str, Any]:
    from fnkit import bundle

    runs, requests = (1, 300) if quick else (5, 1000)
    runtime = runtime_env.ensure()
    tokens = [services.jwks.hs256(OWNER), *services.tokens[:199]]
    sink = Sink()
    try:
        with tempfile.TemporaryDirectory(prefix="fnkit-bench-telemetry-") as into:
            built = bundle.build("tasks", ROOT, out=Path(into))
            source = built.path / "main.py"
            env = services.bundle_env(**runtime.env())
            loaded_off = int(_fresh(runtime.python, LOADED_OFF, built.path, env))
            imports = [json.loads(_fresh(runtime.python, SDK_IMPORT, built.path, env))
                       for _ in range(3 if quick else 7)]  # fmt: skip
            cold: dict[str, list[float]] = {mode: [] for mode in MODES}
            cpu: dict[str, list[float]] = {mode: [] for mode in MODES}
            for run in range(runs):  # rounds, each in another order: drift on a shared
                for mode in MODES[run % 3 :] + MODES[: run % 3]:  # machine spreads over modes
                    ms, us = cold_and_cpu(
                        services, runtime, source, mode_env(mode, sink), tokens, requests
                    )
                    cold[mode].append(ms)
                    cpu[mode].append(us)
    finally:
        sink.stop()
    return {
        "runs": runs,
        "requests": requests,
        "environment": runtime.environment,
        "cold_ms": {mode: statistics.median(values) for mode, values in cold.items()},
        "cpu_us": {mode: statistics.median(values) for mode, values in cpu.items()},
        "sdk_import_ms": statistics.median(i[0] for i in imports) * 1000,
        "ours_import_ms": statistics.median(i[1] for i in imports) * 1000,
        "opentelemetry_modules_off": loaded_off,
        "off_path_ns": off_path_ns(50_000 if quick else 200_000),
        "exported_bytes": sink.bytes,
    }


def figures(data: dict[str, Any]) -> list[Any]:
    """The section's rows in the report (fnkit/bench/report.py)."""
    from fnkit.bench.report import Figure

    section = "9. Telemetry: tasks GET /tasks, off / on sampled / on not sampled (OTLP/HTTP)"
    cold, cpu, off = data["cold_ms"], data["cpu_us"], data["off_path_ns"]
    out = [
        Figure(
            section,
            "off: OpenTelemetry modules loaded; the checks a request pays",
            f"{data['opentelemetry_modules_off']} modules; {off['get_tasks'] / 1000:.2f} µs",
            "",
            "no import, ≤ 2 µs a request",
            data["opentelemetry_modules_off"] == 0 and off["get_tasks"] <= 2000,
            off,
        )
    ]
    for mode in ("sampled", "not sampled"):
        extra_cpu, extra_cold = cpu[mode] - cpu["off"], cold[mode] - cold["off"]
        out.append(
            Figure(
                section,
                f"on, {mode}: CPU per request",
                f"{cpu[mode]:.0f} µs ({extra_cpu:+.0f})",
                f"off {cpu['off']:.0f} µs",
                "≤ off + 100 µs",
                extra_cpu <= 100,
            )
        )
        out.append(
            Figure(
                section,
                f"on, {mode}: cold start to first 2xx",
                f"{cold[mode]:.0f} ms ({extra_cold:+.0f})",
                f"off {cold['off']:.0f} ms; SDK import {data['sdk_import_ms']:.0f} ms"
                f" + shared.telemetry {data['ours_import_ms']:.0f} ms",
                "grows ≤ the SDK's import",
                extra_cold <= data["sdk_import_ms"],
            )
        )
    return out
