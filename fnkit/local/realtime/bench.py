"""How fast the local Realtime delivers Postgres Changes: `python -m fnkit.local.realtime.bench`.

Serves the app in a child process (so its CPU is measured apart from the clients'), on an
embedded Postgres started with wal_level=logical in a temporary folder (or `--database-url`,
which must decode and have the project's bootstrap). `--subscribers` websocket clients, each a
different user, subscribe to INSERTs on one published table with RLS (a policy letting every
authenticated user read, so each change costs one policy check per subscriber, as on Realtime);
`--changes` rows are committed one at a time. Reported: the delay from COMMIT returning to each
subscriber's receipt (p50, p99, max), the server's CPU per change and per delivery, and its CPU
while idle (before anyone joins, and with the subscribers joined but nothing changing).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
import psutil
import psycopg

from fnkit.devenv import DEV_ANON_KEY, DEV_JWT_SECRET
from fnkit.tokens import claims

TABLE = """
create table if not exists public.realtime_bench (id bigserial primary key, n int not null,
                                                  at timestamptz not null default now());
alter table public.realtime_bench enable row level security;
drop policy if exists realtime_bench_read on public.realtime_bench;
create policy realtime_bench_read on public.realtime_bench for select to authenticated
  using (true);
grant select on public.realtime_bench to authenticated;
do $$ begin
  if not exists (select 1 from pg_publication_tables where pubname = 'supabase_realtime'
                 and tablename = 'realtime_bench') then
    alter publication supabase_realtime add table public.realtime_bench;
  end if;
end $$;
"""


def _serve(database_url: str) -> None:
    """The child: serve the app and print its port."""
    import threading

    from werkzeug.serving import make_server

    from fnkit.local.config import LocalConfig
    from fnkit.local.keys import KeyRing
    from fnkit.local.realtime import create_app

    home = Path(tempfile.mkdtemp(prefix="fnkit-realtime-bench-"))
    app = create_app(LocalConfig("http://127.0.0.1:1", database_url, home, KeyRing()))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    print(server.server_port, flush=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sys.stdin.read()  # until the parent closes our stdin
    server.shutdown()
    app.close()
    shutil.rmtree(home, ignore_errors=True)


async def _subscriber(url: str, token: str, delays: dict[int, float], ready: asyncio.Event,
                      joined: list[int], total: int) -> None:  # fmt: skip
    from websockets.asyncio.client import connect

    binding = {"event": "INSERT", "schema": "public", "table": "realtime_bench"}
    async with connect(f"{url}/websocket?apikey={DEV_ANON_KEY}&vsn=1.0.0") as ws:
        join = {"config": {"postgres_changes": [binding]}, "access_token": token}
        await ws.send(json.dumps({"topic": "realtime:bench", "event": "phx_join",
                                  "payload": join, "ref": "1"}))  # fmt: skip
        while True:
            message = json.loads(await ws.recv())
            if message["event"] == "system":
                joined.append(1)
                if len(joined) == total:
                    ready.set()
            elif message["event"] == "postgres_changes":
                delays[message["payload"]["data"]["record"]["n"]] = time.perf_counter()


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


async def _idle_cpu(server: psutil.Process, seconds: float) -> float:
    """The server's CPU in ms a second while nothing changes (the pollers' own cost)."""
    before = _cpu(server)
    await asyncio.sleep(seconds)
    return round((_cpu(server) - before) * 1000 / seconds, 1)


async def _run(
    url: str, database_url: str, subscribers: int, changes: int, server: psutil.Process,
    idle_s: float,
) -> dict[str, Any]:  # fmt: skip
    idle_alone = await _idle_cpu(server, idle_s)
    ready, joined = asyncio.Event(), list[int]()
    received: list[dict[int, float]] = [{} for _ in range(subscribers)]
    tokens = [
        jwt.encode(claims(str(uuid.uuid4())), DEV_JWT_SECRET, algorithm="HS256")
        for _ in range(subscribers)
    ]
    tasks = [
        asyncio.create_task(_subscriber(url, tokens[i], received[i], ready, joined, subscribers))
        for i in range(subscribers)
    ]
    await asyncio.wait_for(ready.wait(), timeout=60)
    idle_joined = await _idle_cpu(server, idle_s)
    cpu_before, clients_before = _cpu(server), time.process_time()
    committed: dict[int, float] = {}
    with psycopg.connect(database_url, autocommit=True) as conn:
        for n in range(changes):
            conn.execute("insert into public.realtime_bench (n) values (%s)", (n,))
            committed[n] = time.perf_counter()
            await asyncio.sleep(0.05)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(len(r) < changes for r in received):
        await asyncio.sleep(0.05)
    cpu, clients_cpu = _cpu(server) - cpu_before, time.process_time() - clients_before
    for task in tasks:
        task.cancel()
    delays = [r[n] - committed[n] for r in received for n in r]
    return {"delivered": len(delays), "expected": subscribers * changes, "delays": delays,
            "cpu": cpu, "clients_cpu": clients_cpu,
            "idle": {"nobody_joined": idle_alone, "subscribers_joined": idle_joined}}  # fmt: skip


def _embedded() -> tuple[str, Path]:
    from fnkit import db
    from fnkit.local.postgres import start_embedded, stop_embedded

    home = Path(tempfile.mkdtemp(prefix="fnkit-realtime-bench-pg-"))
    data_dir = home / "pgdata"
    url = start_embedded(data_dir)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("alter system set wal_level = logical")
    stop_embedded(data_dir)
    url = start_embedded(data_dir)
    db.bootstrap(url)
    return url, home


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--changes", type=int, default=50)
    parser.add_argument("--database-url")
    parser.add_argument("--idle-seconds", type=float, default=3.0)
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        _serve(args.serve)
        return 0
    home = None
    url = args.database_url
    if url is None:
        url, home = _embedded()
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(TABLE)
        child = subprocess.Popen(
            [sys.executable, "-m", "fnkit.local.realtime.bench", "--serve", url],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert child.stdout is not None and child.stdin is not None
        port = int(child.stdout.readline())
        server = psutil.Process(child.pid)
        ws_url = f"ws://127.0.0.1:{port}"
        run = _run(ws_url, url, args.subscribers, args.changes, server, args.idle_seconds)
        result = asyncio.run(run)
        child.stdin.close()
        child.wait(timeout=30)
    finally:
        if home is not None:
            from fnkit.local.postgres import stop_embedded

            stop_embedded(home / "pgdata")
            shutil.rmtree(home, ignore_errors=True)
    cpu = result["cpu"]
    delays = sorted(result["delays"])
    report = {
        "subscribers": args.subscribers,
        "changes": args.changes,
        "delivered": f"{result['delivered']}/{result['expected']}",
        "delay_ms_p50": round(statistics.median(delays) * 1000, 1),
        "delay_ms_p99": round(delays[int(len(delays) * 0.99) - 1] * 1000, 1),
        "delay_ms_max": round(delays[-1] * 1000, 1),
        "server_cpu_ms_per_change": round(cpu * 1000 / args.changes, 2),
        "server_cpu_us_per_delivery": round(cpu * 1e6 / max(1, result["delivered"]), 1),
        "server_idle_cpu_ms_per_s": result["idle"],
        "bench_clients_cpu_ms_per_change": round(result["clients_cpu"] * 1000 / args.changes, 2),
    }
    print(json.dumps(report, indent=2))
    return 0 if result["delivered"] == result["expected"] else 1


if __name__ == "__main__":
    sys.exit(main())
