"""The Custom Access Token hook as Supabase Auth calls it: latency and round trips per call.

Supabase Auth waits for this hook on every token it issues (sign-in and every refresh), with
a 5-second timeout; the target is a p50 under 20 ms on this machine with one Postgres round
trip (the memberships query; the statement commits by itself, `single_statement=True`).

Two servers of the hooks function (functions-framework's app under gunicorn, as deployed):
one straight to Postgres and the Upstash bridge for the latency (the counting proxies hold
each reply 2 ms, which would be measured too), one behind counting proxies
(fnkit/bench/proxy.py) for the round trips. Every call is signed as Supabase Auth signs it
(Standard Webhooks, the reference library, a fresh `webhook-id` each: the replay check is one
Upstash `SET NX`, counted too) for a bench user with one membership; sequential requests.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from typing import Any

import httpx

from fnkit.bench import servers
from fnkit.bench.proxy import CountingProxy
from fnkit.bench.roundtrips import Trips, count_calls, postgres_target, proxied_url
from fnkit.bench.services import ROOT, Services
from fnkit.bench.stats import percentile
from fnkit.devenv import DEV_AUTH_HOOK_SECRET
from fnkit.hook_signing import auth_hook_headers

PATH = "/custom-access-token"
WARMUP = 20


def event(user_id: str) -> bytes:
    """What Supabase Auth sends: the user and the claims it is about to sign."""
    now = int(time.time())
    claims = {
        "iss": "http://127.0.0.1:54321/auth/v1", "aud": "authenticated", "exp": now + 3600,
        "iat": now, "sub": user_id, "email": f"{user_id}@example.com", "phone": "",
        "app_metadata": {"provider": "email"}, "user_metadata": {}, "role": "authenticated",
        "aal": "aal1", "amr": [{"method": "password", "timestamp": now}],
        "session_id": "00000000-0000-4000-8000-000000000000", "is_anonymous": False,
    }  # fmt: skip
    body = {"user_id": user_id, "claims": claims, "authentication_method": "password"}
    return json.dumps(body).encode()


def _call(client: httpx.Client, user_id: str) -> int:
    content = event(user_id)
    headers = {
        **auth_hook_headers(content, DEV_AUTH_HOOK_SECRET),
        "Content-Type": "application/json",
    }
    response = client.post(PATH, content=content, headers=headers)
    if response.status_code == 200:  # the answer must be the hook's, with the memberships
        assert "memberships" in response.json()["claims"], response.text[:300]
    return response.status_code


def latencies(base: str, users: list[str], n: int) -> dict[str, Any]:
    samples: list[float] = []
    statuses: list[int] = []
    with httpx.Client(base_url=base, timeout=30) as client:
        for i in range(WARMUP):
            _call(client, users[i % len(users)])
        for i in range(n):
            user = users[(i * 7) % len(users)]
            started = time.perf_counter()
            statuses.append(_call(client, user))
            samples.append((time.perf_counter() - started) * 1000)
    ordered = sorted(samples)
    return {
        "requests": n,
        "p50_ms": percentile(ordered, 50),
        "p99_ms": percentile(ordered, 99),
        "ok": all(s == 200 for s in statuses),
    }


def trips(base: str, users: list[str], n: int, pg: CountingProxy, up: CountingProxy) -> Trips:
    # Signed as each call is sent: a fresh webhook-id and timestamp every time.
    return count_calls(
        base, lambda client, i: _call(client, users[(i * 7) % len(users)]), n, pg, up
    )


def measure(services: Services, quick: bool) -> dict[str, Any]:
    n, n_trips = (200, 10) if quick else (1000, 30)
    source = ROOT / "functions" / "hooks" / "main.py"
    settings = {"AUTH_HOOK_SECRETS": DEV_AUTH_HOOK_SECRET}
    target, params = postgres_target(services.database_url)
    pg = CountingProxy(target).start()
    up = CountingProxy(("127.0.0.1", int(services.bridge.url.rsplit(":", 1)[1]))).start()
    direct = servers.gunicorn("hooks-latency", source, services, workers=1, threads=4, **settings)
    counted = servers.gunicorn(
        "hooks-trips",
        source,
        services,
        workers=1,
        threads=4,
        DATABASE_URL=proxied_url(params, pg.port),
        UPSTASH_REDIS_REST_URL=f"http://127.0.0.1:{up.port}",
        **settings,
    )
    try:
        direct.wait()
        counted.wait()
        result: dict[str, Any] = {"custom_access_token": latencies(direct.url, services.users, n)}
        counts = asdict(trips(counted.url, services.users, n_trips, pg, up))
        counts["ok"] = all(s == 200 for s in counts.pop("statuses"))
        result["custom_access_token"]["trips"] = {"requests": n_trips, **counts}
    finally:
        direct.stop()
        counted.stop()
        pg.stop()
        up.stop()
    return result


if __name__ == "__main__":  # quick manual check: python -m fnkit.bench.hooks
    services = Services.start(users=200)
    try:
        print(json.dumps(measure(services, quick=True), indent=2))
    finally:
        services.stop()
