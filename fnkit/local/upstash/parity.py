"""`make parity`: upstash-redis's own test suite against the local Upstash bridge.

The bridge promises that what works against it works against Upstash; the client's own tests
are the widest check of that promise. None of the client's code is kept in this repository:
the tests come, each run, from where they are:

1. `--tests DIR`: a checkout of upstash/redis-py (the folder that holds `tests/`);
2. `--mirror GITDIR [--ref REF]`: a local git mirror of that repository (bare is fine); the
   `tests/` folder of REF (default HEAD) is extracted with `git archive`;
3. otherwise the client's sdist on PyPI, if it ships `tests/` (upstash-redis 1.8.0 does not:
   the run then stops and says to use 1. or 2.).

The tests are run with the client release they were written for (`--client tests`, the
version in their pyproject.toml), installed with pip into the run's temporary folder ahead of
the project's own (the lock's), which `--client installed` uses instead; python-dotenv, which
the client's conftest imports, is installed there too when the virtualenv lacks it. Nothing
goes into the virtualenv.

The bridge is started as `make dev` starts it (the real bridge over the machine Redis, or
embedded fakeredis with `--embedded`), on a DB of its own (`--redis-db`, default 3, flushed:
the client's conftest flushes it anyway). The suite reads UPSTASH_REDIS_REST_URL/TOKEN.
Left out: the client's unit tests of its own internals (they name functions of the release
they were written with and test no server), and JSON module tests (`-k 'not json'`).

The run ends with the figure that matters: how many of the tests the local Redis can answer
pass. A test that fails because its command is newer than the local Redis (the bridge's
"needs Redis <version>" error) is counted apart; the exit status is 0 when no other fails.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tarfile
import tempfile
import tomllib
import xml.etree.ElementTree as ET
from collections import Counter
from importlib.metadata import version
from importlib.util import find_spec
from pathlib import Path
from typing import Final

from fnkit.local.upstash.bridge import resolve_redis_url, start_bridge
from fnkit.local.upstash.redis_db import with_db

CLIENT_INTERNAL_TESTS: Final = ("tests/test_formatters.py", "tests/test_http.py")
"""The client's unit tests of its private helpers: no server involved."""
CLIENT_TEST_DEPS: Final = {"python-dotenv": "dotenv"}
"""What the client's conftest imports beyond the project's dev dependencies (pytest,
pytest-asyncio, httpx): distribution -> module."""
PYTEST_INI: Final = "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
"""The client's suite marks some async fixtures with plain `pytest.fixture` (auto mode)."""
NEWER_REDIS: Final = "needs Redis"
"""In the bridge's error for a command the local Redis is too old for."""


def _from_mirror(gitdir: Path, ref: str, into: Path) -> None:
    archive = subprocess.run(
        ["git", "--git-dir", str(gitdir), "archive", "--format=tar", ref, "tests"],
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "x", "-C", str(into)], input=archive, check=True)


def _from_sdist(into: Path) -> bool:
    """Download the installed client's sdist; True when it shipped `tests/`."""
    release = version("upstash-redis")
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
         f"upstash-redis=={release}", "-d", str(into)],
        check=True,
    )  # fmt: skip
    sdist = next(into.glob("upstash_redis-*.tar.gz"))
    with tarfile.open(sdist) as tar:
        members = [m for m in tar.getmembers() if "/tests/" in f"/{m.name}"]
        if not members:
            return False
        for member in members:
            member.name = member.name.split("/", 1)[1]
        tar.extractall(into, members=members, filter="data")
    return True


def _collect(args: argparse.Namespace, into: Path) -> str:
    """Put the client's `tests/` into `into`; say where they came from."""
    if args.tests:
        subprocess.run(["cp", "-r", str(Path(args.tests) / "tests"), str(into)], check=True)
        return f"checkout {args.tests}"
    if args.mirror:
        _from_mirror(Path(args.mirror), args.ref, into)
        return f"mirror {args.mirror} at {args.ref}"
    if _from_sdist(into):
        return f"sdist upstash-redis=={version('upstash-redis')}"
    raise SystemExit(
        f"upstash-redis {version('upstash-redis')}'s sdist ships no tests: run "
        "`make parity CLIENT_TESTS=/path/to/redis-py` (a checkout of upstash/redis-py) "
        "or `make parity CLIENT_MIRROR=/path/to/redis-py.git [CLIENT_REF=v1.6.0]`"
    )


def _tests_release(args: argparse.Namespace) -> str | None:
    """The client release the tests were written for: the version in their pyproject.toml
    (None for an sdist's tests, which are the installed release's own)."""
    if args.tests:
        path = Path(args.tests) / "pyproject.toml"
        text = path.read_text() if path.is_file() else ""
    elif args.mirror:
        text = subprocess.run(
            ["git", "--git-dir", args.mirror, "show", f"{args.ref}:pyproject.toml"],
            check=False,
            capture_output=True,
            text=True,
        ).stdout
    else:
        return None
    project = tomllib.loads(text)
    poetry = project.get("tool", {}).get("poetry", {})
    found = poetry.get("version") or project.get("project", {}).get("version")
    return str(found) if found else None


