"""`fnkit`: the developer's command line (dev server, tokens, database, bundles, benchmarks).

Dev tooling only: nothing here is imported by `shared/` or bundled with a function.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from fnkit.client.command import register_all as register_clients


def _repo_root() -> Path:
    here = Path.cwd().resolve()
    for candidate in (here, *here.parents):
        if (candidate / "pyproject.toml").exists() and (candidate / "functions").is_dir():
            return candidate
    return here


def _supabase_url() -> str | None:
    """The Supabase URL a running `fnkit dev` serves with (its own base URL, or the CLI's
    stack); None when none runs, and `dev_environment` decides."""
    from fnkit.devstate import read_state

    running = read_state(_repo_root())
    return str(running["supabase_url"]) if running and running.get("supabase_url") else None


def cmd_token(args: argparse.Namespace) -> int:
    from fnkit.devenv import DEV_JWT_SECRET, dev_environment
    from fnkit.tokens import mint_for

    # Sign for the same project the functions verify against: its secret and issuer.
    secret = os.environ.get("SUPABASE_JWT_SECRET") or DEV_JWT_SECRET
    supabase_url = dev_environment("", "", "", _supabase_url())["SUPABASE_URL"]
    issuer = supabase_url.rstrip("/") + "/auth/v1"
    token = mint_for(
        args.sub,
        secret,
        role=args.role,
        aal=args.aal,
        expires_in=args.exp,
        email=args.email,
        issuer=issuer,
    )
    print(token)
    return 0


def _services(start_bridge: bool) -> tuple[str, str, str]:
    """Database URL and Upstash URL/token that the dev server uses."""
    from fnkit.db import resolve_database_url
    from fnkit.devenv import DEV_UPSTASH_PORT
    from fnkit.local.upstash.bridge import DEV_UPSTASH_TOKEN

    database_url = resolve_database_url()
    port = int(os.environ.get("FNKIT_UPSTASH_PORT", DEV_UPSTASH_PORT))
    upstash_url = os.environ.get("UPSTASH_REDIS_REST_URL") or f"http://127.0.0.1:{port}"
    token = os.environ.get("UPSTASH_REDIS_REST_TOKEN") or DEV_UPSTASH_TOKEN
    if start_bridge and not os.environ.get("UPSTASH_REDIS_REST_URL"):
        upstash_url = _start_bridge(port, token)
    return database_url, upstash_url, token


def _start_bridge(port: int, token: str) -> str:
    """Start the Upstash bridge on `port`, or on a free one when that port is taken (another
    `fnkit dev`, say); the line printed names the setting that moves it. The bridge serves a
    Redis logical DB of its own (as each Upstash project has its own database), claimed for
    the configured port and given back at exit."""
    import atexit

    from fnkit.local.upstash.bridge import resolve_redis_url
    from fnkit.local.upstash.bridge import start_bridge as start
    from fnkit.local.upstash.redis_db import claim

    redis_url = resolve_redis_url()
    if redis_url is not None:
        database = claim(redis_url, port)
        atexit.register(database.release)
        redis_url = database.url
    embedded = redis_url is None
    try:
        handle = start(port=port, token=token, redis_url=redis_url, embedded=embedded)
    except OSError:
        handle = start(port=0, token=token, redis_url=redis_url, embedded=embedded)
        print(
            f"fnkit: port {port} is taken: the Upstash bridge uses {handle.port} instead"
            " (FNKIT_UPSTASH_PORT moves it; `fnkit env` prints the address in use)",
            flush=True,
        )
    print(f"fnkit: Redis {_redis_target(redis_url)}", flush=True)
    print(f"fnkit: Upstash REST bridge at {handle.url}", flush=True)
    return handle.url


def _redis_target(redis_url: str | None) -> str:
    return "embedded fakeredis" if redis_url is None else redis_url


def _bridge_database_line() -> str:
    """Which Redis database a running (or the next) dev server's bridge uses."""
    from fnkit.devenv import DEV_UPSTASH_PORT
    from fnkit.local.upstash.bridge import resolve_redis_url
    from fnkit.local.upstash.redis_db import DEV_DBS, claimed_by_port, named_db

    if os.environ.get("UPSTASH_REDIS_REST_URL"):
        return "# Upstash: UPSTASH_REDIS_REST_URL is set, so `fnkit dev` starts no bridge"
    url = resolve_redis_url()
    if url is None:
        return "# Upstash bridge database: embedded fakeredis (no Redis answers)"
    port = int(os.environ.get("FNKIT_UPSTASH_PORT", DEV_UPSTASH_PORT))
    db = claimed_by_port(url, port)
    if db is not None:
        return f"# Upstash bridge database: {url.rstrip('/')} DB {db} (this dev server's own)"
    if named_db(url) is not None:
        return f"# Upstash bridge database: {url} (named by REDIS_URL)"
    first, last = DEV_DBS.start, DEV_DBS.stop - 1
    return f"# Upstash bridge database: `fnkit dev` claims a free one of {first}..{last}"


