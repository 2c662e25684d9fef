"""The runtime pipeline end to end: real HTTP to served functions, real Postgres and Redis."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid

import jwt
import pytest

from fnkit.devenv import DEV_ANON_KEY, DEV_SERVICE_ROLE_KEY
from fnkit.tokens import claims
from tests.contracts import body_schema
from tests.envelope import assert_error
from tests.fixtures.server import TEST_ORIGIN, Served

USER = "33333333-3333-3333-3333-333333333333"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _forge(header: dict[str, object], payload: dict[str, object], key: bytes | None) -> str:
    head = _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(payload).encode())
    signature = _b64(hmac.new(key, head.encode(), hashlib.sha256).digest()) if key else ""
    return head + "." + signature


# ---- envelope and request id ------------------------------------------------------------


def test_health_answers_in_the_envelope(served: Served) -> None:
    with served.client() as client:
        response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    assert body["data"]["status"] == "ok"
    assert body["data"]["checks"]["database"]["ok"] is True
    assert body["data"]["checks"]["redis"]["ok"] is True
    assert body["meta"]["request_id"] == response.headers["X-Request-Id"]
    assert "total;dur=" in response.headers["Server-Timing"]


def test_request_id_is_echoed_when_well_formed_and_minted_otherwise(served: Served) -> None:
    with served.client() as client:
        echoed = client.get("/health", headers={"X-Request-Id": "abc.DEF-123_x"})
        replaced = client.get("/health", headers={"X-Request-Id": "bad id <script>"})
        minted = client.get("/health")
    assert echoed.headers["X-Request-Id"] == "abc.DEF-123_x"
    assert echoed.json()["meta"]["request_id"] == "abc.DEF-123_x"
    assert replaced.headers["X-Request-Id"] != "bad id <script>"
    assert len(replaced.headers["X-Request-Id"]) == 32
    assert minted.headers["X-Request-Id"] != replaced.headers["X-Request-Id"]


def test_unknown_route_and_method(served: Served) -> None:
    with served.client() as client:
        assert_error(client.get("/health/nope"), 404, "NOT_FOUND")
        wrong = client.delete("/health")
        assert_error(wrong, 405, "METHOD_NOT_ALLOWED")
        assert set(wrong.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}


def test_internal_errors_say_only_internal(served: Served) -> None:
    with served.client() as client:
        response = client.get("/echo/boom")
    body = assert_error(response, 500, "INTERNAL")
    assert "secret" not in response.text and "/etc/passwd" not in response.text
    assert body["error"]["message"] == "Internal error"


# ---- CORS -------------------------------------------------------------------------------


def test_preflight_is_answered_before_auth_for_an_allowed_origin(served: Served) -> None:
    with served.client() as client:
        response = client.options(
            "/me",
            headers={
                "Origin": TEST_ORIGIN,
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "authorization",
            },
        )
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == TEST_ORIGIN
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    assert "GET" in response.headers["Access-Control-Allow-Methods"]
    assert "authorization" in response.headers["Access-Control-Allow-Headers"]
    assert "Origin" in response.headers["Vary"]


def test_a_refused_origin_gets_no_cors_headers(served: Served) -> None:
    with served.client() as client:
        preflight = client.options(
            "/me",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
        )
        actual = client.get("/health", headers={"Origin": "https://evil.example"})
        allowed = client.get("/health", headers={"Origin": TEST_ORIGIN})
    assert "Access-Control-Allow-Origin" not in preflight.headers
    assert "Access-Control-Allow-Origin" not in actual.headers
    assert actual.headers["Vary"] == "Origin"
    assert allowed.headers["Access-Control-Allow-Origin"] == TEST_ORIGIN
    assert "x-request-id" in allowed.headers["Access-Control-Expose-Headers"]


# ---- authentication ---------------------------------------------------------------------


def test_me_sees_the_caller_inside_the_impersonated_transaction(served: Served) -> None:
    token = served.token(USER, email="member@example.com")
    with served.client(Authorization=f"Bearer {token}") as client:
        response = client.get("/me")
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["sub"] == USER
    assert data["db_role"] == "authenticated"
    assert data["role"] == "authenticated"
    assert data["email"] == "member@example.com"
    assert data["aal"] == "aal1"


def test_es256_tokens_from_the_jwks_are_accepted(served: Served) -> None:
    token = served.es256(USER, aal="aal2")
    with served.client(Authorization=f"Bearer {token}") as client:
        response = client.get("/me")
    assert response.status_code == 200, response.text
    assert response.json()["data"]["aal"] == "aal2"


def test_missing_token_is_401_with_www_authenticate(served: Served) -> None:
    with served.client() as client:
        response = client.get("/me")
    assert_error(response, 401, "UNAUTHENTICATED")
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert response.headers["X-Request-Id"]


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda s: "not-a-jwt", id="malformed"),
        pytest.param(lambda s: "Basic abc", id="wrong-scheme"),
        pytest.param(lambda s: s.token(USER, expires_in=-120), id="expired"),
        pytest.param(lambda s: s.token(USER, audience="other"), id="wrong-audience"),
        pytest.param(
            lambda s: s.token(USER, issuer="https://evil.example/auth/v1"), id="wrong-issuer"
        ),
        pytest.param(
            lambda s: _forge({"alg": "none", "typ": "JWT"}, claims(USER, issuer=s.issuer), None),
            id="alg-none",
        ),
        pytest.param(
            lambda s: jwt.encode(
                claims(USER, issuer=s.issuer),
                "another-secret-that-is-long-enough-000",
                algorithm="HS256",
            ),
            id="wrong-secret",
        ),
        pytest.param(
            lambda s: s.token(USER, role="service_role")[:-4] + "AAAA", id="tampered-signature"
        ),
    ],
)
def test_bad_tokens_are_refused(served: Served, make) -> None:
    value = make(served)
    header = value if value.startswith("Basic") else f"Bearer {value}"
    with served.client(Authorization=header) as client:
        response = client.get("/me")
    assert_error(response, 401, "UNAUTHENTICATED")


def test_hs256_signed_with_the_public_key_is_refused(served: Served) -> None:
    from cryptography.hazmat.primitives import serialization

    pem = served.primary.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for kid in (served.primary.kid, None):
        header = {"alg": "HS256", "typ": "JWT", **({"kid": kid} if kid else {})}
        forged = _forge(header, claims(USER, issuer=served.issuer), pem)
        with served.client(Authorization=f"Bearer {forged}") as client:
            assert_error(client.get("/me"), 401, "UNAUTHENTICATED")


def test_jwks_rotation_refetches_an_unknown_kid_at_most_once_per_interval(served: Served) -> None:
    time.sleep(1.1)  # let any earlier fetch's interval pass
    rotated = served.auth.add_key(f"rotated-{uuid.uuid4().hex[:6]}")
    before = served.auth.fetches
    with served.client(Authorization=f"Bearer {served.es256(USER, key=rotated)}") as client:
        assert client.get("/me").status_code == 200
    assert served.auth.fetches == before + 1
    # A flood of unknown kids within the interval does not become a flood of fetches.
    ghost = served.auth.add_key("ghost")
    served.auth.keys.remove(ghost)
    for _ in range(5):
        with served.client(Authorization=f"Bearer {served.es256(USER, key=ghost)}") as client:
            assert_error(client.get("/me"), 401, "UNAUTHENTICATED")
    assert served.auth.fetches <= before + 2
    # A key removed from the JWKS stops working once the keys are refetched, even for a
    # token that was verified (and cached) before.
    accepted = served.es256(USER, key=rotated)
    with served.client(Authorization=f"Bearer {accepted}") as client:
        assert client.get("/me").status_code == 200
    served.auth.keys.remove(rotated)
    time.sleep(1.1)
    with served.client(Authorization=f"Bearer {served.es256(USER, key=ghost)}") as client:
        client.get("/me")  # unknown kid: triggers a refetch that drops `rotated`
    with served.client(Authorization=f"Bearer {accepted}") as client:
        assert_error(client.get("/me"), 401, "UNAUTHENTICATED")


def test_project_api_keys_and_auth_levels(served: Served) -> None:
    with served.client(Authorization=f"Bearer {DEV_ANON_KEY}") as client:
        assert client.get("/health").status_code == 200
        assert_error(client.get("/me"), 401, "UNAUTHENTICATED")
    with served.client(Authorization=f"Bearer {DEV_SERVICE_ROLE_KEY}") as client:
        response = client.get("/echo/service")
        assert response.status_code == 200, response.text
        assert response.json()["data"]["role"] == "service_role"
    with served.client(Authorization=f"Bearer {served.token(USER)}") as client:
        assert_error(client.get("/echo/service"), 401, "UNAUTHENTICATED")
        assert_error(client.get("/echo/aal2"), 403, "MFA_REQUIRED")
    with served.client(Authorization=f"Bearer {served.token(USER, aal='aal2')}") as client:
        assert client.get("/echo/aal2").status_code == 200


def test_service_role_claimed_in_a_token_with_a_wrong_key_is_refused(served: Served) -> None:
    forged = jwt.encode(
        claims(USER, role="service_role", issuer=served.issuer), "x" * 40, algorithm="HS256"
    )
    with served.client(Authorization=f"Bearer {forged}") as client:
        assert_error(client.get("/echo/service"), 401, "UNAUTHENTICATED")


# ---- rate limits ------------------------------------------------------------------------


def test_rate_limit_headers_and_429_with_retry_after(served: Served) -> None:
    token = served.token(str(uuid.uuid4()))
    with served.client(Authorization=f"Bearer {token}") as client:
        responses = [client.get("/echo/tight") for _ in range(4)]
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    assert responses[0].headers["RateLimit-Policy"] == '"tight";q=3;w=60'
    assert responses[0].headers["RateLimit"].startswith('"tight";r=2;t=')
    assert responses[2].headers["RateLimit"].startswith('"tight";r=0;t=')
    limited = assert_error(responses[3], 429, "RATE_LIMITED")
    assert int(responses[3].headers["Retry-After"]) >= 1
    assert limited["error"]["code"] == "RATE_LIMITED"


# ---- body, content type, validation -----------------------------------------------------


def _user_client(served: Served):
    return served.client(Authorization=f"Bearer {served.token(str(uuid.uuid4()))}")


def test_a_valid_body_passes_validation(served: Served) -> None:
    with _user_client(served) as client:
        response = client.post("/echo", json={"name": "x", "count": 2, "tags": ["a"]})
    assert response.status_code == 201, response.text
    assert response.json()["data"]["item"] == {"name": "x", "count": 2, "tags": ["a"]}


def test_too_large_body_is_413(served: Served) -> None:
    with _user_client(served) as client:
        response = client.post(
            "/echo",
            content=b'{"name": "' + b"x" * 70000 + b'"}',
            headers={"Content-Type": "application/json"},
        )
    assert_error(response, 413, "PAYLOAD_TOO_LARGE")


def test_wrong_content_type_is_415(served: Served) -> None:
    with _user_client(served) as client:
        response = client.post(
            "/echo",
            content=b"name=x",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")


@pytest.mark.parametrize(
    "raw", [b"{not json", b'{"a": NaN}', b"\xff\xfe{}", b"[" * 5000 + b"]" * 5000]
)
def test_invalid_json_is_400(served: Served, raw: bytes) -> None:
    with _user_client(served) as client:
        response = client.post("/echo", content=raw, headers={"Content-Type": "application/json"})
    assert_error(response, 400, "INVALID_JSON")


def test_validation_lists_every_problem_without_echoing_input(served: Served) -> None:
    with _user_client(served) as client:
        response = client.post("/echo", json={"name": "", "count": "sk_live_secret", "extra": 1})
    body = assert_error(response, 422, "VALIDATION_FAILED")
    locs = {tuple(d["loc"]) for d in body["error"]["details"]}
    assert locs == {("body", "name"), ("body", "count"), ("body", "extra")}
    assert all({"loc", "type", "message"} == set(d) for d in body["error"]["details"])
    assert "sk_live_secret" not in response.text


def test_query_validation_lists_and_duplicates(served: Served) -> None:
    with served.client() as client:
        ok = client.get("/echo/search", params=[("status", "a"), ("status", "b,c"), ("limit", "5")])
        dup = client.get("/echo/search", params=[("limit", "5"), ("limit", "6")])
        bad = client.get("/echo/search", params={"limit": "0"})
    assert ok.json()["data"] == {"status": ["a", "b", "c"], "limit": 5}
    assert_error(dup, 422, "VALIDATION_FAILED")
    assert assert_error(bad, 422, "VALIDATION_FAILED")["error"]["details"][0]["loc"] == [
        "query",
        "limit",
    ]


def test_missing_body_is_422(served: Served) -> None:
    with _user_client(served) as client:
        response = client.post("/echo")
    body = assert_error(response, 422, "VALIDATION_FAILED")
    assert body["error"]["details"][0]["loc"] == ["body"]


# ---- OpenAPI ----------------------------------------------------------------------------


def test_openapi_document_comes_from_the_route_declarations(served: Served) -> None:
    with served.client() as client:
        doc = client.get("/echo/openapi.json").json()
    assert doc["openapi"] == "3.1.0"
    post = doc["paths"]["/echo"]["post"]
    assert post["x-auth"] == "user"
    body = post["requestBody"]["content"]["application/json"]["schema"]
    assert body["$ref"].startswith("#/components/schemas/")  # a named model, not inlined
    assert set(body_schema(doc, post)["properties"]) == {
        "name",
        "count",
        "tags",
    }
    assert "201" in post["responses"] and "422" in post["responses"]
    assert any(p["name"] == "Idempotency-Key" for p in post["parameters"])
    search = doc["paths"]["/echo/search"]["get"]
    assert {p["name"] for p in search["parameters"]} == {"status", "limit"}
    assert doc["paths"]["/echo/tight"]["get"]["x-rate-limit"] == {
        "policy": "tight",
        "limit": 3,
        "window": 60,
    }


def test_a_non_ascii_bearer_token_is_401_not_500(served: Served) -> None:
    for header in ({"Authorization": "Bearer \xe9abc"}, {"apikey": "\xe9"}):
        raw = {k: v.encode("latin-1") for k, v in header.items()}
        with served.client() as client:
            response = client.get("/me", headers=raw)
        assert_error(response, 401, "UNAUTHENTICATED")


def test_a_response_json_cannot_carry_is_an_internal_error_in_the_envelope(served: Served) -> None:
    with served.client() as client:
        response = client.get("/echo/unencodable")
    assert_error(response, 500, "INTERNAL")
    assert response.headers["Content-Type"] == "application/json"


def test_a_handler_header_with_a_line_break_is_an_internal_error(served: Served) -> None:
    with served.client() as client:
        response = client.get("/echo/split-header")
    assert_error(response, 500, "INTERNAL")
    assert "Set-Cookie" not in response.headers
    assert "X-Echo" not in response.headers
