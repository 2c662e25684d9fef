"""Identity attacks against real routes of every kind, and proof that the database never saw
the request as the claimed identity.

test_pipeline checks the verifier on `/me`; here every forged or unfit token is sent to reads
and writes of the task tracker (the seed owner's rows are the prize), and each refusal is
checked three ways:

1. the answer: 401 UNAUTHENTICATED with `WWW-Authenticate` (or 403 MFA_REQUIRED, or 404 for a
   removed member), in the envelope;
2. no database work: the pipeline opens the caller's transaction lazily, on the first query,
   and `Server-Timing` reports `db;dur=` whenever one ran; a refused request has none. Its
   one log line carries no `user` (claims are only set once verified);
3. no trace in the data: a forged write aimed at a real task leaves the task at its version
   and writes no `task_events` row (the audit trigger records every change with
   `auth.uid()`), and a forged workspace delete leaves the workspace.

Tokens that are validly signed but carry claims no Supabase project issues (a role such as
`postgres`, a subject that is not a user id) are refused too, or, on public routes, run as
`anon`.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import io
import json
import sys
import time
import uuid
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import jwt
import psycopg
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from fnkit.devenv import DEV_ANON_KEY, DEV_JWT_SECRET, DEV_PUBLISHABLE_KEY, DEV_SECRET_KEY
from fnkit.tokens import claims
from shared import logs
from tests.fixtures.server import ACME, ACME_PROJECTS, SEED_USERS, Served, as_user

OWNER = SEED_USERS["owner"]
OUTSIDER = SEED_USERS["outsider"]
CASES: Counter[str] = Counter()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segments(token: str) -> list[str]:
    return token.split(".")


def _json_segment(segment: str) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    )
    return value


def forge(header: dict[str, Any], payload: dict[str, Any], key: bytes | None) -> str:
    """A JWS with any header, HMAC-SHA256 signed with `key` (or unsigned)."""
    head = _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(payload).encode())
    signature = _b64(hmac.new(key, head.encode(), hashlib.sha256).digest()) if key else ""
    return head + "." + signature


def tamper(token: str, **changes: Any) -> str:
    """The same token with payload claims changed and the original signature kept."""
    head, payload, signature = _segments(token)
    claims_ = {**_json_segment(payload), **changes}
    return f"{head}.{_b64(json.dumps(claims_).encode())}.{signature}"


def retarget_header(token: str, **changes: Any) -> str:
    head, payload, signature = _segments(token)
    header = {**_json_segment(head), **changes}
    return f"{_b64(json.dumps(header).encode())}.{payload}.{signature}"


# ---- routes an attacker wants, and how to tell they were not reached -----------------------


def _routes(ws: str, project: str, task: str) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        ("GET", "/me", {}),
        ("GET", "/workspaces", {}),
        ("GET", f"/workspaces/{ws}", {}),
        ("GET", f"/projects?workspace_id={ws}", {}),
        ("GET", f"/tasks?project_id={project}", {}),
        ("GET", f"/tasks/{task}", {}),
        ("GET", f"/comments?task_id={task}", {}),
        ("GET", f"/attachments?task_id={task}", {}),
        ("GET", f"/members?workspace_id={ws}", {}),
        ("GET", f"/stats?workspace_id={ws}", {}),
        ("PATCH", f"/tasks/{task}", {"json": {"title": "pwned", "version": 1}}),
        ("DELETE", f"/tasks/{task}", {}),
        ("POST", "/comments", {"json": {"task_id": task, "body": "pwned"}}),
        ("POST", "/projects", {"json": {"workspace_id": ws, "name": "pwned"}}),
        ("PATCH", f"/workspaces/{ws}", {"json": {"name": "pwned"}}),
        ("DELETE", f"/workspaces/{ws}", {}),
        ("GET", "/echo/service", {}),
    ]


@contextlib.contextmanager
def captured_logs() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    logs.set_stream(stream)
    try:
        yield stream
    finally:
        logs.set_stream(sys.stdout)


def _log_line(stream: io.StringIO, request_id: str) -> dict[str, Any]:
    lines = [json.loads(line) for line in stream.getvalue().splitlines() if request_id in line]
    request_lines = [line for line in lines if "status" in line]
    assert len(request_lines) == 1, lines
    return request_lines[0]


def assert_refused_before_the_database(
    response: httpx.Response,
    stream: io.StringIO,
    status: int = 401,
    code: str = "UNAUTHENTICATED",
    verified_as: str | None = None,
) -> None:
    """Refused with `status`/`code`, and no transaction ran. The log line names a user only
    when the token itself was good (`verified_as`) and the route's level refused it."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False and body["error"]["code"] == code, body
    assert body["meta"]["request_id"] == response.headers["X-Request-Id"]
    if status == 401:
        assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    timing = response.headers["Server-Timing"]
    assert "db;dur=" not in timing, f"a transaction ran: {timing}"
    line = _log_line(stream, response.headers["X-Request-Id"])
    assert line.get("user") == verified_as and line["error"] == code, line


