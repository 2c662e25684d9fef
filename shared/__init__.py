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
"""

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
from shared.validation import Model

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
    "Unavailable",
    "ValidationFailed",
    "VersionConflict",
    "conditional",
]
