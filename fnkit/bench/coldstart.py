"""Cold start per function, the import-time breakdown, and memory after 1,000 requests.

Cold start: the clock starts just before the `functions-framework --target handler` process
is launched (gunicorn, as Cloud Run functions runs it) and stops at the first 2xx answer to
the function's main read route (its real work: token, rate limit, database), polled every
2 ms. Each function starts twice per round: its first request carrying an HS256 token (the
legacy secret) and, in another process, an ES256 token (Supabase's asymmetric keys: the
first request also fetches the JWKS). The floor is the bare functions-framework hello world
(fnkit/bench/peers/hello.py) launched the same way, and the peer the FastAPI tasks app
(fnkit/bench/peers/fastapi_tasks.py, one uvicorn worker, HS256) answering its `GET /tasks`,
in the same rounds (every target once per round, so drift on a shared machine does not land
on whichever ran first). So is the hello world loading only the libraries a database
function needs (fnkit/bench/peers/libraries.py): the part of a start no runtime code can
remove, shown beside what the functions take. The median of the runs is reported.

Imports: a fresh interpreter per function under `python -X importtime` (fnkit/bench/probe.py)
runs functions-framework's `create_app` and then one request; the top-level modules by
cumulative time, for the load and for the first request apart, and the Supabase client
modules loaded at each point (none may be, for functions that do not use
`shared.supabase_admin`).

Memory (in the same process as the first cold start): 1,000 requests from 4 client threads,
then the resident set size of the worker that served them (psutil, read from this process),
and the proportional set size of master and worker together (what the container is charged,
roughly).

Where: all three run the hello world and every function with the interpreter of a
virtualenv holding only the bundles' requirements (fnkit/bench/runtime_env.py), as Cloud Run
functions installs them, not the dev venv (whose dev-only packages change what the same
imports load). The result says which (`environment`, and a line in `notes`), also when the
bench had to fall back to the dev venv. Each function runs from its bundle, built into a
temporary folder by fnkit/bundle.py exactly as `fnkit deploy` uploads it: its own folder as
the working directory, its own copy of shared/, the repository off the import path, and the
bytecode the bundle ships. Without that bytecode every start would compile main.py and shared/
again (a container never starts from a warm `__pycache__`; this machine also sets
PYTHONDONTWRITEBYTECODE), which is not what a deployed function pays.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from fnkit.bench import runtime_env, servers
from fnkit.bench.services import ACME, ROOT, TASK_WITH_COMMENTS, Services
from fnkit.bench.stats import median

HELLO = Path(__file__).with_name("peers") / "hello.py"
LIBRARIES = Path(__file__).with_name("peers") / "libraries.py"
PROBE = Path(__file__).with_name("probe.py")
PROBES = {
    "health": "/",
    "me": "/",
    "workspaces": "/",
    "projects": f"/?workspace_id={ACME}",
    "tasks": f"/?workspace_id={ACME}&limit=50",
    "comments": f"/?task_id={TASK_WITH_COMMENTS}",
    "stats": f"/?workspace_id={ACME}",
    "members": f"/?workspace_id={ACME}",
    "attachments": f"/?task_id={TASK_WITH_COMMENTS}",
}
MiB = 1024 * 1024
BUNDLES_NOTE = (
    "Functions start from their bundles (`fnkit bundle`: own folder, own shared/, shipped "
    "bytecode), as deployed; the hello world from a folder of its own with its bytecode too."
)
OWNER = "11111111-1111-1111-1111-111111111111"
# Installed in the dev venv, never a function's requirement: a function process loading one
# was measured in the wrong environment (or imports dev tooling).
DEV_ONLY = ("rich", "schemathesis", "hypothesis", "fastapi", "pytest", "psutil", "fakeredis")


def bundles(into: Path) -> dict[str, Path]:
    """Every function built as `fnkit deploy` uploads it, plus the hello world and the
    libraries-only app given the same treatment (own folder, shipped bytecode): name → the
    bundle's `main.py`."""
    import py_compile

    from fnkit import bundle

    built = {}
    for name, source in (("hello", HELLO), ("libraries", LIBRARIES)):
        main = into / name / "main.py"
        main.parent.mkdir(parents=True)
        shutil.copyfile(source, main)
        mode = py_compile.PycInvalidationMode.UNCHECKED_HASH
        py_compile.compile(str(main), invalidation_mode=mode)
        built[name] = main
    for item in bundle.build_all(ROOT, out=into):
        built[item.name] = item.path / "main.py"
    return built


def needs_supabase(source: Path) -> bool:
    return "supabase_admin" in source.read_text()


