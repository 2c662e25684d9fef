"""fnkit/bench/startup.py: reading `-X importtime` and setting a function's probe against the
floor's (the figures printed under the cold-start table)."""

from __future__ import annotations

from fnkit.bench import startup

LINES = [
    "import time: self [us] | cumulative | imported package",
    "import time:       300 |        300 |     shared.settings",
    "import time:       200 |        500 |   shared.auth",
    "import time:       100 |        600 | shared",
    "import time:        50 |         50 | orjson",
    "not an importtime line",
]


def test_importtime_lines_give_own_and_cumulative_time_and_depth() -> None:
    assert startup._entries(LINES) == [
        ("shared.settings", 300, 300, False),
        ("shared.auth", 200, 500, False),
        ("shared", 100, 600, True),
        ("orjson", 50, 50, True),
    ]
    assert startup._top_level(LINES) == [("shared", 600), ("orjson", 50)]


def _probe(modules: dict[str, float], app: float, request: float, wall: float) -> dict:
    return {
        "module_ms": modules,
        "app_cpu_ms": app,
        "request_cpu_ms": request,
        "request_ms": wall,
        "request_profile": [{"part": "psycopg", "ms": 4.0}],
    }


def test_beyond_counts_only_what_the_floor_does_not_load() -> None:
    floor = _probe({"psycopg": 60.0, "psycopg_pool": 5.0, "pydantic": 40.0}, 150.0, 5.0, 8.0)
    function = _probe(
        {"psycopg": 61.0, "pydantic": 39.0, "shared": 0.2, "shared.settings": 2.0, "orjson": 0.5},
        170.0,
        9.0,
        20.0,
    )
    found = startup.beyond(function, floor, top=2)
    assert found["load_cpu_ms"] == 20.0
    assert found["request_cpu_ms"] == 4.0 and found["request_ms"] == 12.0
    assert found["extra_modules"] == 3 and found["extra_imports_ms"] == 2.7
    assert found["extra_imports"] == [
        {"module": "shared.settings", "ms": 2.0},
        {"module": "orjson", "ms": 0.5},
    ]
    assert found["not_loaded"] == ["psycopg_pool"]
    assert found["request_profile"] == [{"part": "psycopg", "ms": 4.0}]
