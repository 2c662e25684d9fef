"""Run a client's own test suite from a scratch copy and read its outcomes: shared by the
runners of supabase-py's Storage and Realtime suites (`fnkit.local.storage.suite`,
`fnkit.local.realtime.suite`).

The tests are copied outside any repository and run with pytest in a child process, with a
small plugin that writes every test's outcome (and the first `E` line of a failure) as JSON, so
the report is read from pytest's own results, never from its text. Each runner classifies the
failures it knows to be out of scope and prints the figures.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Outcome", "Report", "print_report", "run_pytest"]

REPORT_PLUGIN = '''"""Record each test's outcome for fnkit.local.suite_run."""
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
    """One test's result: passed, failed, skipped or out-of-scope, with why."""

    name: str
    status: str
    reason: str = ""


@dataclass
class Report:
    outcomes: list[Outcome] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)


# A failed test's name and message → why it is out of scope, or None when it is not.
Scope = Callable[[str, str], str | None]


def run_pytest(
    tests: Path,
    env: Mapping[str, str],
    scope: Scope,
    deps: list[Path] | None = None,
    pytest_args: list[str] | None = None,
) -> Report:
    """pytest over a scratch copy of `tests` with `env` added (and `deps` first on the path);
    the outcomes, failures that `scope` names counted as out of scope."""
    with tempfile.TemporaryDirectory(prefix="fnkit-suite-run-") as scratch:
        root = Path(scratch)
        shutil.copytree(tests, root / "tests")
        (root / "pytest.ini").write_text(PYTEST_INI)
        shim = root / "shim"
        shim.mkdir()
        (shim / "fnkit_suite_report.py").write_text(REPORT_PLUGIN)
        results = root / "results.json"
        paths = [str(shim), *map(str, deps or []), os.environ.get("PYTHONPATH", "")]
        run_env = {
            **os.environ,
            **env,
            "FNKIT_SUITE_REPORT": str(results),
            "PYTHONPATH": os.pathsep.join(p for p in paths if p),
        }
        command = [sys.executable, "-m", "pytest", "tests", "-q", "-p", "fnkit_suite_report",
                   "-p", "no:cacheprovider", *(pytest_args or [])]  # fmt: skip
        subprocess.run(command, cwd=root, env=run_env, check=False)
        if not results.exists():
            return Report()
        recorded: dict[str, dict[str, str]] = json.loads(results.read_text(encoding="utf-8"))
    return classify(recorded, scope)


def classify(results: Mapping[str, Mapping[str, str]], scope: Scope) -> Report:
    """Failures `scope` explains are out of scope, with its reason; the rest as pytest said."""
    report = Report()
    for name, result in results.items():
        outcome, message = result["outcome"], result.get("message", "")
        why = scope(name, message) if outcome == "failed" else None
        if why is not None:
            report.outcomes.append(Outcome(name, "out-of-scope", why))
        else:
            report.outcomes.append(Outcome(name, outcome, message))
    return report


def print_report(title: str, report: Report, *, per_file: bool = False) -> None:
    """`<title>: N passed, N failed, N out of scope, N skipped`, then each one not passed."""
    print()
    print(
        f"{title}: {report.count('passed')} passed, {report.count('failed')} failed,"
        f" {report.count('out-of-scope')} out of scope, {report.count('skipped')} skipped"
    )
    if per_file:
        files: dict[str, dict[str, int]] = {}
        for outcome in report.outcomes:
            counts = files.setdefault(outcome.name.split("::")[0], {})
            counts[outcome.status] = counts.get(outcome.status, 0) + 1
        for file, counts in sorted(files.items()):
            print(f"  {file}: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    for outcome in report.outcomes:
        if outcome.status in ("failed", "out-of-scope", "skipped"):
            print(f"  {outcome.status}: {outcome.name}: {outcome.reason}")
