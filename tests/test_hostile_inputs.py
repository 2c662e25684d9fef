"""Hand-written hostile input for every function: what a careless or malicious client sends.

Bodies at and over the size limit, deep nesting, invalid UTF-8, NUL characters, huge numbers,
wrong types, unknown fields, SQL and JSON injection in every filter and path parameter,
absurd `limit`s, forged and replayed cursors, duplicate query parameters, wrong and missing
content types, and every HTTP method on every path. Every answer must be a 4xx (or the
success the input deserves) in the envelope, never a 5xx, never a leak (`assert_clean`).

The routes and their fields come from each function's own OpenAPI document, so a new route or
field is attacked without editing this file. Cases are counted per category; the last test
prints the counts (`pytest -rA` or `-s` shows them).
"""

from __future__ import annotations

import base64
import json
import re
import socket
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import psycopg
import pytest
from psycopg import sql

from tests.contracts import Contract, body_schema, contract_of
from tests.fixtures.server import SEED_USERS, Served, as_user
from tests.test_hostile_fuzz import (
    FUNCTIONS,
    LEAKS,
    Targets,
    make_targets,
    owner_workspaces_dropped,
    secrets_of,
    with_file,
)

CASES: Counter[str] = Counter()
BODY_METHODS = ("post", "put", "patch")
ALL_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
MAX_BODY = 65536

SQL_INJECTIONS = [
    "' OR '1'='1",
    "'; drop table public.tasks; --",
    "1; select pg_sleep(5)",
    "\\'; select current_user; --",
    "$$; select 1; $$",
    "' union select id, email from auth.users --",
    "a' || (select string_agg(email, ',') from auth.users) || '",
    "%' or 1=1 --",
    "\\x00",
    ")) or ((1=1",
    "null",
    "*",
]
JSON_INJECTIONS = [
    '{"role": "owner"}',
    '", "role": "owner',
    '"}], "ops": [{"op": "delete"',
    "__proto__",
    '{"$where": "1"}',
    "\\u0000",
]


# ---- what every answer must be --------------------------------------------------------------


def assert_clean(
    response: httpx.Response, secrets: list[str], contract: Contract = Contract()
) -> None:
    """No 5xx, no traceback, SQL, path or secret; a clear error in the caller's contract (the
    envelope, with `http_code` for an Auth hook), the request id, and a success in the
    route's declared format."""
    text = response.text
    assert response.status_code < 500, f"{response.status_code}: {text[:500]}"
    for secret in secrets:
        assert secret not in text, "a secret is in the body"
    request_id = response.headers.get("X-Request-Id")
    assert request_id
    if response.status_code == 204 or response.request.method == "HEAD":
        assert text == ""
        return
    assert response.headers["Content-Type"].startswith("application/json"), text[:200]
    body = response.json()
    if response.status_code >= 400:
        leak = LEAKS.search(text)
        assert leak is None, f"the body leaks {leak.group(0)!r}: {text[:500]}"
        assert set(body) == {"success", "error", "meta"} and body["success"] is False, text
        error = body["error"]
        assert error["code"].isupper() and isinstance(error["message"], str) and error["message"]
        if contract.answer == "auth_hook":  # Supabase Auth reads error.http_code and .message
            assert error["http_code"] == response.status_code, text
        else:
            assert "http_code" not in error, text
        assert body["meta"]["request_id"] == request_id
    elif contract.answer == "envelope":
        assert set(body) == {"success", "data", "meta"} and body["success"] is True, text
        assert body["meta"]["request_id"] == request_id
    elif contract.answer == "auth_hook" and body.get("success") is False:
        # A hook's refusal: 200, as Supabase Auth reads refusals only from a 2xx answer.
        assert 400 <= body["error"]["http_code"] < 500, text[:300]
        assert body["meta"]["request_id"] == request_id
    else:  # the caller's own document, not the envelope
        assert isinstance(body, dict) and "success" not in body, text[:300]
        if contract.answer == "auth_hook":
            assert set(body) <= {"claims"}, text[:300]