def cmd_env(args: argparse.Namespace) -> int:
    from fnkit.devenv import dev_environment
    from fnkit.devstate import read_state

    database_url, upstash_url, token = _services(start_bridge=False)
    running = read_state(_repo_root())  # a running `fnkit dev` knows the address in use
    if running and not os.environ.get("UPSTASH_REDIS_REST_URL"):
        upstash_url = running.get("upstash_url", upstash_url)
    settings = dev_environment(database_url, upstash_url, token, _supabase_url())
    for key, value in settings.items():
        print(f"export {key}='{value}'")
    print(_bridge_database_line())
    return 0


def cmd_inbox(args: argparse.Namespace) -> int:
    """The local Auth's emails, oldest first: what a person would click or type."""
    from fnkit.local.auth.mail import Inbox

    messages = Inbox(_repo_root() / ".fnkit" / "inbox").messages(args.to)
    for message in messages:
        if args.json:
            print(json.dumps(message))
        else:
            print(f"{message['created_at']}  {message['kind']} to {message['to']}")
            print(f"  {message['subject']}: {message['link']} (code {message['otp']})")
    if not messages and not args.json:
        print("fnkit: the inbox is empty", file=sys.stderr)
    return 0


def cmd_dev(args: argparse.Namespace) -> int:
    from fnkit import db
    from fnkit.devenv import (
        DEV_PORT,
        DEV_SUPABASE_URL,
        dev_environment,
        local_supabase_url,
        supabase_api_answers,
    )
    from fnkit.devreload import Supervisor
    from fnkit.devstate import clear_state, write_state

    root = _repo_root()
    database_url, upstash_url, token = _services(start_bridge=True)
    print(f"fnkit: database {db.redact(database_url)}", flush=True)
    migrations = root / "supabase" / "migrations"
    db.bootstrap(database_url)
    applied = db.migrate(database_url, migrations)
    if applied:
        print(f"fnkit: applied {len(applied)} migration(s)", flush=True)
    db.seed(database_url, root / "supabase" / "seed.sql")
    supervisor = Supervisor(
        root,
        int(os.environ.get("PORT", DEV_PORT)),
        migrate=lambda: db.migrate(database_url, migrations),
        log=lambda line: print(line, flush=True),
    )
    port = supervisor.port
    # Auth and Storage: the Supabase CLI's stack when it runs, else our own on this port
    # (the worker mounts them when SUPABASE_URL is its own base URL).
    cli_stack = supabase_api_answers()
    supabase_url = DEV_SUPABASE_URL if cli_stack else local_supabase_url(port)
    os.environ.update(dev_environment(database_url, upstash_url, token, supabase_url))
    if cli_stack:
        print(f"fnkit: Auth and Storage are the Supabase CLI's, at {DEV_SUPABASE_URL}", flush=True)
    from fnkit.local.webhooks import Deliverer, configure

    # Database webhooks: point them at this server, and deliver what the triggers queue.
    if configure(
        database_url, f"http://127.0.0.1:{port}/functions/v1", os.environ["DB_WEBHOOK_SECRET"]
    ):
        print("fnkit: database webhooks deliver to this server (with retries)", flush=True)
    Deliverer(database_url).start()
    print(f"fnkit: API reference at http://127.0.0.1:{port}/docs", flush=True)
    print("fnkit: reloads on changes of functions/, shared/ and supabase/migrations/", flush=True)
    _start_schedules(root, port)
    write_state(
        root,
        upstash_url=upstash_url,
        functions_url=f"http://127.0.0.1:{port}",
        supabase_url=os.environ["SUPABASE_URL"],
    )
    try:
        supervisor.run()
    finally:
        clear_state(root)
    return 0


