"""Turn a run's raw results into figures, each beside its floor or peer and its target.

`figures(results)` is the list the table and the JSON share; `render(results)` is the text
table (also valid Markdown, so the README can show it as it is printed).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from fnkit.bench import report_cold, report_load
from fnkit.bench.figure import Figure, verdict
from fnkit.bench.telemetry import figures as telemetry_figures

__all__ = ["Figure", "figures", "render", "write_json"]


def _overhead(data: dict[str, Any]) -> list[Figure]:
    out = []
    bare = data["bare"]["p50_us"]
    for case, label in (
        ("hs256", "HS256 token (verified once, then cached)"),
        ("es256", "ES256 token (verified once, then cached)"),
        ("hs256_uncached", "HS256 token, never seen before"),
        ("es256_uncached", "ES256 token, never seen before"),
    ):
        ours = data[case]["p50_us"]
        ratio, added = ours / bare, ours - bare
        cached = not case.endswith("_uncached")
        # Each repeat's own ratio and difference; the target is judged on the worst of them.
        repeats = data.get("repeats") or [data]
        ratios = [r[case]["p50_us"] / r["bare"]["p50_us"] for r in repeats]
        adds = [r[case]["p50_us"] - r["bare"]["p50_us"] for r in repeats]
        met = (max(ratios) <= 1.5 and max(adds) <= 100) if cached else None
        spread = (
            f"; {len(repeats)} repeats: {min(ratios):.2f}-{max(ratios):.2f}x,"
            f" +{min(adds):.0f} to +{max(adds):.0f} µs"
            if len(repeats) > 1
            else ""
        )
        out.append(
            Figure(
                "1. Pipeline overhead, CPU time per request, p50 (in-process WSGI, no network;"
                " the median repeat, judged on the worst)",
                label,
                f"{ours:.0f} µs ({ratio:.2f}x, +{added:.0f} µs{spread})",
                f"bare Flask {bare:.0f} µs",
                "≤ 1.5x and ≤ +100 µs (worst repeat)" if cached else "",
                met,
                {
                    "worst_ratio": max(ratios),
                    "worst_added_us": max(adds),
                    "repeat_ratios": ratios,
                    "repeat_added_us": adds,
                    "ours_us": ours,
                    "bare_us": bare,
                    "ratio": ratio,
                    "added_us": added,
                    "ours_p99_us": data[case]["p99_us"],
                    "bare_p99_us": data["bare"]["p99_us"],
                    "ours_wall_p50_us": data[case]["wall_p50_us"],
                    "bare_wall_p50_us": data["bare"]["wall_p50_us"],
                },
            )
        )
    return out


def _trips(data: dict[str, Any]) -> list[Figure]:
    out = []
    ours, peer = data["ours"], data["peer"]
    rows = (
        ("get", "GET /tasks?limit=50", 1, 1),
        ("post", "POST /tasks", 1, 1),
        ("post_idempotency_key", "POST /tasks with Idempotency-Key", None, None),
    )
    for case, label, pg_target, up_target in rows:
        for store, target in (("postgres", pg_target), ("upstash", up_target)):
            value = ours[case][store]
            theirs = peer.get(case, {}).get(store)
            against = "" if theirs is None else f"FastAPI peer {theirs:g}"
            if store == "upstash" and theirs is not None:
                against += " (no rate limit)"
            target_text = (
                ""
                if target is None
                else f"{target}"
                + (" (the rate limit)" if store == "upstash" and case == "post" else "")
            )
            out.append(
                Figure(
                    "2. Round trips per request, counted by a TCP proxy",
                    f"{label} → {'Postgres' if store == 'postgres' else 'Upstash'}",
                    f"{value:g}",
                    against,
                    target_text,
                    None if target is None else value <= target,
                    {
                        "ours": value,
                        "peer": theirs,
                        "ok": ours[case]["ok"],
                        "new_connections": ours[case][
                            "pg_connections" if store == "postgres" else "upstash_connections"
                        ],
                    },
                )
            )
    return out


def _hooks(data: dict[str, Any]) -> list[Figure]:
    hook = data["custom_access_token"]
    section = "8. Auth hooks: POST /hooks/custom-access-token, signed as Supabase Auth signs"
    trips = hook["trips"]
    return [
        Figure(
            section,
            "latency p50 (sequential, client side)",
            f"{hook['p50_ms']:.2f} ms (p99 {hook['p99_ms']:.2f} ms)",
            "Supabase Auth's hook timeout 5 s",
            "< 20 ms",
            hook["p50_ms"] < 20 and hook["ok"],
            {k: v for k, v in hook.items() if k != "trips"},
        ),
        Figure(
            section,
            "round trips per call → Postgres",
            f"{trips['postgres']:g}",
            "",
            "1",
            trips["postgres"] <= 1 and trips["ok"],
            trips,
        ),
        Figure(
            section,
            "round trips per call → Upstash (the webhook-id replay check)",
            f"{trips['upstash']:g}",
            "",
            "",
            None,
            trips,
        ),
    ]


def _outbox(r: dict[str, Any]) -> list[Figure]:
    section = "7. Outbox: request.emit on a write, and the dispatcher"
    extra = r["round_trips_with"] - r["round_trips_without"]
    return [
        Figure(
            section,
            "write + emit → Postgres round trips",
            f"{r['round_trips_with']:g} ({extra:+g})",
            f"write alone {r['round_trips_without']:g}",
            "no extra round trip",
            extra <= 0,
        ),
        Figure(
            section,
            "write + emit, time p50",
            f"{r['write_ms_with']:.2f} ms",
            f"write alone {r['write_ms_without']:.2f} ms",
            "",
            None,
        ),
        Figure(
            section,
            "dispatcher throughput (PUBLISH via the Upstash bridge)",
            f"{r['messages_per_s']:.0f} messages/s ({r['dispatched']} in {r['dispatch_s']:.1f} s)",
            "",
            "",
            None,
        ),
    ]


def figures(results: dict[str, Any]) -> list[Figure]:
    out: list[Figure] = []
    for key, build in (
        ("overhead", _overhead),
        ("roundtrips", _trips),
        ("coldstart", report_cold.cold),
        ("load", report_load.load),
        ("load", report_load.prepared),
        ("load", report_load.parts),
        ("load", report_load.cost),
        ("growth", report_load.growth),
        ("coldstart", report_cold.memory),
        ("outbox", _outbox),
        ("hooks", _hooks),
        ("telemetry", telemetry_figures),
    ):
        if key in results:
            out.extend(build(results[key]))
    return out


def render(results: dict[str, Any]) -> str:
    meta = results.get("meta", {})
    lines = [
        f"fnkit bench{' --quick' if meta.get('quick') else ''}: {meta.get('machine', '')}",
        "",
    ]
    section = None
    for fig in figures(results):
        if fig.section != section:
            section = fig.section
            lines += [
                "",
                f"**{section}**",
                "",
                "| measure | ours | floor / peer | target | result |",
                "|---|---|---|---|---|",
            ]
        lines.append(
            f"| {fig.name} | {fig.ours} | {fig.against} | {fig.target} | {verdict(fig.met)} |"
        )
    extra = report_cold.import_lines(results)
    if extra:
        lines += ["", *extra]
    where = report_cold.beyond_lines(results)
    if where:
        lines += ["", *where]
    notes = [*results.get("coldstart", {}).get("notes", []), *meta.get("notes", [])]
    if notes:
        lines += ["", *[f"- {note}" for note in notes]]
    all_figs = [f for f in figures(results) if f.met is not None]
    met = sum(1 for f in all_figs if f.met)
    lines += ["", f"Targets met: {met} of {len(all_figs)}."]
    return "\n".join(lines).lstrip("\n") + "\n"


def write_json(results: dict[str, Any], path: Path) -> None:
    payload = {**results, "figures": [asdict(f) for f in figures(results)]}
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