def machine_credentials(contract: Contract, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Routes Supabase calls get its credentials, so hostile bodies reach their validation:
    the database webhook's bearer secret, or a Standard Webhooks signature of the exact bytes
    (whatever they are: `tests.webhook_signing` signs bytes that are not UTF-8 too)."""
    if not contract.machine:
        return kwargs
    kwargs = dict(kwargs)
    headers = dict(kwargs.pop("headers", None) or {})
    if "json" in kwargs:
        kwargs["content"] = json.dumps(kwargs.pop("json")).encode()
        headers.setdefault("Content-Type", "application/json")
    content = kwargs.get("content") or b""
    content = content.encode() if isinstance(content, str) else content
    if isinstance(content, bytes):  # a streamed body goes unsigned (refused with 401)
        headers.update(contract.credential_headers(content))
    return {**kwargs, "headers": headers}


def row_counts(database_url: str) -> dict[str, int]:
    """Rows in every table of the public schema, in one query (names from the catalog)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        tables = [
            name
            for (name,) in conn.execute(
                "select tablename from pg_catalog.pg_tables where schemaname = 'public'"
                " order by tablename"
            )
        ]
        query = sql.SQL(" union all ").join(
            sql.SQL("select {}, count(*) from public.{}").format(
                sql.Literal(name), sql.Identifier(name)
            )
            for name in tables
        )
        return {name: count for name, count in conn.execute(query)}


class Probe:
    """Sends a case as a seed user with fresh rate-limit windows, checks it against the
    operation's contract, counts it. A refused machine call (which acts as the service role,
    past RLS) must also leave every table as it was."""

    def __init__(
        self,
        served: Served,
        upstash: Any,
        secrets: list[str],
        documents: dict[str, dict[str, Any]],
        database_url: str,
    ) -> None:
        self.served = served
        self.upstash = upstash
        self.secrets = secrets
        self.database_url = database_url
        self.clients: dict[str, httpx.Client] = {}
        self.routes = [
            (method.upper(), _template_pattern(path), contract_of(documents[name], operation))
            for name, method, path, operation in operations(documents)
        ]

    def client(self, who: str) -> httpx.Client:
        if who not in self.clients:
            options = {"aal": "aal2"} if who != "anon" else {}
            self.clients[who] = as_user(self.served, who, **options)
        return self.clients[who]

    def contract(self, method: str, url: str) -> Contract:
        """The contract of the route serving `method url`: the first declared that matches,
        as the runtime dispatches; the envelope where none does (404, 405)."""
        path = url.split("?", 1)[0]
        for declared, pattern, contract in self.routes:
            if declared == method.upper() and pattern.fullmatch(path):
                return contract
        return Contract()

    def send(
        self, category: str, method: str, url: str, who: str = "owner", **kwargs: Any
    ) -> httpx.Response:
        self.upstash.redis.flushdb()  # one test sends more than a window allows
        contract = self.contract(method, url)
        kwargs = machine_credentials(contract, kwargs)
        before = row_counts(self.database_url) if contract.machine else None
        response = self.client(who).request(method, url, **kwargs)
        CASES[category] += 1
        assert_clean(response, self.secrets, contract)
        if before is not None and response.status_code >= 400:
            assert row_counts(self.database_url) == before, (method, url, response.text[:300])
        return response

    def close(self) -> None:
        for client in self.clients.values():
            client.close()


def _template_pattern(template: str) -> re.Pattern[str]:
    return re.compile(re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)) + "/?")


@pytest.fixture
def probe(
    served: Served,
    upstash: Any,
    function_env: dict[str, str],
    documents: dict[str, dict[str, Any]],
    database_url: str,
) -> Iterator[Probe]:
    p = Probe(served, upstash, secrets_of(function_env), documents, database_url)
    yield p
    p.close()


@pytest.fixture(scope="module")
def module_cleanup(database_url: str) -> Iterator[None]:
    with owner_workspaces_dropped(database_url):
        yield


