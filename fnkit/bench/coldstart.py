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
on whichever ran first). So is "libraries alone" (fnkit/bench/peers/libraries.py): the hello
world loading the libraries a database function needs and opening its pool's first
Postgres connection on the first request, the part of a start no runtime code can remove.
It is the floor the functions' target is set against. `hooks` and `housekeeping`, which no
user calls, are timed to the first 2xx of their machine caller's call instead (a signed Auth
hook call, the scheduler's secret key: fnkit/bench/machine_calls.py), once per round. The
median of the runs is reported, in wall time and in CPU time of the server's processes
(steadier on a shared machine).

Where the time over libraries alone goes (fnkit/bench/startup.py): a fresh interpreter per
function under `python -X importtime` (fnkit/bench/probe.py) runs functions-framework's
`create_app` and then one request, timed apart and the request profiled; set against the
same probe of libraries alone: the modules loaded beyond it, the load's and the first
request's CPU differences. Also the Supabase client modules loaded at each point (none may
be before the first Storage or Auth-admin call).

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

import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from fnkit.bench import runtime_env, servers
from fnkit.bench.machine_calls import CALLS, MachineCall
from fnkit.bench.services import ACME, ROOT, TASK_WITH_COMMENTS, Services
from fnkit.bench.startup import beyond, cpu_ms, probe
from fnkit.bench.stats import median

HELLO = Path(__file__).with_name("peers") / "hello.py"
LIBRARIES = Path(__file__).with_name("peers") / "libraries.py"
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
CPU_NOTE = (
    "CPU: user + system time of the gunicorn master and its worker from launch to the first "
    "2xx (median of the runs), steadier than wall time on a shared machine. Where the time "
    "over libraries alone goes: fnkit/bench/startup.py (one probe in a fresh interpreter, "
    "the cheapest of its runs)."
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
    server: servers.Server,
    path: str,
    token: str | None,
    timeout: float = 30,
    call: MachineCall | None = None,
) -> tuple[float, float]:
    """Seconds from launch to the first 2xx, and to the port accepting connections: of a
    GET of `path` with `token`, or of a machine caller's `call` (hooks, housekeeping)."""
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
                if call is not None:
                    response = call.send(client, server.url)
                else:
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


def measure(services: Services, quick: bool) -> dict[str, Any]:
    """Full: 5 cold starts each, in rounds, 1,000 requests, the probe 3 times each.
    Quick: 1 cold start, 200 requests, the probe twice each. Probes run one at a time after
    the rounds, so their timings are not disturbed by the requests."""
    with tempfile.TemporaryDirectory(prefix="fnkit-bench-bundles-") as into:
        return _measure(services, quick, bundles(Path(into)))


def _start(
    name: str,
    source: Path,
    services: Services,
    runtime: runtime_env.RuntimeEnv,
    call: MachineCall | None = None,
) -> servers.Server:
    settings = call.settings if call is not None else {}
    return servers.functions_framework(
        name,
        source,
        services,
        python=runtime.python,
        python_env={**runtime.env(), **settings},
        bundle=True,
    )