def _scheduler_key() -> str:
    """The key the local scheduler calls scheduled routes with: the project's (first) secret
    key, else the legacy service role key; the Supabase CLI's documented local default when
    the environment names neither."""
    from fnkit.devenv import DEV_SECRET_KEY

    secret = os.environ.get("SUPABASE_SECRET_KEY", "").split(",")[0].strip()
    return secret or os.environ.get("SUPABASE_SERVICE_ROLE_KEY") or DEV_SECRET_KEY


def _start_schedules(root: Path, port: int) -> None:
    import datetime as dt

    from fnkit.schedules import Runner, discover

    jobs = discover([root / "functions"])
    runner = Runner(
        f"http://127.0.0.1:{port}",
        _scheduler_key(),
        jobs,
        dt.datetime.now(dt.UTC),
        log=lambda line: print(line, flush=True),
    )
    for job in jobs:
        print(f"fnkit: schedule {job.name} ({job.schedule.cron} {job.schedule.timezone})")
    runner.start()


def cmd_schedule(args: argparse.Namespace) -> int:
    import datetime as dt

    from fnkit.devenv import dev_environment
    from fnkit.schedules import discover, find_job, listing, service_headers

    root = _repo_root()
    database_url, upstash_url, token = _services(start_bridge=args.schedule_command == "run")
    os.environ.update(dev_environment(database_url, upstash_url, token, _supabase_url()))
    key = _scheduler_key()
    jobs = discover([root / "functions", *(Path(p) for p in args.functions_dir)])
    if args.schedule_command == "list":
        for row in listing(jobs, dt.datetime.now(dt.UTC)):
            print(json.dumps(row))
        return 0
    job = find_job(jobs, args.job or "")
    from fnkit.devserver import create_app

    client = create_app([root / "functions", *(Path(p) for p in args.functions_dir)])
    response = client.test_client().open(
        f"/functions/v1/{job.function}{job.path}",
        method=job.method,
        headers=service_headers(key),
    )
    print(json.dumps({"job": job.name, "status": response.status_code, **response.get_json()}))
    return 0 if response.status_code < 400 else 1


def cmd_db(args: argparse.Namespace) -> int:
    from fnkit import db

    root = _repo_root()
    if args.db_command == "stop":
        from fnkit.local.postgres import default_data_dir, stop_embedded

        stopped = stop_embedded(root=root)
        where = default_data_dir(root).relative_to(root)
        print(f"fnkit: embedded Postgres ({where}) {'stopped' if stopped else 'was not running'}")
        return 0
    url = db.resolve_database_url()
    if args.db_command == "url":
        print(url)
    elif args.db_command == "reset":
        db.reset(url, root / "supabase" / "migrations", root / "supabase" / "seed.sql")
        print(f"fnkit: database reset ({db.redact(url)})")
    elif args.db_command == "migrate":
        db.bootstrap(url)
        applied = db.migrate(url, root / "supabase" / "migrations")
        print(json.dumps({"applied": applied}))
    return 0