@pytest.fixture
def rows(served: Served, database_url: str, module_cleanup: None) -> Targets:
    """Fresh rows, the attachment with its file in the local Storage: invites and signed URLs
    reach the local Auth and Storage for real (SUPABASE_URL), nothing faked."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        return with_file(served, make_targets(conn))


@pytest.fixture(scope="module")
def documents(served: Served) -> dict[str, dict[str, Any]]:
    with served.client() as client:
        return {name: client.get(f"/{name}/openapi.json").json() for name in FUNCTIONS}


def error_of(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text[:500]
    error: dict[str, Any] = response.json()["error"]
    if code is not None:
        assert error["code"] == code, error
    return error


def refused(response: httpx.Response, status: int) -> httpx.Response:
    error_of(response, status)
    return response


def locs(response: httpx.Response) -> list[list[Any]]:
    return [d["loc"] for d in response.json()["error"].get("details", [])]


# ---- routes from the documents --------------------------------------------------------------


def operations(
    documents: dict[str, dict[str, Any]], function: str | None = None
) -> Iterator[tuple[str, str, str, dict[str, Any]]]:
    """(function, method, path template, operation) for every documented operation."""
    for name, document in documents.items():
        if function is not None and name != function:
            continue
        for path, item in document["paths"].items():
            for method, operation in item.items():
                yield name, method, path, operation


def fill(function: str, path: str, rows: Targets, **override: str) -> str:
    """A path template with real ids (or random ones where no row fits)."""
    out = path
    for part in path.split("/"):
        if part.startswith("{"):
            name = part[1:-1]
            ids = rows.ids_for(function, name)
            value = override.get(name) or (ids[0] if ids else str(uuid.uuid4()))
            out = out.replace(part, value)
    return out


def valid_body(function: str, path: str, rows: Targets) -> dict[str, Any]:
    """A body each body route accepts (so that one bad field is the only problem)."""
    task = {"project_id": rows.project, "title": "Hostile"}
    assigned = {"id": rows.task, "workspace_id": rows.workspace, "title": "Hostile"}
    bodies: dict[tuple[str, str], dict[str, Any]] = {
        ("workspaces", "/workspaces"): {"name": "Hostile"},
        ("workspaces", "/workspaces/{id}"): {"name": "Hostile"},
        ("projects", "/projects"): {"workspace_id": rows.workspace, "name": "Hostile"},
        ("projects", "/projects/{id}"): {"name": "Hostile"},
        ("tasks", "/tasks"): task,
        ("tasks", "/tasks/{id}"): {"title": "Hostile", "version": 1},
        ("tasks", "/tasks/bulk"): {"ops": [{"op": "create", "data": task}]},
        ("comments", "/comments"): {"task_id": rows.task, "body": "Hostile"},
        ("comments", "/comments/{id}"): {"body": "Hostile"},
        ("members", "/members"): {
            "workspace_id": rows.workspace,
            "email": "viewer@example.com",
            "role": "viewer",
        },
        ("members", "/members/{workspace_id}/{user_id}"): {"role": "viewer"},
        ("attachments", "/attachments"): {
            "task_id": rows.task,
            "filename": "a.txt",
            "content_type": "text/plain",
            "size": 3,
        },
        # What Supabase Auth and the database webhook send.
        ("hooks", "/hooks/custom-access-token"): {
            "user_id": SEED_USERS["owner"],
            "claims": {"sub": SEED_USERS["owner"], "role": "authenticated", "aal": "aal1"},
            "authentication_method": "password",
        },
        ("hooks", "/hooks/before-user-created"): {
            "metadata": {"name": "before-user-created", "ip_address": "127.0.0.1"},
            "user": {"id": str(uuid.uuid4()), "email": "hostile@example.com"},
        },
        ("hooks", "/hooks/task-assigned"): {
            "type": "UPDATE",
            "table": "tasks",
            "schema": "public",
            "record": {**assigned, "assignee_id": rows.members[2], "version": 2},
            "old_record": {**assigned, "assignee_id": None, "version": 1},
        },
    }
    return dict(bodies.get((function, path), {}))


def body_routes(
    documents: dict[str, dict[str, Any]],
) -> Iterator[tuple[str, str, str, dict[str, Any]]]:
    for function, method, path, operation in operations(documents):
        if method in BODY_METHODS and "requestBody" in operation:
            yield function, method, path, operation


def query_routes(
    documents: dict[str, dict[str, Any]],
) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for function, method, path, operation in operations(documents):
        if method == "get" and any(p["in"] == "query" for p in operation.get("parameters", [])):
            yield function, path, operation


def base_query(function: str, rows: Targets) -> dict[str, str]:
    return {
        "projects": {"workspace_id": rows.workspace},
        "tasks": {"project_id": rows.project},
        "comments": {"task_id": rows.task},
        "attachments": {"task_id": rows.task},
        "members": {"workspace_id": rows.workspace},
        "stats": {"workspace_id": rows.workspace},
    }.get(function, {})


# ---- body size ------------------------------------------------------------------------------


def _padded(body: dict[str, Any], size: int) -> bytes:
    raw = json.dumps(body).encode()
    return raw[:-1] + b" " * (size - len(raw)) + b"}"


def test_bodies_at_the_limit_pass_and_one_byte_over_is_413(
    probe: Probe, documents: dict[str, dict[str, Any]], rows: Targets
) -> None:
    for function, method, path, _ in body_routes(documents):
        url = fill(function, path, rows)
        body = valid_body(function, path, rows)
        headers = {"Content-Type": "application/json"}
        at = probe.send("body size", method, url, content=_padded(body, MAX_BODY), headers=headers)
        assert at.status_code != 413, (function, path, at.text)
        over = probe.send(
            "body size", method, url, content=_padded(body, MAX_BODY + 1), headers=headers
        )
        error_of(over, 413, "PAYLOAD_TOO_LARGE")
        # Without Content-Length (chunked), the limit holds while reading.
        chunks = iter([b"[", b"0," * (MAX_BODY // 2), b"0]"])
        chunked = probe.send("body size", method, url, content=chunks, headers=headers)
        error_of(chunked, 413, "PAYLOAD_TOO_LARGE")


def _raw_http(served: Served, request: bytes) -> tuple[int, bytes]:
    host, port = served.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):  # the server closes after answering
            data += chunk
    status = int(data.split(b" ", 2)[1])
    return status, data


def test_a_lying_content_length_is_refused_before_reading(served: Served) -> None:
    token = served.token(SEED_USERS["owner"])
    for declared in ("99999999999999", "65537"):
        request = (
            "POST /functions/v1/workspaces HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {declared}\r\nConnection: close\r\n\r\n" + '{"name": "x"}'
        ).encode()
        status, data = _raw_http(served, request)
        CASES["body size"] += 1
        assert status == 413, data[:300]
        assert b"PAYLOAD_TOO_LARGE" in data


# ---- nesting, encoding, NUL, numbers --------------------------------------------------------


@pytest.mark.parametrize("depth", [64, 500, 990, 5000, 100_000])
def test_deeply_nested_json_is_a_clean_refusal(
    probe: Probe, documents: dict[str, dict[str, Any]], rows: Targets, depth: int
) -> None:
    for function, method, path, operation in body_routes(documents):
        url = fill(function, path, rows)
        field = next(iter(body_schema(documents[function], operation).get("properties", {})))
        for raw in (
            b"[" * depth + b"]" * depth,
            b'{"%s": ' % field.encode() + b"[" * depth + b"]" * depth + b"}",
            b'{"a":' * depth + b"1" + b"}" * depth,
        ):
            if len(raw) > MAX_BODY:
                raw = raw[: MAX_BODY - 1]  # truncated: not even JSON, still never a 500
            response = probe.send(
                "deep nesting",
                method,
                url,
                content=raw,
                headers={"Content-Type": "application/json"},
            )
            assert response.status_code in (400, 413, 422), (function, path, response.text)


INVALID_UTF8 = [
    b'{"name": "\xff\xfe"}',
    b'{"name": "\xc0\xaf"}',  # overlong "/"
    b'{"name": "\xed\xa0\x80"}',  # an encoded surrogate
    b'{"name": "\xe2\x82"}',  # truncated sequence
    b"\xef\xbb\xbf" + b'{"name": "bom"}',  # a UTF-8 byte order mark: not JSON text
]
LONE_SURROGATES = [b'{"name": "\\ud800"}', b'{"name": "\\udfff x"}', b'{"\\ud83d": 1}']


def test_invalid_utf8_and_lone_surrogates_are_400(
    probe: Probe, documents: dict[str, dict[str, Any]], rows: Targets
) -> None:
    for function, method, path, _ in body_routes(documents):
        url = fill(function, path, rows)
        for raw in INVALID_UTF8 + LONE_SURROGATES:
            response = probe.send(
                "invalid utf-8",
                method,
                url,
                content=raw,
                headers={"Content-Type": "application/json"},
            )
            error_of(response, 400, "INVALID_JSON")
    # In a query string or a path, bytes that are not UTF-8 are replaced, never a crash.
    for function, path, _ in query_routes(documents):
        query = "&".join(f"{k}={v}" for k, v in base_query(function, rows).items())
        for bad in ("%FF%FE", "%C0%AF", "%ED%A0%80"):
            probe.send("invalid utf-8", "GET", f"{path}?{query}&q={bad}&cursor={bad}")
            probe.send("invalid utf-8", "GET", f"{path}/{bad}")


def _string_fields(schema: dict[str, Any]) -> list[str]:
    """Top-level fields that accept a string (directly or in an anyOf)."""
    fields = []
    for name, prop in schema.get("properties", {}).items():
        options = prop.get("anyOf", [prop])
        if any(option.get("type") == "string" for option in options):
            fields.append(name)
    return fields


def test_nul_in_any_string_is_a_422_naming_the_field(
    probe: Probe, documents: dict[str, dict[str, Any]], rows: Targets
) -> None:
    for function, method, path, operation in body_routes(documents):
        url = fill(function, path, rows)
        schema = body_schema(documents[function], operation)
        for field in _string_fields(schema):
            body = valid_body(function, path, rows)
            original = body.get(field)
            body[field] = (original if isinstance(original, str) else "x") + "\u0000y"
            response = probe.send("NUL", method, url, json=body)
            error_of(response, 422, "VALIDATION_FAILED")
            assert ["body", field] in locs(response), (function, path, field, response.text)
    bulk = {"ops": [{"op": "create", "data": {"project_id": rows.project, "title": "a\u0000"}}]}
    response = probe.send("NUL", "POST", "/tasks/bulk", json=bulk)
    assert ["body", "ops", 0, "data", "title"] in locs(refused(response, 422))
    # In the query and the path too (%00 decodes to NUL).
    for function, path, _ in query_routes(documents):
        query = base_query(function, rows)
        for name in ("q", "cursor", *query):
            response = probe.send("NUL", "GET", path, params={**query, name: "a\u0000b"})
            error_of(response, 422, "VALIDATION_FAILED")
    for function, method, path, _ in operations(documents):
        if "{" in path:
            url = fill(function, path, rows, id="a%00b", workspace_id="a%00b", user_id="a%00b")
            response = probe.send("NUL", method.upper(), url, json=valid_body(function, path, rows))
            assert response.status_code in (404, 422), (function, path, response.text)


NUMBERS = [b"1e309", b"-1e309", b"1e-400", b"18446744073709551616", b"-9223372036854775809",
           b"1.5", b"1E2", b"-0", b"9" * 5000, b"0.000000000000000000000000001"]  # fmt: skip


def _numeric_fields(schema: dict[str, Any]) -> list[str]:
    fields = []
    for name, prop in schema.get("properties", {}).items():
        options = prop.get("anyOf", [prop])
        if any(option.get("type") in ("integer", "number") for option in options):
            fields.append(name)
    return fields


def test_huge_and_odd_numbers_are_refused_or_taken_never_a_500(
    probe: Probe, documents: dict[str, dict[str, Any]], rows: Targets
) -> None:
    for function, method, path, operation in body_routes(documents):
        url = fill(function, path, rows)
        for field in _numeric_fields(body_schema(documents[function], operation)):
            for number in NUMBERS:
                body = json.dumps({**valid_body(function, path, rows), field: "N"}).encode()
                raw = body.replace(b'"N"', number)
                response = probe.send(
                    "huge numbers",
                    method,
                    url,
                    content=raw,
                    headers={"Content-Type": "application/json"},
                )
                assert response.status_code in (200, 201, 400, 404, 409, 422), response.text
    # Numbers in query strings: limit and the like.
    for function, path, operation in query_routes(documents):
        query = base_query(function, rows)
        for param in operation["parameters"]:
            if param["in"] != "query" or param["name"] in query:
                continue
            for number in NUMBERS:
                response = probe.send(
                    "huge numbers", "GET", path, params={**query, param["name"]: number.decode()}
                )
                assert response.status_code in (200, 404, 422), response.text


WRONG_TYPES: list[Any] = [None, True, 0, -1, 1.5, "", "x", [], [1], {}, {"a": 1}]


def test_wrong_types_in_every_field_are_422(
    probe: Probe, documents: dict[str, dict[str, Any]], rows: Targets
) -> None:
    for function, method, path, operation in body_routes(documents):
        url = fill(function, path, rows)
        schema = body_schema(documents[function], operation)
        for field in schema.get("properties", {}):
            for value in WRONG_TYPES:
                body = {**valid_body(function, path, rows), field: value}
                response = probe.send("wrong types", method, url, json=body)
                # Some values are right for some fields (null where optional, 0 for size...).
                assert response.status_code in (200, 201, 404, 409, 422), (
                    field,
                    value,
                    response.text,
                )
        # The body itself of the wrong type.
        for value in WRONG_TYPES:
            response = probe.send("wrong types", method, url, json=value)
            assert response.status_code in (400, 422), (function, path, value, response.text)


def test_unknown_fields_are_named_in_a_422(
    probe: Probe, documents: dict[str, dict[str, Any]], rows: Targets
) -> None:
    """Closed bodies name the unknown field in a 422; open ones (hook payloads, which Supabase
    extends over time) ignore it and answer as they answer the body without it."""
    for function, method, path, operation in body_routes(documents):
        url = fill(function, path, rows)
        closed = contract_of(documents[function], operation).closed_body
        for extra in ("role", "created_by", "workspace_id", "id", "__proto__", "constructor", ""):
            body = {**valid_body(function, path, rows)}
            if extra in body:
                continue
            body[extra] = "x"
            response = probe.send("unknown fields", method, url, json=body)
            if closed:
                error_of(response, 422, "VALIDATION_FAILED")
                assert ["body", extra] in locs(response), (function, path, extra, response.text)
            else:
                assert response.status_code < 400, (function, path, extra, response.text)
    nested = {
        "ops": [{"op": "create", "data": {"project_id": rows.project, "title": "x", "owner": True}}]
    }
    response = probe.send("unknown fields", "POST", "/tasks/bulk", json=nested)
    # pydantic names the union member it tried: `create`.
    assert ["body", "ops", 0, "create", "data", "owner"] in locs(refused(response, 422))


# ---- injection ------------------------------------------------------------------------------


def test_injection_in_every_path_parameter_is_a_422_or_404(
    probe: Probe, documents: dict[str, dict[str, Any]], rows: Targets
) -> None:
    for function, method, path, _ in operations(documents):
        if "{" not in path:
            continue
        for attack in SQL_INJECTIONS + JSON_INJECTIONS:
            value = quote(attack, safe="")
            url = fill(function, path, rows, id=value, workspace_id=value, user_id=value)
            response = probe.send(
                "injection", method.upper(), url, json=valid_body(function, path, rows)
            )
            assert response.status_code in (404, 422), (function, path, attack, response.text)


def test_injection_in_every_filter_is_inert(
    probe: Probe, documents: dict[str, dict[str, Any]], rows: Targets
) -> None:
    for function, path, operation in query_routes(documents):
        query = base_query(function, rows)
        for param in operation["parameters"]:
            if param["in"] != "query":
                continue
            for attack in SQL_INJECTIONS + JSON_INJECTIONS:
                response = probe.send(
                    "injection", "GET", path, params={**query, param["name"]: attack}
                )
                if param["name"] == "q" and "\\x00" not in attack and "\\u0000" not in attack:
                    # Free text: searched for as words, matches nothing, reveals nothing.
                    assert response.status_code == 200, response.text
                    assert response.json()["data"] == []
                else:
                    assert response.status_code in (200, 404, 422), (param, attack, response.text)


def test_injected_text_is_stored_and_returned_verbatim(probe: Probe, rows: Targets) -> None:
    for attack in SQL_INJECTIONS + JSON_INJECTIONS:
        created = probe.send(
            "injection", "POST", "/projects", json={"workspace_id": rows.workspace, "name": attack}
        )
        assert created.status_code == 201, created.text
        assert created.json()["data"]["name"] == attack.strip()
        read = probe.send("injection", "GET", f"/projects/{created.json()['data']['id']}")
        assert read.json()["data"]["name"] == attack.strip()
        comment = probe.send(
            "injection", "POST", "/comments", json={"task_id": rows.task, "body": attack}
        )
        assert comment.status_code == 201 and comment.json()["data"]["body"] == attack.strip()


# ---- limit, cursors, duplicate parameters ---------------------------------------------------

LIMITS = ["-1", "0", "101", "-9223372036854775809", "18446744073709551616", "1e3", "1.5", "",
          " ", "abc", "0x10", "++1", "٣", "1 0", "NaN", "true"]  # fmt: skip
# pydantic's lax integers: harmless spellings of a number in range.
LENIENT_LIMITS = {"1": 1, "100": 100, " 5 ": 5, "1.0": 1, "1_0": 10, "+7": 7}


def _paged_routes(documents: dict[str, dict[str, Any]]) -> list[tuple[str, str]]:
    return [
        (function, path)
        for function, path, operation in query_routes(documents)
        if any(p["name"] == "limit" for p in operation["parameters"])
    ]


def test_limit_outside_1_to_100_is_422(
    probe: Probe, documents: dict[str, dict[str, Any]], rows: Targets
) -> None:
    routes = _paged_routes(documents)
    assert {f for f, _ in routes} >= {"tasks", "comments", "attachments"}
    for function, path in routes:
        query = base_query(function, rows)
        for limit in LIMITS:
            response = probe.send("limit", "GET", path, params={**query, "limit": limit})
            error_of(response, 422, "VALIDATION_FAILED")
            assert ["query", "limit"] in locs(response)
        for limit, taken in LENIENT_LIMITS.items():
            response = probe.send("limit", "GET", path, params={**query, "limit": limit})
            assert response.status_code == 200, response.text
            assert response.json()["meta"]["pagination"]["limit"] == taken


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _first_cursor(probe: Probe, function: str, path: str, query: dict[str, str]) -> str:
    response = probe.send("cursors", "GET", path, params={**query, "limit": "1"})
    assert response.status_code == 200, response.text
    cursor = response.json()["meta"]["pagination"]["next_cursor"]
    assert cursor, f"{function}: need two rows for a cursor"
    return str(cursor)


def _more_rows(database_url: str, rows: Targets) -> None:
    """A second comment and attachment on the task, a second task in the project."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "insert into public.task_comments (task_id, body, author_id) values (%s, 'two', %s)",
            (rows.task, SEED_USERS["owner"]),
        )
        conn.execute(
            "insert into public.attachments (task_id, filename, content_type, size_bytes,"
            " uploaded_by) values (%s, 'two.txt', 'text/plain', 3, %s)",
            (rows.task, SEED_USERS["owner"]),
        )
        conn.execute(
            "insert into public.tasks (project_id, title, created_by) values (%s, 'two', %s)",
            (rows.project, SEED_USERS["owner"]),
        )


