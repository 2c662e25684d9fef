"""The outbox's price: what `request.emit` adds to a write, and how fast the dispatcher drains.

Round trips are counted by the proxy in front of Postgres (the enqueue should ride in the
COMMIT pipeline: no extra exchange); time per write is measured directly against Postgres with
and without the enqueue, interleaved. Throughput: messages stored in bulk, then one dispatcher
run delivers them to the Upstash bridge (PUBLISH), messages per second of wall time.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from fnkit.bench.proxy import CountingProxy
from fnkit.bench.roundtrips import postgres_target, proxied_url
from fnkit.bench.services import ACME_PROJECT, Services

CLAIMS = {"role": "authenticated", "sub": "11111111-1111-1111-1111-111111111111"}
INSERT = "insert into public.tasks (project_id, title) values (%s, 'bench outbox') returning id"


def _write(settings: Any, emit: bool) -> float:
    from shared.db import Transaction
    from shared.outbox import enqueue

    started = time.perf_counter()
    tx = Transaction(settings, CLAIMS, "authenticated", "POST", "/tasks", {})
    tx.value(INSERT, (ACME_PROJECT,))
    if emit:
        enqueue(tx, settings, "bench.outbox", {"n": 1}, key=None)
    tx.finish(commit=True)
    return time.perf_counter() - started


def measure(services: Services, quick: bool) -> dict[str, Any]:
    from shared.db import close_pools
    from shared.dispatch import dispatch
    from shared.service_sql import run
    from shared.settings import load_settings

    settings = load_settings({**services.env, "OUTBOX_AFTER_RESPONSE": "0"})
    target, params = postgres_target(services.database_url)
    proxy = CountingProxy(target).start()
    counted = settings._replace(database_url=proxied_url(params, proxy.port))
    n = 20 if quick else 100
    trips: dict[str, float] = {}
    try:
        _write(counted, False)
        for emit in (False, True):
            before = proxy.counts()
            for _ in range(n):
                _write(counted, emit)
            trips["with" if emit else "without"] = (proxy.counts() - before).exchanges / n
    finally:
        close_pools()
        proxy.stop()
    times: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(n * 2):
        for emit in (False, True):
            times[emit].append(_write(settings, emit))
    messages = 500 if quick else 3000
    run(
        settings,
        "select private.outbox_enqueue(gen_random_uuid(), 'bench.drain', null,"
        " jsonb_build_object('n', n), array['publish'], array['bench.drain'], 3)"
        " from generate_series(1, %s) n",
        (messages,),
    )
    run(settings, "delete from private.outbox where topic = 'bench.outbox' returning 1")
    started = time.perf_counter()
    delivered = dispatch(settings, budget_s=600)["delivered"]
    elapsed = time.perf_counter() - started
    close_pools()
    return {
        "round_trips_without": trips["without"],
        "round_trips_with": trips["with"],
        "write_ms_without": statistics.median(times[False]) * 1000,
        "write_ms_with": statistics.median(times[True]) * 1000,
        "dispatched": delivered,
        "dispatch_s": elapsed,
        "messages_per_s": delivered / elapsed if elapsed else 0.0,
    }
