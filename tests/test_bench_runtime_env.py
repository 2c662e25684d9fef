"""The bench's runtime-only virtualenv: what goes in it, its cache, its fallback (no build)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fnkit.bench import coldstart, runtime_env, startup
from fnkit.bench.services import ROOT


@pytest.fixture(autouse=True)
def fresh(monkeypatch):
    monkeypatch.delenv("FNKIT_BENCH_RUNTIME_VENV", raising=False)
    runtime_env.ensure.cache_clear()
    yield
    runtime_env.ensure.cache_clear()


def test_pins_are_the_bundles_requirements_only():
    """The bundles' requirements, and the servers: gunicorn (functions-framework runs under
    it) and, for the peer's cold start in the same interpreter, fastapi and uvicorn."""
    names = {pin.name for pin in runtime_env.pins()}
    assert {"functions-framework", "gunicorn", "flask", "psycopg", "pydantic"} <= names
    assert {"fastapi", "uvicorn"} <= names
    assert not names & {"fnkit", "rich", "schemathesis", "hypothesis", "psutil", "pytest"}
    lines = runtime_env.requirement_lines(runtime_env.pins())
    assert lines == sorted(lines)
    assert all("==" in line and "#" not in line for line in lines)


def test_cache_key_follows_the_requirements():
    lines = ["a==1", "b==2"]
    assert runtime_env.cache_key(lines) == runtime_env.cache_key(list(lines))
    assert runtime_env.cache_key(lines) != runtime_env.cache_key(["a==1", "b==3"])


def _fail(*_args):
    raise RuntimeError("pip install failed: no network")


def test_cached_venv_is_used_without_building(tmp_path, monkeypatch):
    lines = runtime_env.requirement_lines(runtime_env.pins())
    venv = tmp_path / f"{runtime_env.PREFIX}{runtime_env.cache_key(lines)}"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").touch()
    (venv / runtime_env.MARKER).write_text("\n".join(lines))
    monkeypatch.setattr(runtime_env, "_build", _fail)
    env = runtime_env.ensure(ROOT, tmp_path)
    assert env.isolated and env.python == venv / "bin" / "python"
    assert env.environment == runtime_env.RUNTIME and env.build_s is None
    assert env.env()["VIRTUAL_ENV"] == str(venv)
    assert env.env()["PATH"].startswith(str(venv / "bin"))


def test_failed_build_falls_back_to_the_dev_venv(tmp_path, monkeypatch):
    monkeypatch.setattr(runtime_env, "_build", _fail)
    env = runtime_env.ensure(ROOT, tmp_path)
    assert not env.isolated and env.python == Path(sys.executable) and env.env() == {}
    assert (
        env.environment
        == "dev venv (runtime venv could not be built: pip install failed: no network)"
    )
    assert "measured in the dev venv (runtime venv could not be built" in env.note()
    assert not list(tmp_path.glob(f"{runtime_env.PREFIX}*/"))


def test_dev_venv_on_request(tmp_path, monkeypatch):
    monkeypatch.setenv("FNKIT_BENCH_RUNTIME_VENV", "0")
    monkeypatch.setattr(runtime_env, "_build", _fail)
    assert runtime_env.ensure(ROOT, tmp_path).environment == "dev venv (FNKIT_BENCH_RUNTIME_VENV=0)"


def test_probe_runs_as_a_file_and_imports_nothing_from_fnkit():
    argv = [sys.executable, "-P", "-X", "importtime", str(startup.PROBE)]
    argv += ["--source", str(coldstart.HELLO), "--path", "/"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60, check=True)
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["status"] == 200 and result["prefix"] == sys.prefix
    assert "functions_framework" in result["packages"]
    assert "fnkit" not in result["packages"]
    assert not [line for line in done.stderr.splitlines() if "| fnkit" in line]


def test_cold_starts_run_bundles_with_their_bytecode(tmp_path, database_url):
    """The cold-start section launches what `fnkit deploy` uploads: each function's bundle with
    its own shared/ and shipped bytecode, and the hello world and the libraries-only app in
    folders of their own, compiled the same way. The libraries app answers from its folder
    with the repository off the import path, loading the libraries it names and querying
    Postgres through its pool (the floor pays for the first connection as functions do)."""
    built = coldstart.bundles(tmp_path)
    assert {"hello", "libraries", "tasks", "me"} <= set(built)
    for name in ("hello", "libraries", "tasks"):
        main = built[name]
        assert main.parent.parent == tmp_path
        assert (main.parent / "__pycache__" / "main.cpython-311.pyc").is_file()
    assert (built["tasks"].parent / "shared" / "__pycache__" / "app.cpython-311.pyc").is_file()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["DATABASE_URL"] = database_url
    argv = [sys.executable, "-P", str(startup.PROBE), "--source", str(built["libraries"])]
    done = subprocess.run(
        argv, capture_output=True, text=True, env=env, cwd=built["libraries"].parent, timeout=60
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["status"] == 200
    assert {"psycopg", "psycopg_pool", "pydantic", "jwt", "cryptography"} <= set(result["packages"])
    assert "shared" not in result["packages"] and "fnkit" not in result["packages"]
