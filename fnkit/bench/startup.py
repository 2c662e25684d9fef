"""Where a cold start's time goes, beyond the "libraries alone" floor.

Two views, both printed per function in the cold-start section (fnkit/bench/report.py):

- From outside, on the real start (gunicorn, as deployed): the CPU time the master and its
  worker spent from launch to the first 2xx (`cpu_ms`). Wall time on a shared 2-core machine
  moves with whatever else runs; CPU time mostly does not, so it says more reliably whether a
  change made the start cheaper.
- From inside, in a fresh interpreter (fnkit/bench/probe.py under `-X importtime`): the load
  and the first request timed apart (CPU and wall), the first request's cProfile summed by
  package, and every module loaded with the time its own body took. `beyond()` sets a
  function's probe against the floor's: the modules it loads that the floor does not (with
  their own time, the runtime's and the function's import cost), the load's difference
  (functions-framework's own import, common to both, left out), and the first request's.

The probe runs `repeats` times and the cheapest run is kept (the least disturbed by other
work on the machine); the profile comes from one more run of its own.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from fnkit.bench import servers

PROBE = Path(__file__).with_name("probe.py")


def cpu_ms(server: servers.Server) -> float:
    """CPU (user + system) of a server's process and its children so far, in ms."""
    import psutil

    master = psutil.Process(server.proc.pid)
    procs = [master, *master.children(recursive=True)]
    return sum(sum(p.cpu_times()[:2]) for p in procs) * 1000


def _entries(lines: list[str]) -> list[tuple[str, int, int, bool]]:
    """(module, own µs, cumulative µs, at depth 0) from `-X importtime` lines."""
    rows = []
    for line in lines:
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        own, cumulative, name = line[len("import time:") :].split("|")
        top = not name.startswith("  ", 1)  # depth 0 is " name", deeper ones are indented
        rows.append((name.strip(), int(own), int(cumulative), top))
    return rows


def _top_level(lines: list[str]) -> list[tuple[str, int]]:
    """(module, cumulative µs) of the imports at depth 0, largest first."""
    rows = [(name, cumulative) for name, _, cumulative, top in _entries(lines) if top]
    return sorted(rows, key=lambda row: -row[1])


def probe_once(
    source: Path,
    path: str,
    token: str | None,
    env: dict[str, str],
    python: str | Path,
    top: int,
    profile: bool = False,
) -> dict[str, Any]:
    """One run of the probe. Run as a file under `-P`: the function's process imports
    nothing from fnkit."""
    from fnkit.bench.probe import MARKS

    argv = [str(python), "-P", "-X", "importtime", str(PROBE)]
    argv += ["--source", str(source), "--path", path] + (["--token", token] if token else [])
    argv += ["--profile"] if profile else []
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60, check=True)
    line = [x for x in done.stdout.splitlines() if x.startswith("{")][-1]
    result: dict[str, Any] = json.loads(line)
    err = done.stderr.splitlines()
    at = {mark: err.index(mark) for mark in MARKS}
    own: dict[str, float] = {}
    for phase, first, last in (("load", MARKS[0], MARKS[1]), ("request", MARKS[1], MARKS[2])):
        lines = err[at[first] + 1 : at[last]]
        rows = _top_level(lines)
        result[f"{phase}_imports_ms"] = sum(us for _, us in rows) / 1000
        result[f"{phase}_imports"] = [{"module": m, "ms": us / 1000} for m, us in rows[:top]]
        own.update({name: us / 1000 for name, us, _, _ in _entries(lines)})
    result["module_ms"] = own
    return result


def probe(
    source: Path,
    path: str,
    token: str | None,
    env: dict[str, str],
    top: int = 8,
    python: str | Path | None = None,
    repeats: int = 1,
) -> dict[str, Any]:
    """The probe's cheapest run of `repeats` (create_app + first request CPU), with the profile of
    one more run (the profiler slows what it watches, so that run is not timed)."""
    python = python or sys.executable
    runs = [probe_once(source, path, token, env, python, top) for _ in range(repeats)]
    best = min(runs, key=lambda run: run["app_cpu_ms"] + run["request_cpu_ms"])
    profiled = probe_once(source, path, token, env, python, top, profile=True)
    return {**best, "request_profile": profiled["request_profile"]}


def beyond(entry: dict[str, Any], floor: dict[str, Any], top: int = 5) -> dict[str, Any]:
    """A function's probe against the floor's: what it loads that the floor does not, and the
    load's and first request's CPU differences."""
    mine, theirs = entry["module_ms"], floor["module_ms"]
    extra = {name: ms for name, ms in mine.items() if name not in theirs}
    imports_ms = sum(extra.values())
    load_ms = entry["app_cpu_ms"] - floor["app_cpu_ms"]  # functions-framework's import apart
    return {
        "load_cpu_ms": round(load_ms, 1),
        "request_cpu_ms": round(entry["request_cpu_ms"] - floor["request_cpu_ms"], 1),
        "request_ms": round(entry["request_ms"] - floor["request_ms"], 1),
        "extra_modules": len(extra),
        "extra_imports_ms": round(imports_ms, 1),
        "extra_imports": [
            {"module": name, "ms": round(ms, 2)}
            for name, ms in sorted(extra.items(), key=lambda item: -item[1])[:top]
        ],
        "not_loaded": sorted(name for name in theirs if name not in mine and "." not in name),
        "request_profile": entry.get("request_profile", [])[:top],
    }
