"""Hostile input against the local Auth (`/auth/v1`), over real HTTP on the session's services.

What a careless or malicious client sends to GoTrue's routes: wrong, expired and forged tokens
(another key under the right `kid`, an unknown `kid`, `alg: none`, HS256 signed with the public
key, a tampered payload, junk) on every authenticated route; wrong and missing API keys; a
refresh token replayed after rotation; repeated failed sign-ins. Bodies, fields, content types
and methods: tests/test_hostile_local_auth_bodies.py. Every answer must be GoTrue's error (`{"code", "error_code", "msg"}`, or the API
gateway's `{"message", "hint"}` for a key it refuses), a 4xx, never a 5xx or a leak, and the
database and the data directory must be as they were (`Watch`).

The helpers here (`Watch`, `assert_no_leak`, `gotrue_refusal`, `CASES`, the fixtures) are
shared with tests/test_hostile_local_*.py; the last test of test_hostile_local_storage.py
prints the counts of all three.
"""

from __future__ import annotations

import base64
import contextlib
import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import psycopg
import pytest
from cryptography.hazmat.primitives import serialization
from psycopg import sql

from fnkit.devenv import DEV_ANON_KEY, DEV_JWT_SECRET, DEV_SECRET_KEY, DEV_SERVICE_ROLE_KEY
from fnkit.local.keys import SigningKey
from tests.fixtures.server import SEED_USERS, FakeAuth, Served
from tests.test_hostile_fuzz import LEAKS, secrets_of
from tests.test_local_auth_support import PASSWORD, claims_of, second_auth, unique_email

pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")

CASES: Counter[str] = Counter()
ALL_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
# Tables a refused request must leave as they were (checksums of every row).
WATCHED = (
    ("auth", "users"),
    ("auth", "identities"),
    ("auth", "sessions"),
    ("auth", "refresh_tokens"),
    ("auth", "mfa_factors"),
    ("auth", "mfa_challenges"),
    ("auth", "one_time_tokens"),
    ("storage", "buckets"),
    ("storage", "objects"),
    ("public", "workspace_members"),
)


# ---- what every answer must be, and what must not change ------------------------------------


def assert_no_leak(response: httpx.Response, secrets: list[str]) -> None:
    """Never a 5xx; no traceback, SQL, driver text, file path or secret in the body."""
    text = response.text
    assert response.status_code < 500, f"{response.status_code}: {text[:500]}"
    leak = LEAKS.search(text)
    assert leak is None, f"the body leaks {leak.group(0)!r}: {text[:500]}"
    for secret in secrets:
        assert secret not in text, "a secret is in the body"


class Watch:
    """Checksums of the watched tables and the data directory's files, compared after a case."""

    def __init__(self, database_url: str, data_dir: Path) -> None:
        self.database_url = database_url
        self.data_dir = data_dir

    def tables(self) -> dict[str, str]:
        parts = [
            sql.SQL("select {}, coalesce(md5(string_agg(t::text, '|' order by t::text)), '')"
                    " from {}.{} t").format(sql.Literal(f"{schema}.{name}"),
                                            sql.Identifier(schema), sql.Identifier(name))
            for schema, name in WATCHED
        ]  # fmt: skip
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            return dict(conn.execute(sql.SQL(" union all ").join(parts)).fetchall())

    def files(self) -> dict[str, int]:
        return {
            str(p.relative_to(self.data_dir)): p.stat().st_size
            for p in self.data_dir.rglob("*")
            if p.is_file() and p.suffix != ".pem"
        }

    def state(self) -> tuple[dict[str, str], dict[str, int]]:
        return self.tables(), self.files()

    def same(self, before: tuple[dict[str, str], dict[str, int]], what: str = "") -> None:
        tables, files = before
        assert self.tables() == tables, f"a refused request wrote to the database: {what}"
        assert self.files() == files, f"a refused request wrote a file: {what}"

    @contextlib.contextmanager
    def unchanged(self, what: str = "") -> Iterator[None]:
        before = self.state()
        yield
        self.same(before, what)


