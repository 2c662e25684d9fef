"""Cloud Scheduler jobs for a function's scheduled routes (`fnkit deploy`).

Each route declared with `schedule=` becomes the HTTP job `fnkit-<function>-<path slug>`,
calling the function's URL with an OIDC token for the scheduler's service account, whose
audience is the function's URL (the function checks both: `SCHEDULER_AUDIENCE`,
`SCHEDULER_SERVICE_ACCOUNT`). Jobs already there are updated, new ones created, and jobs of
this function whose route no longer exists are deleted. What exists is asked of gcloud (`jobs
list`, read-only, also under `--dry-run`); without gcloud the dry run shows every job as a
create and says so.
"""

from __future__ import annotations

import ast
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from fnkit.schedules import Job
from shared.schedule import Schedule

_METHODS = {"get", "post", "put", "patch", "delete"}


@dataclass
class JobPlan:
    audience: str
    commands: list[list[str]] = field(default_factory=list)
    removals: list[str] = field(default_factory=list)
    note: str | None = None


def declared_jobs(name: str, main: Path) -> list[Job]:
    """The scheduled routes a function's main.py declares, read without importing it (a
    deploy machine need not have the function's settings): `@app.post(path, schedule="…")`
    or `schedule=Schedule("…", "Europe/Paris")`, with literal arguments."""
    jobs: list[Job] = []
    for node in ast.walk(ast.parse(main.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        if node.func.attr not in _METHODS or not node.args:
            continue
        spec = next((k.value for k in node.keywords if k.arg == "schedule"), None)
        if spec is None:
            continue
        path = ast.literal_eval(node.args[0])
        if isinstance(spec, ast.Call):
            schedule = Schedule(*(ast.literal_eval(a) for a in spec.args))
        else:
            schedule = Schedule(ast.literal_eval(spec))
        route = "/" + str(path).strip("/") if str(path).strip("/") else "/"
        jobs.append(Job(name, node.func.attr.upper(), route, schedule))
    return jobs


def function_url(name: str, region: str, project: str) -> str:
    return f"https://{region}-{project}.cloudfunctions.net/{name}"


def job_id(job: Job) -> str:
    return f"fnkit-{job.slug}"


def existing_jobs(name: str, region: str, project: str) -> list[str] | None:
    """This function's job ids in Cloud Scheduler, or None when gcloud cannot say."""
    argv = [
        "gcloud", "scheduler", "jobs", "list", "--location", region, "--project", project,
        f"--filter=name~/jobs/fnkit-{name}-", "--format=value(ID)",
    ]  # fmt: skip
    try:
        done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    return [line.rsplit("/", 1)[-1] for line in done.stdout.split() if line.strip()]


def plan_jobs(name: str, source: Path, region: str, project: str, service_account: str) -> JobPlan:
    jobs = declared_jobs(name, source / "main.py")
    audience = function_url(name, region, project)
    known = existing_jobs(name, region, project)
    result = JobPlan(audience)
    if known is None:
        result.note = "gcloud could not list existing jobs: every job is shown as created"
    wanted = {job_id(job) for job in jobs}
    for job in jobs:
        verb = "update" if known is not None and job_id(job) in known else "create"
        result.commands.append(
            [
                "gcloud", "scheduler", "jobs", verb, "http", job_id(job),
                "--location", region, "--project", project,
                "--schedule", job.schedule.cron, "--time-zone", job.schedule.timezone,
                "--uri", f"{audience}{job.path}", "--http-method", job.method,
                "--oidc-service-account-email", service_account,
                "--oidc-token-audience", audience,
            ]
        )  # fmt: skip
    for stale in sorted(set(known or ()) - wanted):
        result.removals.append(stale)
        result.commands.append(
            ["gcloud", "scheduler", "jobs", "delete", stale, "--location", region,
             "--project", project, "--quiet"]
        )  # fmt: skip
    return result