def probe_path(name: str) -> str:
    return PROBES.get(name, "/openapi.json")


def first_response(
    server: servers.Server, path: str, token: str | None, timeout: float = 30
) -> tuple[float, float]:
    """Seconds from launch to the first 2xx, and to the port accepting connections."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:  # the port first: a refused connect costs little
        if server.proc.poll() is not None:
            raise RuntimeError(f"{server.name} exited: {server.tail()}")
        try:
            socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.002)
    port_open = time.perf_counter() - server.launched
    with httpx.Client(timeout=10) as client:
        while time.perf_counter() < deadline:
            try:
                response = client.get(server.url + path, headers=headers)
            except httpx.TransportError:
                time.sleep(0.002)
                continue
            if 200 <= response.status_code < 300:
                return time.perf_counter() - server.launched, port_open
            raise RuntimeError(
                f"{server.name}: first answer {response.status_code}: {response.text[:300]}"
            )
    raise TimeoutError(f"{server.name} did not answer within {timeout} s")


def peer_cold_start(services: Services, runtime: runtime_env.RuntimeEnv, token: str) -> float:
    """The FastAPI peer's launch → first 2xx, in ms, with the interpreter the functions use."""
    server = servers.uvicorn(
        "cold-peer",
        "fnkit.bench.peers.fastapi_tasks:app",
        services,
        workers=1,
        python=runtime.python,
        **runtime.env(),
    )
    with server:
        return first_response(server, f"/tasks?workspace_id={ACME}&limit=50", token)[0] * 1000