@pytest.fixture
def arena(database_url: str) -> Iterator[dict[str, str]]:
    """A workspace of the seed owner with a project and a task: what the attacks aim at."""
    ws, project, task = (str(uuid.uuid4()) for _ in range(3))
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "insert into public.workspaces (id, name, created_by) values (%s, 'Arena', %s)",
            (ws, OWNER),
        )
        for who in ("admin", "member", "viewer"):
            conn.execute(
                "insert into public.workspace_members (workspace_id, user_id, role)"
                " values (%s, %s, %s)",
                (ws, SEED_USERS[who], who),
            )
        conn.execute(
            "insert into public.projects (id, workspace_id, name, created_by) values (%s, %s, 'P', %s)",
            (project, ws, OWNER),
        )
        conn.execute(
            "insert into public.tasks (id, project_id, title, created_by) values (%s, %s, 'T', %s)",
            (task, project, OWNER),
        )
    yield {"ws": ws, "project": project, "task": task}
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("delete from public.workspaces where id = %s", (ws,))


def _untouched(database_url: str, arena: dict[str, str]) -> None:
    """No write of the attack landed: the task and workspace are as made, no audit row."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        task = conn.execute(
            "select title, version from public.tasks where id = %s", (arena["task"],)
        ).fetchone()
        assert task == ("T", 1), task
        name = conn.execute(
            "select name from public.workspaces where id = %s", (arena["ws"],)
        ).fetchone()
        assert name == ("Arena",)
        events = conn.execute(
            "select count(*) from public.task_events where task_id = %s and action <> 'insert'",
            (arena["task"],),
        ).fetchone()
        assert events == (0,)
        others = conn.execute(
            "select count(*) from public.projects where workspace_id = %s", (arena["ws"],)
        ).fetchone()
        assert others == (1,)
        comments = conn.execute(
            "select count(*) from public.task_comments where task_id = %s", (arena["task"],)
        ).fetchone()
        assert comments == (0,)


def _attack(
    served: Served, arena: dict[str, str], token: str, stream: io.StringIO, label: str
) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    with served.client(**headers) as client:
        for method, url, kwargs in _routes(arena["ws"], arena["project"], arena["task"]):
            request_id = f"attack-{uuid.uuid4().hex}"
            response = client.request(method, url, headers={"X-Request-Id": request_id}, **kwargs)
            CASES[label] += 1
            assert_refused_before_the_database(response, stream)


# ---- the forgeries --------------------------------------------------------------------------


def _public_key_forms(served: Served) -> dict[str, bytes]:
    public = served.primary.private.public_key()
    return {
        "pem": public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        "der": public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        "jwk": json.dumps(served.primary.jwk()).encode(),
        "point": public.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        ),
    }


def _forgeries(served: Served) -> Iterator[tuple[str, str]]:
    """(label, token): each claims to be the seed owner (or the service role)."""
    victim = claims(OWNER, issuer=served.issuer, aal="aal2", email="owner@example.com")
    kid = served.primary.kid
    for alg in ("none", "None", "NONE", "nOnE"):
        yield f"alg {alg}", forge({"alg": alg, "typ": "JWT"}, victim, None)
        yield f"alg {alg} with a signature", forge({"alg": alg}, victim, b"x")[:-2] + "AA"
    for form, key in _public_key_forms(served).items():
        yield (
            f"HS256 with the public key ({form})",
            forge({"alg": "HS256", "kid": kid}, victim, key),
        )
        yield f"HS256 with the public key ({form}, no kid)", forge({"alg": "HS256"}, victim, key)
    for alg in ("HS384", "HS512"):
        with warnings.catch_warnings():  # PyJWT warns the secret is short for HS512: true
            warnings.simplefilter("ignore")
            token = jwt.encode(victim, DEV_JWT_SECRET, algorithm=alg)
        yield f"{alg} with the project secret", token
    stranger = ec.generate_private_key(ec.SECP256R1())
    yield "unknown kid", jwt.encode(victim, stranger, algorithm="ES256", headers={"kid": "nope"})
    yield (
        "known kid, other key",
        jwt.encode(victim, stranger, algorithm="ES256", headers={"kid": kid}),
    )
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    yield (
        "RS256 under the ES256 kid",
        jwt.encode(victim, rsa_key, algorithm="RS256", headers={"kid": kid}),
    )
    yield "PS256", jwt.encode(victim, rsa_key, algorithm="PS256", headers={"kid": kid})
    yield "no kid", jwt.encode(victim, stranger, algorithm="ES256")
    yield "kid not a string", forge({"alg": "ES256", "kid": 1}, victim, None) + "AAAA"
    yield "kid a list", forge({"alg": "ES256", "kid": [kid]}, victim, None) + "AAAA"
    now = int(time.time())
    sign = lambda payload: jwt.encode(payload, DEV_JWT_SECRET, algorithm="HS256")  # noqa: E731
    yield "expired", sign({**victim, "exp": now - 60, "iat": now - 3660})
    yield "not yet valid (nbf)", sign({**victim, "nbf": now + 120})
    yield "issued in the future (iat)", sign({**victim, "iat": now + 3600, "exp": now + 7200})
    for aud in ("anon", "service_role", "", ["other"], None):
        payload = (
            {**victim, "aud": aud}
            if aud is not None
            else {k: v for k, v in victim.items() if k != "aud"}
        )
        yield f"aud {aud!r}", sign(payload)
    for iss in ("https://evil.example/auth/v1", served.issuer + "/", served.issuer[:-1], None):
        payload = {**victim, "iss": iss} if iss else {k: v for k, v in victim.items() if k != "iss"}
        yield f"iss {iss!r}", sign(payload)
    for missing in ("exp", "sub", "role"):
        yield f"no {missing}", sign({k: v for k, v in victim.items() if k != missing})
    service = {**victim, "role": "service_role"}
    yield "service_role, wrong key", jwt.encode(service, "y" * 40, algorithm="HS256")
    yield (
        "service_role, ES256 other key",
        jwt.encode(service, stranger, algorithm="ES256", headers={"kid": kid}),
    )
    # Tampered payloads of the attacker's own valid tokens, signature kept.
    mine_hs = served.token(OUTSIDER)
    mine_es = served.es256(OUTSIDER)
    for name, mine in (("HS256", mine_hs), ("ES256", mine_es)):
        yield f"{name} sub swapped", tamper(mine, sub=OWNER)
        yield f"{name} role raised", tamper(mine, role="service_role")
        yield f"{name} aal raised", tamper(mine, aal="aal2")
        yield f"{name} exp extended", tamper(mine, exp=now + 10**8)
        yield f"{name} alg swapped", retarget_header(mine, alg="none")
    yield "HS256 header on an ES256 token", retarget_header(mine_es, alg="HS256")
    yield "signature stripped", ".".join(_segments(mine_hs)[:2]) + "."
    yield "two dots only", ".".join(_segments(mine_hs)[:2])
    yield "huge token", mine_hs + "A" * 16000
    yield "anon key as a user", DEV_ANON_KEY


def test_forged_tokens_are_refused_before_the_database(
    served: Served, arena: dict[str, str], database_url: str
) -> None:
    forgeries = list(_forgeries(served))
    assert len(forgeries) >= 50
    with captured_logs() as stream:
        for label, token in forgeries:
            if label == "anon key as a user":
                continue  # the anon key is a valid anonymous credential: tested below
            _attack(served, arena, token, stream, "forged tokens")
    _untouched(database_url, arena)


def test_the_anon_key_is_anonymous_and_never_reaches_user_rows(
    served: Served, arena: dict[str, str], database_url: str
) -> None:
    """The project's anon key as a bearer token is a credential, for the anon role: every
    user route refuses it before the database."""
    with captured_logs(), served.client(Authorization=f"Bearer {DEV_ANON_KEY}") as client:
        for method, url, kwargs in _routes(arena["ws"], arena["project"], arena["task"]):
            response = client.request(method, url, **kwargs)
            CASES["forged tokens"] += 1
            assert response.status_code == 401, (url, response.text)
            assert "db;dur=" not in response.headers["Server-Timing"]
    _untouched(database_url, arena)


# ---- project API keys: in the wrong place, of the wrong kind, or not quite the project's -----


def _key_misuses(served: Served) -> Iterator[tuple[str, dict[str, str | bytes]]]:
    """(label, headers): the session's publishable and secret keys (both kinds of keys are
    configured) misused to reach the owner's rows or the service role."""
    owner = served.es256(OWNER)
    last = DEV_SECRET_KEY[-1]
    near = DEV_SECRET_KEY[:-1] + ("A" if last != "A" else "B")
    yield "secret key as the bearer", {"Authorization": f"Bearer {DEV_SECRET_KEY}"}
    yield "publishable key as the bearer", {"Authorization": f"Bearer {DEV_PUBLISHABLE_KEY}"}
    yield (
        "secret key as the bearer beside the publishable key",
        {"apikey": DEV_PUBLISHABLE_KEY, "Authorization": f"Bearer {DEV_SECRET_KEY}"},
    )
    yield (
        "the owner's token beside a near-miss secret key",
        {"apikey": near, "Authorization": f"Bearer {owner}"},
    )
    yield "a near-miss secret key", {"apikey": near, "Authorization": f"Bearer {near}"}
    yield "the secret key's prefix alone", {"apikey": "sb_secret_"}
    yield "the secret key truncated", {"apikey": DEV_SECRET_KEY[:-4]}
    yield "the secret key padded", {"apikey": DEV_SECRET_KEY + "x"}
    yield (
        "the secret key with a homoglyph",
        {"apikey": DEV_SECRET_KEY.replace("N", "\u039d", 1).encode()},
    )
    yield "the secret key's case changed", {"apikey": DEV_SECRET_KEY.swapcase()}
    yield (
        "the legacy anon key as apikey, secret as bearer",
        {
            "apikey": DEV_ANON_KEY,
            "Authorization": f"Bearer {DEV_SECRET_KEY}",
        },
    )


