"""The load and growth rows of the report: requests per second beside the floor and the
FastAPI peer, CPU per request by process and by part, prepared statements both ways, and what
a million requests cost on Cloud Run (fnkit/bench/load.py, cpuparts.py, cost.py, growth.py).
"""

from __future__ import annotations

from typing import Any

from fnkit.bench.figure import Figure


def _rounds(rounds: int) -> str:
    return f" in {rounds} interleaved rounds" if rounds > 1 else ""


def load(data: dict[str, Any]) -> list[Figure]:
    out = []
    section = (
        f"4. Load: {data['connections']} clients, {data['seconds']:.0f} s per target"
        f"{_rounds(data.get('rounds', 1))}, "
        f"{data['layout']}, load from {data['generator']}"
    )
    for case, label in (("get", "GET /tasks?limit=50"), ("post", "POST /tasks")):
        row = data[case]
        ours, floor, peer = row["ours"], row["floor"], row["peer"]
        share = ours["rps"] / floor["rps"] if floor["rps"] else 0.0
        errors = ours["errors"]
        out.append(
            Figure(
                section,
                f"{label}: requests/s",
                f"{ours['rps']:.0f} ({share:.0%} of floor), {errors} errors",
                f"floor {floor['rps']:.0f}, peer {peer['rps']:.0f} ({peer['errors']} errors)",
                "≥ 60% of floor, > peer, 0 errors",
                share >= 0.6 and ours["rps"] > peer["rps"] and errors == 0,
                {"ours": ours, "floor": floor, "peer": peer, "share_of_floor": share},
            )
        )
        out.append(
            Figure(
                section,
                f"{label}: latency p50 / p99",
                f"{ours['p50_ms']:.1f} / {ours['p99_ms']:.1f} ms",
                f"floor {floor['p50_ms']:.1f} / {floor['p99_ms']:.1f}, "
                f"peer {peer['p50_ms']:.1f} / {peer['p99_ms']:.1f}",
                "",
                None,
            )
        )
        out.append(
            Figure(
                section,
                f"{label}: CPU ms per request",
                _cpu(ours["cpu_ms"]),
                f"floor {_cpu(floor['cpu_ms'])}; peer {_cpu(peer['cpu_ms'])}",
                "",
                None,
            )
        )
    return out


def prepared(data: dict[str, Any]) -> list[Figure]:
    """GET /tasks in the other DB_PREPARED_STATEMENTS mode, beside its own floor."""
    row = data["get"]
    if "ours_other" not in row:
        return []
    mode = "off" if data.get("prepared") else "on"
    out = []
    for name, ours_key, floor_key in (
        (
            f"prepared statements {'on' if data.get('prepared') else 'off'} (the run's)",
            "ours",
            "floor",
        ),
        (f"prepared statements {mode}", "ours_other", "floor_other"),
    ):
        ours, floor = row[ours_key], row[floor_key]
        share = ours["rps"] / floor["rps"] if floor["rps"] else 0.0
        pg, floor_pg = ours["cpu_ms"].get("postgres", 0.0), floor["cpu_ms"].get("postgres", 0.0)
        out.append(
            Figure(
                "4. Load: GET /tasks?limit=50 by DB_PREPARED_STATEMENTS (same rounds)",
                name,
                f"{ours['rps']:.0f} req/s ({share:.0%} of its floor), Postgres {pg:.2f} ms"
                f" CPU per request, {ours['errors']} errors",
                f"floor {floor['rps']:.0f} req/s, Postgres {floor_pg:.2f} ms",
                "",
                None,
                {"ours": ours, "floor": floor, "share_of_floor": share},
            )
        )
    return out


_PART_NAMES = {
    "http_server": "HTTP server (gunicorn), by difference: the load's server CPU minus the rest",
    "framework": "framework (functions-framework, Flask, werkzeug)",
    "pipeline": "runtime pipeline (auth, validation, routing, the handler's own code)",
    "ratelimit": "rate-limit call (client side)",
    "query": "query: binding, send, wait (client side)",
    "rows": "row decoding (psycopg, 51 rows as dicts)",
    "json": "JSON (envelope, orjson)",
    "log": "log line",
}


