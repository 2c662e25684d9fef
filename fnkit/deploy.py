"""`fnkit deploy`: the `gcloud functions deploy` command for one bundled function.

Each function deploys on its own as a Cloud Run function (2nd gen), built from its bundle
(`build/functions/<name>/`, see `fnkit.bundle`). The command carries:

- the runtime contract: `--gen2 --runtime python311 --entry-point handler --trigger-http`,
  and `--allow-unauthenticated` because callers authenticate with their Supabase JWT, which
  the function itself verifies (Google IAM knows nothing of Supabase users);
- memory, timeout and max instances from a small per-function table (`SIZING`), each
  overridable on the command line; `--min-instances N` when asked (warm instances are billed
  while idle, so it is never a default);
- startup CPU boost on the Cloud Run service behind the function (`gcloud run services update
  NAME --cpu-boost`): more CPU while an instance starts, which is when imports run, at no
  charge outside the start;
- settings: plain ones from an env file, written to a YAML file for `--env-vars-file`;
  secrets only as Secret Manager references (`--set-secrets NAME=SECRET:VERSION`).

Secret values never appear on the command line (where `ps`, shell history and CI logs would
keep them) nor in the generated YAML: a secret found in the env file is left out, with a
warning saying how to reference it instead.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from fnkit import bundle

__all__ = [
    "ADMIN_KEYS",
    "ALWAYS_REQUIRED",
    "SECRET_SETTINGS",
    "SIZING",
    "DeployError",
    "Plan",
    "Sizing",
    "deploy",
    "parse_env_file",
    "parse_secret",
    "plan",
]

RUNTIME = "python311"
ENTRY_POINT = "handler"
DEPLOY_DIR = Path("build") / "deploy"

# Settings whose values are credentials: Secret Manager only, never in a file we upload.
# (SUPABASE_PUBLISHABLE_KEY and the legacy SUPABASE_ANON_KEY are public by design.)
SECRET_SETTINGS = frozenset(
    {
        "SUPABASE_SECRET_KEY",
        "SUPABASE_SERVICE_ROLE_KEY",
        "SUPABASE_JWT_SECRET",
        "UPSTASH_REDIS_REST_TOKEN",
        "DATABASE_URL",
    }
)
# The key Auth admin and Storage calls use (shared.supabase_admin): the secret key, or the
# legacy service role key on a project that has not migrated.
ADMIN_KEYS = ("SUPABASE_SECRET_KEY", "SUPABASE_SERVICE_ROLE_KEY")
# What every function reads at cold start (shared.settings); missing ones fail its start.
ALWAYS_REQUIRED = (
    "SUPABASE_URL",
    "DATABASE_URL",
    "UPSTASH_REDIS_REST_URL",
    "UPSTASH_REDIS_REST_TOKEN",
)
# Set by Cloud Run itself; a deploy that sets them is refused.
RESERVED = frozenset({"PORT", "K_SERVICE", "K_REVISION", "K_CONFIGURATION"})

_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")
_SECRET_REF = re.compile(
    r"(?:[A-Za-z0-9_-]{1,255}|projects/[^/\s]+/secrets/[A-Za-z0-9_-]{1,255})"
    r"(?::(?:[1-9][0-9]*|latest)|/versions/(?:[1-9][0-9]*|latest))"
)


class DeployError(RuntimeError):
    """The deploy cannot go ahead; the message says what to change."""


@dataclass(frozen=True)
class Sizing:
    """Per-instance resources. Memory in Cloud Run units, timeout as `<seconds>s`."""

    memory: str = "256Mi"
    timeout: str = "30s"
    max_instances: int = 10


# Functions that load supabase-py (about 0.6 s and 60 MB) or run heavy queries get more.
SIZING: dict[str, Sizing] = {
    "attachments": Sizing(memory="512Mi", timeout="30s"),
    "members": Sizing(memory="512Mi", timeout="30s"),
    "stats": Sizing(memory="512Mi", timeout="60s"),
    "tasks": Sizing(memory="512Mi", timeout="60s"),  # bulk: up to 100 ops in one transaction
}


@dataclass
class Plan:
    """Everything `deploy` would do: the argv, the env YAML it wrote, and what to warn about."""

    name: str
    argv: list[str]
    env_file: Path | None
    env: dict[str, str]
    secrets: dict[str, str]
    warnings: list[str] = field(default_factory=list)
    after: list[list[str]] = field(default_factory=list)  # run after the deploy (CPU boost)
    jobs: list[list[str]] = field(default_factory=list)  # Cloud Scheduler commands, in order
    removals: list[str] = field(default_factory=list)  # jobs of routes that are gone

    @property
    def command(self) -> str:
        return shlex.join(self.argv)

    @property
    def commands(self) -> list[str]:
        return [self.command, *(shlex.join(argv) for argv in (*self.after, *self.jobs))]


def parse_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines (dotenv): `#` comments, optional `export `, optional quotes."""
    if not path.is_file():
        raise DeployError(f"env file {path} does not exist")
    values: dict[str, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").strip()
        key, sep, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not _NAME.fullmatch(key):
            raise DeployError(f"{path}:{number}: expected KEY=VALUE with an upper-case KEY")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        values[key] = value
    return values


def parse_secret(spec: str) -> tuple[str, str]:
    """`NAME=SECRET:VERSION` (or a full `projects/.../secrets/...` reference) → (NAME, ref)."""
    name, sep, ref = spec.partition("=")
    if not sep or not _NAME.fullmatch(name) or not _SECRET_REF.fullmatch(ref):
        # Never repeat the argument: it may be the secret value itself, pasted by mistake.
        label = name if sep and _NAME.fullmatch(name) else "<argument>"
        raise DeployError(
            f"--secret {label}=...: expected NAME=SECRET:VERSION, e.g."
            " SUPABASE_JWT_SECRET=supabase-jwt-secret:latest (a Secret Manager reference,"
            " never the value itself)"
        )
    return name, ref


def _yaml(env: Mapping[str, str]) -> str:
    # A JSON string is a valid YAML double-quoted scalar: no value can break the file.
    return "".join(f"{key}: {json.dumps(value)}\n" for key, value in sorted(env.items()))


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def plan(
    name: str,
    root: Path,
    *,
    env_file: Path | None = None,
    secrets: Iterable[str] = (),
    region: str | None = None,
    project: str | None = None,
    memory: str | None = None,
    timeout: str | None = None,
    max_instances: int | None = None,
    min_instances: int | None = None,
    source: Path | None = None,
    uses: Iterable[str] = (),
    scheduler_account: str | None = None,
) -> Plan:
    """Build the deploy command; writes the env YAML (non-secret settings only)."""
    sizing = SIZING.get(name, Sizing())
    source = source if source is not None else root / bundle.BUILD_DIR / name
    if not (source / "main.py").is_file():
        raise DeployError(f"{source} has no main.py: run `fnkit bundle {name}` first")

    secret_refs: dict[str, str] = {}
    for spec in secrets:
        key, ref = parse_secret(spec)
        if key in RESERVED:
            raise DeployError(f"{key} is set by Cloud Run itself")
        secret_refs[key] = ref

    warnings: list[str] = []
    env: dict[str, str] = {}
    if env_file is not None:
        for key, value in parse_env_file(env_file).items():
            if key in secret_refs:
                continue  # the Secret Manager reference wins
            if key in RESERVED:
                warnings.append(f"{key} from {env_file} skipped: Cloud Run sets it")
            elif key in SECRET_SETTINGS:
                warnings.append(
                    f"{key} from {env_file} not deployed: it is a secret. Store it in Secret"
                    f" Manager and pass --secret {key}=<secret>:<version>"
                )
            elif value:
                env[key] = value

    given = set(env) | set(secret_refs)
    missing = [key for key in ALWAYS_REQUIRED if key not in given]
    if missing and (env_file is not None or secret_refs):
        warnings.append(
            f"{name} needs {', '.join(missing)}: set them in the env file (plain settings)"
            " or with --secret (secrets); without them it fails at cold start"
        )
    elif missing:
        # Without --env-file/--secret gcloud keeps a deployed function's settings, but a
        # first deploy has none: say so rather than let the first cold start find out.
        warnings.append(
            f"{name} needs {', '.join(missing)} at start, and none is given: as on a first"
            " deploy, it would fail at cold start. Pass --env-file FILE (plain settings) and"
            " --secret NAME=SECRET:VERSION (secrets), or ignore this if the deployed function"
            " already has them"
        )
    settings_given = env_file is not None or bool(secret_refs)
    admin = "shared.supabase_admin" in set(uses)
    if settings_given and admin and not given.intersection(ADMIN_KEYS):
        warnings.append(
            f"{name} uses Supabase Auth admin or Storage: without --secret"
            " SUPABASE_SECRET_KEY=<secret>:<version> (a project still on legacy keys: --secret"
            " SUPABASE_SERVICE_ROLE_KEY=<secret>:<version>) those routes answer 503"
        )
    if "SUPABASE_SERVICE_ROLE_KEY" in given and "SUPABASE_SECRET_KEY" not in given:
        warnings.append(
            f"{name} gets the legacy SUPABASE_SERVICE_ROLE_KEY, which Supabase is retiring:"
            " create a secret key (Project Settings > API Keys), store it in Secret Manager and"
            " pass --secret SUPABASE_SECRET_KEY=<secret>:<version>; both work during the move"
        )

    from fnkit.deploy_schedules import declared_jobs, plan_jobs

    job_plan = None
    if declared_jobs(name, source / "main.py"):
        if not (region and project and scheduler_account):
            raise DeployError(
                f"{name} has scheduled routes: give --region, --project and"
                " --scheduler-service-account so its Cloud Scheduler jobs can be made"
            )
        job_plan = plan_jobs(name, source, region, project, scheduler_account)
        env["SCHEDULER_AUDIENCE"] = job_plan.audience
        env["SCHEDULER_SERVICE_ACCOUNT"] = scheduler_account
        if job_plan.note:
            warnings.append(job_plan.note)
    instances = max_instances if max_instances is not None else sizing.max_instances
    argv = [
        "gcloud", "functions", "deploy", name,
        "--gen2",
        "--runtime", RUNTIME,
        "--entry-point", ENTRY_POINT,
        "--trigger-http",
        "--allow-unauthenticated",
        "--source", _relative(source, root),
        "--memory", memory or sizing.memory,
        "--timeout", timeout or sizing.timeout,
        "--max-instances", str(instances),
    ]  # fmt: skip
    if min_instances:
        argv += ["--min-instances", str(min_instances)]
    where = [
        *(["--region", region] if region else []),
        *(["--project", project] if project else []),
    ]
    argv += where
    boost = ["gcloud", "run", "services", "update", name, "--cpu-boost", *where]
    yaml_path: Path | None = None
    if env_file is not None or job_plan is not None:  # the scheduler's identity is a setting
        yaml_path = root / DEPLOY_DIR / f"{name}.env.yaml"
        yaml_path.parent.mkdir(parents=True, exist_ok=True)
        yaml_path.write_text(_yaml(env), encoding="utf-8")
        argv += ["--env-vars-file", _relative(yaml_path, root)]
    if secret_refs:
        argv += ["--set-secrets", ",".join(f"{k}={v}" for k, v in sorted(secret_refs.items()))]
    the_plan = Plan(name, argv, yaml_path, env, secret_refs, warnings, after=[boost])
    if job_plan is not None:
        the_plan.jobs, the_plan.removals = job_plan.commands, job_plan.removals
    return the_plan


def deploy(the_plan: Plan, root: Path) -> int:
    """Run the planned command from the repository root; its exit code."""
    try:
        for argv in (the_plan.argv, *the_plan.after, *the_plan.jobs):
            code = subprocess.run(argv, cwd=root, check=False).returncode
            if code != 0:
                return code
        return 0
    except FileNotFoundError:
        raise DeployError(
            "gcloud is not installed: install the Google Cloud CLI, or use --dry-run and run"
            " the printed command elsewhere"
        ) from None