def _measure(services: Services, quick: bool, built: dict[str, Path]) -> dict[str, Any]:
    runs, requests, repeats = (1, 200, 2) if quick else (5, 1000, 3)
    runtime = runtime_env.ensure()
    owner_token = services.jwks.hs256(OWNER)
    env = services.bundle_env(**runtime.env())
    targets: dict[str, tuple[Path, str, str | None]] = {"hello": (built["hello"], "/", None)}
    for name, source in built.items():
        if name not in ("hello", "libraries"):
            targets[name] = (source, probe_path(name), owner_token)
    es256 = services.jwks.es256(OWNER)
    es256_runs: dict[str, list[float]] = {
        name: [] for name in targets if name != "hello" and name not in CALLS
    }
    peer_runs: list[float] = []
    results: dict[str, Any] = {
        "runs": runs,
        "requests": requests,
        "environment": runtime.environment,
        "python": str(runtime.python),
        "environment_build_s": runtime.build_s,
        "notes": [runtime.note(), BUNDLES_NOTE, CPU_NOTE],
        "functions": {},
    }
    # Rounds: every target once per round (hello world and libraries alone included), so
    # drift on a shared machine spreads over all of them instead of landing on whichever ran
    # first.
    times: dict[str, list[float]] = {name: [] for name in [*targets, "libraries"]}
    cpu: dict[str, list[float]] = {name: [] for name in times}
    listening: dict[str, list[float]] = {name: [] for name in targets}
    entries: dict[str, dict[str, Any]] = {
        name: {"probe": path} for name, (_, path, _) in targets.items()
    }
    for name, machine in CALLS.items():
        if name in entries:
            entries[name].update(
                probe=f"{machine.method} {machine.path}", credential=machine.credential
            )
    for run in range(runs):
        for name, (source, path, token) in targets.items():
            services.bridge.flush()
            call = CALLS.get(name)
            with _start(f"cold-{name}", source, services, runtime, call) as server:
                seconds, port_open = first_response(server, path, token, call=call)
                cpu[name].append(cpu_ms(server))
                times[name].append(seconds * 1000)
                listening[name].append(port_open * 1000)
                if run == 0:
                    tokens: list[str | None] = [token] if token is None else list(services.tokens)
                    entry = entries[name]
                    entry["failed_requests"] = hammer(server, path, tokens, requests)
                    entry.update(memory(server))
            if name in es256_runs:
                services.bridge.flush()
                with _start(f"cold-{name}-es256", source, services, runtime) as server:
                    es256_runs[name].append(first_response(server, path, es256)[0] * 1000)
        peer_runs.append(peer_cold_start(services, runtime, owner_token))
        with _start("cold-libraries", built["libraries"], services, runtime) as libraries:
            times["libraries"].append(first_response(libraries, "/", None)[0] * 1000)
            cpu["libraries"].append(cpu_ms(libraries))
    floor = probe(built["libraries"], "/", None, env, python=runtime.python, repeats=repeats)
    for name, (source, path, token) in targets.items():
        services.bridge.flush()
        found = probe(source, path, token, env, python=runtime.python, repeats=repeats)
        entry = entries[name]
        entry["cold_ms"] = median(times[name])
        entry["cpu_ms"] = median(cpu[name])
        entry["listening_ms"] = median(listening[name])
        entry["cold_runs_ms"] = times[name]
        entry["cpu_runs_ms"] = cpu[name]
        if name in es256_runs:
            entry["cold_es256_ms"] = median(es256_runs[name])
            entry["cold_es256_runs_ms"] = es256_runs[name]
        entry["beyond_libraries"] = beyond(found, floor)
        entry["imports"] = {k: v for k, v in found.items() if k != "module_ms"}
        entry["needs_supabase"] = name != "hello" and needs_supabase(source)
        results["functions"][name] = entry
    results["peer"] = {
        "name": "FastAPI peer (GET /tasks, uvicorn)",
        "cold_ms": median(peer_runs),
        "cold_runs_ms": peer_runs,
    }
    results["libraries"] = {
        "name": "libraries alone (psycopg + pool and its first connection, pydantic, "
        "PyJWT + cryptography), hello world",
        "cold_ms": median(times["libraries"]),
        "cpu_ms": median(cpu["libraries"]),
        "cold_runs_ms": times["libraries"],
        "cpu_runs_ms": cpu["libraries"],
        "imports": {k: v for k, v in floor.items() if k != "module_ms"},
    }
    leaked = sorted(
        {p for e in results["functions"].values() for p in e["imports"].get("packages", [])}
        & {"fnkit", *DEV_ONLY}
    )
    if leaked:
        results["notes"].append(f"Loaded by a function process, not expected: {', '.join(leaked)}.")
    return results
