"""Throughput and latency under load: the tasks function beside its floor and its peer.

16 clients on loopback for a bounded time (the full run: 3 rounds of 4 s, every target once
per round) against:
* ours: functions/tasks/main.py, functions-framework's app under gunicorn (gthread, 2 workers
  x 8 threads on 2 cores, DB_POOL_MAX=8 per worker: 16 connections at most);
* floor: the same SQL through a plain psycopg pool, 2 processes x 8 threads, no HTTP;
* peer: FastAPI + uvicorn (2 workers) + PyJWT + psycopg's async pool (8 per worker).

Load comes from `wrk` (2 threads, keep-alive) when it is installed, else from the Python
generator in fnkit/bench/loadgen.py in its own process. Either shares the 2 cores with the
server, Postgres, Redis and the Upstash bridge (a Python process too, which real Upstash is
not): the figures compare side by side on one machine; they are not capacity numbers.
Requests rotate over 2,000 bench users' tokens, so no single user hits the rate limits.

Prepared statements: function and floor run with the same DB_PREPARED_STATEMENTS (the bench's
environment, `auto` by default, resolved for the bench database's URL by shared.pooler: off
on loopback), so the ratio compares like with like. `GET /tasks` also runs function and floor
in the other mode, in the same rounds, to show what prepared statements change.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

from fnkit.bench import servers
from fnkit.bench.services import ACME, ACME_PROJECT, ROOT, Services
from fnkit.bench.stats import median, percentile

CONNECTIONS = 16
WORKERS = 2
THREADS = 8


@dataclass
class LoadResult:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int
    seconds: float
    # CPU milliseconds per request, by who spent them (see `CpuMeter`).
    cpu_ms: dict[str, float] = field(default_factory=dict)


class CpuMeter:
    """CPU time spent during a run by the server, the bridge, Postgres, Redis, the generator.

    Postgres is this database's backends (pg_stat_activity), Redis the redis-server process
    (shared with anything else using it, usually nothing during a run), the generator the
    child processes this process waited for (resource.RUSAGE_CHILDREN).
    """

    def __init__(self, services: Services, server_pid: int | None) -> None:
        self.services = services
        self.server_pid = server_pid

    def _backends(self) -> list[psutil.Process]:
        import psycopg

        with psycopg.connect(self.services.database_url, autocommit=True) as conn:
            pids = conn.execute(
                "select pid from pg_stat_activity where datname = current_database()"
                " and pid <> pg_backend_pid()"
            ).fetchall()
        return [psutil.Process(pid) for (pid,) in pids if psutil.pid_exists(pid)]

    def _procs(self) -> dict[str, list[psutil.Process]]:
        groups = {"bridge": [psutil.Process(self.services.bridge.proc.pid)]}
        if self.server_pid is not None:
            root = psutil.Process(self.server_pid)
            groups["server"] = [root, *root.children(recursive=True)]
        groups["postgres"] = self._backends()
        groups["redis"] = [
            p for p in psutil.process_iter(["name"]) if p.info["name"] == "redis-server"
        ]
        return groups

    @staticmethod
    def _cpu(procs: list[psutil.Process]) -> dict[int, float]:
        out = {}
        for proc in procs:
            try:
                times = proc.cpu_times()
                out[proc.pid] = times.user + times.system
            except psutil.Error:
                continue
        return out

    def __enter__(self) -> CpuMeter:
        self.groups = self._procs()
        self.before = {name: self._cpu(procs) for name, procs in self.groups.items()}
        self.children = _children_cpu()
        return self

    def __exit__(self, *exc: object) -> None:
        self.spent: dict[str, float] = {"generator": _children_cpu() - self.children}
        known = {p.pid for p in self.groups["postgres"]}
        # Connections opened during the run (a pool growing) count from zero.
        self.groups["postgres"] += [p for p in self._backends() if p.pid not in known]
        for name, procs in self.groups.items():
            after = self._cpu(procs)
            self.spent[name] = sum(after[pid] - self.before[name].get(pid, 0.0) for pid in after)

    def per_request(self, requests: int, extra: dict[str, float] | None = None) -> dict[str, float]:
        spent = {**self.spent, **(extra or {})}
        return {
            name: round(seconds * 1000 / max(1, requests), 3) for name, seconds in spent.items()
        }


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def generator() -> str:
    """`wrk` when installed (FNKIT_BENCH_LOADGEN=python forces the Python generator)."""
    if os.environ.get("FNKIT_BENCH_LOADGEN") == "python":
        return "python"
    return "wrk" if shutil.which("wrk") else "python"


_LUA = """
local tokens = %(tokens)s
local method, body = %(method)s, %(body)s
local counter = 0
local thread_id = 0
local next_id = 0
function setup(thread)
  thread:set("thread_id", next_id)
  next_id = next_id + 1
