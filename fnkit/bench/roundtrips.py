"""Round trips per request to Postgres and to Upstash, counted from outside the function.

The function runs in its own process (functions-framework's app under gunicorn) with
DATABASE_URL and UPSTASH_REDIS_REST_URL pointing at counting proxies (fnkit/bench/proxy.py)
in front of the real Postgres and the Upstash bridge. After a warm-up (pool filled, JWKS and
Lua script cached), N sequential requests are sent and the exchanges the proxies saw are
divided by N. Connections opened during the counted requests are reported too.
The FastAPI peer is counted the same way, for comparison.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import quote

import httpx
from psycopg.conninfo import conninfo_to_dict

from fnkit.bench import servers
from fnkit.bench.proxy import CountingProxy, Target
from fnkit.bench.services import ACME, ACME_PROJECT, ROOT, Services

Call = tuple[str, str, dict[str, Any] | None, dict[str, str]]  # method, path, body, headers


@dataclass
class Trips:
    postgres: float
    upstash: float
    pg_connections: int
    upstash_connections: int
    statuses: list[int]


def postgres_target(url: str) -> tuple[Target, dict[str, str]]:
    """Where the database listens (TCP or Unix socket) and the URL's other parts."""
    params = {k: str(v) for k, v in conninfo_to_dict(url).items() if v is not None}
    host = params.get("host", "127.0.0.1")
    port = int(params.get("port", "5432"))
    target: Target = f"{host}/.s.PGSQL.{port}" if host.startswith("/") else (host, port)
    return target, params


def proxied_url(params: dict[str, str], port: int) -> str:
    user = quote(params.get("user", "postgres"), safe="")
    password = f":{quote(params['password'], safe='')}" if params.get("password") else ""
    dbname = quote(params.get("dbname", "postgres"), safe="")
    return f"postgresql://{user}{password}@127.0.0.1:{port}/{dbname}?sslmode=disable"


def count(
    base: str,
    requests: list[Call],
    pg: CountingProxy,
    up: CountingProxy,
    warmup: int = 5,
) -> Trips:
    def send(client: httpx.Client, i: int) -> int:
        method, path, body, headers = requests[i]
        return client.request(method, path, json=body, headers=headers).status_code

    return count_calls(base, send, len(requests) - warmup, pg, up, warmup)


def count_calls(
    base: str,
    send: Callable[[httpx.Client, int], int],
    n: int,
    pg: CountingProxy,
    up: CountingProxy,
    warmup: int = 5,
) -> Trips:
    """Round trips per call of `send(client, i)` (it answers the status): `warmup` calls
    first, uncounted, then `n` counted ones."""
    with httpx.Client(base_url=base, timeout=30) as client:
        for i in range(warmup):
            send(client, i)
        pg0, up0 = pg.counts(), up.counts()
        statuses = [send(client, warmup + i) for i in range(n)]
        pg1, up1 = pg.counts(), up.counts()
    dpg, dup = pg1 - pg0, up1 - up0
    return Trips(dpg.exchanges / n, dup.exchanges / n, dpg.connections, dup.connections, statuses)


def measure(services: Services, quick: bool) -> dict[str, Any]:
    n = 10 if quick else 30
    target, params = postgres_target(services.database_url)
    pg = CountingProxy(target).start()
    up = CountingProxy(("127.0.0.1", int(services.bridge.url.rsplit(":", 1)[1]))).start()
    env = {
        "DATABASE_URL": proxied_url(params, pg.port),
        "UPSTASH_REDIS_REST_URL": f"http://127.0.0.1:{up.port}",
    }
    tokens = services.tokens

    def auth(i: int, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens[(i * 7) % len(tokens)]}", **extra}

    body = {"project_id": ACME_PROJECT, "title": "round trip"}
    get: list[Call] = [
        ("GET", f"/tasks?workspace_id={ACME}&limit=50", None, auth(i)) for i in range(n + 5)
    ]
    post: list[Call] = [("POST", "/tasks", body, auth(i + 1000)) for i in range(n + 5)]

    def keyed(label: str) -> list[Call]:  # keys unique per server: no replays
        return [
            ("POST", "/tasks", body, auth(i + 2000, **{"Idempotency-Key": f"rt-{label}-{i}"}))
            for i in range(n + 5)
        ]

    results: dict[str, Any] = {"requests": n}
    ours = servers.gunicorn(
        "tasks-trips",
        ROOT / "functions" / "tasks" / "main.py",
        services,
        workers=1,
        threads=4,
        **env,
    )
    peer = servers.uvicorn(
        "peer-trips", "fnkit.bench.peers.fastapi_tasks:app", services, workers=1, **env
    )
    try:
        ours.wait()
        peer.wait()
        services.bridge.flush()
        results["ours"] = {
            "get": asdict(count(ours.url, get, pg, up)),
            "post": asdict(count(ours.url, post, pg, up)),
            "post_idempotency_key": asdict(count(ours.url, keyed("ours"), pg, up)),
        }
        results["peer"] = {
            "get": asdict(count(peer.url, get, pg, up)),
            "post": asdict(count(peer.url, post, pg, up)),
        }
    finally:
        ours.stop()
        peer.stop()
        pg.stop()
        up.stop()
    for side in ("ours", "peer"):
        for case in results[side].values():
            case["ok"] = all(200 <= s < 300 for s in case.pop("statuses"))
    return results


if __name__ == "__main__":  # quick manual check: python -m fnkit.bench.roundtrips
    services = Services.start(users=200)
    try:
        print(json.dumps(measure(services, quick=True), indent=2))
    finally:
        services.stop()
