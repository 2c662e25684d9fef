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
import shutil
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fnkit import db
from fnkit.devenv import DEV_SERVICE_ROLE_KEY
from fnkit.local import suite_run
from fnkit.local.config import LocalConfig
from fnkit.local.keys import KeyRing
from fnkit.local.suite_run import Report, print_report, run_pytest

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
    """The suite against `base_url` (the service role key: it creates and deletes buckets)."""
    env = {
        "SUPABASE_TEST_URL": f"{base_url}/storage/v1/",
        "SUPABASE_TEST_KEY": DEV_SERVICE_ROLE_KEY,
    }
    return run_pytest(tests, env, out_of_scope, deps)


def classify(results: dict[str, dict[str, str]]) -> Report:
    """Failures of out-of-scope features are counted apart, with the reason they are."""
    return suite_run.classify(results, out_of_scope)


def out_of_scope(name: str, message: str = "") -> str | None:
    lowered = name.lower()
    return next((why for word, why in OUT_OF_SCOPE.items() if word in lowered), None)


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
    print_report("supabase-py Storage suite against the local Storage", report, per_file=True)
    return 1 if report.count("failed") or not report.outcomes else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
