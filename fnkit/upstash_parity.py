"""`make parity`: upstash-redis's own test suite against the local Upstash bridge.

The bridge promises that what works against it works against Upstash; the client's own tests
are the widest check of that promise. None of the client's code is kept in this repository:
the tests come, each run, from where they are:

1. `--tests DIR`: a checkout of upstash/redis-python (the folder that holds `tests/`);
2. `--mirror GITDIR [--ref REF]`: a local git mirror of that repository (bare is fine); the
   `tests/` folder of REF (default HEAD) is extracted with `git archive`;
3. otherwise the client's sdist on PyPI, if it ships `tests/` (upstash-redis 1.8.0 does not:
   the run then stops and says to use 1. or 2.).

The bridge is started as `make dev` starts it (the real bridge over the machine Redis, or
embedded fakeredis with `--embedded`), on a DB of its own (`--redis-db`, default 3, flushed:
the client's conftest flushes it anyway). The suite reads UPSTASH_REDIS_REST_URL/TOKEN.
Left out: the client's unit tests of its own internals (they name functions of the release
they were written with and test no server), and JSON module tests (`-k 'not json'`).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tarfile
import tempfile
from importlib.metadata import version
from pathlib import Path
from typing import Final

from fnkit.dev_redis_db import with_db
from fnkit.upstash_bridge import resolve_redis_url, start_bridge

CLIENT_INTERNAL_TESTS: Final = ("tests/test_formatters.py", "tests/test_http.py")
"""The client's unit tests of its private helpers: no server involved."""
PYTEST_INI: Final = "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
"""The client's suite marks some async fixtures with plain `pytest.fixture` (auto mode)."""


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
        "`make parity CLIENT_TESTS=/path/to/redis-python` (a checkout of upstash/redis-python) "
        "or `make parity CLIENT_MIRROR=/path/to/redis-python.git [CLIENT_REF=v1.8.0]`"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fnkit.upstash_parity", description=__doc__)
    parser.add_argument("--tests", help="a checkout of upstash/redis-python")
    parser.add_argument("--mirror", help="a git mirror of upstash/redis-python")
    parser.add_argument("--ref", default="HEAD", help="the mirror's tag or commit")
    parser.add_argument("--redis-db", type=int, default=int(os.environ.get("FNKIT_PARITY_DB", 3)))
    parser.add_argument("--embedded", action="store_true", help="bridge over fakeredis")
    parser.add_argument("pytest_args", nargs="*", help="more pytest arguments")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="upstash-parity-") as tmp:
        work = Path(tmp)
        source = _collect(args, work)
        (work / "pytest.ini").write_text(PYTEST_INI)
        url = None if args.embedded else resolve_redis_url()
        bridge = start_bridge(
            redis_url=None if url is None else with_db(url, args.redis_db), embedded=url is None
        )
        bridge.redis.flushdb()
        print(f"parity: client tests from {source}; upstash-redis {version('upstash-redis')}")
        print(f"parity: bridge {bridge.url} -> {bridge.redis_url or 'embedded fakeredis'}")
        env = {
            **os.environ,
            "UPSTASH_REDIS_REST_URL": bridge.url,
            "UPSTASH_REDIS_REST_TOKEN": bridge.token,
        }
        ignores = [f"--ignore={path}" for path in CLIENT_INTERNAL_TESTS]
        options = ["-q", "-p", "no:cacheprovider", "-o", "timeout=60", "-k", "not json"]
        command = [sys.executable, "-m", "pytest", *options, *ignores, *args.pytest_args, "tests"]
        try:
            return subprocess.run(command, cwd=work, env=env, check=False).returncode
        finally:
            bridge.stop()


if __name__ == "__main__":
    sys.exit(main())