def test_misused_api_keys_are_refused_before_the_database(
    served: Served, arena: dict[str, str], database_url: str
) -> None:
    with captured_logs() as stream, served.client() as client:
        for label, headers in _key_misuses(served):
            for method, url, kwargs in _routes(arena["ws"], arena["project"], arena["task"]):
                request_id = f"keys-{uuid.uuid4().hex}"
                response = client.request(
                    method, url, headers={**headers, "X-Request-Id": request_id}, **kwargs
                )
                CASES["api keys"] += 1
                assert_refused_before_the_database(response, stream)
                assert DEV_SECRET_KEY not in response.text, label
    _untouched(database_url, arena)


def test_the_keys_in_their_place_are_roles_not_users(
    served: Served, arena: dict[str, str], database_url: str
) -> None:
    """The publishable key is anonymous and the secret key the service role: neither is a
    user, so every user route refuses them before the database; only the service route
    takes the secret key (as supabase-py sends it, in apikey and as the bearer)."""
    keys = {
        DEV_PUBLISHABLE_KEY: {"apikey": DEV_PUBLISHABLE_KEY},
        DEV_SECRET_KEY: {"apikey": DEV_SECRET_KEY, "Authorization": f"Bearer {DEV_SECRET_KEY}"},
    }
    with captured_logs() as stream, served.client() as client:
        for key, headers in keys.items():
            for method, url, kwargs in _routes(arena["ws"], arena["project"], arena["task"]):
                response = client.request(method, url, headers=headers, **kwargs)
                CASES["api keys"] += 1
                if url == "/echo/service" and key == DEV_SECRET_KEY:
                    assert response.status_code == 200, response.text
                    assert response.json()["data"] == {"role": "service_role"}
                else:
                    assert_refused_before_the_database(response, stream)
    _untouched(database_url, arena)


