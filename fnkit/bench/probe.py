"""Run in a fresh interpreter: what a function imports, at load and on its first request.

`python -X importtime -m fnkit.bench.probe --source functions/x/main.py --path "/?a=b"
[--token T]` loads the function the way functions-framework does, notes the Supabase client
modules in sys.modules, serves one request through functions-framework's app (Flask test
client, real database and Upstash from the environment), notes them again, and prints one
JSON line. A marker line on stderr separates the load's imports from the request's.
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m fnkit.bench.probe")
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
    sys.stdout.write(
        json.dumps(
            {"at_import": at_import, "after_request": loaded(), "status": response.status_code}
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