end
function request()
  counter = counter + 1
  local token = tokens[((counter * 2 + thread_id) %% #tokens) + 1]
  local headers = {["Authorization"] = "Bearer " .. token, ["Accept"] = "application/json"}
  if body then headers["Content-Type"] = "application/json" end
  return wrk.format(method, nil, headers, body)
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\\n{"requests":%%d,"duration_us":%%d,"p50_us":%%d,"p99_us":%%d,"errors":%%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status + e.connect + e.read + e.write + e.timeout))
end
"""


def _lua(method: str, body: str | None, tokens: list[str]) -> str:
    def quote(text: str) -> str:
        return json.dumps(text)  # a JSON string is a valid Lua string literal here (ASCII)

    return _LUA % {
        "tokens": "{" + ",".join(quote(t) for t in tokens) + "}",
        "method": quote(method),
        "body": quote(body) if body else "nil",
    }


def drive(url: str, method: str, body: str | None, tokens: list[str], seconds: float) -> LoadResult:
    """Run the load generator against `url` for `seconds`; bounded by a hard timeout."""
    timeout = seconds + 30
    if generator() == "wrk":
        script = servers.LOG_DIR / f"wrk-{method.lower()}.lua"
        script.write_text(_lua(method, body, tokens))
        argv = [
            "wrk", "-t2", f"-c{CONNECTIONS}", f"-d{max(1, round(seconds))}s",
            "--timeout", "5s", "-s", str(script), url,
        ]  # fmt: skip
    else:
        tokens_file = servers.LOG_DIR / "tokens.json"
        tokens_file.write_text(json.dumps(tokens))
        argv = [
            sys.executable,
            "-m",
            "fnkit.bench.loadgen",
            "--url",
            url,
            "--method",
            method,
            "--seconds",
            str(seconds),
            "--connections",
            str(CONNECTIONS),
            "--tokens-file",
            str(tokens_file),
        ] + (["--body", body] if body else [])
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=True)
    line = [x for x in done.stdout.splitlines() if x.startswith("{")][-1]
    data = json.loads(line)
    secs = data["duration_us"] / 1e6
    return LoadResult(
        rps=data["requests"] / secs,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        errors=int(data["errors"]),
        requests=int(data["requests"]),
        seconds=secs,
    )


def prepared_setting(services: Services) -> bool:
    """DB_PREPARED_STATEMENTS of the bench's environment, resolved for its database."""
    from shared.pooler import prepared_statements

    setting = os.environ.get("DB_PREPARED_STATEMENTS", "").strip().lower() or "auto"
    return prepared_statements(services.database_url, setting)


def floor(
    services: Services, kind: str, seconds: float, warmup: float, prepared: bool = False
) -> LoadResult:
    """WORKERS processes x THREADS threads of plain psycopg, merged."""
    tokens_file = servers.LOG_DIR / "tokens.json"
    tokens_file.write_text(json.dumps(services.tokens))
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "fnkit.bench.floor",
                "--url",
                services.database_url,
                "--kind",
                kind,
                "--seconds",
                str(seconds),
                "--warmup",
                str(warmup),
                "--threads",
                str(THREADS),
                "--workspace",
                ACME,
                "--project",
                ACME_PROJECT,
                "--tokens-file",
                str(tokens_file),
                "--offset",
                str(n * 1009),
                *(["--prepared"] if prepared else []),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=services.process_env(),
        )
        for n in range(WORKERS)
    ]
    # Handshake: each process warms up and says "warm"; the meter starts; "go" starts the
    # counted run; after its result line the process waits for "quit" before closing its
    # pool, so its Postgres backends are still there to be measured.
    outs = []
    try:
        for proc in procs:
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "warm":
                raise RuntimeError("the floor process did not warm up")
        with CpuMeter(services, None) as meter:
            for proc in procs:
                assert proc.stdin is not None
                proc.stdin.write("go\n")
                proc.stdin.flush()
            for proc in procs:
                assert proc.stdout is not None
                outs.append(json.loads(proc.stdout.readline()))
    finally:
        for proc in procs:
            with contextlib.suppress(OSError, ValueError):
                assert proc.stdin is not None
                proc.stdin.write("quit\n")
                proc.stdin.close()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
    latencies = sorted(x for o in outs for x in o["latencies"])
    secs = max(o["seconds"] for o in outs)
    # The floor's own processes count as the server; the generator is them too (no HTTP).
    meter.spent.pop("generator", None)
    meter.spent.pop("bridge", None)
    cpu = meter.per_request(len(latencies), {"server": sum(o["cpu_s"] for o in outs)})
    return LoadResult(
        rps=len(latencies) / secs,
        p50_ms=percentile(latencies, 50),
        p99_ms=percentile(latencies, 99),
        errors=sum(o["errors"] for o in outs),
        requests=len(latencies),
        seconds=secs,
        cpu_ms=cpu,
    )


