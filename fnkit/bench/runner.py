"""`fnkit bench`: run every measurement once, print the table, write the JSON.

Sections, in order: pipeline overhead (in process), round trips (counting proxies), cold
start with imports and memory, load, growth. Each runs against the same throwaway database
(bootstrapped, migrated, seeded, plus 2,000 bench members of the seed workspace) and the
Upstash bridge over the machine's Redis (logical DB 10) or an embedded one. The database is
dropped and every process started is ended at the end, also on failure or Ctrl-C.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from fnkit.bench import (
    coldstart,
    growth,
    hooks,
    load,
    outbox,
    overhead,
    report,
    roundtrips,
    servers,
    telemetry,
)
from fnkit.bench.services import ROOT, Services

SECTIONS = ("overhead", "roundtrips", "coldstart", "load", "growth", "outbox", "hooks", "telemetry")


def _commit() -> str:
    done = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
        capture_output=True, text=True, timeout=5, check=False,
    )  # fmt: skip
    return done.stdout.strip() or "unknown"


def speed_probe_ms() -> float:
    """The best of three runs of a fixed pure-Python loop, in ms: the machine's speed now.

    Taken before every section and at the end. On a shared or throttled host the same loop
    can take twice as long from one minute to the next; the spread, printed with the report,
    says how far figures taken minutes apart can be compared."""
    best = float("inf")
    for _ in range(3):
        began = time.perf_counter()
        total = 0
        for i in range(300_000):
            total += i
        best = min(best, time.perf_counter() - began)
    return best * 1000


def _say(message: str) -> None:
    print(f"fnkit bench: {message}", file=sys.stderr, flush=True)


def run(quick: bool = False, json_path: Path | None = None, only: set[str] | None = None) -> int:
    wanted = [s for s in SECTIONS if not only or s in only]
    started = time.perf_counter()
    load_start = os.getloadavg()[0]
    results: dict[str, Any] = {}
    durations: dict[str, float] = {}
    speeds: list[float] = []
    _say(f"{'quick' if quick else 'full'} run of {', '.join(wanted)}; setting up services")
    services = Services.start()
    try:
        for section in wanted:
            speeds.append(speed_probe_ms())
            _say(f"{section} ...")
            began = time.perf_counter()
            if section == "overhead":
                results[section] = overhead.measure(quick, services.jwks)
            elif section == "roundtrips":
                results[section] = roundtrips.measure(services, quick)
            elif section == "coldstart":
                results[section] = coldstart.measure(services, quick)
            elif section == "load":
                results[section] = load.measure(services, quick)
            elif section == "growth":
                results[section] = growth.measure(services, quick)
            elif section == "outbox":
                results[section] = outbox.measure(services, quick)
            elif section == "hooks":
                results[section] = hooks.measure(services, quick)
            elif section == "telemetry":
                results[section] = telemetry.measure(services, quick)
            durations[section] = round(time.perf_counter() - began, 1)
            _say(f"{section} done in {durations[section]:.0f} s")
    finally:
        services.stop()
    load_end = os.getloadavg()[0]
    speeds.append(speed_probe_ms())
    results["meta"] = _meta(quick, services, started, load_start, load_end, durations, speeds)
    print(report.render(results), end="")
    if json_path is not None:
        report.write_json(results, json_path)
        _say(f"figures written to {json_path}")
    shutil.rmtree(servers.LOG_DIR, ignore_errors=True)
    return 0


def _meta(
    quick: bool,
    services: Services,
    started: float,
    load_start: float,
    load_end: float,
    durations: dict[str, float],
    speeds: list[float],
) -> dict[str, Any]:
    cores = os.cpu_count() or 0
    redis = "embedded fakeredis" if services.bridge.embedded else "machine Redis"
    machine = (
        f"{cores} cores, Python {platform.python_version()}, PostgreSQL "
        f"{services.server_version.split(' ')[0]}, {redis} behind the Upstash bridge, "
        f"commit {_commit()}, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC"
    )
    notes = [
        "Everything shares this machine's cores: functions, Postgres, Redis, the Upstash bridge "
        "(a Python process; real Upstash is remote) and the load generator. Compare figures "
        "side by side, not with another machine.",
        f"Load average (1 min) {load_start:.2f} at start, {load_end:.2f} at end"
        + (
            ": other work was running, timings are noisy."
            if max(load_start, load_end) > cores / 2
            else "."
        ),
        f"Speed probe (a fixed Python loop, best of 3, before each section and at the end): "
        f"{min(speeds):.1f} to {max(speeds):.1f} ms, a spread of "
        f"{max(speeds) / min(speeds) - 1:.0%}; figures from sections run at different speeds "
        "compare only within their own section.",
    ]
    return {
        "quick": quick,
        "machine": machine,
        "cores": cores,
        "python": platform.python_version(),
        "postgres": services.server_version,
        "load_generator": load.generator()
        + (f" ({load.wrk_version()})" if load.generator() == "wrk" else ""),
        "loadavg_start": load_start,
        "loadavg_end": load_end,
        "durations_s": durations,
        "speed_probe_ms": [round(x, 2) for x in speeds],
        "total_s": round(time.perf_counter() - started, 1),
        "notes": notes,
    }
