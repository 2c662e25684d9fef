"""Smoke tests of the benchmark's parts: the counting proxy, parsing, the report. No timing."""

from __future__ import annotations

import json
import socket
import threading

import psycopg
import pytest

from fnkit.bench import load, loadgen, report
from fnkit.bench.proxy import CountingProxy
from fnkit.bench.roundtrips import postgres_target, proxied_url
from fnkit.bench.stats import median, percentile


@pytest.fixture
def echo_server():
    """Answers every chunk it receives with `ok:<chunk>`."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                while data := conn.recv(1024):
                    conn.sendall(b"ok:" + data)

    threading.Thread(target=serve, daemon=True).start()
    yield listener.getsockname()[1]
    listener.close()


def _read_until(sock: socket.socket, end: bytes) -> bytes:
    data = b""
    while not data.endswith(end):
        data += sock.recv(1024)
    return data


def test_proxy_counts_waits_not_writes(echo_server):
    proxy = CountingProxy(("127.0.0.1", echo_server), delay=0.05).start()
    try:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
            sock.sendall(b"a")
            assert _read_until(sock, b"a") == b"ok:a"
            sock.sendall(b"b")  # two writes before any answer: one exchange
            sock.sendall(b"c")
            assert _read_until(sock, b"c") in (b"ok:bok:c", b"ok:bc")
            sock.sendall(b"d")
            assert _read_until(sock, b"d") == b"ok:d"
        counts = proxy.counts()
        assert counts.exchanges == 3
        assert counts.connections == 1
        assert counts.bytes_up == 4
    finally:
        proxy.stop()


def test_proxy_counts_postgres_pipeline_as_one(database_url):
    target, params = postgres_target(database_url)
    proxy = CountingProxy(target).start()
    try:
        with psycopg.connect(proxied_url(params, proxy.port), autocommit=True) as conn:
            before = proxy.counts()
            conn.execute("select 1").fetchone()
            conn.execute("select 2").fetchone()
            middle = proxy.counts()
            with conn.pipeline():
                conn.execute("select 1")
                conn.execute("select 2")
            after = proxy.counts()
        assert (middle - before).exchanges == 2
        assert (after - middle).exchanges == 1
        assert (after - before).connections == 0
    finally:
        proxy.stop()


def test_postgres_target_tcp_and_socket():
    target, params = postgres_target("postgresql://postgres:pw@127.0.0.1:5433/app")
    assert target == ("127.0.0.1", 5433)
    assert proxied_url(params, 9999) == (
        "postgresql://postgres:pw@127.0.0.1:9999/app?sslmode=disable"
    )
    target, _ = postgres_target("postgresql://postgres@/app?host=/tmp/pg&port=5432")
    assert target == "/tmp/pg/.s.PGSQL.5432"


def test_percentiles():
    values = [float(n) for n in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile([], 50) == 0.0
    assert median([3.0, 1.0, 2.0]) == 2.0


def test_load_generators_build_requests():
    lua = load._lua("POST", '{"a": 1}', ["t1", "t2"])
    assert '"t1","t2"' in lua and "wrk.format" in lua
    requests = loadgen.build_requests("http://127.0.0.1:1/tasks?x=1", "POST", "{}", ["tok"])
    assert requests[0].startswith(b"POST /tasks?x=1 HTTP/1.1\r\n")
    assert b"Authorization: Bearer tok\r\n" in requests[0]
    assert requests[0].endswith(b"Content-Length: 2\r\n\r\n{}")


def _load_result(rps: float) -> dict:
    cpu = {"server": 4.0, "postgres": 1.5}
    return {
        "rps": rps,
        "p50_ms": 20.0,
        "p99_ms": 80.0,
        "errors": 0,
        "requests": 1000,
        "seconds": 10.0,
        "cpu_ms": cpu,
    }


def _sample_results() -> dict:
    """A run's raw results, shaped like fnkit.bench.runner's (made-up figures)."""
    case = {"p50_us": 150.0, "p99_us": 400.0, "wall_p50_us": 160.0, "wall_p99_us": 500.0}
    trips = {
        "postgres": 1.0,
        "upstash": 1.0,
        "pg_connections": 0,
        "upstash_connections": 0,
        "ok": True,
    }
    imports = {
        "at_import": [],
        "after_request": [],
        "status": 200,
        "load_imports_ms": 300.0,
        "request_imports_ms": 100.0,
        "load_imports": [{"module": "pydantic", "ms": 80.0}],
        "request_imports": [{"module": "psycopg", "ms": 60.0}],
    }
    beyond = {
        "load_cpu_ms": 12.0,
        "request_cpu_ms": 8.0,
        "request_ms": 15.0,
        "extra_modules": 30,
        "extra_imports_ms": 11.0,
        "extra_imports": [{"module": "shared.settings", "ms": 2.0}],
        "not_loaded": ["psycopg_pool"],
        "request_profile": [{"part": "psycopg", "ms": 4.0}],
    }
    function = {
        "cold_ms": 900.0,
        "cpu_ms": 330.0,
        "beyond_libraries": beyond,
        "listening_ms": 700.0,
        "worker_rss_mib": 70.0,
        "total_pss_mib": 80.0,
        "failed_requests": 0,
        "imports": imports,
        "needs_supabase": False,
    }
    return {
        "meta": {"quick": True, "machine": "test machine", "notes": ["a note"]},
        "overhead": {
            "requests_per_case": 10,
            "bare": {**case, "p50_us": 50.0},
            "hs256": case,
            "es256": case,
            "hs256_uncached": case,
            "es256_uncached": case,
        },
        "roundtrips": {
            "requests": 10,
            "ours": {
                "get": trips,
                "post": {**trips, "postgres": 3.0},
                "post_idempotency_key": trips,
            },
            "peer": {"get": {**trips, "postgres": 4.0}, "post": trips},
        },
        "coldstart": {
            "runs": 1,
            "requests": 1000,
            "functions": {
                "hello": {**function, "cold_ms": 800.0},
                "tasks": {**function, "cold_es256_ms": 900.0, "cold_runs_ms": [700.0, 900.0]},
                "members": {**function, "needs_supabase": True},
            },
            "peer": {"name": "FastAPI peer (GET /tasks, uvicorn)", "cold_ms": 1500.0},
            "libraries": {
                "name": "libraries alone",
                "cold_ms": 880.0,
                "cpu_ms": 310.0,
                "cold_runs_ms": [690.0, 880.0, 990.0],
            },
        },
        "load": {
            "generator": "wrk",
            "connections": 16,
            "seconds": 4.0,
            "layout": "2 x 8",
            "get": {
                "ours": _load_result(300),
                "floor": _load_result(400),
                "peer": _load_result(250),
            },
            "post": {
                "ours": _load_result(100),
                "floor": _load_result(400),
                "peer": _load_result(250),
            },
        },
        "outbox": {
            "round_trips_with": 2.0,
            "round_trips_without": 2.0,
            "write_ms_with": 6.2,
            "write_ms_without": 5.4,
            "messages_per_s": 900.0,
            "dispatched": 500,
            "dispatch_s": 0.6,
        },
        "hooks": {
            "custom_access_token": {
                "requests": 200,
                "p50_ms": 4.5,
                "p99_ms": 9.0,
                "ok": True,
                "trips": {"requests": 10, **trips, "ok": True},
            }
        },
        "growth": {
            "requests": 10,
            "sizes": {
                "1000": {"p50_ms": 10.0, "p99_ms": 20.0, "db_p50_ms": 1.0, "fill_s": 0.1},
                "10000": {"p50_ms": 10.5, "p99_ms": 20.0, "db_p50_ms": 1.0, "fill_s": 0.5},
                "100000": {"p50_ms": 11.0, "p99_ms": 20.0, "db_p50_ms": 1.1, "fill_s": 5.0},
            },
        },
    }


def test_report_renders_every_section(tmp_path):
    results = _sample_results()
    text = report.render(results)
    for heading in (
        "Pipeline overhead",
        "Round trips",
        "Cold start",
        "Load",
        "Growth",
        "Memory",
        "Auth hooks",
        "Outbox",
    ):
        assert heading in text
    assert "| HS256 token (verified once, then cached) |" in text
    assert "| GET /tasks?limit=50 → Postgres | 1 | FastAPI peer 4 | 1 | met |" in text
    assert "| POST /tasks: requests/s | 100 (25% of floor), 0 errors |" in text
    assert "| latency p50 (sequential, client side) | 4.50 ms (p99 9.00 ms) |" in text
    assert "| round trips per call → Postgres | 1 |  | 1 | met |" in text
    assert "MISSED" in text
    assert "Targets met:" in text
    assert "| FastAPI peer (GET /tasks, uvicorn) | 1500 ms (+620) |" in text
    # The cold-start target is set against libraries alone: +30 ms, +60 with supabase-py.
    # Beside each median, the fastest run (the least disturbed) against the floor's fastest.
    assert (
        "| tasks | HS256 900 ms (+20; best 700 +10; CPU 330, +20; listening at 700),"
        " ES256 900 ms (+20)"
    ) in text
    assert "≤ libraries alone + 30 ms (HS256 and ES256), no supabase-py | met |" in text
    assert "≤ libraries alone + 60 ms (HS256 and ES256), supabase-py at first use | met |" in text
    assert "| libraries alone | 880 ms (+80; CPU 310, -20) | hello world 800 ms" in text
    assert "| libraries alone 880 ms; best 690; CPU 310; hello world 800 ms" in text
    assert (
        "- tasks: create_app +12 ms CPU, of which 30 modules libraries alone does not load, 11 ms"
        " (shared.settings 2.0); not loaded: psycopg_pool; first request +8 ms CPU, +15 ms wall"
        " (its profile, own ms by part: psycopg 4.0)"
    ) in text
    out = tmp_path / "bench.json"
    report.write_json(results, out)
    written = json.loads(out.read_text())
    assert {f["section"][:2] for f in written["figures"]} == {
        "1.",
        "2.",
        "3.",
        "4.",
        "5.",
        "6.",
        "7.",
        "8.",
    }
    assert (
        "| write + emit → Postgres round trips | 2 (+0) | write alone 2 | no extra round trip | met |"
        in text
    )
    assert all(f["met"] in (True, False, None) for f in written["figures"])


def test_meta_reports_the_speed_probes_spread():
    """The machine's speed, probed before every section, is printed with its spread."""
    from types import SimpleNamespace

    from fnkit.bench import runner

    assert runner.speed_probe_ms() > 0
    services = SimpleNamespace(bridge=SimpleNamespace(embedded=True), server_version="15.2 x")
    meta = runner._meta(True, services, 0.0, 0.1, 0.2, {}, [10.0, 20.0, 15.0])
    assert meta["speed_probe_ms"] == [10.0, 20.0, 15.0]
    assert any("10.0 to 20.0 ms, a spread of 100%" in note for note in meta["notes"])