def _forgeries(cursor: str) -> Iterator[str]:
    """Cursors an attacker can make, including ones that keep a real cursor's fingerprint
    (it is a hash of the query, not a secret) with hostile values."""
    padded = cursor + "=" * (-len(cursor) % 4)
    fingerprint, values = json.loads(base64.urlsafe_b64decode(padded))
    yield from ("x", "====", "%%%", "a" * 2000, _b64(b"not json"), _b64(b"\xff\xfe"),
                _b64(b"[]"), _b64(b"{}"), _b64(b"null"), _b64(b'"s"'), _b64(b"[1, 2, 3]"),
                _b64(json.dumps(["0" * 16, values]).encode()))  # fmt: skip
    hostile: list[Any] = [None, True, 1, -1, 2**70, 1.5, "", "x", "\u0000", "\ud800",
                          "9999-12-31T23:59:59+14:00", "0001-01-01T00:00:00-14:00",
                          "infinity", "-infinity", "2024-02-30", "00000000-0000-0000-0000-000000000000",
                          "' or 1=1 --", [], {}, ["nested"]]  # fmt: skip
    for position in range(len(values)):
        for value in hostile:
            forged = list(values)
            forged[position] = value
            yield _b64(json.dumps([fingerprint, forged]).encode())
    yield _b64(json.dumps([fingerprint, [*values, "extra"]]).encode())
    yield _b64(json.dumps([fingerprint, values[:-1]]).encode())
    yield _b64(json.dumps([fingerprint, values, "extra"]).encode())