def _install_client(args: argparse.Namespace, site: Path) -> None:
    """pip-install into `site` (put ahead of the virtualenv's packages) the client release to
    test and the client's test dependencies, those the virtualenv lacks."""
    wanted = _tests_release(args) if args.client == "tests" else args.client
    packages = [dist for dist, module in CLIENT_TEST_DEPS.items() if find_spec(module) is None]
    if wanted not in (None, "installed", version("upstash-redis")):
        packages.insert(0, f"upstash-redis=={wanted}")
    if not packages:
        return
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
         "--no-deps", "--target", str(site), *packages],
        check=True,
    )  # fmt: skip


def _release_used(env: dict[str, str]) -> str:
    """The upstash-redis release the suite imports, asked of the interpreter that runs it."""
    return subprocess.run(
        [sys.executable, "-c", "import importlib.metadata as m; print(m.version('upstash-redis'))"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def summarize(report: Path) -> tuple[Counter[str], list[str]]:
    """Count a JUnit report's tests as passed, skipped, newer (failed only because the local
    Redis is too old for the command) and failed; the failed ones' names."""
    counts: Counter[str] = Counter()
    failed: list[str] = []
    for case in ET.parse(report).getroot().iter("testcase"):  # noqa: S314 (our own report)
        problems = [child for child in case if child.tag in ("failure", "error")]
        text = " ".join(f"{p.get('message', '')} {p.text or ''}" for p in problems)
        if not problems:
            skipped = any(child.tag == "skipped" for child in case)
            counts["skipped" if skipped else "passed"] += 1
        elif NEWER_REDIS in text:
            counts["newer"] += 1
        else:
            counts["failed"] += 1
            failed.append(f"{case.get('classname')}::{case.get('name')}")
    return counts, failed


def _report(counts: Counter[str], failed: list[str], redis_version: str) -> None:
    answerable = counts["passed"] + counts["failed"]
    local = f"Redis {redis_version}" if redis_version else "embedded fakeredis"
    print(
        f"parity: {counts['passed']} of the {answerable} tests {local} can answer pass; "
        f"{counts['newer']} more need a newer Redis; {counts['skipped']} skipped"
    )
    for name in failed:
        print(f"parity: failed {name}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m fnkit.local.upstash.parity", description=__doc__
    )
    parser.add_argument("--tests", help="a checkout of upstash/redis-py")
    parser.add_argument("--mirror", help="a git mirror of upstash/redis-py")
    parser.add_argument("--ref", default="HEAD", help="the mirror's tag or commit")
    parser.add_argument(
        "--client",
        default="tests",
        help="upstash-redis release to run them with: 'tests' (the one they were written for, "
        "the default), 'installed' (the virtualenv's, i.e. the lock's) or a version",
    )
    parser.add_argument("--redis-db", type=int, default=int(os.environ.get("FNKIT_PARITY_DB", 3)))
    parser.add_argument("--embedded", action="store_true", help="bridge over fakeredis")
    parser.add_argument("pytest_args", nargs="*", help="more pytest arguments")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="upstash-parity-") as tmp:
        work = Path(tmp)
        source = _collect(args, work)
        (work / "pytest.ini").write_text(PYTEST_INI)
        _install_client(args, work / "site")
        path = os.pathsep.join(filter(None, [str(work / "site"), os.environ.get("PYTHONPATH")]))
        env = {**os.environ, "PYTHONPATH": path}
        url = None if args.embedded else resolve_redis_url()
        bridge = start_bridge(
            redis_url=None if url is None else with_db(url, args.redis_db), embedded=url is None
        )
        bridge.redis.flushdb()
        print(f"parity: client tests from {source}")
        print(
            f"parity: upstash-redis {_release_used(env)} (the project's lock: "
            f"{version('upstash-redis')})"
        )
        print(f"parity: bridge {bridge.url} -> {bridge.redis_url or 'embedded fakeredis'}")
        env |= {"UPSTASH_REDIS_REST_URL": bridge.url, "UPSTASH_REDIS_REST_TOKEN": bridge.token}
        ignores = [f"--ignore={path}" for path in CLIENT_INTERNAL_TESTS]
        options = ["-q", "-p", "no:cacheprovider", "-o", "timeout=60", "-k", "not json",
                   f"--junitxml={work / 'report.xml'}"]  # fmt: skip
        command = [sys.executable, "-m", "pytest", *options, *ignores, *args.pytest_args, "tests"]
        try:
            subprocess.run(command, cwd=work, env=env, check=False)
        finally:
            bridge.stop()
        counts, failed = summarize(work / "report.xml")
        _report(counts, failed, bridge.redis_version)
        return 1 if failed or not counts["passed"] else 0


if __name__ == "__main__":
    sys.exit(main())
