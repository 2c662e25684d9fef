"""`make parity-supabase`: supabase-py's own Auth, Storage and Realtime suites against the local
services.

The suites are the widest check that the local Auth, Storage and Realtime answer as Supabase's
do. None
of supabase-py's code is kept in this repository: the tests come, each run, from where they are:

    python -m fnkit.local.suites --checkout <supabase-py checkout>
    python -m fnkit.local.suites --mirror <git dir of supabase/supabase-py> [--ref <tag>]

Each suite runs with its own runner (`fnkit.local.auth.suite`, `fnkit.local.storage.suite`,
`fnkit.local.realtime.suite`),
which serves the local services on a throwaway database, counts what is out of scope for this
product apart, and prints the figures. The exit status is non-zero when an in-scope test fails.

Which client release runs the tests (`--client`, else each suite's default): `tests` is the
version in the suite's pyproject.toml, pip-installed without dependencies into the run's
temporary folder ahead of the virtualenv's; `installed` is the lock's. Auth defaults to `tests`
(the newest snapshot of the tests here, 2.30.0, imports helpers the locked 2.34.1 removed);
Storage to `installed` (storage3 2.30.0 needs pyiceberg, for analytics buckets that are out of
scope, and its tests pass with the lock's release); Realtime to `tests` (with the lock's 2.34.1,
`subscribe` waits for the server's reply to the join, which 2.30.0's
`test_presence_enabled_when_callbacks_attached` mocks away: that test then hangs until the
runner's timeout; with 2.30.0 every in-scope test passes).
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

SUITES = {
    "auth": "src/auth/tests",
    "storage": "src/storage/tests",
    "realtime": "src/realtime/tests",
}
# The distribution each suite tests (its folder's pyproject.toml names the release), and which
# release runs it by default (see the module's doc).
CLIENTS = {
    "auth": ("supabase_auth", "tests"),
    "storage": ("storage3", "installed"),
    "realtime": ("realtime", "tests"),
}


@contextlib.contextmanager
def checkout_of(args: argparse.Namespace) -> Iterator[Path]:
    """A folder holding supabase-py's `src/<suite>/tests`: the checkout, or extracted from a
    git mirror at `--ref` (`git archive`, so the mirror may be bare)."""
    if args.checkout is not None:
        yield args.checkout.resolve()
        return
    with tempfile.TemporaryDirectory(prefix="fnkit-supabase-py-") as scratch:
        root = Path(scratch)
        archive = root / "tests.tar"
        folders = [str(Path(folder).parent) for folder in SUITES.values()]
        subprocess.run(
            ["git", "-C", str(args.mirror), "archive", "--output", str(archive), args.ref,
             *(f"{folder}/pyproject.toml" for folder in folders), *SUITES.values()],
            check=True,
        )  # fmt: skip
        with tarfile.open(archive) as tar:
            tar.extractall(root, filter="data")
        yield root


def tests_release(suite_root: Path) -> str | None:
    """The version in `src/<suite>/pyproject.toml`: the release the tests were written for."""
    import tomllib

    try:
        project = tomllib.loads((suite_root / "pyproject.toml").read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return None
    version = project.get("project", {}).get("version")
    return str(version) if version else None


def install_client(name: str, version: str, site: Path) -> None:
    """`name==version` alone into `site` (its dependencies are the virtualenv's)."""
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
         "--no-deps", "--target", str(site), f"{name}=={version}"],
        check=True,
    )  # fmt: skip


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m fnkit.local.suites", description=__doc__)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--checkout", type=Path, help="a checkout of supabase/supabase-py")
    where.add_argument("--mirror", type=Path, help="a git mirror of supabase/supabase-py")
    parser.add_argument("--ref", default="HEAD", help="with --mirror: the commit or tag")
    parser.add_argument("--only", choices=sorted(SUITES), help="run one suite")
    parser.add_argument(
        "--client",
        choices=["tests", "installed"],
        help="the client release the tests were written for, or the lock's (default: per suite)",
    )
    args = parser.parse_args(argv)
    from fnkit.local.auth import suite as auth_suite
    from fnkit.local.realtime import suite as realtime_suite
    from fnkit.local.storage import suite as storage_suite

    runners = {
        "auth": auth_suite.main,
        "storage": storage_suite.main,
        "realtime": realtime_suite.main,
    }
    worst = 0
    with checkout_of(args) as root, tempfile.TemporaryDirectory(prefix="fnkit-clients-") as site:
        for name, folder in SUITES.items():
            if args.only and name != args.only:
                continue
            tests = root / folder
            dist, default = CLIENTS[name]
            wanted = args.client or default
            version = tests_release(tests.parent) if wanted == "tests" else None
            client = f"{dist} {version}" if version else f"{dist} (the lock's)"
            print(f"== supabase-py's {name} suite ({folder}, {client}) against the local {name}")
            argv = ["--tests", str(tests)]
            if version:
                target = Path(site) / name
                install_client(dist, version, target)
                argv += ["--deps", str(target)]
            sys.stdout.flush()
            worst = max(worst, runners[name](argv))
    return worst


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
