"""The runtime every function imports: routes, pipeline, envelope, errors, database as the caller.

A function file reads as models, routes, handlers::

    from shared import App, Model, Request

    app = App("hello")

    class Greeting(Model):
        name: str

    @app.post("/", body=Greeting, auth="public")
    def greet(request: Request, body: Greeting) -> dict[str, str]:
        return {"hello": body.name}

    handler = app.handler

What loads when (a cold start pays for its imports before its first answer):

- At load, with this package: what every function's first answer needs. Flask (through
  functions-framework), pydantic, PyJWT with cryptography, orjson, psycopg and its pool
  (shared/db.py), and the runtime's own modules. Imported at load they are imported once,
  in gunicorn's master before it forks the worker; deferred to the first request they would
  be imported in the fresh worker, which measured slower (shared/db.py says by how much).
- Later, imported inside the code that needs it: what only some functions, routes or
  settings need. supabase-py (shared/supabase_admin.py: at the first Storage or Auth-admin
  call), the OpenAPI document (shared/openapi.py: at `/openapi.json`, which also builds
  the response models declared on `Schema`, and request models on `Model` build at their
  first validation: both `defer_build`), OpenTelemetry
  (shared/telemetry/: only when OTEL_* turns it on), the outbox and its dispatcher (at the
  first `emit`), schedules and the scheduler's token (shared/schedule.py,
  shared/scheduler_auth.py: when a function declares a scheduled route).

tests/test_cold_imports.py checks both lists per function in a fresh interpreter, and
`fnkit bench` prints, per function, what its start costs beyond the libraries alone.

The cyclic garbage collector is off while this package and what it pulls in load (pydantic,
psycopg, PyJWT, the runtime: tens of thousands of long-lived objects and almost no garbage),
and what is alive then is frozen (`gc.freeze`, left out of every later collection) before it
goes back on. Left on, it ran ~20 collections while they loaded, one of them a full one over
every object: ~15 ms of each cold start's CPU here (tasks' create_app, cheapest of 8: 153 ms,
138 ms with the switch). It is also what the gc docs advise for a server that loads before it
forks its workers, as gunicorn does: frozen objects are not written to by the worker's
collections, so their pages stay shared. tests/unit/test_gc_at_import.py checks the switch.
"""

import gc

_collecting = gc.isenabled()
gc.disable()
try:
    from shared.app import App
    from shared.auth import Claims
    from shared.conditional import conditional
    from shared.envelope import Result
    from shared.errors import (
        ApiError,
        BadRequest,
        Conflict,
        Forbidden,
        MfaRequired,
        NotFound,
        PreconditionFailed,
        Unavailable,
        ValidationFailed,
        VersionConflict,
    )
    from shared.ratelimit import DEFAULT, READ, SENSITIVE, WRITE, RatePolicy
    from shared.request import Request
    from shared.validation import Model, Schema

    gc.freeze()
finally:
    if _collecting:
        gc.enable()

__all__ = [
    "DEFAULT",
    "READ",
    "SENSITIVE",
    "WRITE",
    "ApiError",
    "App",
    "BadRequest",
    "Claims",
    "Conflict",
    "Forbidden",
    "MfaRequired",
    "Model",
    "NotFound",
    "PreconditionFailed",
    "RatePolicy",
    "Request",
    "Result",
    "Schema",
    "Unavailable",
    "ValidationFailed",
    "VersionConflict",
    "conditional",
]
