"""The WSGI app gunicorn serves in the load runs: functions-framework's app, as in production.

`gunicorn fnkit.bench.gunicorn_app:app` with `FNKIT_BENCH_SOURCE=functions/tasks/main.py`.
"""

from __future__ import annotations

import os

import functions_framework

app = functions_framework.create_app(  # type: ignore[no-untyped-call]
    target=os.environ.get("FNKIT_BENCH_TARGET", "handler"),
    source=os.environ["FNKIT_BENCH_SOURCE"],
)
