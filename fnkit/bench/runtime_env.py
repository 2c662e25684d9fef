"""The interpreter the cold-start section runs functions in: a runtime-only virtualenv.

Cloud Run functions installs a function's `requirements.txt` and nothing else, so a cold start
measured in the dev virtualenv is wrong: dev-only packages change what the same imports load
(httpx imports its command line, and with it `rich` and `click`, whenever they are installed).
`ensure()` builds, once, a virtualenv holding the union of every function's bundle requirements
(fnkit/bundle.py: what the code imports, pinned to the versions installed in the dev venv)
plus gunicorn (functions-framework serves through it; it is already one of its requirements on
Linux). psutil is not installed: memory is read from the bench process, from outside.

Neither fnkit nor `shared` is installed there: the functions run from their bundles (each
with its own copy of `shared/`, fnkit/bench/coldstart.py), the FastAPI peer from the repository.

The virtualenv lives in the git-ignored `.fnkit/bench/runtime-venv-<key>`, the key a hash of
the interpreter and the requirement lines, so it is rebuilt only when a pin changes (and the
previous one removed). If it cannot be built (no network, no wheel), the bench falls back to
the dev venv and says so. `FNKIT_BENCH_RUNTIME_VENV=0` asks for the dev venv on purpose.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from fnkit import bundle, lock
from fnkit.bench.services import ROOT

CACHE_DIR = ROOT / ".fnkit" / "bench"
PREFIX = "runtime-venv-"
MARKER = "fnkit-bench-complete"  # written last: a venv without it is a failed build
# gunicorn: functions-framework runs under it. fastapi, uvicorn: the peer's cold start is
# measured with the same interpreter (no function imports either).
EXTRA = ("gunicorn", "fastapi", "uvicorn")
RUNTIME = "runtime venv (bundle requirements only)"
BUILD_TIMEOUT_S = 600


@dataclass(frozen=True)
class RuntimeEnv:
    """Where a function process runs: `python`, and what the report says about it."""

    python: Path
    venv: Path | None  # None: the dev venv, as a fallback
    environment: str  # RUNTIME, or "dev venv (...)" saying why
    packages: int = 0  # requirement lines installed
    build_s: float | None = None  # seconds spent building in this run; None: it was cached

    @property
    def isolated(self) -> bool:
        return self.venv is not None

    def env(self) -> dict[str, str]:
        """Variables for a child process, as if the venv were activated."""
        if self.venv is None:
            return {}
        path = os.pathsep.join(filter(None, [str(self.venv / "bin"), os.environ.get("PATH")]))
        return {"VIRTUAL_ENV": str(self.venv), "PATH": path}

    def note(self) -> str:
        if self.venv is None:
            return f"Cold start, imports and memory measured in the {self.environment}."
        where = self.venv.relative_to(ROOT) if self.venv.is_relative_to(ROOT) else self.venv
        built = "cached" if self.build_s is None else f"built in {self.build_s:.0f} s"
        return (
            f"Cold start, imports and memory measured in the {RUNTIME}: {self.packages} "
            f"pinned distributions, as Cloud Run functions installs them ({where}, {built})."
        )


def pins(root: Path = ROOT) -> list[bundle.Pin]:
    """The union of every function's bundle requirements plus EXTRA, pinned from the lock."""
    modules: dict[str, Path] = {}
    for name in bundle.function_names(root):
        found = bundle.scan(root / "functions" / name / "main.py", root / bundle.SHARED)
        modules.update(found.modules)
    modules.update({name: root for name in EXTRA})  # the server, and what it needs
    return bundle.requirements_for(
        modules, bundle._project_extras(root / "pyproject.toml"), lock.read(root)
    )


def requirement_lines(found: list[bundle.Pin]) -> list[str]:
    """`name[extras]==version`, sorted: what pip installs and what the cache key hashes."""
    return sorted(pin.spec for pin in found)


def cache_key(lines: list[str]) -> str:
    interpreter = [
        sys.implementation.name,
        platform.python_version(),
        platform.machine(),
        os.path.realpath(getattr(sys, "_base_executable", sys.executable)),
    ]
    return hashlib.sha256("\n".join(interpreter + lines).encode()).hexdigest()[:12]


def _say(message: str) -> None:
    print(f"fnkit bench: {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One builder at a time (two bench runs started together build once)."""
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run(what: str, argv: list[str], timeout: float) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        last = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        raise RuntimeError(f"{what} failed: {' '.join(last[-1:])[:200]}")


def _build(venv: Path, found: list[bundle.Pin], lines: list[str]) -> None:
    shutil.rmtree(venv, ignore_errors=True)
    deadline = time.monotonic() + BUILD_TIMEOUT_S
    _run("python -m venv", [sys.executable, "-m", "venv", str(venv)], 120)
    requirements = venv / "requirements.txt"
    requirements.write_text(bundle.render_requirements("fnkit bench runtime", found))
    python = str(venv / "bin" / "python")
    pip = [
        python, "-m", "pip", "install", "--disable-pip-version-check", "--no-input",
        "--quiet", "--retries", "2", "--timeout", "20", "-r", str(requirements),
    ]  # fmt: skip
    _run("pip install", pip, max(deadline - time.monotonic(), 1))
    _run("the import check", [python, "-c", "import functions_framework, gunicorn"], 60)
    (venv / MARKER).write_text("\n".join(lines) + "\n")


def _dev(why: str) -> RuntimeEnv:
    return RuntimeEnv(Path(sys.executable), None, f"dev venv ({why})")


@functools.cache
def ensure(root: Path = ROOT, cache: Path = CACHE_DIR) -> RuntimeEnv:
    """The runtime venv, built now if it is not cached; the dev venv if it cannot be."""
    if os.environ.get("FNKIT_BENCH_RUNTIME_VENV", "1").strip().lower() in {"0", "no", "false"}:
        return _dev("FNKIT_BENCH_RUNTIME_VENV=0")
    try:
        found = pins(root)
    except bundle.BundleError as exc:
        return _dev(f"runtime venv could not be built: {exc}")
    lines = requirement_lines(found)
    venv = cache / f"{PREFIX}{cache_key(lines)}"
    python = venv / "bin" / "python"
    try:
        cache.mkdir(parents=True, exist_ok=True)
        with _locked(cache / f"{venv.name}.lock"):
            if (venv / MARKER).is_file() and python.exists():
                return RuntimeEnv(python, venv, RUNTIME, len(lines))
            shown = venv.relative_to(root) if venv.is_relative_to(root) else venv
            _say(
                f"building the runtime venv for cold starts ({len(lines)} pinned distributions, "
                f"once; cached in {shown}) ..."
            )
            began = time.perf_counter()
            try:
                _build(venv, found, lines)
            except BaseException:
                shutil.rmtree(venv, ignore_errors=True)
                raise
            seconds = time.perf_counter() - began
        _prune(cache, keep=venv)
        return RuntimeEnv(python, venv, RUNTIME, len(lines), seconds)
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        _say(f"runtime venv could not be built ({reason}); measuring in the dev venv")
        return _dev(f"runtime venv could not be built: {reason}")


def _prune(cache: Path, keep: Path) -> None:
    """Remove runtime venvs of earlier requirement sets (this module made them)."""
    for old in cache.glob(f"{PREFIX}*"):
        if old != keep and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
            (cache / f"{old.name}.lock").unlink(missing_ok=True)