def parts(data: dict[str, Any]) -> list[Figure]:
    """The CPU table per part of GET /tasks (fnkit/bench/cpuparts.py), in µs per request."""
    parts = data.get("parts")
    if not parts:
        return []
    ours, floor = data["get"]["ours"]["cpu_ms"], data["get"]["floor"]["cpu_ms"]
    in_process = parts["in_process_us"]
    measured = {"http_server": max(0.0, ours.get("server", 0.0) * 1000 - in_process)}
    measured.update(parts["parts_us"])
    section = (
        "4. Load: GET /tasks?limit=50, CPU µs per request by part (server parts in process,"
        f" {parts['requests']} requests; HTTP server = the load run's server CPU minus them)"
    )
    out = [
        Figure(section, _PART_NAMES[name], f"{us:.0f} µs", "", "", None, {"us": us})
        for name, us in measured.items()
    ]
    hello = data["get"].get("hello")
    if hello is not None:
        out.append(
            Figure(
                section,
                "check: the hello world under the same server (HTTP server and framework alone)",
                f"{hello['cpu_ms'].get('server', 0.0) * 1000:.0f} µs",
                f"{hello['rps']:.0f} req/s",
                "",
                None,
            )
        )
    out.append(
        Figure(
            section,
            "server in all",
            f"{ours.get('server', 0.0) * 1000:.0f} µs",
            f"floor {floor.get('server', 0.0) * 1000:.0f} µs (psycopg, no HTTP, no JSON)",
            "",
            None,
        )
    )
    for name, label in (
        ("postgres", "Postgres"),
        ("bridge", "Upstash bridge (local stand-in; remote in production)"),
        ("redis", "Redis behind the bridge"),
        ("generator", "load generator"),
    ):
        theirs = floor.get(name)
        out.append(
            Figure(
                section,
                label,
                f"{ours.get(name, 0.0) * 1000:.0f} µs",
                "" if theirs is None else f"floor {theirs * 1000:.0f} µs",
                "",
                None,
            )
        )
    return out


def cost(data: dict[str, Any]) -> list[Figure]:
    """A million requests on Cloud Run, from the load run's CPU and memory (fnkit/bench/cost)."""
    from fnkit.bench import cost

    section = (
        "4. Load: a million requests on Cloud Run at saturation (server CPU and memory measured"
        f" here; prices from {cost.PRICES_SOURCE}, {cost.PRICES_AS_OF})"
    )
    out = []
    for case, label in (("get", "GET /tasks?limit=50"), ("post", "POST /tasks")):
        found = cost.estimates(data).get(case, {})
        if "ours" not in found:
            continue
        peer = found.get("peer")
        out.append(
            Figure(
                section,
                label,
                cost.describe(found["ours"]),
                "" if peer is None else f"FastAPI peer {cost.describe(peer)}",
                "",
                None,
                {"ours": found["ours"], "peer": peer},
            )
        )
    return out


def _cpu(parts: dict[str, float]) -> str:
    if not parts:
        return ""
    total = sum(parts.values())
    named = ", ".join(f"{k} {v:.2f}" for k, v in parts.items() if v >= 0.005)
    return f"{total:.2f} ({named})"


def growth(data: dict[str, Any]) -> list[Figure]:
    out = []
    sizes = data["sizes"]
    base = sizes["1000"]["p50_ms"]
    for size, entry in sizes.items():
        p50 = entry["p50_ms"]
        last = size == "100000"
        db = entry.get("db_p50_ms")
        out.append(
            Figure(
                "5. Growth: GET /tasks?limit=50, p50 by tasks in the workspace"
                + _rounds(data.get("rounds", 1)),
                f"{int(size):,} tasks",
                f"{p50:.2f} ms ({p50 / base:.2f}x 1k)" + (f", db {db:.2f} ms" if db else ""),
                "",
                "≤ 1.5x the 1k figure" if last else "",
                p50 <= 1.5 * base if last else None,
                entry,
            )
        )
    return out