def combine(runs: list[LoadResult]) -> LoadResult:
    """One figure from a target's rounds: throughput over all of them, the median round's
    latency percentiles, errors summed, CPU per request weighted by each round's requests."""
    if len(runs) == 1:
        return runs[0]
    requests = sum(r.requests for r in runs)
    seconds = sum(r.seconds for r in runs)
    names = sorted({name for r in runs for name in r.cpu_ms})
    return LoadResult(
        rps=requests / seconds if seconds else 0.0,
        p50_ms=median([r.p50_ms for r in runs]),
        p99_ms=median([r.p99_ms for r in runs]),
        errors=sum(r.errors for r in runs),
        requests=requests,
        seconds=seconds,
        cpu_ms={
            name: round(
                sum(r.cpu_ms.get(name, 0.0) * r.requests for r in runs) / max(1, requests), 3
            )
            for name in names
        },
    )


def _rss_mib(server: servers.Server) -> float:
    """Resident memory of a server's process tree (master and workers), MiB."""
    root = psutil.Process(server.proc.pid)
    total = 0
    for proc in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            total += proc.memory_info().rss
    return round(total / 2**20, 1)


def _setting(on: bool) -> str:
    return "on" if on else "off"


def measure(services: Services, quick: bool) -> dict[str, Any]:
    seconds, warmup, rounds = (3.0, 1.0, 1) if quick else (12.0, 1.0, 3)
    per_round = seconds / rounds
    list_path = f"/tasks?workspace_id={ACME}&limit=50"
    body = json.dumps({"project_id": ACME_PROJECT, "title": "bench task"})
    cases = {"get": ("GET", list_path, None), "post": ("POST", "/tasks", body)}
    prepared = prepared_setting(services)
    results: dict[str, Any] = {
        "generator": generator(),
        "connections": CONNECTIONS,
        "seconds": seconds,
        "rounds": rounds,
        "layout": f"{WORKERS} workers x {THREADS} threads",
        "prepared": prepared,
    }
    source = ROOT / "functions" / "tasks" / "main.py"
    ours = servers.gunicorn(
        "tasks-load",
        source,
        services,
        workers=WORKERS,
        threads=THREADS,
        DB_PREPARED_STATEMENTS=_setting(prepared),
    )
    # The hello world under the same server: what HTTP serving and the framework cost alone.
    hello = servers.gunicorn(
        "hello-load",
        ROOT / "fnkit" / "bench" / "peers" / "hello.py",
        services,
        workers=WORKERS,
        threads=THREADS,
    )
    # The other mode, for GET /tasks only (function and floor alike).
    other = servers.gunicorn(
        "tasks-load-other",
        source,
        services,
        workers=WORKERS,
        threads=THREADS,
        DB_PREPARED_STATEMENTS=_setting(not prepared),
    )
    peer = servers.uvicorn(
        "peer",
        "fnkit.bench.peers.fastapi_tasks:app",
        services,
        workers=WORKERS,
        DB_POOL_MAX=str(THREADS),
    )
    try:
        ours.wait()
        other.wait()
        hello.wait()
        peer.wait()
        for kind, (method, path, payload) in cases.items():
            runs: dict[str, list[LoadResult]] = {}
            targets = [("ours", ours), ("peer", peer)]
            if kind == "get":
                targets += [("ours_other", other), ("hello", hello)]
            # Rounds: each target runs once per round, so a slow spell of the shared machine
            # lands on all of them rather than on whichever ran at that moment.
            for _ in range(rounds):
                runs.setdefault("floor", []).append(
                    floor(services, kind, per_round, warmup, prepared)
                )
                if kind == "get":
                    runs.setdefault("floor_other", []).append(
                        floor(services, kind, per_round, warmup, not prepared)
                    )
                for name, server in targets:
                    services.bridge.flush()
                    drive(server.url + path, method, payload, services.tokens, warmup)
                    with CpuMeter(services, server.proc.pid) as meter:
                        result = drive(
                            server.url + path, method, payload, services.tokens, per_round
                        )
                    result.cpu_ms = meter.per_request(result.requests)
                    runs.setdefault(name, []).append(result)
            results[kind] = {name: asdict(combine(done)) for name, done in runs.items()}
        # What each server holds after the runs: the memory side of the cost (fnkit/bench/cost).
        results["rss_mib"] = {"ours": _rss_mib(ours), "peer": _rss_mib(peer)}
        results["processes"] = {"ours": WORKERS + 1, "peer": WORKERS + 1}
    finally:
        ours.stop()
        other.stop()
        hello.stop()
        peer.stop()
    # Where the function's CPU goes, in process, in the headline mode (fnkit/bench/cpuparts).
    from fnkit.bench import cpuparts

    results["parts"] = cpuparts.measure(services, quick, DB_PREPARED_STATEMENTS=_setting(prepared))
    return results


def wrk_version() -> str:
    if not shutil.which("wrk"):
        return ""
    done = subprocess.run(["wrk", "-v"], capture_output=True, text=True, timeout=5, check=False)
    return (done.stdout + done.stderr).split("[", 1)[0].strip()


def log_dir() -> Path:
    return servers.LOG_DIR
