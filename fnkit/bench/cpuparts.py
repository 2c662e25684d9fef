"""Where the CPU of one `GET /tasks?limit=50` goes, part by part.

The load section gives the server's CPU per request under gunicorn; this splits it. The
tasks function is served in this process by functions-framework's own app (as gunicorn
serves it, minus gunicorn), against the run's database and Upstash bridge, one request at a
time, rotating over the bench users' tokens (each verified once before: the load run's
workers live long enough to have them all cached).

Each part is timed by this thread's CPU clock around the functions that are the part
(wrappers installed in this bench process only, removed after): the rate-limit call
(`SlidingWindow.limit`), the query's send and wait (`Transaction._run`, client-side binding
included), row decoding (`Cursor.fetchall`), JSON (`dumpb` as `shared.responses` calls it),
the log line (`log_request`); the runtime's pipeline is `App.handle` minus those, and the
framework (functions-framework, Flask, werkzeug) is the WSGI call minus `App.handle`. The
Postgres backends' CPU over the same requests is read from /proc (Linux only).

`http_server` (gunicorn: HTTP parsing, its threads and sockets) is what the load run measured
for the server minus this in-process figure; the report fills it in.
"""

from __future__ import annotations

import contextlib
import io
import os
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from fnkit.bench.services import ACME, ROOT, Services

PARTS = ("framework", "pipeline", "ratelimit", "query", "rows", "json", "log")
WSGI = Callable[[dict[str, Any], Any], Iterable[bytes]]


def _app(services: Services, **env: str) -> WSGI:
    """functions-framework's app for the tasks function, with the run's settings (the
    process's environment is restored after: later sections start their own processes)."""
    import functions_framework

    from shared.logs import set_stream
    from shared.settings import get_settings

    saved = dict(os.environ)
    os.environ.update(services.process_env(DB_POOL_MAX="2", **env))
    get_settings.cache_clear()
    try:
        app: WSGI = functions_framework.create_app(  # type: ignore[no-untyped-call]
            target="handler", source=str(ROOT / "functions" / "tasks" / "main.py")
        )
    finally:
        os.environ.clear()
        os.environ.update(saved)
        get_settings.cache_clear()
    set_stream(open(os.devnull, "w"))  # noqa: SIM115 - for the life of the bench process
    return app


def _environs(services: Services, n: int) -> list[dict[str, Any]]:
    from werkzeug.test import EnvironBuilder

    return [
        EnvironBuilder(
            path="/tasks",
            query_string=f"workspace_id={ACME}&limit=50",
            headers=[("Authorization", f"Bearer {token}"), ("Accept", "application/json")],
        ).get_environ()
        for token in services.tokens[:n]
    ]


def _call(app: WSGI, environ: dict[str, Any]) -> None:
    status: list[str] = []
    env = dict(environ)
    env["wsgi.input"] = io.BytesIO(b"")
    body = b"".join(app(env, lambda s, h, exc=None: status.append(s)))
    if not status[0].startswith("200") or not body:
        raise RuntimeError(f"GET /tasks answered {status[0]}")


def _backends_cpu_s(services: Services) -> float:
    import psycopg

    with psycopg.connect(services.database_url, autocommit=True) as conn:
        pids = conn.execute(
            "select pid from pg_stat_activity where datname = current_database()"
            " and pid <> pg_backend_pid() and backend_type = 'client backend'"
        ).fetchall()
    total = 0.0
    for (pid,) in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


class _Clock:
    """CPU nanoseconds spent inside wrapped functions, per part."""

    def __init__(self) -> None:
        self.spent: dict[str, int] = {}

    def wrap(self, part: str, function: Callable[..., Any]) -> Callable[..., Any]:
        spent, clock = self.spent, time.thread_time_ns
        spent.setdefault(part, 0)

        def timed(*args: Any, **kwargs: Any) -> Any:
            began = clock()
            try:
                return function(*args, **kwargs)
            finally:
                spent[part] += clock() - began

        return timed


@contextlib.contextmanager
def _timed_parts(clock: _Clock) -> Iterator[None]:
    """Wrap the parts' functions where the runtime looks them up; unwrap after."""
    import psycopg

    import shared.app
    import shared.db
    import shared.responses
    import shared.sliding_window

    targets: list[tuple[Any, str, str]] = [
        (shared.app.App, "handle", "handle"),
        (shared.sliding_window.SlidingWindow, "limit", "ratelimit"),
        (shared.db.Transaction, "_run", "query"),
        (psycopg.Cursor, "fetchall", "rows"),
        (shared.responses, "dumpb", "json"),
        (shared.app, "log_request", "log"),
    ]
    saved = [(owner, name, owner.__dict__[name]) for owner, name, _ in targets]
    try:
        for owner, name, part in targets:
            setattr(owner, name, clock.wrap(part, getattr(owner, name)))
        yield
    finally:
        for owner, name, original in saved:
            setattr(owner, name, original)


def measure(services: Services, quick: bool, **env: str) -> dict[str, Any]:
    """CPU µs per request: `in_process` in all, `postgres`, and `parts` (summing to it)."""
    requests = 600 if quick else 2000
    app = _app(services, **env)
    environs = _environs(services, requests)
    for environ in environs:  # warm: every token verified once (as in the load run's
        _call(app, environ)  # long-lived workers), pool filled, scripts loaded
    services.bridge.flush()
    clock = _Clock()
    with _timed_parts(clock):
        cpu, backend = time.thread_time_ns(), _backends_cpu_s(services)
        for environ in environs:
            _call(app, environ)
        total = time.thread_time_ns() - cpu
        postgres = (_backends_cpu_s(services) - backend) / len(environs) * 1e6
    services.bridge.flush()
    from shared.db import close_pools

    close_pools()
    spent = clock.spent
    handle = spent.pop("handle")
    parts = {"framework": total - handle, "pipeline": handle - sum(spent.values()), **spent}
    return {
        "requests": len(environs),
        "in_process_us": round(total / len(environs) / 1000, 1),
        "postgres_us": round(postgres, 1),
        "parts_us": {part: round(parts[part] / len(environs) / 1000, 1) for part in PARTS},
    }


def main() -> None:
    services = Services.start(users=2000)
    try:
        result = measure(services, quick=False)
    finally:
        services.stop()
    print(f"in process {result['in_process_us']} µs, postgres {result['postgres_us']} µs")
    for part, us in result["parts_us"].items():
        print(f"  {part:10s} {us:8.1f} µs")


if __name__ == "__main__":
    main()
