"""`fnkit bundle`: what goes into a function's bundle, and that a bundle runs on its own.

The last test is the real thing: one bundle installed from its requirements.txt into a clean
virtualenv (PyPI), started with `functions-framework --target handler` as Cloud Run starts it,
and called over HTTP with the test session's settings.
"""

from __future__ import annotations

import importlib.metadata as metadata
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from fnkit import bundle, lock
from fnkit.cli import main as fnkit_main

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT / "shared"


def _names(pins: list[bundle.Pin] | tuple[bundle.Pin, ...]) -> set[str]:
    return {pin.name for pin in pins}


def _function(tmp_path: Path, source: str, name: str = "probe") -> Path:
    main = tmp_path / "functions" / name / "main.py"
    main.parent.mkdir(parents=True)
    main.write_text(source)
    return main


# ---- what a function imports ----------------------------------------------------------------


def test_health_reaches_shared_but_not_supabase() -> None:
    found = bundle.scan(ROOT / "functions" / "health" / "main.py", SHARED)
    assert {"shared", "shared.app", "shared.db", "shared.redis_client"} <= found.uses
    assert "shared.supabase_admin" not in found.uses
    tops = {name.split(".")[0] for name in found.modules}
    # psycopg_pool and upstash_redis are imported lazily, inside functions of shared/.
    assert tops == {
        "flask", "jwt", "orjson", "psycopg", "psycopg_pool", "pydantic",
        "upstash_redis", "werkzeug",
        # request.emit and schedule= exist on every function; both are imported lazily
        "cronsim", "standardwebhooks",
        # telemetry, imported only when the OTEL_* variables turn it on (shared.tracecontext)
        "opentelemetry",
    }  # fmt: skip
    pins = bundle.requirements_for(found.modules)
    assert "httpx" in _names(pins)  # not imported by shared/, but upstash-redis needs it
    assert "supabase" not in _names(pins)
    assert not {"realtime", "supabase-auth", "storage3", "postgrest"} & _names(pins)


def test_a_function_using_supabase_admin_gets_supabase(tmp_path: Path) -> None:
    main = _function(
        tmp_path,
        "from shared import App\nfrom shared.supabase_admin import get_client\n"
        "app = App('probe')\nhandler = app.handler\n",
    )
    found = bundle.scan(main, SHARED)
    assert "shared.supabase_admin" in found.uses
    pins = {pin.name: pin for pin in bundle.requirements_for(found.modules)}
    assert pins["supabase"].version == metadata.version("supabase") and not pins["supabase"].via
    assert pins["realtime"].via  # what supabase needs comes along, pinned too


def test_type_checking_imports_are_skipped_and_optional_ones_kept_only_when_installed(
    tmp_path: Path,
) -> None:
    main = _function(
        tmp_path,
        "from typing import TYPE_CHECKING\n"
        "import helpers\n"
        "if TYPE_CHECKING:\n    import supabase\nelse:\n    import httpx\n"
        "try:\n    import not_installed_anywhere\nexcept ImportError:\n    pass\n"
        "try:\n    import flask\nexcept (ImportError, OSError):\n    flask = None\n"
        "def later():\n    import upstash_redis\n",
    )
    (main.parent / "helpers.py").write_text("import lib.tools\nimport pydantic\n")
    (main.parent / "lib").mkdir()
    (main.parent / "lib" / "__init__.py").write_text("from . import other\n")
    (main.parent / "lib" / "other.py").write_text("import json\n")
    (main.parent / "lib" / "tools.py").write_text("from .other import json\nimport jwt\n")
    found = bundle.scan(main, SHARED)
    assert set(found.modules) == {"httpx", "flask", "upstash_redis", "pydantic", "jwt"}
    local = {str(p.relative_to(main.parent)) for p in found.local_files}
    assert local == {"main.py", "helpers.py", "lib/__init__.py", "lib/other.py", "lib/tools.py"}


def test_an_unknown_or_dev_only_import_is_refused(tmp_path: Path) -> None:
    dev = _function(tmp_path, "from fnkit import db\n", name="dev")
    with pytest.raises(bundle.BundleError, match="not bundled"):
        bundle.scan(dev, SHARED)
    missing = _function(tmp_path, "import surely_not_installed_pkg\n", name="missing")
    found = bundle.scan(missing, SHARED)
    with pytest.raises(bundle.BundleError, match="surely_not_installed_pkg"):
        bundle.requirements_for(found.modules)
    absent = _function(tmp_path, "from shared import nothing_here\nimport shared.nope\n", "absent")
    with pytest.raises(bundle.BundleError, match=r"shared\.nope"):
        bundle.scan(absent, SHARED)


