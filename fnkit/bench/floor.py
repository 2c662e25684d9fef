"""The floor for the load runs: the same SQL through a plain psycopg pool, no HTTP, no runtime.

`python -m fnkit.bench.floor --kind get|post ...` warms up, prints `warm`, waits for a line on
stdin, runs `--threads` loops for `--seconds` in one process, prints one JSON line (requests,
errors, latencies in ms, its CPU seconds) and waits for another line before it exits. The
runner starts as many processes as the function has gunicorn workers, so floor and function
get the same concurrency and the same number of Python processes (GIL included).

One "request" is what the runtime does for one call: take a pooled connection, send the
impersonation and the query in one pipeline, fetch, commit, give the connection back.
`--prepared` prepares both statements on first use (`prepare_threshold=0`), as the runtime
does when DB_PREPARED_STATEMENTS resolves to on: the runner passes the function's own setting,
so floor and function ask Postgres for the same work.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from typing import Any

import jwt


def _worker(
    args: argparse.Namespace,
    pool: Any,
    claims: list[dict[str, Any]],
    out: dict[str, Any],
    stop: float,
    offset: int,
) -> None:
    from fnkit.bench import sql

    latencies: list[float] = []
    errors = 0
    n = offset
    method, path = ("GET", "/") if args.kind == "get" else ("POST", "/")
    while time.perf_counter() < stop:
        n += 1
        who = claims[n % len(claims)]
        started = time.perf_counter()
        try:
            with pool.connection() as conn:
                with conn.pipeline():
                    conn.execute(sql.IMPERSONATE, sql.impersonation(who, method, path))
                    if args.kind == "get":
                        cursor = conn.execute(sql.LIST, (args.workspace, sql.PAGE + 1))
                    else:
                        cursor = conn.execute(sql.INSERT, (args.project, "bench task"))
                rows = cursor.fetchall()
                conn.commit()
            if not rows:
                errors += 1
        except Exception:
            errors += 1
        latencies.append((time.perf_counter() - started) * 1000)
    out["latencies"], out["errors"] = latencies, errors


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m fnkit.bench.floor")
    parser.add_argument("--url", required=True)
    parser.add_argument("--kind", choices=["get", "post"], required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--workspace", required=True)
    parser.add_argument("--project", required=True)
    parser.add_argument("--tokens-file", required=True)
    parser.add_argument("--offset", type=int, default=0)
    parser.add_argument("--prepared", action="store_true", help="server-side prepared statements")
    args = parser.parse_args(argv)

    from psycopg.rows import dict_row
    from psycopg_pool import ConnectionPool

    with open(args.tokens_file) as handle:
        tokens = json.load(handle)
    claims = [jwt.decode(t, options={"verify_signature": False}) for t in tokens]
    pool = ConnectionPool(
        args.url,
        min_size=args.threads,
        max_size=args.threads,
        kwargs={"prepare_threshold": 0 if args.prepared else None, "row_factory": dict_row},
        open=True,
    )
    pool.wait(10)
    for phase, seconds in (("warm", args.warmup), ("run", args.seconds)):
        if phase == "run":  # tell the runner we are warm; wait for its go (it starts a meter)
            sys.stdout.write("warm\n")
            sys.stdout.flush()
            sys.stdin.readline()
        outs: list[dict[str, Any]] = [{} for _ in range(args.threads)]
        started, cpu_started = time.perf_counter(), time.process_time()
        threads = [
            threading.Thread(
                target=_worker,
                args=(args, pool, claims, outs[i], started + seconds, args.offset + i * 100_003),
            )
            for i in range(args.threads)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    result = {
        "seconds": elapsed,
        "cpu_s": cpu,
        "errors": sum(o["errors"] for o in outs),
        "latencies": [round(x, 3) for o in outs for x in o["latencies"]],
    }
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    sys.stdin.readline()  # "quit": the runner has measured our backends
    pool.close()


if __name__ == "__main__":
    main()