def hammer(server: servers.Server, path: str, tokens: list[str | None], total: int = 1000) -> int:
    """`total` requests from 4 threads; returns how many were not 2xx."""
    failures = [0]

    def run(offset: int) -> None:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            for i in range(offset, total, 4):
                token = tokens[i % len(tokens)]
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                if not 200 <= client.get(path, headers=headers).status_code < 300:
                    failures[0] += 1

    threads = [threading.Thread(target=run, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return failures[0]


def memory(server: servers.Server) -> dict[str, float]:
    import psutil

    master = psutil.Process(server.proc.pid)
    workers = master.children(recursive=True)
    procs = [master, *workers]
    return {
        "worker_rss_mib": max((p.memory_info().rss for p in workers), default=0) / MiB,
        "total_pss_mib": sum(p.memory_full_info().pss for p in procs) / MiB,
        "total_rss_mib": sum(p.memory_info().rss for p in procs) / MiB,
    }


def _top_level(lines: list[str]) -> list[tuple[str, int]]:
    """(module, cumulative µs) of the imports at depth 0 in `-X importtime` lines."""
    rows = []
    for line in lines:
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line[len("import time:") :].split("|")
        if not name.startswith("  ", 1):  # depth 0 is " name", deeper ones are indented
            rows.append((name.strip(), int(cumulative)))
    return sorted(rows, key=lambda row: -row[1])


def probe(
    source: Path,
    path: str,
    token: str | None,
    env: dict[str, str],
    top: int = 8,
    python: str | Path | None = None,
) -> dict[str, Any]:
    """Imports at load and on the first request, and the Supabase modules then loaded.

    Run as a file under `-P`, so the function's process imports nothing from fnkit."""
    from fnkit.bench.probe import MARKS

    argv = [str(python or sys.executable), "-P", "-X", "importtime", str(PROBE)]
    argv += ["--source", str(source), "--path", path] + (["--token", token] if token else [])
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60, check=True)
    line = [x for x in done.stdout.splitlines() if x.startswith('{"at_import"')][-1]
    result: dict[str, Any] = json.loads(line)
    err = done.stderr.splitlines()
    at = {mark: err.index(mark) for mark in MARKS}
    for phase, first, last in (("load", MARKS[0], MARKS[1]), ("request", MARKS[1], MARKS[2])):
        rows = _top_level(err[at[first] + 1 : at[last]])
        result[f"{phase}_imports_ms"] = sum(us for _, us in rows) / 1000
        result[f"{phase}_imports"] = [{"module": m, "ms": us / 1000} for m, us in rows[:top]]
    return result


def measure(services: Services, quick: bool) -> dict[str, Any]:
    """Full: 5 cold starts each, in rounds, 1,000 requests, probes one at a time.
    Quick: 1 cold start, 200 requests, and the probe runs while the requests are served
    (after the cold start was timed, so only the import timings suffer from the overlap)."""
    with tempfile.TemporaryDirectory(prefix="fnkit-bench-bundles-") as into:
        return _measure(services, quick, bundles(Path(into)))


def _measure(services: Services, quick: bool, built: dict[str, Path]) -> dict[str, Any]:
    runs, requests = (1, 200) if quick else (5, 1000)
    runtime = runtime_env.ensure()
    owner_token = services.jwks.hs256(OWNER)
    env = services.bundle_env(**runtime.env())
    targets: dict[str, tuple[Path, str, str | None]] = {"hello": (built["hello"], "/", None)}
    for name, source in built.items():
        if name not in ("hello", "libraries"):
            targets[name] = (source, probe_path(name), owner_token)
    es256 = services.jwks.es256(OWNER)
    es256_runs: dict[str, list[float]] = {name: [] for name in targets if name != "hello"}
    peer_runs: list[float] = []
    library_runs: list[float] = []
    results: dict[str, Any] = {
        "runs": runs,
        "requests": requests,
        "environment": runtime.environment,
        "python": str(runtime.python),
        "environment_build_s": runtime.build_s,
        "notes": [runtime.note(), BUNDLES_NOTE],
        "functions": {},
    }
    # Rounds: every target once per round (hello world included), so drift on a shared
    # machine spreads over all of them instead of landing on whichever ran first.
    times: dict[str, list[float]] = {name: [] for name in targets}
    listening: dict[str, list[float]] = {name: [] for name in targets}
    entries: dict[str, dict[str, Any]] = {
        name: {"probe": path} for name, (_, path, _) in targets.items()
    }
    probed: dict[str, dict[str, Any]] = {name: {} for name in targets}
    for run in range(runs):
        for name, (source, path, token) in targets.items():

            def run_probe(
                source: Path = source,
                path: str = path,
                token: str | None = token,
                into: dict[str, Any] = probed[name],
            ) -> None:
                into.update(probe(source, path, token, env, python=runtime.python))

            services.bridge.flush()
            server = servers.functions_framework(
                f"cold-{name}", source, services,
                python=runtime.python, python_env=runtime.env(), bundle=True,
            )  # fmt: skip
            with server:
                seconds, port_open = first_response(server, path, token)
                times[name].append(seconds * 1000)
                listening[name].append(port_open * 1000)
                if run == 0:
                    prober = threading.Thread(target=run_probe) if quick else None
                    if prober is not None:
                        prober.start()
                    tokens: list[str | None] = [token] if token is None else list(services.tokens)
                    entry = entries[name]
                    entry["failed_requests"] = hammer(server, path, tokens, requests)
                    entry.update(memory(server))
                    if prober is not None:
                        prober.join()
            if name in es256_runs:
                services.bridge.flush()
                server = servers.functions_framework(
                    f"cold-{name}-es256", source, services,
                    python=runtime.python, python_env=runtime.env(), bundle=True,
                )  # fmt: skip
                with server:
                    es256_runs[name].append(first_response(server, path, es256)[0] * 1000)
        peer_runs.append(peer_cold_start(services, runtime, owner_token))
        libraries = servers.functions_framework(
            "cold-libraries", built["libraries"], services,
            python=runtime.python, python_env=runtime.env(), bundle=True,
        )  # fmt: skip
        with libraries:
            library_runs.append(first_response(libraries, "/", None)[0] * 1000)
    for name, (source, _, _) in targets.items():
        if not probed[name]:
            probed[name].update(
                probe(source, targets[name][1], targets[name][2], env, python=runtime.python)
            )
        entry = entries[name]
        entry["cold_ms"] = median(times[name])
        entry["listening_ms"] = median(listening[name])
        entry["cold_runs_ms"] = times[name]
        if name in es256_runs:
            entry["cold_es256_ms"] = median(es256_runs[name])
            entry["cold_es256_runs_ms"] = es256_runs[name]
        entry["imports"] = probed[name]
        entry["needs_supabase"] = name != "hello" and needs_supabase(source)
        results["functions"][name] = entry
    results["peer"] = {
        "name": "FastAPI peer (GET /tasks, uvicorn)",
        "cold_ms": median(peer_runs),
        "cold_runs_ms": peer_runs,
    }
    results["libraries"] = {
        "name": "libraries alone (psycopg + pool, pydantic, PyJWT + cryptography), hello world",
        "cold_ms": median(library_runs),
        "cold_runs_ms": library_runs,
    }
    leaked = sorted(
        {p for e in results["functions"].values() for p in e["imports"].get("packages", [])}
        & {"fnkit", *DEV_ONLY}
    )
    if leaked:
        results["notes"].append(f"Loaded by a function process, not expected: {', '.join(leaked)}.")
    return results
