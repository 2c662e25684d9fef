"""The load section's extra rows: prepared statements both ways, the CPU table per part, the
Cloud Run cost; and the overhead target judged on its worst repeat. No timing: made-up figures."""

from __future__ import annotations

from typing import Any

import pytest

from fnkit.bench import cost, report


def _result(rps: float, server: float, postgres: float) -> dict[str, Any]:
    return {
        "rps": rps,
        "p50_ms": 20.0,
        "p99_ms": 80.0,
        "errors": 0,
        "requests": 1000,
        "seconds": 10.0,
        "cpu_ms": {"server": server, "postgres": postgres, "bridge": 0.3, "generator": 0.1},
    }


def _load() -> dict[str, Any]:
    return {
        "generator": "python",
        "connections": 16,
        "seconds": 12.0,
        "rounds": 3,
        "layout": "2 workers x 8 threads",
        "prepared": False,
        "get": {
            "ours": _result(600, 1.4, 0.7),
            "floor": _result(1000, 0.5, 0.7),
            "peer": _result(300, 1.8, 0.9),
            "ours_other": _result(700, 1.4, 0.35),
            "floor_other": _result(1400, 0.5, 0.35),
            "hello": _result(2000, 0.45, 0.0),
        },
        "post": {
            "ours": _result(500, 1.2, 1.5),
            "floor": _result(550, 0.5, 1.8),
            "peer": _result(270, 1.5, 1.7),
        },
        "rss_mib": {"ours": 150.0, "peer": 200.0},
        "processes": {"ours": 3, "peer": 3},
        "parts": {
            "requests": 2000,
            "in_process_us": 1000.0,
            "postgres_us": 650.0,
            "parts_us": {
                "framework": 170.0,
                "pipeline": 280.0,
                "ratelimit": 150.0,
                "query": 230.0,
                "rows": 100.0,
                "json": 50.0,
                "log": 20.0,
            },
        },
    }


def _rows(results: dict[str, Any]) -> dict[str, report.Figure]:
    return {f"{f.section[:40]}|{f.name}": f for f in report.figures(results)}


def test_prepared_rows_show_both_modes_against_their_own_floor() -> None:
    text = report.render({"load": _load()})
    assert (
        "| prepared statements off (the run's) | 600 req/s (60% of its floor), Postgres 0.70 ms"
        in text
    )
    assert "| prepared statements on | 700 req/s (50% of its floor), Postgres 0.35 ms" in text
    assert "floor 1400 req/s, Postgres 0.35 ms" in text


def test_the_cpu_table_has_every_part_and_the_http_server_is_the_rest() -> None:
    text = report.render({"load": _load()})
    for label, us in (
        ("HTTP server (gunicorn), by difference", 400),  # 1.4 ms - 1000 µs
        ("framework (functions-framework, Flask, werkzeug)", 170),
        ("runtime pipeline", 280),
        ("rate-limit call (client side)", 150),
        ("row decoding", 100),
        ("JSON (envelope, orjson)", 50),
        ("Postgres", 700),
    ):
        assert any(
            line.startswith(f"| {label}") and f"| {us} µs |" in line for line in text.splitlines()
        ), label
    assert "| server in all | 1400 µs | floor 500 µs" in text
    assert (
        "| check: the hello world under the same server (HTTP server and framework alone) | 450 µs | 2000 req/s |"
        in text
    )


def test_cost_per_million_requests() -> None:
    got = cost.per_million(server_cpu_ms=1.5, instance_mib=100.0, upstash_commands=1.0)
    assert got["cpu_s_per_request"] == pytest.approx(0.0015)
    assert got["cpu_usd"] == pytest.approx(1500 * cost.USD_PER_VCPU_SECOND)
    assert got["gib_s_per_request"] == pytest.approx(0.0015 * 100 / 1024)
    assert got["cloud_run_usd"] == pytest.approx(
        got["cpu_usd"] + got["memory_usd"] + cost.USD_PER_MILLION_REQUESTS
    )
    assert got["upstash_usd"] == pytest.approx(10 * cost.USD_PER_100K_UPSTASH_COMMANDS)
    found = cost.estimates(_load())
    assert found["get"]["ours"]["instance_mib"] == 75.0  # 150 MiB over 2 workers
    assert found["get"]["peer"]["upstash_usd"] == 0
    text = report.render({"load": _load()})
    assert "a million requests on Cloud Run" in text and cost.PRICES_SOURCE in text
    assert "not re-read" in text


def _case(p50: float) -> dict[str, float]:
    return {"p50_us": p50, "p99_us": p50 * 2, "wall_p50_us": p50, "wall_p99_us": p50 * 2}


def _overhead(pairs: list[tuple[float, float]]) -> dict[str, Any]:
    repeats = [
        {
            "requests_per_case": 10,
            "bare": _case(bare),
            **{c: _case(ours) for c in ("hs256", "es256", "hs256_uncached", "es256_uncached")},
        }
        for bare, ours in pairs
    ]
    return {**repeats[len(repeats) // 2], "repeats": repeats}


def test_overhead_is_judged_on_the_worst_repeat() -> None:
    good = _overhead([(100, 130), (100, 135), (100, 140)])
    figures = [f for f in report.figures({"overhead": good}) if f.met is not None]
    assert figures and all(f.met for f in figures)
    assert "3 repeats: 1.30-1.40x, +30 to +40 µs" in report.render({"overhead": good})
    one_slow = _overhead([(100, 130), (100, 135), (100, 155)])  # the median repeat meets it
    figures = [f for f in report.figures({"overhead": one_slow}) if f.met is not None]
    assert figures and not any(f.met for f in figures)
