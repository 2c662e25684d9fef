"""Run supabase-py's own Auth test suite against the local Auth, from outside the repository.

    python -m fnkit.local.auth.suite --tests <supabase-py>/src/auth/tests [--deps DIR]

The suite (supabase/supabase-py, `src/auth/tests`) expects four GoTrue servers, bare (no API
gateway), on fixed ports with the settings of its `infra/docker-compose.yml`:

- 9999: sign-ups confirmed by email; 9998: auto-confirm; 9997: sign-ups disabled;
  all three sign HS256 with the JWT secret `37c304f8-...`;
- 9996: auto-confirm, asymmetric signing keys (here the ES256 key ring).

This starts them on one throwaway database (bootstrapped, migrated, seeded, dropped at the
end), copies the tests to a temporary directory under another package name (so they never
meet this repository's `tests` package), runs them with pytest (its test dependencies,
Faker, pytest-mock and pytest-asyncio, must be importable; `--deps` adds a directory to the
path) and prints passed / failed / out-of-scope counts and every failure. Out of scope for
this product: phone and SMS, OAuth providers and the OAuth server, SSO/SAML, identity linking
and ID tokens, web3 and passkeys.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.serving import make_server

from fnkit import db
from fnkit.local.auth.app import create_app
from fnkit.local.config import LocalConfig
from fnkit.local.keys import KeyRing, SigningKey

__all__ = ["main"]

SUITE_JWT_SECRET = "37c304f8-51aa-419a-a1af-06154e63707a"
ASYMMETRIC_SECRET = "Z7-AyPyChGNcQsX16cPBV-pPBo4q-zckDxkq1VZjATo"
# GoTrue limits per IP only behind a proxy header; the suite's servers have none.
UNLIMITED = {f"auth_rate_limit_{n}": "100000/1" for n in
             ("token", "signup", "recover", "otp", "user", "verify", "factor")}  # fmt: skip
# port → (email confirmations on, settings)
SERVERS: dict[int, tuple[bool, dict[str, str]]] = {
    9999: (True, {"auth_jwt_alg": "HS256"}),
    9998: (False, {"auth_jwt_alg": "HS256"}),
    9997: (True, {"auth_jwt_alg": "HS256", "auth_disable_signup": "true"}),
    9996: (False, {}),
}
# Words in a test's name that put it out of this product's scope, and why.
OUT_OF_SCOPE = {
    "phone": "phone/SMS", "sms": "phone/SMS", "oauth": "OAuth providers and server",
    "sso": "SSO/SAML", "id_token": "OAuth ID tokens", "link_identity": "OAuth identity linking",
    "web3": "web3", "passkey": "passkeys",
}  # fmt: skip
# Tests whose name does not say it: `test_resend` resends an SMS.
OUT_OF_SCOPE_TESTS = {"test_resend": "phone/SMS"}
# The asymmetric server's key id in the suite's docker-compose (GOTRUE_JWT_KEYS); the suite
# checks the JWKS names it. Here that kid is given to the server's ES256 key.
ASYMMETRIC_KID = "638c54b8-28c2-4b12-9598-ba12ef610a29"


@dataclass
class Outcome:
    name: str
    status: str  # passed, failed, skipped, out-of-scope
    detail: str = ""


def _config(port: int, database_url: str, data_dir: Path) -> LocalConfig:
    confirmations, settings = SERVERS[port]
    extra = {**UNLIMITED, "auth_gateway": "off", "auth_anonymous_users": "true", **settings}
    return LocalConfig(
        base_url=f"http://localhost:{port}",
        database_url=database_url,
        data_dir=data_dir / str(port),
        keys=KeyRing([SigningKey.generate(ASYMMETRIC_KID if port == 9996 else None)]),
        jwt_secret=ASYMMETRIC_SECRET if port == 9996 else SUITE_JWT_SECRET,
        enable_confirmations=confirmations,
        site_url=f"http://localhost:{port}",
        extra=extra,
    )


@contextlib.contextmanager
def _servers(database_url: str, data_dir: Path) -> Iterator[None]:
    """The four servers; GoTrue answers at the root, and `/auth/v1` works too (its links)."""
    started = []
    try:
        for port in SERVERS:
            app = create_app(_config(port, database_url, data_dir))
            both = DispatcherMiddleware(app, {"/auth/v1": app})
            server = make_server("127.0.0.1", port, both, threaded=True)
            threading.Thread(target=server.serve_forever, daemon=True).start()
            started.append(server)
        yield
    finally:
        for server in started:
            server.shutdown()
            server.server_close()


def _ports_free() -> list[int]:
    busy = []
    for port in SERVERS:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                busy.append(port)
    return busy


def _out_of_scope(test: str) -> str | None:
    if test in OUT_OF_SCOPE_TESTS:
        return OUT_OF_SCOPE_TESTS[test]
    return next((why for word, why in OUT_OF_SCOPE.items() if word in test.lower()), None)


def _outcomes(report: Path) -> list[Outcome]:
    found = []
    # The report is the one our own pytest run just wrote, not outside input.
    for case in ET.parse(report).getroot().iter("testcase"):  # noqa: S314
        name = f"{case.get('classname', '')}::{case.get('name', '')}"
        problem = next((c for c in case if c.tag in ("failure", "error")), None)
        skipped = next((c for c in case if c.tag == "skipped"), None)
        if problem is not None:
            scope = _out_of_scope(case.get("name", ""))
            message = (problem.get("message") or problem.tag).splitlines()[0]
            if scope:
                found.append(Outcome(name, "out-of-scope", f"{scope}: {message}"))
            else:
                found.append(Outcome(name, "failed", message))
        elif skipped is not None:
            found.append(Outcome(name, "skipped", skipped.get("message") or ""))
        else:
            found.append(Outcome(name, "passed"))
    return found


def _run_pytest(tests: Path, deps: list[Path], work: Path, extra: list[str]) -> Path:
    package = work / "supabase_auth_suite"
    shutil.copytree(tests, package)
    report = work / "report.xml"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(work), *map(str, deps), *filter(None, [env.get("PYTHONPATH")])]
    )
    command = [sys.executable, "-m", "pytest", str(package), "-q", "-p", "no:cacheprovider",
               "-o", "asyncio_mode=auto", "--continue-on-collection-errors",
               f"--junitxml={report}", "--rootdir", str(work),
               *extra]  # fmt: skip
    subprocess.run(command, cwd=work, env=env, check=False)
    return report


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m fnkit.local.auth.suite")
    parser.add_argument("--tests", type=Path, required=True, help="supabase-py's src/auth/tests")
    parser.add_argument("--deps", type=Path, action="append", default=[],
                        help="a directory with the suite's test dependencies")  # fmt: skip
    parser.add_argument("pytest_args", nargs="*", help="passed to pytest (after --)")
    args = parser.parse_args(argv)
    if not (args.tests / "_sync").is_dir():
        print(f"{args.tests} is not supabase-py's src/auth/tests", file=sys.stderr)
        return 2
    if busy := _ports_free():
        print(f"ports in use: {busy}; the suite needs 9996-9999", file=sys.stderr)
        return 2
    admin = db.resolve_test_admin_url()
    url = db.create_throwaway_database(admin, prefix="fnkit_auth_suite")
    try:
        db.bootstrap(url)
        db.migrate(url)
        db.seed(url)
        with tempfile.TemporaryDirectory(prefix="fnkit-auth-suite-") as tmp:
            work = Path(tmp)
            with _servers(url, work / "data"):
                report = _run_pytest(args.tests, args.deps, work, args.pytest_args)
            outcomes = _outcomes(report) if report.exists() else []
    finally:
        db.drop_database(admin, db.database_name(url))
    counts = {s: sum(1 for o in outcomes if o.status == s) for s in
              ("passed", "failed", "out-of-scope", "skipped")}  # fmt: skip
    for outcome in outcomes:
        if outcome.status in ("failed", "out-of-scope"):
            print(f"{outcome.status.upper():13} {outcome.name}: {outcome.detail}")
    print(" ".join(f"{name}={count}" for name, count in counts.items()))
    return 0 if outcomes and counts["failed"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
