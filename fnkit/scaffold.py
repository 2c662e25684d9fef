"""`fnkit new <name>`: a new function with one typed route and a test that calls it over HTTP.

With `--table TABLE` it writes a migration too, and the function and tests are the table's
list/create/get/update/delete routes and their role matrix (`fnkit.scaffold_table`).

The files follow the house layout (models, routes, handlers; `handler = app.handler`), pass
`make lint` and `make typecheck` as written, and the test runs in `make test` through the
`served` fixture, which picks up every folder of functions/ at session start. `make dev`
serves the function at `/functions/v1/<name>` the next time it starts.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["NAME_RULE", "ScaffoldError", "create", "main_source", "test_source", "validate"]

# Cloud Run functions names: a letter first, then letters, digits, '-' or '_', 63 at most,
# not ending in '-' or '_'. Lower case only: the name is also a URL path segment.
NAME_RULE = re.compile(r"[a-z](?:[a-z0-9_-]{0,61}[a-z0-9])?")


class ScaffoldError(ValueError):
    """The name is invalid or taken; the message says which."""


def _module_name(name: str) -> str:
    return name.replace("-", "_")


def _title(name: str) -> str:
    return " ".join(part.capitalize() for part in re.split(r"[-_]", name) if part)


def validate(name: str, root: Path, table: str | None = None) -> None:
    """Refuse names that are not valid function names or that are already used."""
    from fnkit.scaffold_table import TABLE_RULE

    if table is not None and not TABLE_RULE.fullmatch(table):
        raise ScaffoldError(
            f"invalid table name {table!r}: use lower-case letters, digits and '_', starting"
            " with a letter (40 characters at most)"
        )
    if table is not None and any(
        p.name.endswith(f"_{table}.sql") for p in (root / "supabase" / "migrations").glob("*.sql")
    ):
        raise ScaffoldError(f"a migration named after {table!r} already exists")
    if not NAME_RULE.fullmatch(name):
        raise ScaffoldError(
            f"invalid function name {name!r}: use lower-case letters, digits, '-' and '_',"
            " starting with a letter and not ending with '-' or '_' (63 characters at most)"
        )
    for taken in (root / "functions" / name, root / "tests" / "functions" / name):
        if taken.exists():
            raise ScaffoldError(f"{taken.relative_to(root)} already exists")
    test = root / "tests" / f"test_fn_{_module_name(name)}.py"
    if test.exists():
        raise ScaffoldError(f"{test.relative_to(root)} already exists")


def main_source(name: str) -> str:
    return f'''"""{name}: TODO say what this function does, and why it is a function of its own."""

from __future__ import annotations

from pydantic import BaseModel, Field

from shared import READ, App, Model, Request

app = App("{name}", title="{_title(name)}", description="TODO: one line for the API reference.")


# ---- models ---------------------------------------------------------------------------


class HelloQuery(Model):
    """Query parameters; unknown ones are a 422, like unknown body fields."""

    name: str = Field(default="world", min_length=1, max_length=100)


class Hello(BaseModel):
    message: str
    user_id: str


# ---- handlers -------------------------------------------------------------------------


@app.get("/", response=Hello, rate=READ)
def hello(request: Request, query: HelloQuery) -> Hello:
    """Greet the caller, whose id the database reads from their token (`auth.uid()`)."""
    user_id = request.db.value("select auth.uid()::text")
    return Hello(message=f"Hello, {{query.name}}!", user_id=user_id)


handler = app.handler
'''


def test_source(name: str) -> str:
    mod = _module_name(name)
    return f'''"""The {name} function through HTTP, as its clients call it."""

from __future__ import annotations

from tests.fixtures.server import SEED_USERS, Served, as_user


def test_{mod}_greets_the_caller(served: Served) -> None:
    with as_user(served, "member") as client:
        response = client.get("/{name}", params={{"name": "Ada"}})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True
    assert body["data"] == {{"message": "Hello, Ada!", "user_id": SEED_USERS["member"]}}
    assert body["meta"]["request_id"] == response.headers["X-Request-Id"]


def test_{mod}_needs_a_token(served: Served) -> None:
    with as_user(served, "anon") as client:
        response = client.get("/{name}")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "UNAUTHENTICATED"


def test_{mod}_rejects_bad_input(served: Served) -> None:
    with as_user(served, "member") as client:
        response = client.get("/{name}", params={{"name": "x" * 101, "nme": "typo"}})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_FAILED"
    assert {{tuple(d["loc"]) for d in error["details"]}} >= {{("query", "name"), ("query", "nme")}}
'''


def create(name: str, root: Path, table: str | None = None) -> list[Path]:
    """Write functions/<name>/main.py and tests/test_fn_<name>.py (and, with a table, its
    migration first); return their paths."""
    from fnkit import scaffold_table

    validate(name, root, table)
    main = root / "functions" / name / "main.py"
    test = root / "tests" / f"test_fn_{_module_name(name)}.py"
    written: list[Path] = []
    if table is None:
        sources = [(main, main_source(name)), (test, test_source(name))]
    else:
        migrations = root / "supabase" / "migrations"
        migration = migrations / scaffold_table.migration_name(table, migrations)
        sources = [
            (migration, scaffold_table.migration_source(name, table)),
            (main, scaffold_table.main_source(name, table, migration.name)),
            (test, scaffold_table.test_source(name, table)),
        ]
    for path, text in sources:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    if table is not None:
        _format([p for p in written if p.suffix == ".py"])
    return written


def _format(paths: list[Path]) -> None:
    """`ruff format` the new files where ruff is installed (the dev virtualenv): a long table
    name must not leave a line `make lint` refuses (100 columns, the house width). Best
    effort: the files work either way."""
    import subprocess
    import sys

    subprocess.run(
        [sys.executable, "-m", "ruff", "format", "-q", "--line-length", "100", *map(str, paths)],
        check=False,
        capture_output=True,
    )