@pytest.fixture
def watch(fake_auth: FakeAuth, database_url: str) -> Watch:
    assert fake_auth.config is not None
    return Watch(database_url, Path(fake_auth.config.data_dir))


@pytest.fixture
def secrets(function_env: dict[str, str], fake_auth: FakeAuth) -> list[str]:
    assert fake_auth.config is not None
    return [*secrets_of(function_env), DEV_SECRET_KEY, str(fake_auth.config.data_dir)]


def gotrue_refusal(
    response: httpx.Response, secrets: list[str], status: int | None = None, code: str = ""
) -> dict[str, Any]:
    """GoTrue's error for a client fault: `{"code": <status>, "error_code", "msg"}`, a 4xx."""
    assert_no_leak(response, secrets)
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    if status is not None:
        assert response.status_code == status, response.text[:300]
    body: dict[str, Any] = response.json()
    if set(body) == {"error", "error_description"}:  # GoTrue's OAuth answer, on /token only
        assert response.request.url.path.endswith("/token"), body
        assert status in (None, 400) and response.status_code == 400, body
        return {"code": 400, "error_code": body["error"], "msg": body["error_description"]}
    assert set(body) - {"weak_password"} == {"code", "error_code", "msg"}, body
    assert body["code"] == response.status_code and isinstance(body["msg"], str), body
    assert response.headers["Content-Type"].startswith("application/json")
    if code:
        assert body["error_code"] == code, body
    return body


def gateway_refusal(response: httpx.Response, message: str = "Invalid API key") -> None:
    """What Supabase's API gateway answers for a key it does not take (before any service)."""
    assert response.status_code == 401, response.text[:300]
    body = response.json()
    assert set(body) <= {"message", "hint"} and body["message"] == message, body


