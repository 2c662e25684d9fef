"""Scheduled routes in development: find them, run them on time, run one now.

`fnkit dev` starts a `Runner` beside the served functions: each route declared with
`schedule=` is called over HTTP at its cron times, as the scheduler would (with the service
role key), and each run is logged with its answer. `fnkit schedule list` shows the jobs with
their next run; `fnkit schedule run <function>/<path>` runs one now.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.schedule import Schedule

UTC = dt.UTC


@dataclass(frozen=True)
class Job:
    """One scheduled route of one function."""

    function: str
    method: str
    path: str
    schedule: Schedule

    @property
    def name(self) -> str:
        """`attachments/purge`: what `fnkit schedule run` takes."""
        return f"{self.function}{self.path}"

    @property
    def slug(self) -> str:
        """`attachments-purge`: safe in a Cloud Scheduler job id."""
        return "-".join(part for part in self.name.replace("_", "-").split("/") if part)


def jobs_of(function: str, app: Any) -> list[Job]:
    return [
        Job(function, route.method, route.path, route.schedule)
        for route in app.routes
        if route.schedule is not None
    ]


def discover(functions_dirs: list[Path]) -> list[Job]:
    """Every scheduled route of the functions in these folders (imports them)."""
    from fnkit.devserver import discover as find
    from fnkit.devserver import load

    found: list[Job] = []
    for directory in functions_dirs:
        for name, path in find(directory).items():
            app = getattr(load(name, path), "app", None)
            if app is not None:
                found.extend(jobs_of(name, app))
    return found


def find_job(jobs: list[Job], name: str) -> Job:
    wanted = name.strip("/")
    for job in jobs:
        if job.name.strip("/") == wanted:
            return job
    known = ", ".join(job.name for job in jobs) or "none"
    raise LookupError(f"no scheduled route {name!r}; scheduled routes: {known}")


def service_headers(key: str) -> dict[str, str]:
    """How a backend presents the project's key: a secret key (`sb_secret_...`) in `apikey`,
    as Supabase expects it; a legacy service role JWT as the bearer."""
    if key.startswith("sb_"):
        return {"apikey": key}
    return {"Authorization": f"Bearer {key}"}


def call(base_url: str, job: Job, token: str) -> tuple[int, Any]:
    """Run a job now over HTTP as the scheduler; its status and JSON answer."""
    request = urllib.request.Request(  # noqa: S310 (a local URL we build)
        f"{base_url.rstrip('/')}/functions/v1/{job.function}{job.path}",
        data=b"",
        method=job.method,
        headers=service_headers(token),
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


class Runner:
    """Runs every job at its cron times against a served base URL."""

    def __init__(
        self,
        base_url: str,
        token: str,
        jobs: list[Job],
        start: dt.datetime,
        log: Callable[[str], None] = print,
    ) -> None:
        self.base_url, self.token, self.jobs, self.log = base_url, token, jobs, log
        self.next_run = {job: job.schedule.next_after(start) for job in jobs}
        self._stop = threading.Event()

    def run_due(self, now: dt.datetime) -> list[tuple[Job, int, Any]]:
        """Run the jobs due at `now` (once each, however many times were missed)."""
        ran: list[tuple[Job, int, Any]] = []
        for job in self.jobs:
            if self.next_run[job] <= now:
                self.next_run[job] = job.schedule.next_after(now)
                try:
                    status, body = call(self.base_url, job, self.token)
                except (OSError, ValueError) as exc:
                    status, body = 0, {"error": repr(exc)}
                data = body.get("data", body) if isinstance(body, dict) else body
                self.log(f"fnkit: schedule {job.name} → {status} {json.dumps(data)}")
                ran.append((job, status, body))
        return ran

    def start(self) -> threading.Thread:
        def loop() -> None:
            while not self._stop.is_set():
                now = dt.datetime.now(UTC)
                soonest = min(self.next_run.values(), default=now + dt.timedelta(minutes=1))
                wait = (soonest - now).total_seconds()
                if wait > 0:
                    self._stop.wait(min(wait, 30.0))
                    continue
                self.run_due(now)

        thread = threading.Thread(target=loop, name="fnkit-schedules", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()


def listing(jobs: list[Job], now: dt.datetime) -> list[dict[str, str]]:
    """What `fnkit schedule list` prints: name, cron, zone and the next run time (UTC)."""
    return [
        {
            "job": job.name,
            "method": job.method,
            "cron": job.schedule.cron,
            "timezone": job.schedule.timezone,
            "next_run": job.schedule.next_after(now).astimezone(UTC).isoformat(),
        }
        for job in sorted(jobs, key=lambda j: j.name)
    ]
