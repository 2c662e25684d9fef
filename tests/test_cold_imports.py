"""What a function loads at cold start, checked in a fresh interpreter per function.

Each function is loaded as functions-framework loads it (`create_app`, with the settings a
served function gets), and the modules it imported are checked against the import pattern
the runtime documents (shared/__init__.py):

- never at load: supabase-py and its clients (imported at the first Storage or Auth-admin
  call, shared/supabase_admin.py), httpx (only supabase-py's transport uses it), OpenTelemetry
  (only when OTEL_* turns telemetry on), fnkit (dev tooling);
- always at load: psycopg and psycopg_pool (shared/db.py: imported before gunicorn forks
  its worker, not on the worker's first request, which measured slower).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from fnkit import bundle
from tests.fixtures.server import ROOT

LOAD = """
import json, sys
import functions_framework
before = set(sys.modules)
functions_framework.create_app(target="handler", source=sys.argv[1])
print(json.dumps(sorted({name.split(".")[0] for name in set(sys.modules) - before})))
"""
NEVER = {
    "supabase", "supabase_auth", "gotrue", "storage3", "postgrest", "realtime",
    "supafunc", "supabase_functions", "httpx", "httpcore", "opentelemetry", "fnkit",
}  # fmt: skip
ALWAYS = {"psycopg", "psycopg_pool", "shared"}


def test_functions_load_what_their_first_request_needs_and_nothing_heavier(
    function_env: dict[str, str],
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(function_env)
    env["PYTHONPATH"] = str(ROOT)
    names = bundle.function_names(ROOT)
    procs = {
        name: subprocess.Popen(
            [sys.executable, "-c", LOAD, str(ROOT / "functions" / name / "main.py")],
            env=env,
            cwd=ROOT / "functions" / name,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in names
    }
    loaded = {}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, f"{name}: {err[-2000:]}"
        loaded[name] = set(json.loads(out.splitlines()[-1]))
    assert len(loaded) >= 10
    for name, packages in loaded.items():
        assert not packages & NEVER, f"{name} loads {sorted(packages & NEVER)} at cold start"
        assert packages >= ALWAYS, f"{name} does not load {sorted(ALWAYS - packages)} at load"
