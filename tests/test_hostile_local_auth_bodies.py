"""Hostile bodies, fields, content types and methods against the local Auth (`/auth/v1`).

Malformed, deeply nested, non-UTF-8 and oversized JSON on every body route; every field given
values of every kind (huge, NUL, look-alike addresses, over-long UTF-8 passwords, wrong
types) and unknown fields; wrong content types; every method on every path. Each refusal must
be GoTrue's error, a 4xx with no leak, and leave the database and data directory as they were
(the helpers and fixtures are tests/test_hostile_local.py's).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from fnkit.devenv import DEV_SERVICE_ROLE_KEY
from tests.fixtures.server import SEED_USERS, FakeAuth, Served
from tests.test_hostile_local import (
    ALL_METHODS,
    CASES,
    FACTOR,
    Watch,
    assert_no_leak,
    auth,
    fresh_address,
    gotrue_refusal,
    secrets,
    session,
    watch,
)
from tests.test_local_auth_support import PASSWORD, unique_email

__all__ = ["secrets", "session", "watch"]  # the fixtures, imported for this module's tests
pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")


# ---- bodies ---------------------------------------------------------------------------------

BODY_ROUTES = [
    ("POST", "/signup", None),
    ("POST", "/token?grant_type=password", None),
    ("POST", "/token?grant_type=refresh_token", None),
    ("POST", "/verify", None),
    ("POST", "/recover", None),
    ("POST", "/otp", None),
    ("POST", "/resend", None),
    ("PUT", "/user", "user"),
    ("POST", "/factors", "user"),
    ("POST", "/invite", "admin"),
    ("POST", "/admin/users", "admin"),
    ("POST", "/admin/generate_link", "admin"),
]
MALFORMED = [
    b"{", b"}", b"[", b"null", b"[]", b'"text"', b"1", b"true", b'{"email": }',
    b'{"email": "a@b.c",}', b"{'email': 'a@b.c'}", b'{"a": NaN}', b"\x00", b"\xff\xfe{}",
    b'{"email": "\xff@example.com"}', b'{"email": "\xc0\xaf@example.com"}',
    b'{"email": "\\ud800@example.com"}', b"[" * 5000 + b"]" * 5000,
    b'{"a":' * 2000 + b"1" + b"}" * 2000,
]  # fmt: skip


def _headers(kind: str | None, session: dict[str, Any]) -> dict[str, str]:
    if kind == "user":
        return {"Authorization": f"Bearer {session['access_token']}", **fresh_address()}
    if kind == "admin":
        return {"Authorization": f"Bearer {DEV_SERVICE_ROLE_KEY}", **fresh_address()}
    return fresh_address()


def test_malformed_oversized_and_non_utf8_bodies_are_refused(
    served: Served, fake_auth: FakeAuth, session: dict[str, Any], watch: Watch, secrets: list[str]
) -> None:
    json_type = {"Content-Type": "application/json"}
    with auth(fake_auth, **{"X-Forwarded-For": "192.0.2.1"}) as http, watch.unchanged("bodies"):
        for method, path, kind in BODY_ROUTES:
            headers = {**_headers(kind, session), **json_type}
            for raw in MALFORMED:
                answer = http.request(method, path, content=raw, headers=headers)
                CASES["auth: malformed bodies"] += 1
                gotrue_refusal(answer, secrets)
            # Over GoTrue's 1 MiB body limit, declared and chunked.
            big = b'{"email": "' + b"a" * (1 << 20) + b'@example.com"}'
            declared = http.request(method, path, content=big, headers=headers)
            CASES["auth: oversized bodies"] += 1
            gotrue_refusal(declared, secrets, 413)
            # Chunked, the limit cuts the body short: what was read is no JSON.
            chunked = http.request(method, path, content=iter([big[:1000], big[1000:]]),
                                   headers=headers)  # fmt: skip
            CASES["auth: oversized bodies"] += 1
            assert chunked.status_code in (400, 413), chunked.text
            gotrue_refusal(chunked, secrets)


HUGE = "a" * 100_000
LOOKALIKE = "\uff4f\uff57\uff4e\uff45\uff52@example.com"  # "owner" in fullwidth letters
CREATING = ("/signup", "/invite", "/admin/users", "/admin/generate_link", "/otp")
ACTING = ("/recover", "/resend", "/user")


def test_huge_strange_and_unknown_fields_are_refused_or_ignored(
    served: Served, fake_auth: FakeAuth, session: dict[str, Any], watch: Watch, secrets: list[str]
) -> None:
    """Each field of each body route, given values of every kind: a 4xx in GoTrue's shape
    that writes nothing (or, for an unknown field, the answer it would get without it)."""
    values: list[Any] = [None, True, -1, 1e308, "", HUGE, "a\u0000b", "\u202eexample.com",
                         LOOKALIKE, "owner@example.com\n", "owner@example.com' --",
                         ["owner@example.com"], {"$ne": ""}, "é" * 40, "🔑" * 19]  # fmt: skip
    fields = ["email", "password", "phone", "data", "refresh_token", "token", "token_hash",
              "type", "factor_type", "friendly_name", "role", "app_metadata", "code",
              "redirect_to"]  # fmt: skip
    passive = [r for r in BODY_ROUTES if r[1] not in CREATING and r[1] not in ACTING]
    with auth(fake_auth) as http, watch.unchanged("strange fields"):
        for method, path, kind in passive:
            for field in fields:
                for value in values:
                    answer = http.request(
                        method, path, json={field: value}, headers=_headers(kind, session)
                    )
                    CASES["auth: strange fields"] += 1
                    gotrue_refusal(answer, secrets)
    # Where a good value is a change the caller may make, each refusal is watched alone.
    acting = [r for r in BODY_ROUTES if r[1] in ACTING]
    with auth(fake_auth) as http:
        for method, path, kind in acting:
            for field in ("email", "password", "data"):
                for value in values:
                    before = watch.state()
                    answer = http.request(
                        method, path, json={field: value}, headers=_headers(kind, session)
                    )
                    CASES["auth: strange fields"] += 1
                    if answer.status_code >= 400:
                        gotrue_refusal(answer, secrets)
                        watch.same(before, f"{method} {path} {field}={str(value)[:40]!r}")


def test_sign_up_with_strange_values_creates_nobody_or_a_sound_user(
    served: Served, fake_auth: FakeAuth, watch: Watch, secrets: list[str], db_admin: Any
) -> None:
    """Values that must be refused (bad addresses, over-long or weak passwords, NUL in the
    metadata) create no user; unknown fields are ignored."""
    refused = [
        {"email": "a\u0000b@example.com", "password": PASSWORD},
        {"email": LOOKALIKE, "password": PASSWORD},
        {"email": HUGE + "@example.com", "password": PASSWORD},
        {"email": "x@example.com\n", "password": PASSWORD},
        {"email": unique_email(), "password": "é" * 40},  # 40 characters, 80 bytes
        {"email": unique_email(), "password": "🔑" * 19},  # 19 characters, 76 bytes
        {"email": unique_email(), "password": "a" * 73},
        {"email": unique_email(), "password": "12345"},
        {"email": unique_email(), "password": PASSWORD, "data": {"x": "\u0000"}},
        {"email": unique_email(), "password": PASSWORD, "data": {"\u0000": 1}},
        {"email": unique_email(), "password": PASSWORD, "phone": "+15550100"},
        {"email": ["owner@example.com"], "password": PASSWORD},
    ]
    with auth(fake_auth, **{"X-Forwarded-For": "192.0.2.3"}) as http:
        for body in refused:
            with watch.unchanged(f"sign-up {str(body)[:80]}"):
                answer = http.post("/signup", json=body)
                CASES["auth: strange fields"] += 1
                gotrue_refusal(answer, secrets)
        email = unique_email("unknown-fields")
        extra = {"email": email, "password": PASSWORD, "role": "service_role",
                 "app_metadata": {"roles": ["admin"]}, "is_super_admin": True, "aud": "x",
                 "id": SEED_USERS["owner"], "__proto__": {"admin": True}}  # fmt: skip
        answer = http.post("/signup", json=extra)
        CASES["auth: unknown fields"] += 1
        assert answer.status_code == 200, answer.text
    user = db_admin.execute(
        "select id::text, role, aud, raw_app_meta_data, is_super_admin from auth.users"
        " where email = %s",
        (email,),
    ).fetchone()
    assert user[0] != SEED_USERS["owner"] and user[1:3] == ("authenticated", "authenticated")
    assert user[3] == {"provider": "email", "providers": ["email"]} and not user[4]


def test_user_updates_with_strange_values_change_nothing_they_must_not(
    served: Served, fake_auth: FakeAuth, session: dict[str, Any], watch: Watch, secrets: list[str]
) -> None:
    headers = {"Authorization": f"Bearer {session['access_token']}"}
    refused = [
        {"data": {"x": "\u0000"}},
        {"data": {"\u0000": "x"}},
        {"password": "é" * 40},
        {"password": "🔑" * 19},
        {"email": "a\u0000b@example.com"},
        {"email": "owner@example.com"},  # taken
        {"app_metadata": {"role": "admin"}},
    ]
    with auth(fake_auth) as http:
        for body in refused:
            with watch.unchanged(f"PUT /user {body}"):
                answer = http.put("/user", json=body, headers=headers)
                CASES["auth: strange fields"] += 1
                gotrue_refusal(answer, secrets)


CONTENT_TYPES = ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data",
                 "application/xml", "", "application/json; charset=utf-16"]  # fmt: skip


def test_wrong_content_types_never_fail_the_service(
    served: Served, fake_auth: FakeAuth, session: dict[str, Any], watch: Watch, secrets: list[str]
) -> None:
    """GoTrue reads JSON whatever the Content-Type says: a wrong one is never a 5xx."""
    # An address nobody has and a weak password: no route may act on it.
    body = json.dumps({"email": unique_email("nobody"), "password": "weak"}).encode()
    with auth(fake_auth, **{"X-Forwarded-For": "192.0.2.4"}) as http, watch.unchanged("types"):
        for method, path, kind in BODY_ROUTES:
            if path in CREATING:
                continue
            for content_type in CONTENT_TYPES:
                headers = {**_headers(kind, session), "Content-Type": content_type}
                answer = http.request(method, path, content=body, headers=headers)
                CASES["auth: content types"] += 1
                if answer.status_code >= 400:
                    gotrue_refusal(answer, secrets)
                else:
                    assert path == "/recover", (path, answer.text)  # it never says who exists


AUTH_PATHS = ["/health", "/settings", "/.well-known/jwks.json", "/signup", "/token", "/logout",
              "/user", "/reauthenticate", "/invite", "/verify", "/recover", "/otp", "/magiclink",
              "/resend", "/factors", f"/factors/{FACTOR}", f"/factors/{FACTOR}/challenge",
              f"/factors/{FACTOR}/verify", "/admin/users", f"/admin/users/{FACTOR}",
              f"/admin/users/{FACTOR}/factors", f"/admin/users/{FACTOR}/factors/{FACTOR}",
              "/admin/generate_link", "/nowhere", "/admin/../user", "/%2e%2e/admin/users",
              "/user%00", "/admin/users/%00", "/admin/users/' or 1=1 --"]  # fmt: skip


def test_every_method_on_every_route(
    served: Served, fake_auth: FakeAuth, session: dict[str, Any], watch: Watch, secrets: list[str]
) -> None:
    """As a signed-in user with no body: the route's own refusal, 404 or an empty 405, or a
    read; never a 5xx, never a write (logout aside: it is a signed-in user's right)."""
    headers = {"Authorization": f"Bearer {session['access_token']}", "X-Forwarded-For": "192.0.2.5"}
    with auth(fake_auth, **headers) as http, watch.unchanged("methods"):
        for path in AUTH_PATHS:
            for method in [*ALL_METHODS, "TRACE", "PROPFIND"]:
                if (method, path) in (("POST", "/logout"), ("PUT", "/user"), ("GET", "/verify"),
                                      ("HEAD", "/verify"), ("GET", "/reauthenticate"),
                                      ("HEAD", "/reauthenticate")):  # fmt: skip
                    continue  # they act (a logout, an update, a redirect, a mail): elsewhere
                answer = http.request(method, path)
                CASES["auth: methods"] += 1
                assert_no_leak(answer, secrets)
                if answer.status_code == 405 or method in ("HEAD", "OPTIONS"):
                    assert answer.text == "" or method == "OPTIONS", answer.text
                elif answer.status_code >= 400:
                    gotrue_refusal(answer, secrets)
