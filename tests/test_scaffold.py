"""`fnkit new`: the scaffolded function works, passes lint and types, and its test passes.

Also the README's complete example (tests/functions/notes_example, under 40 lines): auth,
validation, the database under RLS, rate limiting and idempotency, through HTTP.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import inspect
import os
import secrets
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from fnkit import scaffold
from fnkit.cli import main as fnkit_main
from tests.fixtures.server import SEED_USERS, Served, as_user

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    """An empty repository layout, as the current directory."""
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    (tmp_path / "functions").mkdir()
    cwd = Path.cwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(cwd)


def test_new_writes_a_function_and_its_test(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert fnkit_main(["new", "invoice-mailer"]) == 0
    main = project / "functions" / "invoice-mailer" / "main.py"
    test = project / "tests" / "test_fn_invoice_mailer.py"
    assert main.is_file() and test.is_file()
    assert str(main) in capsys.readouterr().out
    source = main.read_text()
    assert 'App("invoice-mailer", title="Invoice Mailer"' in source
    assert source.index("# ---- models") < source.index("@app.get") < source.index("handler =")
    assert source.rstrip().endswith("handler = app.handler")

    # The same name again, in either place, is refused and nothing is overwritten.
    main.write_text("# mine\n")
    assert fnkit_main(["new", "invoice-mailer"]) == 1
    assert "functions/invoice-mailer already exists" in capsys.readouterr().err
    assert main.read_text() == "# mine\n"
    (project / "tests" / "functions" / "echo2").mkdir(parents=True)
    assert fnkit_main(["new", "echo2"]) == 1
    assert "tests/functions/echo2 already exists" in capsys.readouterr().err
    assert fnkit_main(["new", "invoice_mailer"]) == 1  # its test file would collide
    assert "test_fn_invoice_mailer.py already exists" in capsys.readouterr().err


@pytest.mark.parametrize(
    "name", ["Billing", "1st", "a b", "ends-", "ends_", "x" * 64, "../escape", "", "sp/lit", "é"]
)
def test_invalid_names_are_refused(
    project: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    assert fnkit_main(["new", name]) == 1
    assert "invalid function name" in capsys.readouterr().err
    assert list((project / "functions").iterdir()) == []


def test_the_scaffold_is_lint_and_type_clean(tmp_path: Path) -> None:
    main = tmp_path / "functions" / "lint-me" / "main.py"
    test = tmp_path / "tests" / "test_fn_lint_me.py"
    assert scaffold.create("lint-me", tmp_path) == [main, test]
    config = ["--config", str(ROOT / "pyproject.toml")]
    for command in (
        [str(BIN / "ruff"), "check", *config, str(main), str(test)],
        [str(BIN / "ruff"), "format", "--check", *config, str(main), str(test)],
        [sys.executable, "-m", "mypy", "--scripts-are-modules", str(main)],
    ):
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr


def test_the_scaffolded_test_passes_against_the_served_function(
    tmp_path: Path, served: Served
) -> None:
    """Serve the new function like `make dev` does and run the test it came with."""
    from fnkit.devserver import create_app

    name = f"greeter-{secrets.token_hex(3)}"  # unique: functions load as modules once
    _, test = scaffold.create(name, tmp_path)
    server = make_server("127.0.0.1", 0, create_app(tmp_path / "functions"), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        mine = dataclasses.replace(served, url=f"http://127.0.0.1:{server.server_port}")
        spec = importlib.util.spec_from_file_location(f"scaffolded_{uuid.uuid4().hex}", test)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        tests = [
            f for n, f in inspect.getmembers(module, inspect.isfunction) if n.startswith("test_")
        ]
        assert len(tests) == 3
        for run in tests:
            run(mine)
    finally:
        server.shutdown()


# ---- the README's example ------------------------------------------------------------------


def test_the_readme_example_is_under_40_lines() -> None:
    lines = (ROOT / "tests" / "functions" / "notes_example" / "main.py").read_text().splitlines()
    assert len(lines) < 40


def test_the_readme_example_end_to_end(served: Served, task: str) -> None:
    key = f"note-{uuid.uuid4()}"
    body = {"task_id": task, "body": "Ship it on Friday"}
    with as_user(served, "member") as member:
        first = member.post("/notes_example", json=body, headers={"Idempotency-Key": key})
        assert first.status_code == 201, first.text
        note = first.json()["data"]
        assert note["task_id"] == task and note["body"] == "Ship it on Friday"
        assert note["author_id"] == SEED_USERS["member"]  # auth.uid(), not an input
        assert first.headers["RateLimit-Policy"] == '"write";q=30;w=60'

        again = member.post("/notes_example", json=body, headers={"Idempotency-Key": key})
        assert again.status_code == 201
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.json()["data"]["id"] == note["id"]
        other = member.post(
            "/notes_example", json={**body, "body": "changed"}, headers={"Idempotency-Key": key}
        )
        assert other.json()["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"

        mine = member.get("/notes_example")
        assert mine.status_code == 200
        assert [n["id"] for n in mine.json()["data"]].count(note["id"]) == 1
        assert mine.headers["RateLimit-Policy"] == '"read";q=120;w=60'

        bad = member.post("/notes_example", json={"task_id": "nope", "body": "", "extra": 1})
        assert bad.status_code == 422
        locs = {tuple(d["loc"]) for d in bad.json()["error"]["details"]}
        assert locs == {("body", "task_id"), ("body", "body"), ("body", "extra")}

    with as_user(served, "viewer") as viewer:  # sees the task, may not write: 403
        denied = viewer.post("/notes_example", json=body)
        assert (denied.status_code, denied.json()["error"]["code"]) == (403, "FORBIDDEN")
    with as_user(served, "outsider") as outsider:  # cannot see the task: 404, no leak
        hidden = outsider.post("/notes_example", json=body)
        assert (hidden.status_code, hidden.json()["error"]["code"]) == (404, "NOT_FOUND")
        assert note["id"] not in {n["id"] for n in outsider.get("/notes_example").json()["data"]}
    with as_user(served, "anon") as anon:
        assert anon.post("/notes_example", json=body).status_code == 401


# ---- fnkit new NAME --table TABLE: a whole feature ------------------------------------------


def _copy_of_the_repository(target: Path) -> Path:
    """What a fresh clone has that the feature and its tests touch (shared/ and fnkit come
    from the installed packages)."""
    import shutil

    shutil.copy(ROOT / "pyproject.toml", target / "pyproject.toml")
    for folder in ("functions", "supabase"):
        shutil.copytree(ROOT / folder, target / folder)
    tests = target / "tests"
    shutil.copytree(ROOT / "tests" / "fixtures", tests / "fixtures")
    for name in ("__init__.py", "conftest.py", "envelope.py", "rls_helpers.py",
                 "rls_convention.py", "test_rls_matrix.py", "test_schema.py"):  # fmt: skip
        shutil.copy(ROOT / "tests" / name, tests / name)
    return target


def test_new_with_a_table_writes_a_feature_that_passes_its_tests(tmp_path: Path) -> None:
    """`fnkit new labels --table labels` in a copy of the repository; then, in a pytest of
    that copy (its own throwaway database with the new migration, its functions served over
    HTTP), the feature's tests, the RLS matrix and the catalog checks pass unedited."""
    repo = _copy_of_the_repository(tmp_path)
    before = sorted(p.name for p in (repo / "supabase" / "migrations").glob("*.sql"))
    done = subprocess.run(
        [str(BIN / "fnkit"), "new", "labels", "--table", "labels"],
        cwd=repo, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    after = sorted(p.name for p in (repo / "supabase" / "migrations").glob("*.sql"))
    migration = repo / "supabase" / "migrations" / after[-1]
    assert after[:-1] == before and migration.name.endswith("_labels.sql")  # applies last
    main = repo / "functions" / "labels" / "main.py"
    test = repo / "tests" / "test_fn_labels.py"
    feature = [migration, main, test]
    assert sum(len(p.read_text().splitlines()) for p in feature) < 200
    sql_text = migration.read_text()
    for convention in ("private.guard_writer_membership()", "revoke all on public.labels",
                       "grant update (name)", "(select private.workspace_ids(",
                       "labels_created_by_idx", "enable row level security"):  # fmt: skip
        assert convention in sql_text, convention
    assert 'app.errors.constraint("labels_name_key", Conflict' in main.read_text()

    config = ["--config", str(ROOT / "pyproject.toml")]
    for command in (
        [str(BIN / "ruff"), "check", *config, str(main), str(test)],
        [str(BIN / "ruff"), "format", "--check", *config, str(main), str(test)],
        [sys.executable, "-m", "mypy", "--scripts-are-modules", str(main)],
    ):
        checked = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert checked.returncode == 0, checked.stdout + checked.stderr

    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_fn_labels.py",
         "tests/test_rls_matrix.py::test_conventional_workspace_tables_allow_what_the_convention_says",
         "tests/test_rls_matrix.py::test_matrix_covers_every_table_and_action",
         "tests/test_rls_matrix.py::test_an_owner_deleting_the_workspace_deletes_everything_in_it",
         "tests/test_schema.py::test_catalog"],
        cwd=repo, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "failed" not in run.stdout and "43 passed" in run.stdout, run.stdout[-2000:]
