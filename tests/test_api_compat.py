"""The API is versioned by a check, not only by a promise: `fnkit api check` compares the
documents the code makes with the released ones (api/released/, written by `fnkit api
release`) and fails listing each breaking change.

Each check runs the command in its own process (it imports the functions it reads; this
session's served functions must not share those modules). A changed copy of the functions
shows that a breaking model change fails it and an additive one passes.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.fixtures.server import ROOT

FNKIT = ROOT / ".venv" / "bin" / "fnkit"


def _check(functions: Path | None = None) -> subprocess.CompletedProcess[str]:
    command = [str(FNKIT), "api", "check"]
    if functions is not None:
        command += ["--functions", str(functions)]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)


def _changed_tasks(tmp_path: Path, *edits: tuple[str, str]) -> Path:
    """A copy of functions/ whose tasks/main.py has each (old, new) text replaced once."""
    functions = tmp_path / "functions"
    shutil.copytree(ROOT / "functions", functions, ignore=shutil.ignore_patterns("__pycache__"))
    main = functions / "tasks" / "main.py"
    source = main.read_text()
    for old, new in edits:
        assert source.count(old) == 1, old
        source = source.replace(old, new)
    main.write_text(source)
    return functions


def test_the_code_keeps_the_released_api() -> None:
    done = _check()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no breaking change" in done.stdout


def test_a_breaking_model_change_fails_the_check(tmp_path: Path) -> None:
    functions = _changed_tasks(
        tmp_path,
        # a field removed from an answer, a new required input, a narrowed type
        ("    due_date: dt.date | None\n    position: float\n", "    position: float\n"),
        ("    title: Title\n    description: Description | None = None\n    status: Status = ",
         "    title: Title\n    description: Description\n    status: Status = "),
        ('Priority = Annotated[int, Field(ge=0, le=4)]', 'Priority = Annotated[int, Field(ge=0, le=3)]'),
    )  # fmt: skip
    done = _check(functions)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "tasks: GET /tasks: answer.data[].due_date: removed" in done.stdout
    assert "tasks: POST /tasks: body.description: new required input" in done.stdout
    assert "tasks: POST /tasks: body.description: no longer accepts null" in done.stdout
    assert "tasks: POST /tasks: body.priority: maximum 4 -> 3" in done.stdout


def test_an_additive_change_passes_the_check(tmp_path: Path) -> None:
    functions = _changed_tasks(
        tmp_path,
        # a new answer field, a new optional input
        ("    created_at: dt.datetime\n    updated_at: dt.datetime\n\n\nTitle",
         "    created_at: dt.datetime\n    updated_at: dt.datetime\n    labels: list[str] = []\n\n\nTitle"),
        ('    position: Position | None = Field(default=None, description="Omitted or null: at the end")\n',
         '    position: Position | None = Field(default=None, description="Omitted or null: at the end")\n'
         "    labels: list[str] = []\n"),
    )  # fmt: skip
    done = _check(functions)
    assert done.returncode == 0, done.stdout + done.stderr
