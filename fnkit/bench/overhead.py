"""Pipeline overhead: our runtime's cost per request with no network I/O, against bare Flask.

Both apps are called as WSGI callables in this process (no sockets), with the same request:
`GET /bench/items?workspace_id=...&limit=50`, a bearer token and an allowed `Origin`. Both
return the same JSON document (an envelope around ten small items).

Ours runs the whole pipeline: request id, CORS, body checks, JWT verification, rate-limit
step, query validation (a `shared.Model`), the transaction step (no query is made), envelope,
`Server-Timing` and the JSON log line (written to /dev/null). The rate-limit step's Upstash
call is the only network I/O of such a route; it is replaced by a local stub answering
"allowed", so the step's own work (identifier, headers) still counts. There is no switch to
turn rate limiting off (see the report for the proposal).

Samples are taken in interleaved blocks (bare, ours, bare, ...) so drift hits both alike,
and the whole comparison is repeated (5 times, 3 with --quick): each repeat gives its own
ratio and difference, the report shows their spread, and the target is judged on the worst
repeat (a slow minute of a shared machine must not decide it either way).
Each request is timed twice: by the wall clock and by this thread's CPU clock. The CPU time
is the figure reported (`p50_us`): on a quiet machine the two agree, and on a busy one the
CPU clock leaves out the time the process waited for a core, which is not the pipeline's cost.
The wall-clock figures are kept in the JSON (`wall_p50_us`).
"""

from __future__ import annotations

import io
import json
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import flask
from pydantic import Field
from werkzeug.test import EnvironBuilder

from fnkit.bench.services import ACME, ORIGIN, Jwks
from fnkit.bench.stats import percentile
from fnkit.devenv import DEV_JWT_SECRET

WSGI = Callable[[dict[str, Any], Any], Iterable[bytes]]
ITEMS = [
    {
        "id": f"c0000000-0000-4000-8000-{n:012d}",
        "title": f"Task {n}",
        "status": "todo",
        "priority": 2,
    }
    for n in range(1, 11)
]
USER = "11111111-1111-1111-1111-111111111111"


@dataclass
class _Outcome:
    """What upstash-ratelimit's `limit()` returns, from a stub that always allows."""

    allowed: bool
    limit: int
    remaining: int
    reset: float


class _AllowAll:
    def __init__(self, limit: int, window: int) -> None:
        self.limit_ = limit
        self.window = window

    def limit(self, identifier: str) -> _Outcome:
        return _Outcome(True, self.limit_, self.limit_ - 1, time.time() + self.window)


def our_app(jwks_url: str) -> flask.Flask:
    """A bench-only function on our runtime, wrapped the way functions-framework wraps it."""
    from shared import READ, App, Model, Request
    from shared.logs import set_stream
    from shared.ratelimit import RateLimiter, RatePolicy
    from shared.settings import Settings

    settings = Settings(
        supabase_url=jwks_url,
        database_url="postgresql://nobody@127.0.0.1:9/unused",
        upstash_url="http://127.0.0.1:9",
        upstash_token="unused",
        jwt_secret=DEV_JWT_SECRET,
        allowed_origins=(ORIGIN,),
    )
    set_stream(open(os.devnull, "w"))  # noqa: SIM115 - for the life of the bench process

    class LocalLimiter(RateLimiter):
        def _limiter(self, policy: RatePolicy) -> Any:
            return stubs.setdefault(policy, _AllowAll(policy.limit, policy.window))

    stubs: dict[RatePolicy, _AllowAll] = {}

    app = App("bench", settings=settings)
    app.limiter = LocalLimiter(settings, "bench")

    class ItemsQuery(Model):
        workspace_id: UUID
        limit: int = Field(default=50, ge=1, le=100)

    @app.get("/items", query=ItemsQuery, rate=READ)
    def items(request: Request, query: ItemsQuery) -> list[dict[str, Any]]:
        return ITEMS

    # functions-framework hands the function the request object itself, not Flask's proxy.
    wrapper = flask.Flask("ours")
    wrapper.add_url_rule(
        "/<path:path>",
        "handler",
        lambda path: app.handler(flask.request._get_current_object()),  # type: ignore[attr-defined]
        methods=["GET"],
    )
    return wrapper