def _verifiers() -> list[Any]:
    """The token verifier of each served function (one per function, as in production)."""
    return [
        module.app.verifier
        for name, module in sys.modules.items()
        if name.startswith("fnkit_functions_") and hasattr(module, "app")
    ]


def test_a_key_removed_from_the_jwks_stops_working_on_every_route(
    served: Served, arena: dict[str, str]
) -> None:
    """Each function (each instance, in production) keeps its own JWKS and token cache. A key
    revoked in Supabase must stop working in all of them: on an unknown kid (a refetch),
    and at the latest when their keys are JWKS_MAX_AGE_S old, even for a token they
    verified and cached while the key was good."""
    time.sleep(1.1)  # JWKS_MIN_REFRESH_S is 1 in tests
    key = served.auth.add_key(f"short-lived-{uuid.uuid4().hex[:6]}")
    token = served.es256(OWNER, key=key)
    with served.client(Authorization=f"Bearer {token}") as client:
        for method, url, kwargs in _routes(arena["ws"], arena["project"], arena["task"])[:10]:
            assert client.request(method, url, **kwargs).status_code == 200, url
    served.auth.keys.remove(key)
    # Time passes: every function's keys become JWKS_MAX_AGE_S old (and may be refetched).
    for verifier in _verifiers():
        verifier.jwks._fetched_at -= verifier.jwks.max_age_s
        verifier.jwks._attempted_at -= verifier.jwks.min_refresh_s
    with captured_logs() as stream:
        _attack(served, arena, token, stream, "removed key")