def test_forged_cursors_are_422_never_a_500(
    probe: Probe, documents: dict[str, dict[str, Any]], rows: Targets, database_url: str
) -> None:
    _more_rows(database_url, rows)
    for function, path in _paged_routes(documents):
        query = base_query(function, rows)
        cursor = _first_cursor(probe, function, path, query)
        for forged in _forgeries(cursor):
            response = probe.send("cursors", "GET", path, params={**query, "cursor": forged})
            # A forged cursor with plausible values may simply start the page elsewhere.
            assert response.status_code in (200, 422), (function, forged, response.text)


def test_replayed_cursors_are_bound_to_their_query_and_to_rls(
    probe: Probe, documents: dict[str, dict[str, Any]], rows: Targets, database_url: str
) -> None:
    _more_rows(database_url, rows)
    other = {
        "tasks": {"workspace_id": rows.workspace},
        "comments": {"task_id": str(uuid.uuid4())},
        "attachments": {"task_id": str(uuid.uuid4())},
    }
    for function, path in _paged_routes(documents):
        query = base_query(function, rows)
        cursor = _first_cursor(probe, function, path, query)
        again = probe.send("cursors", "GET", path, params={**query, "cursor": cursor})
        assert again.status_code == 200  # the same query may replay it
        if function in other:
            response = probe.send(
                "cursors", "GET", path, params={**other[function], "cursor": cursor}
            )
            assert response.status_code in (404, 422), response.text
        if function == "tasks":
            for change in ({"sort": "priority"}, {"status": "done"}, {"q": "two"}):
                response = probe.send(
                    "cursors", "GET", path, params={**query, **change, "cursor": cursor}
                )
                error_of(response, 422, "VALIDATION_FAILED")
        # Another user replaying it still runs as themselves: rows they may not see stay hidden.
        stolen = probe.send(
            "cursors", "GET", path, who="outsider", params={**query, "cursor": cursor}
        )
        assert stolen.status_code in (404, 422) or stolen.json()["data"] == [], stolen.text