def test_pins_are_the_installed_versions_with_the_declared_extras() -> None:
    extras = bundle._project_extras(ROOT / "pyproject.toml")
    assert extras["psycopg"] == ("binary",) and extras["pyjwt"] == ("crypto",)
    found = bundle.scan(ROOT / "functions" / "health" / "main.py", SHARED)
    pins = {pin.name: pin for pin in bundle.requirements_for(found.modules, extras)}
    for name, pin in pins.items():
        assert pin.version == metadata.version(name), name
    assert pins["psycopg"].line() == f"psycopg[binary]=={metadata.version('psycopg')}"
    assert pins["psycopg-binary"].via == ("psycopg",)


def test_bundle_pins_are_the_locks_releases_and_hashes() -> None:
    locked = lock.read(ROOT)
    found = bundle.scan(ROOT / "functions" / "health" / "main.py", SHARED)
    extras = bundle._project_extras(ROOT / "pyproject.toml")
    pins = {pin.name: pin for pin in bundle.requirements_for(found.modules, extras, locked)}
    for name, pin in pins.items():
        assert (pin.version, pin.hashes) == (locked[name].version, locked[name].hashes), name
        assert pin.hashes, name
    assert pins["psycopg"].line().startswith(f"psycopg[binary]=={locked['psycopg'].version} \\\n")
    assert pins["psycopg-binary"].via == ("psycopg",)
    assert pins["cryptography"].via == ("pyjwt",)
    assert not pins["functions-framework"].via  # always there, as a direct requirement


def test_cli_writes_the_bundle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    stale = out / "health" / "stale.txt"
    stale.parent.mkdir(parents=True)
    stale.write_text("left over from an older bundle")
    cwd = Path.cwd()
    os.chdir(ROOT)
    try:
        assert fnkit_main(["bundle", "health", "me", "--out", str(out)]) == 0
    finally:
        os.chdir(cwd)
    assert "health" in capsys.readouterr().out
    for name in ("health", "me"):
        target = out / name
        assert (target / "main.py").read_bytes() == (
            ROOT / "functions" / name / "main.py"
        ).read_bytes()
        assert {p.name for p in (target / "shared").glob("*.py")} == {
            p.name for p in SHARED.glob("*.py")
        }
        # Fresh bytecode for every module (not the repository's own), valid whatever the
        # files' timestamps: unchecked-hash pycs (PEP 552 flags 0b01).
        tag = sys.implementation.cache_tag
        sources = [p for p in target.rglob("*.py")]
        for source in sources:
            pyc = source.parent / "__pycache__" / f"{source.stem}.{tag}.pyc"
            assert pyc.is_file(), source
            assert int.from_bytes(pyc.read_bytes()[4:8], "little") == 0b01, source
        assert len(list(target.rglob("*.pyc"))) == len(sources)
        text = (target / "requirements.txt").read_text().replace("\\\n", " ")
        lines = [
            line.split("#")[0].strip() for line in text.splitlines() if line.split("#")[0].strip()
        ]
        assert all("==" in line and "--hash=sha256:" in line for line in lines), lines
        assert not any(line.startswith(("supabase", "pytest", "ruff", "mypy")) for line in lines)
    assert not stale.exists()
    assert fnkit_main(["bundle", "nope", "--out", str(out)]) == 1


# ---- a bundle runs on its own ---------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_health_bundle_runs_in_a_clean_virtualenv(
    tmp_path: Path, function_env: dict[str, str]
) -> None:
    built = bundle.build("health", ROOT, tmp_path / "build")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--python", str(python), "--disable-pip-version-check"]
    install = subprocess.run(
        [*pip, "install", "-q", "-r", str(built.path / "requirements.txt")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    check = subprocess.run([*pip, "check"], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    probe = "import importlib.util as u; print(u.find_spec('supabase'), u.find_spec('fnkit'))"
    found = subprocess.run(
        [str(python), "-c", probe], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert found.stdout.split() == ["None", "None"]

    port = _free_port()
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "LANG": "C.UTF-8", **function_env}
    server = subprocess.Popen(
        [
            str(venv / "bin" / "functions-framework"),
            "--target", "handler", "--source", "main.py", "--host", "127.0.0.1",
            "--port", str(port),
        ],
        cwd=built.path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            assert server.poll() is None, server.communicate()[0][-3000:]
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the bundle did not start listening"
                time.sleep(0.2)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["success"] is True
        assert body["data"]["status"] == "ok"
        assert body["data"]["checks"]["database"]["ok"] is True
        assert body["data"]["checks"]["redis"]["ok"] is True
        assert body["meta"]["request_id"] == response.headers["X-Request-Id"]
        # The gateway path shape works too, and the function documents itself.
        document = httpx.get(f"http://127.0.0.1:{port}/health/openapi.json", timeout=5).json()
        assert "/health" in document["paths"]
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
