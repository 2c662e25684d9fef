"""Property-based fuzzing of every function from its own OpenAPI document.

Each function serves `GET /functions/v1/<name>/openapi.json`; schemathesis turns it into
hypothesis strategies (valid data, and data that breaks the schema), and every generated
request goes over real HTTP to the served function, as a seed user (the owner, with aal2) or
anonymously. Every answer must:

* not be a 5xx;
* use a status code and a body the document declares for that operation (schemathesis'
  status code, content type and response schema checks); invalid data must be refused (4xx);
* be the envelope (`success`/`data`/`meta` or `success`/`error`/`meta`, `meta.request_id`
  equal to the `X-Request-Id` header); `openapi.json` itself is the raw document;
* leak nothing: no traceback, no SQL or driver text, no file path, no secret (JWT secret,
  service role key, Upstash token).

Generated ids are random UUIDs, which only ever reach the "not found" branches. So half of
the valid cases are steered onto real rows: a workspace made for this module (the seed owner
owns it, the other seed users hold their roles) with a project, a task, a comment and an
attachment, so that the success branches and their response schemas are fuzzed too, without
touching the seed rows other tests read. Workspaces the fuzz creates are deleted afterwards.

Supabase Auth and Storage are the local ones the session serves (SUPABASE_URL): an invite
creates a real user through the Before User Created hook, an attachment's upload and download
URLs are signed by the local Storage, and the steered attachment has a real file. Nothing here
needs Supabase to misbehave, so nothing is faked (respx stays in the fault tests).
Rate-limit windows are flushed before every example: one test sends far more than a window.

Bounded by default (`FNKIT_FUZZ_EXAMPLES`, default 25 examples per operation and mode,
deterministic); `FNKIT_FUZZ_EXAMPLES=500` (`make fuzz`) runs the long, randomized version.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, reject, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from fnkit.devenv import (
    DEV_AUTH_HOOK_SECRET,
    DEV_DB_WEBHOOK_SECRET,
    DEV_JWT_SECRET,
    DEV_SERVICE_ROLE_KEY,
)
from tests.contracts import Contract, contract_of
from tests.fixtures.server import ROOT, SEED_USERS, Served

FUNCTIONS = sorted(p.parent.name for p in (ROOT / "functions").glob("*/main.py"))
LONG = "FNKIT_FUZZ_EXAMPLES" in os.environ
EXAMPLES = int(os.environ.get("FNKIT_FUZZ_EXAMPLES", "25"))
ANON_EXAMPLES = max(5, EXAMPLES // 5)
OWNER = SEED_USERS["owner"]

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]

# Invalid data must be refused: 413 (too large, before anything else runs) is a refusal too.
CONFIG = schemathesis.Config.from_dict(
    {
        "checks": {
            "negative_data_rejection": {
                "expected-statuses": [400, 401, 403, 404, 405, 409, 413, 415, 422, 429]
            }
        }
    }
)

# What an error answer must never contain: tracebacks, Python and driver internals, SQL text
# (ours is lower case), schema-qualified names, Postgres' own messages, paths of this checkout.
LEAKS = re.compile(
    r"Traceback|File \"|\.py\b|/work/|site-packages|psycopg|pydantic_core|"
    r"\bselect\s[^\"]*\sfrom\s|insert into|update public\.|delete from|"
    r"\b(public|private|auth|storage)\.[a-z_]+\b|"
    r"syntax error|relation \"|violates .* constraint|current transaction is aborted|"
    r"SQLSTATE|invalid input syntax|column \"|operator does not exist|DETAIL:|HINT:|CONTEXT:",
    re.IGNORECASE,
)

pytestmark = pytest.mark.timeout(3600 if LONG else 300)


# ---- the rows the fuzz may aim at -----------------------------------------------------------


@dataclass
class Targets:
    """Real rows of a workspace made for this module, by the name a parameter has."""

    workspace: str
    project: str
    task: str
    comment: str
    attachment: str
    members: list[str]
    attachment_path: str = ""
    """Where the attachment's file is in the `attachments` bucket (`with_file` puts one there)."""

    def ids_for(self, function: str, name: str) -> list[str]:
        """Ids that make a parameter called `name` of `function` point at a real row."""
        by_name = {
            "workspace_id": [self.workspace],
            "project_id": [self.project],
            "task_id": [self.task],
            "user_id": self.members,
            "assignee_id": self.members,
        }
        if name == "id":
            return {
                "workspaces": [self.workspace],
                "projects": [self.project],
                "tasks": [self.task],
                "comments": [self.comment],
                "attachments": [self.attachment],
            }.get(function, [])
        return by_name.get(name, [])