def test_duplicate_query_parameters(
    probe: Probe, documents: dict[str, dict[str, Any]], rows: Targets
) -> None:
    for function, path, operation in query_routes(documents):
        query = base_query(function, rows)
        for param in operation["parameters"]:
            if param["in"] != "query":
                continue
            name = param["name"]
            value = query.get(name) or {"limit": "5", "status": "todo", "sort": "priority",
                                        "q": "x", "archived": "true", "assignee_id": "none",
                                        "due_before": "2030-01-01", "cursor": "x"}.get(name, "x")  # fmt: skip
            params = [
                *[(k, v) for k, v in query.items() if k != name],
                (name, value),
                (name, value),
            ]
            response = probe.send("duplicate parameters", "GET", path, params=params)
            if param.get("explode"):  # a list: both values count
                assert response.status_code == 200, response.text
            else:
                error_of(response, 422, "VALIDATION_FAILED")
                assert {"loc": ["query", name], "type": "duplicate"}.items() <= next(
                    d for d in response.json()["error"]["details"] if d["loc"] == ["query", name]
                ).items()


def test_oversized_query_strings_and_arrays(probe: Probe, rows: Targets) -> None:
    base = {"project_id": rows.project}
    many = [("status", "todo")] * 3000 + list(base.items())
    response = probe.send("oversized", "GET", "/tasks", params=many)
    assert response.status_code == 200, response.text  # a list: the same status 3000 times
    mixed = [("status", "todo,doing,x" * 500), *base.items()]
    error_of(probe.send("oversized", "GET", "/tasks", params=mixed), 422, "VALIDATION_FAILED")
    for name in ("q", "cursor", "sort", "assignee_id", "due_before"):
        response = probe.send("oversized", "GET", "/tasks", params={**base, name: "a" * 50_000})
        error_of(response, 422, "VALIDATION_FAILED")
    unknown = {**base, **{f"p{i}": "x" for i in range(500)}}
    error_of(probe.send("oversized", "GET", "/tasks", params=unknown), 422, "VALIDATION_FAILED")
    op = {"op": "create", "data": {"project_id": rows.project, "title": "x"}}
    response = probe.send("oversized", "POST", "/tasks/bulk", json={"ops": [op] * 101})
    assert ["body", "ops"] in locs(refused(response, 422))
    response = probe.send("oversized", "POST", "/tasks/bulk", json={"ops": []})
    error_of(response, 422, "VALIDATION_FAILED")
    # Duplicate keys: the last one wins, as in every mainstream JSON parser; never a 500.
    raw = b'{"workspace_id": "%s", "name": "first", "name": "second"}' % rows.workspace.encode()
    response = probe.send(
        "oversized", "POST", "/projects", content=raw, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 201 and response.json()["data"]["name"] == "second"


# ---- content types and methods --------------------------------------------------------------

CONTENT_TYPES = ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                 "application/xml", "text/json", "application/jsonx", "json", "*/*", "",
                 "application/json, text/plain"]  # fmt: skip