def test_jwks_unreachable_keeps_known_keys_working(served: Served, fake_auth: Any) -> None:
    """A stale JWKS whose refetch fails (Supabase Auth down) does not lock everyone out."""
    token = served.es256(OWNER)
    with served.client(Authorization=f"Bearer {token}") as client:
        assert client.get("/me").status_code == 200
        verifiers = _verifiers()
        real_url = {id(v): v.jwks.url for v in verifiers}
        try:
            for verifier in verifiers:
                verifier.jwks.url = "http://127.0.0.1:9/unreachable"
                verifier.jwks._fetched_at -= verifier.jwks.max_age_s
                verifier.jwks._attempted_at -= verifier.jwks.min_refresh_s
            response = client.get("/me")
            CASES["removed key"] += 1
            assert response.status_code == 200, response.text
        finally:
            for verifier in verifiers:
                verifier.jwks.url = real_url[id(verifier)]


def test_validly_signed_tokens_with_claims_we_never_issue(
    served: Served, arena: dict[str, str], database_url: str
) -> None:
    """Signed with the project's secret (as if Auth had a bug): a database role name as the
    role, a subject that is not a user id. User routes refuse them; on a public route they
    run as anon, never as the role they name."""
    weird: dict[str, dict[str, Any]] = {
        "role postgres": {"role": "postgres"},
        "role supabase_admin": {"role": "supabase_admin"},
        "role authenticator": {"role": "authenticator"},
        "role anon": {"role": "anon"},
        "role with sql": {"role": "authenticated; set role postgres"},
    }
    with captured_logs() as stream:
        for label, change in weird.items():
            token = jwt.encode(
                {**claims(OWNER, issuer=served.issuer), **change}, DEV_JWT_SECRET, algorithm="HS256"
            )
            # The token is good, its role is not: the log names the user, no query ran.
            _attack_user_routes_only(served, arena, token, stream, label, verified_as=OWNER)
            with served.client(Authorization=f"Bearer {token}") as client:
                reads = client.get("/echo/reads")
            CASES["odd but signed claims"] += 1
            assert reads.status_code == 200, reads.text
            assert reads.json()["data"]["first"] == "anon", label
    _untouched(database_url, arena)


def _attack_user_routes_only(
    served: Served,
    arena: dict[str, str],
    token: str,
    stream: io.StringIO,
    label: str,
    verified_as: str | None = None,
) -> None:
    with served.client(Authorization=f"Bearer {token}") as client:
        for method, url, kwargs in _routes(arena["ws"], arena["project"], arena["task"]):
            response = client.request(method, url, **kwargs)
            CASES["odd but signed claims"] += 1
            assert_refused_before_the_database(response, stream, verified_as=verified_as)


@pytest.mark.parametrize(
    "sub", ["not-a-uuid", "", "a\u0000b", "11111111-1111-1111-1111-11111111111"]
)
def test_a_signed_token_whose_subject_is_not_a_user_id_is_refused(
    served: Served, arena: dict[str, str], sub: str
) -> None:
    """Supabase subjects are user ids (UUIDs). Anything else is refused as a token problem
    (401), not passed to Postgres to fail as a cast error or a NUL it cannot store."""
    token = jwt.encode(claims(sub, issuer=served.issuer), DEV_JWT_SECRET, algorithm="HS256")
    with captured_logs() as stream:
        _attack_user_routes_only(served, arena, token, stream, "odd but signed claims")


