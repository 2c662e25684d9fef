"""The WSGI app gunicorn serves in the load runs: functions-framework's app, as in production.

`gunicorn fnkit.bench.gunicorn_app:app` with `FNKIT_BENCH_SOURCE=functions/tasks/main.py`;
`FNKIT_BENCH_PROPOSALS=1` applies fnkit/bench/proposals.py's prototypes first.
"""

from __future__ import annotations

import os

import functions_framework

if os.environ.get("FNKIT_BENCH_PROPOSALS") == "1":  # before the function is imported
    from fnkit.bench.proposals import apply

    apply()

app = functions_framework.create_app(  # type: ignore[no-untyped-call]
    target=os.environ.get("FNKIT_BENCH_TARGET", "handler"),
    source=os.environ["FNKIT_BENCH_SOURCE"],
)