def bare_app() -> flask.Flask:
    """The floor: a Flask view returning the same document, nothing else.

    It sits behind the same catch-all rule functions-framework registers for every function
    (`/<path:path>`, which costs Flask ~20 µs more to match than a fixed path), so the
    difference between the two apps is our runtime and nothing of the platform's.
    """
    app = flask.Flask("bare")

    def items(path: str) -> flask.Response:
        body = {"success": True, "data": ITEMS, "meta": {"request_id": "bench"}}
        return flask.Response(json.dumps(body, separators=(",", ":")), mimetype="application/json")

    app.add_url_rule("/<path:path>", "handler", items, methods=["GET"])
    return app


def _environ(token: str) -> dict[str, Any]:
    return EnvironBuilder(
        path="/bench/items",
        query_string=f"workspace_id={ACME}&limit=50",
        headers=[("Authorization", f"Bearer {token}"), ("Origin", ORIGIN)],
    ).get_environ()


def _call(app: WSGI, environ: dict[str, Any]) -> str:
    status: list[str] = []
    env = dict(environ)
    env["wsgi.input"] = io.BytesIO(b"")
    body = b"".join(app(env, lambda s, h, exc=None: status.append(s)))
    assert body
    return status[0]


def _sample(
    app: WSGI,
    environs: list[dict[str, Any]],
    start: int,
    n: int,
    wall: list[float],
    cpu: list[float],
) -> None:
    clock, cpu_clock = time.perf_counter_ns, time.thread_time_ns
    for i in range(start, start + n):
        environ = environs[i % len(environs)]
        started, cpu_started = clock(), cpu_clock()
        _call(app, environ)
        cpu.append((cpu_clock() - cpu_started) / 1000)
        wall.append((clock() - started) / 1000)


def measure(quick: bool, jwks: Jwks | None = None) -> dict[str, Any]:
    """The comparison `repeats` times; the case figures at the top level are the median
    repeat's (by ratio to bare Flask), `repeats` holds every repeat's."""
    own = jwks is None
    jwks = jwks or Jwks().start()
    try:
        ours = our_app(jwks.url).wsgi_app
        bare = bare_app().wsgi_app
        count, per_case = (3, 1_000) if quick else (5, 4_000)
        repeats = [_compare(ours, bare, jwks, per_case) for _ in range(count)]
    finally:
        if own:
            jwks.stop()
    ordered = sorted(repeats, key=lambda r: r["hs256"]["p50_us"] / r["bare"]["p50_us"])
    return {**ordered[len(ordered) // 2], "repeats": repeats}


def _compare(ours: WSGI, bare: WSGI, jwks: Jwks, per_case: int) -> dict[str, Any]:
    """One repeat: every case sampled in interleaved blocks."""
    block = 250
    cases: dict[str, tuple[WSGI, list[dict[str, Any]]]] = {
        "bare": (bare, [_environ(jwks.hs256(USER))]),
        "hs256": (ours, [_environ(jwks.hs256(USER))]),
        "es256": (ours, [_environ(jwks.es256(USER))]),
        "hs256_uncached": (ours, [_environ(jwks.hs256(USER)) for _ in range(per_case)]),
        "es256_uncached": (ours, [_environ(jwks.es256(USER)) for _ in range(per_case)]),
    }
    for name, (app, environs) in cases.items():
        status = _call(app, environs[0])
        if not status.startswith("200"):
            raise RuntimeError(f"overhead case {name} answered {status}")
    wall: dict[str, list[float]] = {name: [] for name in cases}
    cpu: dict[str, list[float]] = {name: [] for name in cases}
    for start in range(0, per_case, block):
        for name, (app, environs) in cases.items():
            # The uncached cases hold one token per request: never a cache hit.
            _sample(app, environs, start, block, wall[name], cpu[name])
    result: dict[str, Any] = {"requests_per_case": per_case}
    for name in cases:
        w, c = sorted(wall[name]), sorted(cpu[name])
        result[name] = {
            "p50_us": percentile(c, 50),
            "p99_us": percentile(c, 99),
            "wall_p50_us": percentile(w, 50),
            "wall_p99_us": percentile(w, 99),
        }
    return result