# ---- valid tokens that are not enough -------------------------------------------------------


def test_a_removed_member_keeps_a_valid_token_and_sees_nothing(
    served: Served, database_url: str, arena: dict[str, str]
) -> None:
    user = str(uuid.uuid4())
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "insert into auth.users (id, email, aud, role) values (%s, %s, 'authenticated',"
            " 'authenticated')",
            (user, f"leaver-{user[:8]}@example.com"),
        )
        conn.execute(
            "insert into public.workspace_members (workspace_id, user_id, role) values (%s, %s, 'member')",
            (arena["ws"], user),
        )
        comment = conn.execute(
            "insert into public.task_comments (task_id, body, author_id) values (%s, 'mine', %s)"
            " returning id::text",
            (arena["task"], user),
        ).fetchone()
    assert comment is not None
    ws, project, task = arena["ws"], arena["project"], arena["task"]
    reads = [
        f"/workspaces/{ws}",
        f"/projects?workspace_id={ws}",
        f"/projects/{project}",
        f"/tasks?project_id={project}",
        f"/tasks?workspace_id={ws}",
        f"/tasks/{task}",
        f"/comments?task_id={task}",
        f"/attachments?task_id={task}",
        f"/members?workspace_id={ws}",
        f"/stats?workspace_id={ws}",
    ]
    writes: list[tuple[str, str, dict[str, Any]]] = [
        ("PATCH", f"/tasks/{task}", {"json": {"title": "after", "version": 1}}),
        ("DELETE", f"/tasks/{task}", {}),
        ("POST", "/comments", {"json": {"task_id": task, "body": "after"}}),
        ("PATCH", f"/comments/{comment[0]}", {"json": {"body": "after"}}),
        ("DELETE", f"/comments/{comment[0]}", {}),
        ("POST", "/projects", {"json": {"workspace_id": ws, "name": "after"}}),
        ("PATCH", f"/projects/{project}", {"json": {"name": "after"}}),
        ("PATCH", f"/workspaces/{ws}", {"json": {"name": "after"}}),
        ("POST", "/tasks", {"json": {"project_id": project, "title": "after"}}),
    ]
    with as_user(served, user) as client:
        for url in reads:  # a member sees it all (the stats answer is now cached)
            assert client.get(url).status_code == 200, (url, client.get(url).text)
    with as_user(served, "owner", aal="aal2") as owner:
        removed = owner.delete(f"/members/{ws}/{user}")
    assert removed.status_code == 204, removed.text
    with as_user(served, user) as client:  # the same kind of token, still valid for an hour
        for url in reads:
            response = client.get(url)
            CASES["removed member"] += 1
            assert response.status_code == 404, (url, response.text)
            assert response.json()["error"]["code"] == "NOT_FOUND"
        for method, url, kwargs in writes:
            response = client.request(method, url, **kwargs)
            CASES["removed member"] += 1
            # A body naming a hidden project is invalid input (tasks: 422 at project_id).
            expected = 422 if url == "/tasks" else 404
            assert response.status_code == expected, (method, url, response.text)
        workspaces = client.get("/workspaces").json()["data"]
        assert ws not in {w["id"] for w in workspaces}
    with psycopg.connect(database_url, autocommit=True) as conn:
        task_row = conn.execute(
            "select title, version from public.tasks where id = %s", (task,)
        ).fetchone()
        assert task_row == ("T", 1)
        bodies = conn.execute(
            "select body from public.task_comments where task_id = %s", (task,)
        ).fetchall()
        assert bodies == [("mine",)]


