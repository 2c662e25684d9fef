"""Route declarations as data, and matching a path against them.

A route is what the pipeline enforces and what the OpenAPI document shows, from one
declaration: method, path template, auth level (a user level or a machine `Caller`), rate
policy, models, status, answer format, cache and idempotency choices, and a schedule when the
scheduler runs it.
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
from shared.ratelimit import DEFAULT, RatePolicy

if TYPE_CHECKING:
    from shared.schedule import Schedule

_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(slots=True)
class Route:
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
    tags: tuple[str, ...] = ()
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
        self.pattern = re.compile(f"^{regex}/?$" if self.path != "/" else "^/?$")

    def match(self, path: str) -> dict[str, str] | None:
        found = self.pattern.match(path)
        return None if found is None else found.groupdict()


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