def make_targets(conn: psycopg.Connection[Any]) -> Targets:
    ws, project, task = (str(uuid.uuid4()) for _ in range(3))
    conn.execute(
        "insert into public.workspaces (id, name, created_by) values (%s, 'Fuzz', %s)",
        (ws, OWNER),
    )
    for who in ("admin", "member", "viewer"):
        conn.execute(
            "insert into public.workspace_members (workspace_id, user_id, role)"
            " values (%s, %s, %s)",
            (ws, SEED_USERS[who], who),
        )
    conn.execute(
        "insert into public.projects (id, workspace_id, name, created_by)"
        " values (%s, %s, 'Fuzz project', %s)",
        (project, ws, OWNER),
    )
    conn.execute(
        "insert into public.tasks (id, project_id, title, created_by)"
        " values (%s, %s, 'Fuzz task', %s)",
        (task, project, OWNER),
    )
    comment = conn.execute(
        "insert into public.task_comments (task_id, body, author_id)"
        " values (%s, 'Fuzz comment', %s) returning id::text",
        (task, OWNER),
    ).fetchone()
    attachment = conn.execute(
        "insert into public.attachments (task_id, filename, content_type, size_bytes,"
        " uploaded_by) values (%s, 'fuzz.txt', 'text/plain', 3, %s)"
        " returning id::text, storage_path",
        (task, OWNER),
    ).fetchone()
    assert comment is not None and attachment is not None
    members = [SEED_USERS[w] for w in ("owner", "admin", "member", "viewer")]
    return Targets(ws, project, task, comment[0], attachment[0], members, attachment[1])


