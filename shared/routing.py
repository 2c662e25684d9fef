"""Route declarations as data, and the router that finds a request's route among them.

A route is what the pipeline enforces and what the OpenAPI document shows, from one
declaration: method, path template, auth level (a user level or a machine `Caller`), rate
policy, models, status, answer format, idempotency, and a schedule when the scheduler runs it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from shared.auth import AuthLevel
from shared.callers import Caller
from shared.envelope import Answer
from shared.errors import MethodNotAllowed, NotFound
from shared.ratelimit import DEFAULT, RatePolicy

if TYPE_CHECKING:
    from shared.schedule import Schedule

_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(slots=True, eq=False)
class Route:
    """One declared route: what `App.register` was given, with its path compiled.

    A route is itself, not a value (`eq=False`, compared by identity); with the docstring
    given, the dataclass machinery also skips building one from the signature: ~0.2 ms
    less of every cold start."""

    method: str
    path: str
    endpoint: Callable[..., Any]
    auth: AuthLevel | Caller = "user"
    rate: RatePolicy | None = DEFAULT
    path_model: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    response: Any = None
    status: int = 200
    idempotent: bool = False
    summary: str | None = None
    description: str | None = None
    answer: Answer = "envelope"
    single_statement: bool = False
    schedule: Schedule | None = None  # run by the scheduler (shared.schedule)
    pattern: re.Pattern[str] = field(init=False)
    param_names: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        self.method = self.method.upper()
        if self.single_statement and self.method in ("GET", "HEAD"):
            raise ValueError(f"{self.method} {self.path}: single_statement is for writes")
        self.path = "/" + self.path.strip("/") if self.path.strip("/") else "/"
        self.param_names = tuple(_PARAM.findall(self.path))
        regex = _PARAM.sub(
            lambda m: f"(?P<{m.group(1)}>[^/]+)",
            re.escape(self.path).replace(r"\{", "{").replace(r"\}", "}"),
        )
        # \Z, not $: `$` also matches before a final newline
        self.pattern = re.compile(f"^{regex}/?\\Z" if self.path != "/" else "^/?\\Z")

    def match(self, path: str) -> dict[str, str] | None:
        found = self.pattern.match(path)
        return None if found is None else found.groupdict()


# No route holds a control character; a path with one (a decoded %0A, say) is no resource.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class Preflight(Exception):
    """A CORS preflight (OPTIONS) for a path that has routes: answer with what they allow."""

    def __init__(self, allowed: list[str]) -> None:
        super().__init__(", ".join(allowed))
        self.allowed = allowed


class Router:
    """The routes of one function, in declaration order."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(self, route: Route) -> None:
        self.routes.append(route)

    def resolve(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        """The first route of this method whose path matches, with its path parameters.

        Raises NotFound (no route has this path), Preflight (OPTIONS on a routed path), or
        MethodNotAllowed with the methods the path has (HEAD wherever GET is).
        """
        if _CONTROL.search(path):
            raise NotFound("No route for a path holding a control character")
        # The common case first, without matching every route.
        for route in self.routes:
            if route.method == method and (params := route.match(path)) is not None:
                return route, params
        methods = {route.method for route in self.routes if route.match(path) is not None}
        if not methods:
            raise NotFound(f"No route for {path}")
        allowed = sorted(methods | {"OPTIONS"} | ({"HEAD"} if "GET" in methods else set()))
        if method == "OPTIONS":
            raise Preflight(allowed)
        raise MethodNotAllowed(allowed)


def function_relative(path: str, name: str) -> str:
    """The path as the function's routes see it.

    Supabase's gateway and `make dev` pass `/functions/v1/<name>/rest` or `/<name>/rest`;
    Cloud Functions passes `/rest`. All become `/rest`.
    """
    if path.startswith("/functions/v1/"):
        path = path[len("/functions/v1") :]
    prefix = f"/{name}"
    if path == prefix or path.startswith(prefix + "/"):
        path = path[len(prefix) :]
    return path or "/"