def test_wrong_and_missing_content_types_are_415(
    probe: Probe, documents: dict[str, dict[str, Any]], rows: Targets
) -> None:
    for function, method, path, _ in body_routes(documents):
        url = fill(function, path, rows)
        raw = json.dumps(valid_body(function, path, rows)).encode()
        for content_type in CONTENT_TYPES:
            headers = {"Content-Type": content_type} if content_type else {}
            response = probe.send("content types", method, url, content=raw, headers=headers)
            error_of(response, 415, "UNSUPPORTED_MEDIA_TYPE")
        # JSON under its other names is JSON; an empty body is a missing body.
        for content_type in ("application/json; charset=utf-8", "APPLICATION/JSON",
                             "application/merge-patch+json"):  # fmt: skip
            response = probe.send(
                "content types", method, url, content=raw, headers={"Content-Type": content_type}
            )
            assert response.status_code not in (400, 415), response.text
        empty = probe.send(
            "content types", method, url, content=b"", headers={"Content-Type": "application/json"}
        )
        error_of(empty, 422, "VALIDATION_FAILED")
        utf16 = probe.send(
            "content types",
            method,
            url,
            content=raw.decode().encode("utf-16"),
            headers={"Content-Type": "application/json; charset=utf-16"},
        )
        error_of(utf16, 400, "INVALID_JSON")


def _documented_methods(document: dict[str, Any], url: str) -> set[str]:
    """The methods of every documented path the URL matches (`/x/openapi.json` is also
    `/x/{id}`), plus OPTIONS, and HEAD where GET is."""
    methods: set[str] = set()
    for template, item in document["paths"].items():
        pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, url):
            methods |= {m.upper() for m in item}
    return methods | {"OPTIONS"} | ({"HEAD"} if "GET" in methods else set())


def test_every_method_on_every_path_is_served_or_405_with_allow(
    probe: Probe, documents: dict[str, dict[str, Any]], rows: Targets
) -> None:
    for function, document in documents.items():
        for path in document["paths"]:
            url = fill(function, path, rows)
            allowed = _documented_methods(document, url)
            for method in ALL_METHODS:
                response = probe.send("methods", method, url, who="viewer")
                if method in allowed:
                    assert response.status_code != 405, (function, path, method)
                    continue
                if method == "HEAD":  # no body to read
                    assert response.status_code == 405, (function, path)
                else:
                    error_of(response, 405, "METHOD_NOT_ALLOWED")
                assert set(response.headers["Allow"].split(", ")) == allowed, (function, path)


def _framework_client(name: str) -> Any:
    import functions_framework

    from tests.fixtures.server import ROOT

    app = functions_framework.create_app("handler", str(ROOT / f"functions/{name}/main.py"))
    return app.test_client()


EXOTIC_METHODS = ("TRACE", "PROPFIND", "CONNECT", "FOO", "PUT")


def test_exotic_methods_reach_the_function_under_functions_framework(
    served: Served, function_env: dict[str, str]
) -> None:
    """The production entry point (functions-framework) routes every method to the handler,
    which answers 405 in the envelope."""
    client = _framework_client("health")
    for method in EXOTIC_METHODS:
        response = client.open("/", method=method)
        CASES["methods"] += 1
        assert response.status_code == 405, (method, response.data[:200])
        assert response.json["error"]["code"] == "METHOD_NOT_ALLOWED"
        assert response.headers["Allow"] == "GET, HEAD, OPTIONS"


def test_exotic_methods_reach_the_function_under_the_dev_server(served: Served) -> None:
    """`make dev` routes as functions-framework does, so both answer alike."""
    with served.client() as client:
        for method in EXOTIC_METHODS:
            response = client.request(method, "/health")
            CASES["methods"] += 1
            error_of(response, 405, "METHOD_NOT_ALLOWED")
            assert response.json()["meta"]["request_id"] == response.headers["X-Request-Id"]
            assert response.headers["Allow"] == "GET, HEAD, OPTIONS"


CONTROL_PATHS = ("/tasks/%0A", "/tasks/abc%0Adef", "/tasks/%F3%0A%0F", "/%0D%0A", "/tasks/%7F")