def test_aal1_tokens_on_aal2_actions(
    served: Served, arena: dict[str, str], database_url: str
) -> None:
    ws = arena["ws"]
    with captured_logs() as stream, as_user(served, "owner") as aal1:
        # A route declared user+aal2: refused before the database.
        response = aal1.get("/echo/aal2", headers={"X-Request-Id": f"aal-{uuid.uuid4().hex}"})
        CASES["aal1 on aal2"] += 1
        assert_refused_before_the_database(response, stream, 403, "MFA_REQUIRED", OWNER)
        # Actions that need aal2 only for some rows: decided in the handler, nothing changes.
        for method, url, kwargs in [
            ("DELETE", f"/workspaces/{ws}", {}),
            ("PATCH", f"/members/{ws}/{SEED_USERS['admin']}", {"json": {"role": "owner"}}),
            (
                "POST",
                "/members",
                {"json": {"workspace_id": ws, "email": "viewer@example.com", "role": "owner"}},
            ),
            ("DELETE", f"/members/{ws}/{OWNER}", {}),
        ]:
            response = aal1.request(method, url, **kwargs)
            CASES["aal1 on aal2"] += 1
            assert response.status_code == 403, (method, url, response.text)
            assert response.json()["error"]["code"] == "MFA_REQUIRED", response.text
    # A forged aal claim does not help (the tampered-payload cases), and the data is as it was.
    with psycopg.connect(database_url, autocommit=True) as conn:
        assert conn.execute("select 1 from public.workspaces where id = %s", (ws,)).fetchone()
        owners = conn.execute(
            "select user_id::text from public.workspace_members where workspace_id = %s"
            " and role = 'owner'",
            (ws,),
        ).fetchall()
        assert owners == [(OWNER,)]
    with as_user(served, "owner", aal="aal2") as aal2:
        assert aal2.get("/echo/aal2").status_code == 200


def test_tokens_in_the_wrong_place_are_ignored(served: Served, arena: dict[str, str]) -> None:
    token = served.token(OWNER)
    attempts: list[Callable[[httpx.Client], httpx.Response]] = [
        lambda c: c.get(f"/workspaces/{arena['ws']}", headers={"apikey": token}),
        lambda c: c.get(f"/workspaces/{arena['ws']}", params={"access_token": token}),
        lambda c: c.get(
            f"/workspaces/{arena['ws']}", headers={"Cookie": f"sb-access-token={token}"}
        ),
        lambda c: c.get(
            f"/workspaces/{arena['ws']}", headers={"X-Authorization": f"Bearer {token}"}
        ),
        lambda c: c.get(f"/workspaces/{arena['ws']}", headers={"Authorization": token}),
        lambda c: c.get(f"/workspaces/{arena['ws']}", headers={"Authorization": f"Basic {token}"}),
    ]
    with captured_logs() as stream, served.client() as client:
        for attempt in attempts:
            response = attempt(client)
            CASES["token placement"] += 1
            assert response.status_code == 401, response.text
            assert "db;dur=" not in response.headers["Server-Timing"]
            assert "user" not in _log_line(stream, response.headers["X-Request-Id"])


def test_a_spoofed_client_address_does_not_escape_the_rate_limit(served: Served) -> None:
    """Anonymous callers are limited by client address. With no trusted proxy configured
    (TRUSTED_PROXY_HOPS=0), X-Forwarded-For and friends are the caller's own words: ignored."""
    statuses = []
    with served.client() as client:
        for n in range(70):  # /health: the default policy, 60 a minute
            spoofed = f"10.{n}.{n}.{n}"
            response = client.get(
                "/health",
                headers={
                    "X-Forwarded-For": spoofed,
                    "X-Real-IP": spoofed,
                    "Forwarded": f"for={spoofed}",
                },
            )
            statuses.append(response.status_code)
            CASES["spoofed address"] += 1
    # (A sliding window may refuse one or two early when a window boundary passes mid-test.)
    assert set(statuses) == {200, 429} and statuses.count(200) <= 60, statuses
    assert statuses[-1] == 429 and statuses.count(200) >= 55, statuses


def test_accepted_requests_do_show_their_database_work(served: Served) -> None:
    """The proof above only means something if a request that did reach the database says
    so: `db;dur=` in Server-Timing and the verified user in the log line."""
    with captured_logs() as stream, as_user(served, "owner") as client:
        response = client.get(f"/projects?workspace_id={ACME}")
    assert response.status_code == 200
    assert "db;dur=" in response.headers["Server-Timing"]
    assert _log_line(stream, response.headers["X-Request-Id"])["user"] == OWNER
    assert ACME_PROJECTS[0] in {p["id"] for p in response.json()["data"]}


def test_zz_print_the_counts(capsys: pytest.CaptureFixture[str]) -> None:
    lines = [f"  {category}: {n}" for category, n in sorted(CASES.items())]
    lines.append(f"  total: {sum(CASES.values())}")
    with capsys.disabled():
        print("\nidentity attack requests per category:\n" + "\n".join(lines))
