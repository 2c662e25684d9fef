"""The cold-start and memory rows of the report, and the notes on where a start's time goes.

A start is judged against "libraries alone" (the hello world loading what a database function
must load, opening its pool's first connection): within COLD_LIMIT_MS, or
COLD_LIMIT_SUPABASE_MS for a function that imports supabase-py at its first Storage or
Auth-admin call (fnkit/bench/coldstart.py, fnkit/bench/startup.py).
"""

from __future__ import annotations

from typing import Any

from fnkit.bench.figure import Figure, signed

COLD_LIMIT_MS = 30  # over libraries alone, HS256 and ES256
COLD_LIMIT_SUPABASE_MS = 60  # functions that use supabase-py (imported at first use)


def _cpu_note(entry: dict[str, Any], floor: dict[str, Any] | None) -> str:
    if "cpu_ms" not in entry:
        return ""
    diff = (
        ""
        if floor is None or "cpu_ms" not in floor
        else f", {signed(entry['cpu_ms'] - floor['cpu_ms'])}"
    )
    return f"; CPU {entry['cpu_ms']:.0f}{diff}"


def _best(runs: list[float] | None, base: float | None) -> str:
    """The fastest of several runs (the least disturbed by other work), beside the median."""
    if not runs or len(runs) < 2:
        return ""
    diff = "" if base is None else f" {signed(min(runs) - base)}"
    return f"; best {min(runs):.0f}{diff}"


def cold(data: dict[str, Any]) -> list[Figure]:
    out = []
    fns = data["functions"]
    hello = fns["hello"]["cold_ms"]
    section = "3. Cold start: launch → first 2xx (functions-framework, gunicorn)"
    hello_floor = f"hello world {hello:.0f} ms (listening at {fns['hello']['listening_ms']:.0f})"
    libraries = data.get("libraries")
    base = hello if libraries is None else libraries["cold_ms"]
    floor = hello_floor
    base_runs = None if libraries is None else libraries.get("cold_runs_ms")
    base_best = min(base_runs) if base_runs else None
    if libraries is not None:
        best = _best(libraries.get("cold_runs_ms"), None)
        floor = f"libraries alone {base:.0f} ms{best}{_cpu_note(libraries, None)}; {hello_floor}"
    for name, entry in fns.items():
        if name == "hello":
            continue
        cold = entry["cold_ms"]
        es256 = entry.get("cold_es256_ms")
        worst = max(cold, es256 if es256 is not None else cold)
        imports = entry["imports"]
        if entry["needs_supabase"]:
            limit, early = COLD_LIMIT_SUPABASE_MS, imports["at_import"]
            condition = "supabase-py at first use"
        else:
            limit, early = COLD_LIMIT_MS, imports["after_request"]
            condition = "no supabase-py"
        credential = entry.get("credential")  # a machine caller's (hooks, housekeeping)
        tokens = "HS256 and ES256" if credential is None else credential
        target = f"≤ libraries alone + {limit} ms ({tokens}), {condition}"
        met = worst - base <= limit and not early
        hs256_best = _best(entry.get("cold_runs_ms"), base_best) + _cpu_note(entry, libraries)
        note = (
            f"{credential or 'HS256'} {cold:.0f} ms ({signed(cold - base)}{hs256_best}; "
            f"listening at {entry['listening_ms']:.0f})"
        )
        if es256 is not None:
            es256_best = _best(entry.get("cold_es256_runs_ms"), base_best)
            note += f", ES256 {es256:.0f} ms ({signed(es256 - base)}{es256_best})"
        if early:
            note += f", imports {', '.join(early)} before its first answer"
        else:
            note += f", {condition}"
        out.append(
            Figure(
                section,
                name,
                note,
                floor,
                target,
                met,
                {
                    "cold_ms": cold,
                    "cold_es256_ms": es256,
                    "cpu_ms": entry.get("cpu_ms"),
                    "libraries_ms": base,
                    "hello_ms": hello,
                    "listening_ms": entry["listening_ms"],
                    "supabase_modules": imports["after_request"],
                    "supabase_modules_at_load": imports["at_import"],
                    "load_imports_ms": imports["load_imports_ms"],
                    "request_imports_ms": imports["request_imports_ms"],
                },
            )
        )
    if libraries is not None:
        out.append(
            Figure(
                section,
                libraries["name"],
                f"{libraries['cold_ms']:.0f} ms ({signed(libraries['cold_ms'] - hello)}"
                f"{_cpu_note(libraries, fns['hello'])})",
                hello_floor,
                "",
                None,
                {
                    "cold_ms": libraries["cold_ms"],
                    "cpu_ms": libraries.get("cpu_ms"),
                    "hello_ms": hello,
                },
            )
        )
    peer = data.get("peer")
    if peer is not None:
        tasks = fns.get("tasks", {}).get("cold_ms")
        against = floor + ("" if tasks is None else f"; tasks {tasks:.0f} ms")
        out.append(
            Figure(
                section,
                peer["name"],
                f"{peer['cold_ms']:.0f} ms ({signed(peer['cold_ms'] - base)})",
                against,
                "",
                None,
                {"cold_ms": peer["cold_ms"], "libraries_ms": base, "hello_ms": hello},
            )
        )
    return out


