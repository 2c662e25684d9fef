"""Ways to read the `GET /tasks` page that the runtime does not take, measured beside its own.

`python -m fnkit.bench.alternatives [--requests N]` starts the bench's services (its own
database, seeded), impersonates a bench user exactly as `shared.db.Transaction` does, and
reads the 50-task page N times per strategy, in interleaved rounds. For each it prints the
CPU this process spent (the function's side) and the CPU the Postgres backend spent (read
from /proc, so Linux only), per page:

- `runtime`: what a read route sends today: one simple-query message `impersonation; query`,
  rows as dicts, JSON by orjson.
- `postgres-json`: the same in one message, but Postgres builds the page's JSON
  (`json_agg`), which the response would embed as is (`orjson.Fragment`).
- `prepared`: the extended protocol in one pipeline with prepared statements (psycopg's
  `prepare_threshold=0`), rows as dicts, JSON by orjson.

Why they are not taken (the session notes hold the figures): `postgres-json` moves CPU from
the function to the database rather than removing it, and the database is the fixed-size
resource of a Supabase project. `prepared` is taken where the connection allows it: the
runtime's `DB_PREPARED_STATEMENTS` (shared/pooler.py) turns it on for a direct connection or
Supavisor's session mode and keeps it off for the transaction mode docs/deploy.md prescribes
for functions, which cannot carry prepared statements. tests/test_bench_alternatives.py checks
that the three return the same page.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import psycopg
from psycopg.rows import dict_row

from fnkit.bench import sql
from fnkit.bench.services import ACME, Services

OWNER = "11111111-1111-1111-1111-111111111111"


@dataclass(frozen=True)
class Page:
    """Whose page of which workspace: the caller is impersonated, so RLS decides."""

    workspace: str = ACME
    user: str = OWNER

    def impersonation(self) -> tuple[str, ...]:
        claims = {"sub": self.user, "role": "authenticated", "aal": "aal1"}
        return sql.impersonation(claims, "GET", "/")


Reader = Callable[[psycopg.Connection[Any], Page], bytes]


def runtime(conn: psycopg.Connection[Any], page: Page) -> bytes:
    cursor = psycopg.ClientCursor(conn)
    impersonate = cursor.mogrify(sql.IMPERSONATE, page.impersonation())
    cursor.execute(impersonate + ";\n" + cursor.mogrify(sql.LIST, (page.workspace, sql.PAGE + 1)))
    cursor.nextset()
    return orjson.dumps({"data": cursor.fetchall()[: sql.PAGE]})


def postgres_json(conn: psycopg.Connection[Any], page: Page) -> bytes:
    cursor = psycopg.ClientCursor(conn)
    impersonate = cursor.mogrify(sql.IMPERSONATE, page.impersonation())
    query = f"select coalesce(json_agg(p), '[]')::text as page from ({sql.LIST}) p"
    cursor.execute(impersonate + ";\n" + cursor.mogrify(query, (page.workspace, sql.PAGE)))
    cursor.nextset()
    row = cursor.fetchone()
    assert row is not None
    return orjson.dumps({"data": orjson.Fragment(row["page"])})


def prepared(conn: psycopg.Connection[Any], page: Page) -> bytes:
    with conn.pipeline():
        conn.execute(sql.IMPERSONATE, page.impersonation())
        cursor = conn.execute(sql.LIST, (page.workspace, sql.PAGE + 1))
    return orjson.dumps({"data": cursor.fetchall()[: sql.PAGE]})


STRATEGIES: dict[str, tuple[Reader, int | None]] = {
    "runtime": (runtime, None),
    "postgres-json": (postgres_json, None),
    "prepared": (prepared, 0),
}


def connect(url: str, prepare_threshold: int | None) -> psycopg.Connection[Any]:
    return psycopg.connect(
        url, autocommit=True, row_factory=dict_row, prepare_threshold=prepare_threshold
    )


def _backend_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(
    url: str, requests: int = 1000, rounds: int = 3, page: Page = Page()
) -> dict[str, dict[str, float]]:
    """Per strategy: this process's and the Postgres backend's CPU per page, in µs."""
    conns = {name: connect(url, threshold) for name, (_, threshold) in STRATEGIES.items()}
    spent = {name: [0.0, 0.0] for name in STRATEGIES}
    try:
        for name, (read, _) in STRATEGIES.items():
            for _ in range(50):  # warm: plans cached, statements prepared
                read(conns[name], page)
        for _ in range(rounds):
            for name, (read, _) in STRATEGIES.items():
                conn, pid = conns[name], conns[name].info.backend_pid
                cpu, backend = time.thread_time(), _backend_cpu_s(pid)
                for _ in range(requests // rounds):
                    read(conn, page)
                spent[name][0] += time.thread_time() - cpu
                spent[name][1] += _backend_cpu_s(pid) - backend
    finally:
        for conn in conns.values():
            conn.close()
    pages = (requests // rounds) * rounds
    return {
        name: {"client_us": c / pages * 1e6, "postgres_us": p / pages * 1e6}
        for name, (c, p) in spent.items()
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m fnkit.bench.alternatives")
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args(argv)
    services = Services.start()
    try:
        figures = measure(services.database_url, args.requests)
    finally:
        services.stop()
    print("| strategy | function CPU per page | Postgres CPU per page | sum |")
    print("|---|---|---|---|")
    for name, row in figures.items():
        client, postgres = row["client_us"], row["postgres_us"]
        print(f"| {name} | {client:.0f} µs | {postgres:.0f} µs | {client + postgres:.0f} µs |")


if __name__ == "__main__":
    main()
