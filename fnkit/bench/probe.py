"""Run in a fresh interpreter: what a function imports, at load and on its first request.

`python -P -X importtime fnkit/bench/probe.py --source functions/x/main.py --path "/?a=b"
[--token T]` loads the function the way functions-framework does, notes the Supabase client
modules in sys.modules, serves one request through functions-framework's app (Flask test
client, real database and Upstash from the environment), notes them again, and prints one
JSON line. A marker line on stderr separates the load's imports from the request's.

It also times both phases (CPU and wall, in ms; `-X importtime` adds a little to the load;
`app_cpu_ms` is the load without importing functions-framework, the part a function decides)
and, with `--profile` (then the timings are not worth reading), profiles the first request
with cProfile (`request_profile`: the time functions took
themselves, summed by package, in ms as profiled; the profiler inflates Python-heavy code,
so read them as shares). Waiting shows as a lock's `acquire` (the pool's first connection,
opened by its own thread) or a socket's `recv_into` (a round trip).

Run as a file, not with `-m fnkit.bench.probe`: the interpreter is the bench's runtime-only
virtualenv (fnkit/bench/runtime_env.py), where fnkit is not installed, and the function process
must not import fnkit at all; so this file imports the standard library only. `-P` keeps this
file's folder off sys.path. The JSON also lists every non-standard top-level package loaded by
the end (`packages`) and the interpreter's prefix, to check what the function really pulled in.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import sys
import time

SUPABASE_MODULES = (
    "supabase", "supabase_auth", "gotrue", "postgrest", "storage3", "realtime",
    "supabase_functions", "supafunc",
)  # fmt: skip

MARKS = ("fnkit-probe: load", "fnkit-probe: request", "fnkit-probe: done")


def loaded() -> list[str]:
    return sorted({name.split(".")[0] for name in sys.modules} & set(SUPABASE_MODULES))


def packages() -> list[str]:
    """Top-level packages loaded that are not in the standard library."""
    names = {name.split(".")[0] for name in sys.modules}
    return sorted(n for n in names - sys.stdlib_module_names if not n.startswith("_"))


def _where(base: str, file: str, name: str) -> str:
    """What a profiled function belongs to: a top-level package or module, `main` (the
    function's file), `imports` (the import system), or the builtin it is (a lock's
    `acquire` is waiting on another thread, a socket's `recv_into` on a peer)."""
    if file == "~":  # "<method 'acquire' of '_thread.lock' objects>", "<built-in method ...>"
        return name.strip("<>{}").replace(" objects", "").replace("built-in method ", "")
    if file.startswith("<frozen importlib"):
        return "imports"
    stdlib = f"python{sys.version_info[0]}.{sys.version_info[1]}{os.sep}"
    for marker in ("site-packages" + os.sep, base + os.sep, stdlib):
        if marker in file:
            return file.split(marker, 1)[1].split(os.sep)[0].removesuffix(".py")
    return file


def profile_parts(profile: cProfile.Profile, base: str, top: int = 8) -> list[dict[str, object]]:
    """The profile's own time (cProfile's tottime) summed by `_where`, in ms, largest first."""
    parts: dict[str, float] = {}
    for (file, _, name), row in pstats.Stats(profile).stats.items():  # type: ignore[attr-defined]
        where = _where(base, file, name)
        parts[where] = parts.get(where, 0.0) + row[2]
    ranked = sorted(parts.items(), key=lambda item: -item[1])[:top]
    return [{"part": where, "ms": round(own * 1000, 2)} for where, own in ranked]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -P -X importtime fnkit/bench/probe.py")
    parser.add_argument("--source", required=True)
    parser.add_argument("--path", default="/")
    parser.add_argument("--token")
    parser.add_argument("--profile", action="store_true", help="profile the first request")
    args = parser.parse_args(argv)

    print(MARKS[0], file=sys.stderr, flush=True)
    began, cpu = time.perf_counter(), time.process_time()
    import functions_framework

    framework_cpu = time.process_time()
    app = functions_framework.create_app(target="handler", source=args.source)  # type: ignore[no-untyped-call]
    loaded_at, loaded_cpu = time.perf_counter(), time.process_time()
    at_import = loaded()
    print(MARKS[1], file=sys.stderr, flush=True)
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
    client = app.test_client()
    profile = cProfile.Profile() if args.profile else None
    asked, asked_cpu = time.perf_counter(), time.process_time()
    if profile is not None:
        profile.enable()
    response = client.get(args.path, headers=headers)
    if profile is not None:
        profile.disable()
    answered, answered_cpu = time.perf_counter(), time.process_time()
    print(MARKS[2], file=sys.stderr, flush=True)
    result = {
        "load_ms": round((loaded_at - began) * 1000, 2),
        "load_cpu_ms": round((loaded_cpu - cpu) * 1000, 2),
        # The function's own load: create_app, after functions-framework was imported.
        "app_cpu_ms": round((loaded_cpu - framework_cpu) * 1000, 2),
        "request_ms": round((answered - asked) * 1000, 2),
        "request_cpu_ms": round((answered_cpu - asked_cpu) * 1000, 2),
        "request_profile": []
        if profile is None
        else profile_parts(profile, os.path.dirname(os.path.abspath(args.source))),
        "at_import": at_import,
        "after_request": loaded(),
        "status": response.status_code,
        "packages": packages(),
        "prefix": sys.prefix,
    }
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
