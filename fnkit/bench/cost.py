"""What a million requests cost on Cloud Run, from the CPU and memory the load run measured.

Cloud Run functions (2nd gen) are Cloud Run services, billed per request-based billing: vCPU-
seconds and GiB-seconds while an instance serves at least one request, plus a fee per
request. Many concurrent requests share one instance's billable time, so at saturation an
instance of 1 vCPU bills, per request, about the CPU time the request took:

* CPU-seconds per request: the server's CPU per request in the load run (the function's
  process tree: gunicorn, framework, runtime, handler; not Postgres, not Upstash, which are
  billed by Supabase and Upstash);
* GiB-seconds per request: that time times the memory of one instance, taken as the server's
  resident memory after the run divided by its worker processes (Cloud Run functions run one
  worker per instance). Cloud Run bills the configured memory (a deploy sets it, 256 MiB or
  more), so this is the floor of that figure.

A request alone on an idle instance bills its whole duration instead (latency, not CPU), with
the instance's minimum; these figures are the cost under load, where it matters.

The prices are Google's published list prices, NOT read during the run (the bench machine has
no internet): `PRICES_SOURCE` names the page and `PRICES_AS_OF` when they were last read.
Check the page before quoting a figure; the free tier (first 180,000 vCPU-seconds, 360,000
GiB-seconds and 2 million requests a month) is left out.
"""

from __future__ import annotations

from typing import Any

PRICES_SOURCE = "https://cloud.google.com/run/pricing (Tier 1 regions, request-based billing)"
PRICES_AS_OF = "2025 list prices as last read; not re-read for this run"
USD_PER_VCPU_SECOND = 0.000024
USD_PER_GIB_SECOND = 0.0000025
USD_PER_MILLION_REQUESTS = 0.40
# Upstash Redis pay-as-you-go (https://upstash.com/pricing, same caveat): the rate limit is one
# command per request, beside the Cloud Run figure because it is of the same size.
USD_PER_100K_UPSTASH_COMMANDS = 0.20


def per_million(
    server_cpu_ms: float, instance_mib: float, upstash_commands: float
) -> dict[str, Any]:
    """The cost of 1,000,000 requests of CPU `server_cpu_ms` each on an instance of
    `instance_mib`, in USD, with the billed units per request."""
    cpu_s = server_cpu_ms / 1000
    gib_s = cpu_s * instance_mib / 1024
    cpu_usd = cpu_s * 1e6 * USD_PER_VCPU_SECOND
    memory_usd = gib_s * 1e6 * USD_PER_GIB_SECOND
    upstash_usd = upstash_commands * 1e6 / 1e5 * USD_PER_100K_UPSTASH_COMMANDS
    return {
        "cpu_s_per_request": cpu_s,
        "gib_s_per_request": gib_s,
        "instance_mib": instance_mib,
        "cpu_usd": cpu_usd,
        "memory_usd": memory_usd,
        "requests_usd": USD_PER_MILLION_REQUESTS,
        "cloud_run_usd": cpu_usd + memory_usd + USD_PER_MILLION_REQUESTS,
        "upstash_usd": upstash_usd,
    }


def estimates(load: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """Per case (get, post) and server (ours, peer): `per_million` from a load result."""
    rss, procs = load.get("rss_mib", {}), load.get("processes", {})
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for case in ("get", "post"):
        out[case] = {}
        for name, commands in (("ours", 1.0), ("peer", 0.0)):  # the peer has no rate limit
            entry = load.get(case, {}).get(name)
            if not entry or name not in rss:
                continue
            workers = max(1, int(procs.get(name, 2)) - 1)  # one master per server
            out[case][name] = per_million(
                entry["cpu_ms"].get("server", 0.0), rss[name] / workers, commands
            )
    return out


def describe(cost: dict[str, Any]) -> str:
    return (
        f"${cost['cloud_run_usd']:.3f} (CPU ${cost['cpu_usd']:.3f}: "
        f"{cost['cpu_s_per_request'] * 1000:.2f} ms vCPU-s/request; memory "
        f"${cost['memory_usd']:.4f}: {cost['gib_s_per_request'] * 1e6:.1f} µGiB-s/request at "
        f"{cost['instance_mib']:.0f} MiB; requests ${cost['requests_usd']:.2f})"
        + (f" + Upstash ${cost['upstash_usd']:.2f}" if cost["upstash_usd"] else "")
    )