def test_paths_holding_control_characters_answer_in_the_envelope(served: Served) -> None:
    """werkzeug's path rule matches no newline; the request still gets our 404, never the
    handler, under the dev server and under functions-framework."""
    framework = _framework_client("tasks")
    with served.client() as client:
        for path in CONTROL_PATHS:
            for method in ("GET", "DELETE", "PATCH"):
                CASES["paths"] += 1
                dev = client.request(method, path)
                error_of(dev, 404, "NOT_FOUND")
                assert dev.json()["meta"]["request_id"] == dev.headers["X-Request-Id"]
                prod = framework.open(path.removeprefix("/tasks"), method=method)
                assert prod.status_code == 404, (path, prod.data[:200])
                assert prod.json["error"]["code"] == "NOT_FOUND", path
                assert prod.json["meta"]["request_id"] == prod.headers["X-Request-Id"]
    # functions-framework answers /robots.txt itself (Flask's HTML 404); here the function's
    # router decides: for tasks it is `GET /{id}`, which needs a token.
    robots = framework.get("/robots.txt")
    assert robots.status_code == 401 and robots.json["error"]["code"] == "UNAUTHENTICATED"


# ---- headers --------------------------------------------------------------------------------


def test_hostile_headers(probe: Probe, rows: Targets) -> None:
    body = {"workspace_id": rows.workspace, "name": "Headers"}
    for key in ("", " ", "é", "a" * 256, "a b", "\t", "key\u0000"):
        try:
            response = probe.send(
                "headers", "POST", "/projects", json=body, headers={"Idempotency-Key": key}
            )
        except (httpx.LocalProtocolError, UnicodeEncodeError):
            CASES["headers"] += 1  # the client cannot even send it
            continue
        assert response.status_code in (201, 400), (key, response.text)
        if response.status_code == 400:
            error_of(response, 400, "BAD_REQUEST")
    for request_id in ("<script>", "a" * 129, "../../etc", "id with space"):
        response = probe.send("headers", "GET", "/me", headers={"X-Request-Id": request_id})
        assert response.headers["X-Request-Id"] != request_id
    for if_match in ('"abc"', "W/", '"0"', '"-1"', '"99999999999"', "*", '"1", "2"', "é"):
        try:
            response = probe.send(
                "headers", "PATCH", f"/tasks/{rows.task}", json={"title": "x"},
                headers={"If-Match": if_match},
            )  # fmt: skip
        except (httpx.LocalProtocolError, UnicodeEncodeError):
            CASES["headers"] += 1
            continue
        error_of(response, 422, "VALIDATION_FAILED")
    for authorization in ("Bearer", "Bearer ", "bearer x.y.z", "Token abc", "Bearer " + "a" * 8000,
                          "Bearer a.b", "Bearer ...", "Bearer \u00e9"):  # fmt: skip
        try:
            response = probe.client("anon").get("/me", headers={"Authorization": authorization})
        except (httpx.LocalProtocolError, UnicodeEncodeError):
            CASES["headers"] += 1
            continue
        CASES["headers"] += 1
        assert_clean(response, probe.secrets)
        error_of(response, 401, "UNAUTHENTICATED")


# ---- the local Auth and Storage behind members and attachments -----------------------------


def test_invites_and_signed_urls_reach_the_local_auth_and_storage(
    probe: Probe, rows: Targets, database_url: str
) -> None:
    """Nothing is faked: an invite makes a real user in `auth.users` (through the local Auth
    and its Before User Created hook), and a download URL the local Storage signed gives the
    attachment's bytes. Hostile addresses the function lets through are the Auth's to refuse,
    with our envelope around its answer and no user made."""
    email = f"invited-{uuid.uuid4().hex[:10]}@example.com"
    body = {"workspace_id": rows.workspace, "email": email, "role": "viewer"}
    invited = probe.send("local services", "POST", "/members", json=body)
    assert invited.status_code == 201 and invited.json()["data"]["invited"] is True, invited.text
    with psycopg.connect(database_url, autocommit=True) as conn:
        made = conn.execute(
            "select invited_at is not null from auth.users where email = %s", (email,)
        ).fetchall()
        assert made == [(True,)]
        for hostile in ("a..b@example.com", ".a@example.com", "a@-example.com",
                        "a@example..com", "a" * 65 + "@example.com"):  # fmt: skip
            answer = probe.send(
                "local services", "POST", "/members", json={**body, "email": hostile}
            )
            assert answer.status_code in (201, 422), (hostile, answer.text)
            users = conn.execute(
                "select count(*) from auth.users where email = %s", (hostile.lower(),)
            ).fetchone()
            assert users == ((1,) if answer.status_code == 201 else (0,)), hostile
    got = probe.send("local services", "GET", f"/attachments/{rows.attachment}")
    assert got.status_code == 200, got.text
    url = got.json()["data"]["download"]["url"]
    assert url.startswith(f"{probe.served.auth.url}/storage/v1/object/sign/attachments/")
    assert httpx.get(url, timeout=30).content == b"abc"


# ---- the counts -----------------------------------------------------------------------------


def test_zz_print_the_counts(capsys: pytest.CaptureFixture[str]) -> None:
    """How many hand-written cases each category tried (for the note)."""
    lines = [f"  {category}: {n}" for category, n in sorted(CASES.items())]
    lines.append(f"  total: {sum(CASES.values())}")
    with capsys.disabled():
        print("\nhostile input cases per category:\n" + "\n".join(lines))