# ---- tokens an attacker can make ------------------------------------------------------------


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def forged_tokens(served: Served, claims: dict[str, Any]) -> dict[str, str]:
    """A valid token's claims made into every kind of token the services must refuse."""
    key = served.primary
    stranger = SigningKey.generate(key.kid)  # another key under the right kid
    real = jwt.encode(claims, key.private, "ES256", headers={"kid": key.kid})
    header, payload, signature = real.split(".")
    tampered = _b64({**claims, "role": "service_role", "sub": SEED_USERS["owner"]})
    public_pem = key.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    expired = {**claims, "exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200}
    return {
        "expired": jwt.encode(expired, key.private, "ES256", headers={"kid": key.kid}),
        "another key, same kid": jwt.encode(
            claims, stranger.private, "ES256", headers={"kid": key.kid}
        ),
        "unknown kid": jwt.encode(claims, stranger.private, "ES256", headers={"kid": "nope"}),
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{payload}.",
        "alg none, kid": f"{_b64({'alg': 'none', 'kid': key.kid})}.{payload}.",
        # PyJWT refuses a PEM as an HMAC secret, so the confusion token is made by hand.
        "HS256 with the public key": _hs256_by_hand(claims, public_pem),
        "HS256 with another secret": jwt.encode(claims, "x" * 40, "HS256"),
        "HS512 with the secret": jwt.encode(claims, DEV_JWT_SECRET, "HS512"),
        "tampered payload": f"{header}.{tampered}.{signature}",
        "signature cut": f"{header}.{payload}.",
        "signature of another token": f"{header}.{tampered}.{signature[::-1]}",
        "no exp": jwt.encode(
            {k: v for k, v in claims.items() if k != "exp"},
            key.private,
            "ES256",
            headers={"kid": key.kid},
        ),
        "junk": "not.a.jwt",
        "two parts": f"{header}.{payload}",
        "four parts": f"{real}.x",
        "empty parts": "..",
        "huge": "a" * 8000,
        "header not json": f"{base64.urlsafe_b64encode(b'{x').decode()}.{payload}.{signature}",
        "non-ascii": "é.é.é",
    }


def _hs256_by_hand(claims: dict[str, Any], secret: bytes) -> str:
    import hashlib
    import hmac

    signing = f"{_b64({'alg': 'HS256', 'typ': 'JWT'})}.{_b64(claims)}".encode()
    digest = hmac.new(secret, signing, hashlib.sha256).digest()
    return signing.decode() + "." + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


# ---- the Auth routes ------------------------------------------------------------------------

FACTOR = "00000000-0000-4000-8000-00000000f000"
USER_ROUTES = [
    ("GET", "/user", None),
    ("PUT", "/user", {"data": {"x": 1}}),
    ("POST", "/logout", None),
    ("GET", "/reauthenticate", None),
    ("POST", "/factors", {"factor_type": "totp", "friendly_name": "hostile"}),
    ("POST", f"/factors/{FACTOR}/challenge", {}),
    ("POST", f"/factors/{FACTOR}/verify", {"challenge_id": FACTOR, "code": "123456"}),
    ("DELETE", f"/factors/{FACTOR}", None),
]
ADMIN_ROUTES = [
    ("GET", "/admin/users", None),
    ("POST", "/admin/users", {"email": "hostile-admin@example.com", "password": PASSWORD}),
    ("GET", f"/admin/users/{SEED_USERS['viewer']}", None),
    ("PUT", f"/admin/users/{SEED_USERS['viewer']}", {"role": "service_role"}),
    ("DELETE", f"/admin/users/{SEED_USERS['viewer']}", None),
    ("GET", f"/admin/users/{SEED_USERS['viewer']}/factors", None),
    ("DELETE", f"/admin/users/{SEED_USERS['viewer']}/factors/{FACTOR}", None),
    ("POST", "/admin/generate_link", {"type": "magiclink", "email": "viewer@example.com"}),
    ("POST", "/invite", {"email": "hostile-invite@example.com"}),
]
PUBLIC_ROUTES = [
    ("GET", "/health"),
    ("GET", "/settings"),
    ("POST", "/signup"),
    ("POST", "/token"),
    ("POST", "/recover"),
    ("POST", "/otp"),
    ("POST", "/magiclink"),
    ("POST", "/resend"),
]


def fresh_address() -> dict[str, str]:
    """A client address of its own, so GoTrue's per-address limits never hide a refusal."""
    number = uuid.uuid4().int
    return {"X-Forwarded-For": f"10.{number % 256}.{number // 256 % 256}.{number // 65536 % 256}"}


def _encoded(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(name.encode(), value.encode()) for name, value in headers.items()]


def auth(fake_auth: FakeAuth, key: str = DEV_ANON_KEY, **headers: str) -> httpx.Client:
    """httpx at `/auth/v1` with an API key, answering in GoTrue's original error shape.

    From a client address of its own: GoTrue's limits are per address, and the session's
    other Auth tests share 127.0.0.1's; none of their budget is spent here."""
    return httpx.Client(
        base_url=f"{fake_auth.url}/auth/v1",
        headers={"apikey": key, **fresh_address(), **headers},
        timeout=30,
    )


def _signed_in(fake_auth: FakeAuth) -> dict[str, Any]:
    with auth(fake_auth) as http:
        answer = http.post("/signup", json={"email": unique_email("hostile"), "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    session: dict[str, Any] = answer.json()
    return session


@pytest.fixture
def session(served: Served, fake_auth: FakeAuth) -> dict[str, Any]:
    """A fresh user signed up and in (served: the key ring has its key, the hooks run)."""
    return _signed_in(fake_auth)


def test_forged_and_broken_tokens_on_every_authenticated_route(
    served: Served, fake_auth: FakeAuth, session: dict[str, Any], watch: Watch, secrets: list[str]
) -> None:
    user_tokens = forged_tokens(served, claims_of(session["access_token"]))
    admin_claims = {"role": "service_role", "iss": served.issuer, "exp": int(time.time()) + 600}
    admin_tokens = forged_tokens(served, admin_claims)
    with auth(fake_auth) as http, watch.unchanged("forged tokens"):
        for routes, tokens in ((USER_ROUTES, user_tokens), (ADMIN_ROUTES, admin_tokens)):
            for method, path, body in routes:
                missing = http.request(method, path, json=body, headers=fresh_address())
                CASES["auth: tokens"] += 1
                gotrue_refusal(missing, secrets, 401, "no_authorization")
                for name, token in tokens.items():
                    # Every spelling on the first route of each kind; the usual one elsewhere.
                    spellings = (f"Bearer {token}", f"bearer  {token}", token)
                    for authorization in (
                        spellings if path in ("/user", "/admin/users") else spellings[:1]
                    ):
                        answer = http.request(
                            method,
                            path,
                            json=body,
                            headers=[
                                (b"Authorization", authorization.encode()),
                                *_encoded(fresh_address()),
                            ],
                        )
                        CASES["auth: tokens"] += 1
                        refused = gotrue_refusal(answer, secrets)
                        assert answer.status_code in (401, 403), (name, path, refused)
                        if authorization.lower().startswith("bearer") and name != "huge":
                            assert refused["error_code"] in ("bad_jwt", "no_authorization"), (
                                name,
                                refused,
                            )


def test_real_tokens_of_the_wrong_kind_are_refused(
    served: Served, fake_auth: FakeAuth, session: dict[str, Any], watch: Watch, secrets: list[str]
) -> None:
    """A user's valid token on admin routes; the anon key as a user; a user that is gone; a
    subject that is no uuid; a logged-out session; a token of another issuer's secret."""
    claims = claims_of(session["access_token"])
    key = served.primary

    def es256(**changes: Any) -> str:
        return jwt.encode({**claims, **changes}, key.private, "ES256", headers={"kid": key.kid})

    cases: dict[str, tuple[str, list[tuple[str, str, Any]], int, str]] = {
        "a user on admin routes": (session["access_token"], ADMIN_ROUTES, 403, "not_admin"),
        "the anon key on admin routes": (DEV_ANON_KEY, ADMIN_ROUTES, 403, "not_admin"),
        "a user that does not exist": (
            es256(sub=str(uuid.uuid4())), USER_ROUTES, 403, "user_not_found"
        ),
        "a subject that is no uuid": (es256(sub="' or 1=1 --"), USER_ROUTES, 400, "bad_jwt"),
        "a session that does not exist": (
            es256(session_id=str(uuid.uuid4())), USER_ROUTES, 403, "session_not_found"
        ),
        "a session id that is no uuid": (es256(session_id="x'; --"), USER_ROUTES, 403, "bad_jwt"),
    }  # fmt: skip
    with auth(fake_auth) as http, watch.unchanged("tokens of the wrong kind"):
        for name, (token, routes, status, code) in cases.items():
            for method, path, body in routes:
                headers = {"Authorization": f"Bearer {token}", **fresh_address()}
                answer = http.request(method, path, json=body, headers=headers)
                CASES["auth: tokens"] += 1
                refused = gotrue_refusal(answer, secrets)
                if (method, path) != ("GET", "/admin/users") or status != 403:
                    assert (answer.status_code, refused["error_code"]) == (status, code), (
                        name,
                        method,
                        path,
                        refused,
                    )


def test_wrong_and_missing_api_keys_on_every_route(
    served: Served, fake_auth: FakeAuth, session: dict[str, Any], watch: Watch
) -> None:
    bearer = {"Authorization": f"Bearer {session['access_token']}"}
    keys = {
        "missing": None,
        "empty": "",
        "wrong": "not-a-key",
        "the anon key, one character off": DEV_ANON_KEY[:-1] + "x",
        "the service key signed again with another secret": jwt.encode(
            claims_of(DEV_SERVICE_ROLE_KEY), "y" * 40, "HS256"
        ),
        "a publishable key that is not ours": "sb_publishable_" + "a" * 30,
        "a secret key that is not ours": "sb_secret_" + "b" * 30,
        "a user's access token": session["access_token"],
    }
    routes = [(m, p) for m, p, _ in USER_ROUTES + ADMIN_ROUTES] + PUBLIC_ROUTES
    # Not /verify: the gateway lets it through without a key, as emailed links open it.
    with watch.unchanged("bad API keys"):
        for name, key in keys.items():
            headers = {} if key is None else {"apikey": key}
            with httpx.Client(base_url=f"{fake_auth.url}/auth/v1", timeout=30) as http:
                for method, path in routes:
                    answer = http.request(method, path, headers={**headers, **bearer})
                    CASES["auth: api keys"] += 1
                    if name == "a user's access token":  # a valid JWT, but no role key
                        gateway_refusal(answer)
                        continue
                    if key:
                        gateway_refusal(answer)
                    else:
                        gateway_refusal(answer, "No API key found in request")


def test_a_refresh_token_replayed_after_rotation_revokes_its_session(
    served: Served, fake_auth: FakeAuth, db_admin: Any, secrets: list[str]
) -> None:
    first = _signed_in(fake_auth)
    session_id = claims_of(first["access_token"])["session_id"]
    with auth(fake_auth) as http:
        second = http.post(
            "/token?grant_type=refresh_token", json={"refresh_token": first["refresh_token"]}
        ).json()
        third = http.post(
            "/token?grant_type=refresh_token", json={"refresh_token": second["refresh_token"]}
        ).json()
        db_admin.execute(  # the 10 s reuse interval passes
            "update auth.refresh_tokens set updated_at = updated_at - interval '11 seconds'"
            " where session_id = %s",
            (session_id,),
        )
        for stolen in (first["refresh_token"], second["refresh_token"]):
            replay = http.post("/token?grant_type=refresh_token", json={"refresh_token": stolen})
            CASES["auth: refresh replay"] += 1
            gotrue_refusal(replay, secrets, 400, "refresh_token_already_used")
        # The family's revocation is dated now: as in GoTrue (RevokeTokenFamily sets
        # updated_at), the newest token is swappable again for the 10 s reuse interval.
        db_admin.execute(
            "update auth.refresh_tokens set updated_at = updated_at - interval '11 seconds'"
            " where session_id = %s",
            (session_id,),
        )
        latest = http.post(
            "/token?grant_type=refresh_token", json={"refresh_token": third["refresh_token"]}
        )
        CASES["auth: refresh replay"] += 1
        gotrue_refusal(latest, secrets, 400, "refresh_token_already_used")
        for junk in ("", "x", "a" * 5000, "' or 1=1 --", "\u0000", first["access_token"]):
            answer = http.post("/token?grant_type=refresh_token", json={"refresh_token": junk})
            CASES["auth: refresh replay"] += 1
            if junk:
                gotrue_refusal(answer, secrets, 400)
            else:  # GoTrue's OAuth-style answer for a token request without its token
                assert_no_leak(answer, secrets)
                assert answer.json()["error"] == "invalid_request", answer.text
    live = db_admin.execute(
        "select count(*) from auth.refresh_tokens where session_id = %s and not revoked",
        (session_id,),
    ).fetchone()[0]
    assert live == 0  # the whole family


def test_repeated_failed_sign_ins_are_rate_limited(
    served: Served, fake_auth: FakeAuth, secrets: list[str]
) -> None:
    """GoTrue's `/token` bucket (here 5 at once, per client address): then 429
    `over_request_rate_limit` for wrong and right passwords alike, for every account."""
    assert fake_auth.config is not None
    limits = {"auth_rate_limit_token": "5/300"}
    address = {"X-Forwarded-For": f"198.51.100.{uuid.uuid4().int % 250}"}
    with (
        second_auth(fake_auth.config, extra=limits) as (url, _),
        httpx.Client(
            base_url=f"{url}/auth/v1", headers={"apikey": DEV_ANON_KEY, **address}, timeout=30
        ) as http,
    ):
        statuses = []
        for attempt in range(5):
            wrong = {"email": "owner@example.com", "password": f"guess-{attempt}"}
            answer = http.post("/token?grant_type=password", json=wrong)
            CASES["auth: rate limit"] += 1
            statuses.append(gotrue_refusal(answer, secrets)["error_code"])
        assert statuses == ["invalid_credentials"] * 5
        for email, password in (("owner@example.com", "guess"), ("nobody@example.com", "x"),
                                ("owner@example.com", "password123")):  # fmt: skip
            answer = http.post(
                "/token?grant_type=password", json={"email": email, "password": password}
            )
            CASES["auth: rate limit"] += 1
            gotrue_refusal(answer, secrets, 429, "over_request_rate_limit")
