"""Start the things under test as separate processes, the way they run in production.

* `functions_framework(...)`: the `functions-framework` command (gunicorn, 1 worker, its default
  threads), exactly what Cloud Run functions runs; used for cold start and memory, with
  `python` the runtime-only virtualenv's interpreter (fnkit/bench/runtime_env.py).
* `gunicorn(...)`: functions-framework's app under gunicorn with workers and threads chosen for
  this machine; used for load.
* `uvicorn(...)`: the FastAPI peer.

Every process gets its own log file in the run's temporary folder (functions log one JSON line
per request; the file keeps them off the terminal) and is ended by its pid.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fnkit.bench.services import Services, free_port, stop_process, wait_for_port

LOG_DIR = Path(tempfile.mkdtemp(prefix="fnkit-bench-"))


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log: Path
    launched: float  # time.perf_counter() just before Popen

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait(self, timeout: float = 30) -> Server:
        try:
            wait_for_port(self.port, timeout, self.proc)
        except (RuntimeError, TimeoutError) as exc:
            raise RuntimeError(f"{self.name} did not start: {exc}\n{self.tail()}") from None
        return self

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        stop_process(self.proc)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def _launch(
    name: str, argv: list[str], env: dict[str, str], port: int, cwd: Path | None = None
) -> Server:
    log = LOG_DIR / f"{name}-{port}.log"
    handle = log.open("wb")
    launched = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=handle, stderr=subprocess.STDOUT)
    handle.close()
    return Server(name, proc, port, log, launched)


def functions_framework(
    name: str,
    source: Path,
    services: Services,
    port: int | None = None,
    *,
    python: str | Path | None = None,
    python_env: Mapping[str, str] | None = None,
    bundle: bool = False,
    **env: str,
) -> Server:
    """`python -m functions_framework` (default: this interpreter); `python_env` (a venv's
    activation, `RuntimeEnv.env()`) and `env` add variables to the function's settings.

    `bundle`: `source` is the `main.py` of a built bundle (fnkit/bundle.py), run as Cloud Run
    runs it: from its own folder, with its own copy of `shared/` and its shipped bytecode, and
    the repository kept off the import path."""
    port = port or free_port()
    argv = [
        str(python or sys.executable), "-m", "functions_framework", "--target", "handler",
        "--source", str(source), "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    made = services.bundle_env if bundle else services.process_env
    process_env = made(**{**(python_env or {}), **env})
    return _launch(name, argv, process_env, port, cwd=source.parent if bundle else None)


def gunicorn(
    name: str,
    source: Path,
    services: Services,
    *,
    workers: int = 2,
    threads: int = 8,
    **env: str,
) -> Server:
    port = free_port()
    argv = [
        sys.executable, "-m", "gunicorn", "fnkit.bench.gunicorn_app:app",
        "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
        "--worker-class", "gthread", "--threads", str(threads),
        "--log-level", "warning", "--backlog", "256",
    ]  # fmt: skip
    extra = {"FNKIT_BENCH_SOURCE": str(source), "DB_POOL_MAX": str(threads), **env}
    return _launch(name, argv, services.process_env(**extra), port)


def uvicorn(
    name: str,
    app: str,
    services: Services,
    *,
    workers: int = 2,
    python: str | Path | None = None,
    **env: str,
) -> Server:
    port = free_port()
    argv = [
        str(python or sys.executable), "-m", "uvicorn", app,
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
        "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    return _launch(name, argv, services.process_env(**env), port)