def cmd_bundle(args: argparse.Namespace) -> int:
    from fnkit import bundle

    root = _repo_root()
    for built in bundle.build_all(root, args.names, Path(args.out) if args.out else None):
        count = len(built.direct)
        print(f"fnkit: {built.name}: {built.path} ({count} direct requirement(s))")
    return 0


def cmd_deploy(args: argparse.Namespace) -> int:
    from fnkit import bundle, deploy

    root = _repo_root()
    built = bundle.build(args.name, root)
    plan = deploy.plan(
        args.name,
        root,
        env_file=Path(args.env_file) if args.env_file else None,
        secrets=args.secret,
        region=args.region,
        project=args.project,
        memory=args.memory,
        timeout=args.timeout,
        max_instances=args.max_instances,
        min_instances=args.min_instances,
        source=built.path,
        uses=built.uses,
        scheduler_account=args.scheduler_service_account,
    )
    for warning in plan.warnings:
        print(f"fnkit: warning: {warning}", file=sys.stderr)
    for job in plan.removals:
        print(f"fnkit: job {job} has no route any more: it is deleted", file=sys.stderr)
    if args.dry_run:
        print("\n".join(plan.commands))
        return 0
    return deploy.deploy(plan, root)


def cmd_new(args: argparse.Namespace) -> int:
    from fnkit import scaffold

    for path in scaffold.create(args.name, _repo_root(), args.table):
        print(f"fnkit: wrote {path}")
    if args.table:
        print(
            "fnkit: `make dev` applies the migration and serves the function as it runs;"
            " `make test` runs its tests"
        )
    return 0


def cmd_hook(args: argparse.Namespace) -> int:
    """Sign a call as Supabase would and send it to a served function; print the answer."""
    import httpx

    from fnkit.devenv import DEV_PORT
    from fnkit.hook_signing import auth_hook_headers, database_webhook_headers

    try:
        body = json.dumps(json.loads(args.json)).encode()
    except json.JSONDecodeError as exc:
        raise ValueError(f"--json is not valid JSON: {exc}") from None
    base = args.url or f"http://127.0.0.1:{os.environ.get('PORT', DEV_PORT)}/functions/v1"
    headers = {"Content-Type": "application/json"}
    if args.database_webhook:
        headers.update(database_webhook_headers())
    else:
        headers.update(auth_hook_headers(body))
    response = httpx.post(
        f"{base.rstrip('/')}/{args.path.strip('/')}", content=body, headers=headers
    )
    print(f"HTTP {response.status_code}", file=sys.stderr)
    print(response.text)
    return 0 if response.status_code < 400 else 1


