"""The telemetry section of `make bench`: its rows and verdicts, from made-up figures, and the
off-path checks timed for real (no service needed)."""

from __future__ import annotations

from fnkit.bench import report
from fnkit.bench.telemetry import off_path_ns


def _results() -> dict:
    return {
        "runs": 1,
        "requests": 10,
        "environment": "bundle venv",
        "cold_ms": {"off": 900.0, "sampled": 1080.0, "not sampled": 1300.0},
        "cpu_us": {"off": 1500.0, "sampled": 1580.0, "not sampled": 1520.0},
        "sdk_import_ms": 200.0,
        "ours_import_ms": 10.0,
        "opentelemetry_modules_off": 0,
        "off_path_ns": {"handle": 60.0, "get_tasks": 250.0},
        "exported_bytes": 1000,
    }


def test_the_section_renders_with_its_targets() -> None:
    text = report.render({"telemetry": _results()})
    assert "9. Telemetry" in text
    assert (
        "| off: OpenTelemetry modules loaded; the checks a request pays | 0 modules; 0.25 µs"
        in text
    )
    assert (
        "| on, sampled: CPU per request | 1580 µs (+80) | off 1500 µs | ≤ off + 100 µs | met |"
        in text
    )
    assert "| on, not sampled: cold start to first 2xx | 1300 ms (+400) |" in text
    assert "MISSED" in text  # +400 ms is more than the SDK's 200 ms import


def test_the_off_path_checks_are_timed() -> None:
    figures = off_path_ns(loops=2000)
    assert set(figures) >= {"handle", "postgres_round_trip", "upstash_round_trip", "get_tasks"}
    assert all(value >= 0 for value in figures.values())
