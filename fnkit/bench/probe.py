"""Run in a fresh interpreter: what a function imports, at load and on its first request.

`python -P -X importtime fnkit/bench/probe.py --source functions/x/main.py --path "/?a=b"
[--token T]` loads the function the way functions-framework does, notes the Supabase client
modules in sys.modules, serves one request through functions-framework's app (Flask test
client, real database and Upstash from the environment), notes them again, and prints one
JSON line. A marker line on stderr separates the load's imports from the request's.

Run as a file, not with `-m fnkit.bench.probe`: the interpreter is the bench's runtime-only
virtualenv (fnkit/bench/runtime_env.py), where fnkit is not installed, and the function process
must not import fnkit at all; so this file imports the standard library only. `-P` keeps this
file's folder off sys.path. The JSON also lists every non-standard top-level package loaded by
the end (`packages`) and the interpreter's prefix, to check what the function really pulled in.
"""

from __future__ import annotations

import argparse
import json
import sys

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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -P -X importtime fnkit/bench/probe.py")
    parser.add_argument("--source", required=True)
    parser.add_argument("--path", default="/")
    parser.add_argument("--token")
    args = parser.parse_args(argv)

    print(MARKS[0], file=sys.stderr, flush=True)
    import functions_framework

    app = functions_framework.create_app(target="handler", source=args.source)  # type: ignore[no-untyped-call]
    at_import = loaded()
    print(MARKS[1], file=sys.stderr, flush=True)
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
    response = app.test_client().get(args.path, headers=headers)
    print(MARKS[2], file=sys.stderr, flush=True)
    result = {
        "at_import": at_import,
        "after_request": loaded(),
        "status": response.status_code,
        "packages": packages(),
        "prefix": sys.prefix,
    }
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
