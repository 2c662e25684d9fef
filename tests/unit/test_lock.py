"""The lock: every install path reads it, so it must hold what pyproject.toml asks for."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

from fnkit import lock

ROOT = Path(__file__).resolve().parents[2]


def test_every_requirement_of_pyproject_is_pinned_in_the_lock_with_hashes() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    locked = lock.read(ROOT)
    problems = []
    for spec in wanted:
        req = Requirement(spec)
        entry = locked.get(lock.canonical(req.name))
        if entry is None:
            problems.append(f"{req.name} is not in the lock")
        elif not req.specifier.contains(Version(entry.version), prereleases=True):
            problems.append(f"{req.name}=={entry.version} does not meet {req.specifier}")
        elif not entry.hashes:
            problems.append(f"{req.name} has no hash")
    assert not problems, "run `make lock`: " + "; ".join(problems)


def test_parse_reads_pins_extras_markers_and_continued_hashes() -> None:
    text = (
        "# header\n"
        "psycopg-binary==3.3.9 ; implementation_name != 'pypy' \\\n"
        "    --hash=sha256:" + "a" * 64 + " \\\n"
        "    --hash=sha256:" + "b" * 64 + "\n"
        "    # via psycopg\n"
        "Flask[async]==3.1.0 \\\n    --hash=sha256:" + "c" * 64 + "\n"
        "not a pin\n"
    )
    parsed = lock.parse(text)
    assert parsed["psycopg-binary"] == lock.Locked(
        "psycopg-binary", "3.3.9", ("sha256:" + "a" * 64, "sha256:" + "b" * 64)
    )
    assert parsed["flask"].version == "3.1.0" and len(parsed["flask"].hashes) == 1
    assert set(parsed) == {"psycopg-binary", "flask"}