def cmd_bench(args: argparse.Namespace) -> int:
    from fnkit.bench.runner import run

    only = set(args.only.split(",")) if args.only else None
    return int(run(quick=args.quick, json_path=Path(args.json), only=only))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fnkit", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    dev = sub.add_parser("dev", help="serve every function at /functions/v1/<name>")
    dev.set_defaults(run=cmd_dev)

    token = sub.add_parser("token", help="print a JWT signed with the local development secret")
    token.add_argument("--sub", required=True, help="the user id (uuid)")
    token.add_argument(
        "--role", default="authenticated", choices=["authenticated", "anon", "service_role"]
    )
    token.add_argument("--aal", default="aal1", choices=["aal1", "aal2"])
    token.add_argument("--exp", type=int, default=3600, help="seconds until it expires")
    token.add_argument("--email")
    token.set_defaults(run=cmd_token)

    env = sub.add_parser("env", help="print the settings `make dev` serves with, as export lines")
    env.set_defaults(run=cmd_env)

    inbox = sub.add_parser("inbox", help="the emails the local Auth sent (.fnkit/inbox)")
    inbox.add_argument("--to", help="only those to this address")
    inbox.add_argument("--json", action="store_true", help="one JSON object a line")
    inbox.set_defaults(run=cmd_inbox)

    database = sub.add_parser("db", help="the development database")
    database.add_argument(
        "db_command",
        choices=["url", "reset", "migrate", "stop"],
        help="stop: stop the embedded Postgres that `make dev` started",
    )
    database.set_defaults(run=cmd_db)

    bundle = sub.add_parser("bundle", help="write build/functions/<name>/ for deployment")
    bundle.add_argument("names", nargs="*", help="functions to bundle (default: all)")
    bundle.add_argument("--out", help="folder to write bundles to (default: build/functions)")
    bundle.set_defaults(run=cmd_bundle)

    dep = sub.add_parser("deploy", help="bundle one function and run `gcloud functions deploy`")
    dep.add_argument("name")
    dep.add_argument("--dry-run", action="store_true", help="print the command, do not run it")
    dep.add_argument("--env-file", help="KEY=VALUE settings file (secrets in it are skipped)")
    dep.add_argument(
        "--secret",
        action="append",
        default=[],
        metavar="NAME=SECRET:VERSION",
        help="a setting from Secret Manager (repeatable)",
    )
    dep.add_argument("--region")
    dep.add_argument("--project")
    dep.add_argument("--memory", help="override the function's default (e.g. 512Mi)")
    dep.add_argument("--timeout", help="override the function's default (e.g. 60s)")
    dep.add_argument("--max-instances", type=int)
    dep.add_argument(
        "--min-instances",
        type=int,
        help="instances kept warm (no cold start for them; billed while idle: see docs/deploy.md)",
    )
    dep.add_argument(
        "--scheduler-service-account",
        help="the service account Cloud Scheduler calls scheduled routes as (OIDC)",
    )
    dep.set_defaults(run=cmd_deploy)

    schedule = sub.add_parser("schedule", help="scheduled routes: list them, run one now")
    schedule.add_argument("schedule_command", choices=["list", "run"])
    schedule.add_argument(
        "job", nargs="?", help="for run: <function>/<path>, e.g. attachments/purge"
    )
    schedule.add_argument(
        "--functions-dir", action="append", default=[], help="another folder of functions"
    )
    schedule.set_defaults(run=cmd_schedule)

    new = sub.add_parser("new", help="scaffold functions/<name>/main.py and its test")
    new.add_argument("name")
    new.add_argument(
        "--table",
        help="also write a migration for this workspace table; the function gets its"
        " list/create/get/update/delete routes and the tests their role matrix",
    )
    new.set_defaults(run=cmd_new)

    hook = sub.add_parser("hook", help="send a call signed as Supabase signs it (Auth hooks)")
    hook_sub = hook.add_subparsers(dest="hook_command", required=True)
    send = hook_sub.add_parser("send", help="e.g. fnkit hook send hooks/custom-access-token")
    send.add_argument("path", help="<function>/<route>, e.g. hooks/before-user-created")
    send.add_argument("--json", required=True, help="the body, as JSON")
    send.add_argument(
        "--database-webhook",
        action="store_true",
        help="send the bearer DB_WEBHOOK_SECRET (a database webhook) instead of a signature",
    )
    send.add_argument("--url", help="base URL (default: http://127.0.0.1:$PORT/functions/v1)")
    send.set_defaults(run=cmd_hook)

    bench = sub.add_parser("bench", help="measure what a function costs; print a table")
    bench.add_argument("--quick", action="store_true", help="shorter runs (under 2 minutes)")
    bench.add_argument("--json", default="bench-results.json", help="where to write the figures")
    bench.add_argument(
        "--only",
        help="comma-separated sections (overhead,roundtrips,coldstart,load,growth,outbox,hooks,"
        "telemetry)",
    )
    bench.set_defaults(run=cmd_bench)
    register_clients(sub)  # fnkit client, fnkit api
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # one clear line for the user, not a traceback
        if os.environ.get("FNKIT_DEBUG"):
            raise
        print(f"fnkit: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
