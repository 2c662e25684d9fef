"""Run supabase-py's own Storage tests (`src/storage/tests`) against the local Storage.

    python -m fnkit.local.storage.suite --tests <dir of supabase-py's src/storage/tests>

The measure of the local Storage is the real client's own suite, not our opinion of the
protocol. This starts the local services on a throwaway database (bootstrapped, migrated,
seeded, dropped afterwards), points the suite at them the way its conftest reads its target
(`SUPABASE_TEST_URL`, `SUPABASE_TEST_KEY`: the service role key, as the suite creates and
deletes buckets), runs it with pytest from a scratch copy outside any repository, and prints
passed / failed / out-of-scope counts, each failure with its reason.

Out of scope (counted apart, with the reason): image transformations, the S3 protocol, TUS
resumable uploads, analytics and vector buckets. The suite's conftest imports python-dotenv
(a dev dependency of this project) to read its own `tests.env`, whose values the variables set
here override.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from fnkit import db
from fnkit.devenv import DEV_SERVICE_ROLE_KEY
from fnkit.local.config import LocalConfig
from fnkit.local.keys import KeyRing

__all__ = ["main"]

OUT_OF_SCOPE = {
    "transform": "image transformations are not served locally",
    "render": "image transformations are not served locally",
    "s3": "the S3 protocol is not served locally",
    "tus": "TUS resumable uploads are not served locally",
    "resumable": "TUS resumable uploads are not served locally",
    "analytics": "analytics buckets are not served locally",
    "vector": "vector buckets are not served locally",
}
# A pytest plugin in the scratch run: every test's outcome (and the first `E` line of a
# failure) as JSON, so the report is read from pytest's own results.
REPORT_PLUGIN = '''"""Record each test's outcome for fnkit.local.storage.suite."""
import json
import os

_results = {}


def pytest_runtest_logreport(report):
    previous = _results.get(report.nodeid)
    if previous and previous["outcome"] != "passed":
        return
    if report.when != "call" and report.outcome == "passed":
        return
    message = ""
    if report.outcome == "failed":
        lines = report.longreprtext.splitlines()
        errors = [line[1:].strip() for line in lines if line.startswith("E ")]
        message = errors[0] if errors else (lines[-1] if lines else "")
    elif report.outcome == "skipped" and isinstance(report.longrepr, tuple):
        message = str(report.longrepr[-1])
    _results[report.nodeid] = {"outcome": report.outcome, "message": message}


def pytest_sessionfinish(session):
    with open(os.environ["FNKIT_SUITE_REPORT"], "w", encoding="utf-8") as out:
        json.dump(_results, out)
'''
PYTEST_INI = """[pytest]
asyncio_mode = auto
filterwarnings =
    ignore::DeprecationWarning
"""


@dataclass
class Outcome:
    """One test's result: passed, failed or out of scope, with why."""

    name: str
    status: str
    reason: str = ""


@dataclass
class Report:
    outcomes: list[Outcome] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)


@contextmanager
def local_services() -> Iterator[str]:
    """The local Supabase services on a throwaway database: their base URL."""
    from werkzeug.middleware.dispatcher import DispatcherMiddleware
    from werkzeug.serving import make_server
    from werkzeug.wrappers import Response

    from fnkit.local.gateway import close_services, service_mounts

    admin_url = db.resolve_test_admin_url()
    url = db.create_throwaway_database(admin_url, prefix="storage_suite")
    data_dir = Path(tempfile.mkdtemp(prefix="storage-suite-"))
    try:
        db.bootstrap(url)
        db.migrate(url)
        db.seed(url)
        keys = KeyRing()
        keys.add_key("suite")
        config = LocalConfig(base_url="", database_url=url, data_dir=data_dir, keys=keys)
        mounts = service_mounts(config)
        app = DispatcherMiddleware(Response("not found", 404), mounts)
        server = make_server("127.0.0.1", 0, app, threaded=True)
        config.base_url = f"http://127.0.0.1:{server.server_port}"
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            yield config.base_url
        finally:
            server.shutdown()
            close_services(mounts)
    finally:
        db.drop_database(admin_url, db.database_name(url))
        shutil.rmtree(data_dir, ignore_errors=True)


def run_suite(tests: Path, base_url: str, deps: list[Path] | None = None) -> Report:
    """pytest over a scratch copy of `tests`; outcomes recorded by REPORT_PLUGIN."""
    with tempfile.TemporaryDirectory(prefix="storage-suite-run-") as scratch:
        root = Path(scratch)
        shutil.copytree(tests, root / "tests")
        (root / "pytest.ini").write_text(PYTEST_INI)
        shim = root / "shim"
        shim.mkdir()
        (shim / "fnkit_suite_report.py").write_text(REPORT_PLUGIN)
        results = root / "results.json"
        env = {
            **os.environ,
            "SUPABASE_TEST_URL": f"{base_url}/storage/v1/",
            "SUPABASE_TEST_KEY": DEV_SERVICE_ROLE_KEY,
            "FNKIT_SUITE_REPORT": str(results),
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(shim), *map(str, deps or []), os.environ.get("PYTHONPATH", "")) if p
            ),
        }
        command = [sys.executable, "-m", "pytest", "tests", "-q", "-p", "fnkit_suite_report"]
        command += ["-p", "no:cacheprovider"]
        subprocess.run(command, cwd=root, env=env, check=False)
        if not results.exists():
            return Report()
        return classify(json.loads(results.read_text(encoding="utf-8")))


def classify(results: dict[str, dict[str, str]]) -> Report:
    """Failures of out-of-scope features are counted apart, with the reason they are."""
    report = Report()
    for name, result in results.items():
        outcome, message = result["outcome"], result.get("message", "")
        scope = out_of_scope(name)
        if outcome == "failed" and scope:
            report.outcomes.append(Outcome(name, "out-of-scope", scope))
        else:
            report.outcomes.append(Outcome(name, outcome, message))
    return report


def out_of_scope(name: str) -> str | None:
    lowered = name.lower()
    return next((why for word, why in OUT_OF_SCOPE.items() if word in lowered), None)


def print_report(report: Report) -> None:
    print()
    print(
        f"supabase-py Storage suite against the local Storage: {report.count('passed')} passed,"
        f" {report.count('failed')} failed, {report.count('out-of-scope')} out of scope,"
        f" {report.count('skipped')} skipped"
    )
    files: dict[str, dict[str, int]] = {}
    for outcome in report.outcomes:
        counts = files.setdefault(outcome.name.split("::")[0], {})
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    for file, counts in sorted(files.items()):
        print(f"  {file}: " + ", ".join(f"{n} {status}" for status, n in sorted(counts.items())))
    for outcome in report.outcomes:
        if outcome.status in ("failed", "out-of-scope", "skipped"):
            print(f"  {outcome.status}: {outcome.name}: {outcome.reason}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m fnkit.local.storage.suite")
    parser.add_argument(
        "--tests", required=True, type=Path, help="supabase-py's src/storage/tests directory"
    )
    parser.add_argument("--deps", type=Path, action="append", default=[],
                        help="a directory put first on the suite's path")  # fmt: skip
    args = parser.parse_args(argv)
    tests: Path = args.tests.resolve()
    if not (tests / "_sync").is_dir():
        parser.error(f"{tests} is not supabase-py's src/storage/tests (no _sync/ in it)")
    with local_services() as base_url:
        report = run_suite(tests, base_url, args.deps)
    print_report(report)
    return 1 if report.count("failed") or not report.outcomes else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