def memory(data: dict[str, Any]) -> list[Figure]:
    out = []
    fns = data["functions"]
    hello = fns["hello"].get("worker_rss_mib", 0.0)
    for name, entry in fns.items():
        if name == "hello" or "worker_rss_mib" not in entry:
            continue
        rss = entry["worker_rss_mib"]
        out.append(
            Figure(
                f"6. Memory after {data['requests']:,} requests: RSS of the worker process",
                name,
                f"{rss:.0f} MiB (master + worker PSS {entry['total_pss_mib']:.0f} MiB)",
                f"hello world {hello:.0f} MiB",
                "< 128 MiB",
                rss < 128 and entry.get("failed_requests", 0) == 0,
                {
                    "worker_rss_mib": rss,
                    "total_pss_mib": entry["total_pss_mib"],
                    "failed_requests": entry.get("failed_requests"),
                },
            )
        )
    return out


def import_lines(results: dict[str, Any]) -> list[str]:
    data = results.get("coldstart", {})
    fns = dict(data.get("functions", {}))
    if "libraries" in data:
        fns["libraries alone"] = data["libraries"]
    lines = []
    for name in ("libraries alone", "tasks"):
        if name not in fns or "imports" not in fns[name]:
            continue
        imports = fns[name]["imports"]
        for phase in ("load", "request"):
            top = ", ".join(f"{m['module']} {m['ms']:.0f}" for m in imports[f"{phase}_imports"][:6])
            total = imports[f"{phase}_imports_ms"]
            lines.append(f"- {name}, imports at {phase} ({total:.0f} ms; top-level, ms): {top}")
    return lines


def beyond_lines(results: dict[str, Any]) -> list[str]:
    """Per function, where its start's time over libraries alone goes (fnkit/bench/startup.py)."""
    lines = []
    for name, entry in results.get("coldstart", {}).get("functions", {}).items():
        more = entry.get("beyond_libraries")
        if name == "hello" or more is None:
            continue
        modules = ", ".join(f"{m['module']} {m['ms']:.1f}" for m in more["extra_imports"])
        profile = ", ".join(f"{p['part']} {p['ms']:.1f}" for p in more["request_profile"][:5])
        fewer = f"; not loaded: {', '.join(more['not_loaded'])}" if more["not_loaded"] else ""
        lines.append(
            f"- {name}: create_app {signed(more['load_cpu_ms'])} ms CPU, of which"
            f" {more['extra_modules']} modules libraries alone does not load,"
            f" {more['extra_imports_ms']:.0f} ms"
            f" ({modules}){fewer}; first request {signed(more['request_cpu_ms'])} ms CPU,"
            f" {signed(more['request_ms'])} ms wall (its profile, own ms by part: {profile})"
        )
    if lines:
        lines.insert(0, "Where the time over libraries alone goes (fnkit/bench/startup.py; ms):")
    return lines