def with_file(served: Served, targets: Targets) -> Targets:
    """The attachment's file uploaded to the local Storage (as the service role), so that
    `GET /attachments/{id}` signs a download of a real object."""
    response = httpx.put(
        f"{served.auth.url}/storage/v1/object/attachments/{targets.attachment_path}",
        content=b"abc",
        headers={
            "Authorization": f"Bearer {DEV_SERVICE_ROLE_KEY}",
            "Content-Type": "text/plain",
        },
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return targets


@contextlib.contextmanager
def owner_workspaces_dropped(database_url: str) -> Iterator[None]:
    """Workspaces made as the seed owner inside the block are deleted after it: they would
    show up in the seed owner's lists that other tests read."""
    before = dt.datetime.now(dt.UTC)
    try:
        yield
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(
                "delete from public.workspaces where created_at >= %s and created_by = %s",
                (before, OWNER),
            )


@pytest.fixture(scope="module")
def fuzz_cleanup(database_url: str) -> Iterator[None]:
    with owner_workspaces_dropped(database_url):
        yield


@pytest.fixture
def targets(served: Served, database_url: str, fuzz_cleanup: None) -> Targets:
    """Fresh rows for each test: the fuzz deletes what it is steered onto."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        return with_file(served, make_targets(conn))


# ---- what every answer must be --------------------------------------------------------------


def secrets_of(env: dict[str, str]) -> list[str]:
    return [
        s
        for s in (
            DEV_JWT_SECRET,
            DEV_SERVICE_ROLE_KEY,
            DEV_AUTH_HOOK_SECRET,
            DEV_AUTH_HOOK_SECRET.removeprefix("v1,whsec_"),
            DEV_DB_WEBHOOK_SECRET,
            env["UPSTASH_REDIS_REST_TOKEN"],
            env["DATABASE_URL"],
        )
        if s
    ]


def _header(response: schemathesis.Response, name: str) -> str | None:
    values = response.headers.get(name.lower())
    return values[0] if values else None


def check_answer(response: schemathesis.Response, contract: Contract, secrets: list[str]) -> None:
    """The caller's contract (the envelope, or the route's own document on success and
    `error.http_code` for an Auth hook), the request id, nothing that must not leave."""
    text = response.content.decode("utf-8")
    for secret in secrets:
        assert secret not in text, "a secret is in the body"
    request_id = _header(response, "X-Request-Id")
    assert request_id, "no X-Request-Id"
    if response.status_code == 204 or response.request.method == "HEAD":
        assert text == ""
        return
    assert (_header(response, "Content-Type") or "").startswith("application/json")
    body = json.loads(text)
    refusal = contract.answer == "auth_hook" and body.get("success") is False
    if refusal and response.status_code == 200:  # a hook's refusal, as Supabase Auth reads it
        assert 400 <= body["error"]["http_code"] < 500, text[:300]
        return
    if contract.answer != "envelope" and response.status_code < 400:
        assert isinstance(body, dict) and "success" not in body, text[:300]
        if contract.answer == "auth_hook":
            assert set(body) <= {"claims"}, text[:300]
        if (response.request.url or "").endswith("/openapi.json"):
            assert body.get("openapi") == "3.1.0"
        return
    if body.get("success") is False:
        http_code = body["error"].get("http_code")
        assert http_code == (response.status_code if contract.answer == "auth_hook" else None)
    if response.status_code >= 400:  # success bodies may echo what the caller sent
        leak = LEAKS.search(text)
        assert leak is None, f"the body leaks {leak.group(0)!r}: {text[:500]}"
    assert isinstance(body, dict) and set(body) == (
        {"success", "data", "meta"} if body.get("success") is True else {"success", "error", "meta"}
    ), f"not the envelope: {text[:300]}"
    assert body["meta"]["request_id"] == request_id
    if body["success"] is False:
        error = body["error"]
        assert re.fullmatch(r"[A-Z][A-Z_]+", error["code"]), error
        assert isinstance(error["message"], str) and error["message"]
        assert response.status_code >= 400
    else:
        assert response.status_code < 400


# ---- steering valid cases onto real rows ----------------------------------------------------


# Values the schema cannot describe precisely enough for random data to pass (an email, a
# media type on the allow list, a size under the limit): steered cases use these.
_PLAUSIBLE: dict[str, st.SearchStrategy[Any]] = {
    "email": st.emails(domains=st.just("example.com")),
    "content_type": st.sampled_from(["text/plain", "image/png", "application/pdf"]),
    "size": st.integers(min_value=0, max_value=1_000_000),
}


def _steer(value: Any, function: str, name: str, targets: Targets, data: st.DataObject) -> Any:
    """Replace ids under known names (also inside bulk ops) with ids of real rows, and a few
    fields with plausible values, so that valid cases reach the success branches."""
    if isinstance(value, dict):
        return {k: _steer(v, function, k, targets, data) for k, v in value.items()}
    if isinstance(value, list):
        return [_steer(v, function, name, targets, data) for v in value]
    ids = targets.ids_for(function, name)
    if ids and isinstance(value, str):
        return data.draw(st.sampled_from(ids))
    if name in _PLAUSIBLE and not isinstance(value, bool):
        return data.draw(_PLAUSIBLE[name])
    return value


@dataclass
class Tally:
    """What the fuzz sent and got, per function; printed for the note."""

    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    cases: Counter[str] = field(default_factory=Counter)
    operations: Counter[tuple[str, str, int]] = field(default_factory=Counter)


TALLY = Tally()


def _fuzz(
    served: Served,
    upstash: Any,
    function_env: dict[str, str],
    targets: Targets,
    function: str,
    token: str | None,
    examples: int,
    modes: tuple[GenerationMode, ...],
) -> list[str]:
    base = f"{served.url}/functions/v1"
    document = httpx.get(f"{base}/{function}/openapi.json", timeout=30).json()
    schema = schemathesis.openapi.from_dict(
        _credentials_supplied(document) if token else document, config=CONFIG
    )
    secrets = secrets_of(function_env)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        contract = contract_of(
            document, document["paths"][operation.path][operation.method.lower()]
        )
        # As the owner, a machine route gets Supabase's credentials for each case's exact
        # bytes, so the fuzz reaches its validation and handler; anonymously it is unsigned.
        session = _session(contract if token else None)
        for mode in modes:
            strategy = operation.as_strategy(generation_mode=mode)

            def send(case: Any, data: st.DataObject, mode: GenerationMode = mode) -> None:
                if _newline_in_path(case):
                    reject()  # the hosting layer's 404 page, not the function (see _newline_in_path)
                if mode.is_positive and data.draw(st.booleans(), label="steer"):
                    case.path_parameters = _steer(
                        case.path_parameters or {}, function, "", targets, data
                    )
                    case.query = _steer(case.query or {}, function, "", targets, data)
                    if isinstance(case.body, dict | list):
                        case.body = _steer(case.body, function, "", targets, data)
                upstash.redis.flushdb()
                response = case.call(base_url=base, session=session, headers=headers, timeout=30)
                TALLY.statuses[(function, response.status_code)] += 1
                TALLY.operations[(operation.label, mode.value, response.status_code)] += 1
                TALLY.cases[function] += 1
                case.validate_response(response, checks=CHECKS, headers=headers)
                check_answer(response, contract, secrets)

            try:
                _property(strategy, examples, send)()
            except Unsatisfiable:
                pass  # nothing to negate (no parameters, no body): the positive run covers it
            except (Exception, BaseExceptionGroup) as exc:  # report every operation's failure
                failures.append(f"{operation.label} [{mode.value}]: {exc}")
    return failures


def _property(strategy: Any, examples: int, send: Callable[[Any, st.DataObject], None]) -> Any:
    """A hypothesis test drawing cases of one operation and mode, and sending each."""

    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=not LONG,
        database=None,
        suppress_health_check=list(HealthCheck),
        # Shrinking re-sends many requests per failure: only the long run pays for it.
        phases=list(Phase) if LONG else [Phase.explicit, Phase.reuse, Phase.generate],
        print_blob=True,
    )
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        send(data.draw(strategy, label="case"), data)

    return run


def _newline_in_path(case: Any) -> bool:
    """A line break inside a path segment never reaches a function: Flask's `<path:...>`
    converter (functions-framework's and the dev server's routing) does not match it and
    answers its own HTML 404. Known, reported; not what this fuzz is about."""
    url = case.as_transport_kwargs(base_url="http://host")["url"]
    return "%0a" in url.split("?", 1)[0].lower()


def _credentials_supplied(document: dict[str, Any]) -> dict[str, Any]:
    """The document without the security of machine routes, whose credentials the session
    supplies (as schemathesis' own auth would): a negative case that "omits the signature"
    would otherwise be signed after all and wrongly count as invalid data accepted."""
    copy = json.loads(json.dumps(document))
    for item in copy["paths"].values():
        for operation in item.values():
            if contract_of(document, operation).machine:
                operation.pop("security", None)
    return copy  # type: ignore[no-any-return]


def _session(contract: Contract | None = None) -> Any:
    """A requests session (schemathesis sends with requests) that, for a machine route, signs
    each request as Supabase would: a requests auth runs after the body is encoded, so it
    signs the exact bytes sent."""
    import requests

    session = requests.Session()
    if contract is not None and contract.machine:
        session.auth = _SupabaseCredentials(contract)
    return session


class _SupabaseCredentials:
    """`requests` auth: Supabase's credentials (a signature or the bearer secret) per request."""

    def __init__(self, contract: Contract) -> None:
        self.contract = contract

    def __call__(self, prepared: Any) -> Any:
        body = prepared.body or b""
        body = body.encode() if isinstance(body, str) else body
        if isinstance(body, bytes):
            prepared.headers.update(self.contract.credential_headers(body))
        return prepared


def _report(failures: list[str]) -> None:
    assert not failures, "\n\n".join(f[:3000] for f in failures)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_fuzz_as_the_owner(
    served: Served,
    upstash: Any,
    function_env: dict[str, str],
    targets: Targets,
    function: str,
) -> None:
    token = served.token(OWNER, email="owner@example.com", aal="aal2")
    failures = _fuzz(
        served,
        upstash,
        function_env,
        targets,
        function,
        token,
        EXAMPLES,
        (GenerationMode.POSITIVE, GenerationMode.NEGATIVE),
    )
    _report(failures)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_fuzz_anonymously(
    served: Served,
    upstash: Any,
    function_env: dict[str, str],
    targets: Targets,
    function: str,
) -> None:
    failures = _fuzz(
        served,
        upstash,
        function_env,
        targets,
        function,
        None,
        ANON_EXAMPLES,
        (GenerationMode.POSITIVE, GenerationMode.NEGATIVE),
    )
    _report(failures)


def test_fuzz_summary(capsys: pytest.CaptureFixture[str]) -> None:
    """Print how many cases each function got and how they were answered (run with -s/-rA)."""
    lines = [f"fuzz: {EXAMPLES} examples per operation and mode; anonymous: {ANON_EXAMPLES}"]
    for function in FUNCTIONS:
        statuses = sorted((s, n) for (f, s), n in TALLY.statuses.items() if f == function)
        lines.append(
            f"  {function}: {TALLY.cases[function]} cases; "
            + ", ".join(f"{s}x{n}" for s, n in statuses)
        )
    if os.environ.get("FNKIT_FUZZ_VERBOSE"):
        for (label, mode, status), n in sorted(TALLY.operations.items()):
            lines.append(f"    {label} [{mode}] {status}: {n}")
    with capsys.disabled():
        print("\n" + "\n".join(lines))
