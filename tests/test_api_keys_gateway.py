"""The local gateway's API keys (fnkit.local.gateway.ApiKeys), as Supabase's gateway treats them.

A publishable or secret key in `apikey` reaches the service behind `/auth/v1`, `/storage/v1` or
`/realtime/v1` as a short-lived JWT of its role (anon, service_role) signed with the key ring,
in `apikey` and in `Authorization` (when none or the same key is there); a user's token in
`Authorization` passes through; an unknown `sb_` key, an `sb_` key in `Authorization` that is
not the `apikey`, and a secret key from a browser are 401 before the service runs.

Two setups, both over real HTTP with the real supabase-py client: a gateway of our own whose
`/auth/v1` and `/realtime/v1` are recording WSGI apps (they show exactly what a service
receives), and the session's local Supabase (`fake_auth`: the real Auth and Storage behind
`service_mounts`).
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from storage3.exceptions import StorageApiError
from supabase import ClientOptions, create_client
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from fnkit.devenv import DEV_ANON_KEY, DEV_PUBLISHABLE_KEY, DEV_SECRET_KEY
from fnkit.local.config import LocalConfig
from fnkit.local.gateway import TOKEN_TTL_S, ApiKeys, create_gateway
from fnkit.local.keys import KeyRing, SigningKey
from fnkit.local.tokens import verify
from tests.fixtures.server import Served

UNKNOWN_SECRET = "sb_secret_" + "u" * 31
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36"


@dataclass
class Recorder:
    """A stand-in service: records the headers and query it receives, answers as GoTrue."""

    seen: list[dict[str, str]] = field(default_factory=list)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        self.seen.append(
            {
                "path": request.path,
                "apikey": request.headers.get("apikey", ""),
                "authorization": request.headers.get("Authorization", ""),
                "query": environ.get("QUERY_STRING", ""),
            }
        )
        body: dict[str, Any] = {"ok": True}
        if request.path == "/signup":  # a user awaiting confirmation, as GoTrue answers
            body = {
                "id": str(uuid.uuid4()),
                "aud": "authenticated",
                "role": "authenticated",
                "email": request.get_json()["email"],
                "app_metadata": {"provider": "email"},
                "user_metadata": {},
                "created_at": "2026-12-07T00:00:00Z",
            }
        elif request.path == "/admin/users":
            body = {"users": [], "aud": "authenticated"}
        return Response(json.dumps(body), content_type="application/json")(environ, start_response)


@dataclass
class Gateway:
    url: str
    config: LocalConfig
    auth: Recorder
    realtime: Recorder
    functions: Recorder

    def last(self, recorder: Recorder) -> dict[str, str]:
        assert recorder.seen, "the service was not called"
        return recorder.seen[-1]

    def claims(self, token: str) -> dict[str, Any]:
        """The token's claims, verified as the local services verify what they receive."""
        return verify(self.config, token)


@pytest.fixture
def gateway(database_url: str, tmp_path: Path) -> Iterator[Gateway]:
    config = LocalConfig(
        base_url="http://127.0.0.1",
        database_url=database_url,
        data_dir=tmp_path,
        keys=KeyRing([SigningKey.generate("gw-1")]),
    )
    auth, realtime, functions = Recorder(), Recorder(), Recorder()
    mounts = {"/auth/v1": ApiKeys(auth, config), "/realtime/v1": ApiKeys(realtime, config)}
    app = create_gateway(functions, mounts)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    config.base_url = f"http://127.0.0.1:{server.server_port}"
    yield Gateway(config.base_url, config, auth, realtime, functions)
    server.shutdown()


def client(url: str, key: str) -> Any:
    options = ClientOptions(auto_refresh_token=False, persist_session=False)
    return create_client(url, key, options)


def raw(gw: Gateway, path: str, **headers: str) -> httpx.Response:
    return httpx.get(f"{gw.url}{path}", headers=headers, timeout=10)


# ---- what the service behind receives -------------------------------------------------------


def test_supabase_py_with_the_publishable_key_reaches_auth_as_anon(gateway: Gateway) -> None:
    supabase = client(gateway.url, DEV_PUBLISHABLE_KEY)
    assert supabase.auth.get_session() is None  # no session: nothing sent
    supabase.auth.sign_up({"email": "new@example.com", "password": "password123"})
    seen = gateway.last(gateway.auth)
    assert seen["path"] == "/signup"
    token = seen["apikey"]
    assert seen["authorization"] == f"Bearer {token}"  # supabase-py sent the key in both
    assert DEV_PUBLISHABLE_KEY not in json.dumps(seen)
    claims = gateway.claims(token)
    assert claims["role"] == "anon" and claims["iss"] == f"{gateway.url}/auth/v1"
    assert claims["exp"] - claims["iat"] == TOKEN_TTL_S
    assert jwt.get_unverified_header(token) == {"alg": "ES256", "kid": "gw-1", "typ": "JWT"}


def test_supabase_py_with_the_secret_key_reaches_auth_admin_as_service_role(
    gateway: Gateway,
) -> None:
    supabase = client(gateway.url, DEV_SECRET_KEY)
    assert supabase.auth.admin.list_users() == []
    seen = gateway.last(gateway.auth)
    assert seen["path"] == "/admin/users"
    assert seen["authorization"] == f"Bearer {seen['apikey']}"
    assert gateway.claims(seen["apikey"])["role"] == "service_role"


def test_a_users_token_passes_through_and_only_the_apikey_is_swapped(gateway: Gateway) -> None:
    user_token = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ1In0.c2ln"  # the service verifies it, not us
    response = raw(
        gateway, "/auth/v1/user", apikey=DEV_PUBLISHABLE_KEY, Authorization=f"Bearer {user_token}"
    )
    assert response.status_code == 200
    seen = gateway.last(gateway.auth)
    assert seen["authorization"] == f"Bearer {user_token}"
    assert gateway.claims(seen["apikey"])["role"] == "anon"


def test_no_authorization_gets_the_keys_jwt(gateway: Gateway) -> None:
    assert raw(gateway, "/auth/v1/settings", apikey=DEV_SECRET_KEY).status_code == 200
    seen = gateway.last(gateway.auth)
    assert seen["authorization"] == f"Bearer {seen['apikey']}"
    assert gateway.claims(seen["apikey"])["role"] == "service_role"


def test_legacy_keys_pass_as_they_are(gateway: Gateway) -> None:
    headers = {"apikey": DEV_ANON_KEY, "Authorization": f"Bearer {DEV_ANON_KEY}"}
    assert raw(gateway, "/auth/v1/settings", **headers).status_code == 200
    seen = gateway.last(gateway.auth)
    assert (seen["apikey"], seen["authorization"]) == (DEV_ANON_KEY, f"Bearer {DEV_ANON_KEY}")


def test_the_realtime_socket_key_in_the_query_is_swapped_too(gateway: Gateway) -> None:
    response = raw(gateway, f"/realtime/v1/websocket?apikey={DEV_PUBLISHABLE_KEY}&vsn=1.0.0")
    assert response.status_code == 200
    seen = gateway.last(gateway.realtime)
    query = dict(item.split("=", 1) for item in seen["query"].split("&"))
    assert query["vsn"] == "1.0.0" and gateway.claims(query["apikey"])["role"] == "anon"
    assert seen["authorization"] == f"Bearer {query['apikey']}"


def test_the_functions_see_the_keys_as_sent(gateway: Gateway) -> None:
    headers = {"apikey": DEV_SECRET_KEY, "Authorization": f"Bearer {DEV_SECRET_KEY}"}
    assert raw(gateway, "/functions/v1/echo", **headers).status_code == 200
    seen = gateway.last(gateway.functions)
    assert (seen["apikey"], seen["authorization"]) == (DEV_SECRET_KEY, f"Bearer {DEV_SECRET_KEY}")


def test_a_rotation_accepts_both_secret_keys_and_follows_the_signing_key(
    gateway: Gateway,
) -> None:
    second = "sb_secret_" + "n" * 31
    gateway.config.secret_keys = (second, DEV_SECRET_KEY)
    raw(gateway, "/auth/v1/settings", apikey=DEV_SECRET_KEY)
    first = gateway.last(gateway.auth)["apikey"]
    raw(gateway, "/auth/v1/settings", apikey=second)
    assert gateway.last(gateway.auth)["apikey"] == first  # one token per role, reused
    gateway.config.keys.keys.insert(0, SigningKey.generate("gw-2"))
    raw(gateway, "/auth/v1/settings", apikey=second)
    token = gateway.last(gateway.auth)["apikey"]
    assert jwt.get_unverified_header(token)["kid"] == "gw-2"
    assert gateway.claims(token)["role"] == "service_role"


# ---- what the gateway refuses before any service runs ---------------------------------------


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"apikey": UNKNOWN_SECRET}, "Invalid API key"),
        ({"apikey": "sb_publishable_" + "x" * 30}, "Invalid API key"),
        (
            {"apikey": DEV_PUBLISHABLE_KEY, "Authorization": f"Bearer {DEV_SECRET_KEY}"},
            "Invalid API key",
        ),
        ({"Authorization": f"Bearer {DEV_SECRET_KEY}"}, "Invalid API key"),
        ({"apikey": DEV_SECRET_KEY, "User-Agent": BROWSER}, "Forbidden use of secret API key"),
    ],
    ids=["unknown secret", "unknown publishable", "other key in Authorization", "no apikey",
         "secret key from a browser"],
)  # fmt: skip
def test_refused_with_401_and_the_service_never_runs(
    gateway: Gateway, headers: dict[str, str], message: str
) -> None:
    response = raw(gateway, "/auth/v1/settings", **headers)
    assert response.status_code == 401
    assert response.json()["message"].startswith(message)
    assert gateway.auth.seen == []
    for value in headers.values():
        if value.startswith("sb_"):
            assert value not in response.text


def test_the_publishable_key_is_fine_from_a_browser(gateway: Gateway) -> None:
    response = raw(
        gateway, "/auth/v1/settings", apikey=DEV_PUBLISHABLE_KEY, **{"User-Agent": BROWSER}
    )
    assert response.status_code == 200


# ---- the session's local Supabase: the real Auth and Storage behind the gateway -------------


def test_the_jwks_route_through_the_gateway(served: Served) -> None:
    url = f"{served.auth.url}/auth/v1/.well-known/jwks.json"
    ok = httpx.get(url, headers={"apikey": DEV_PUBLISHABLE_KEY}, timeout=10)
    assert ok.status_code == 200
    assert served.primary.kid in {key["kid"] for key in ok.json()["keys"]}
    refused = httpx.get(url, headers={"apikey": UNKNOWN_SECRET}, timeout=10)
    assert refused.status_code == 401 and refused.json()["message"] == "Invalid API key"


def test_storage_with_the_secret_key_is_the_service_role(served: Served) -> None:
    admin = client(served.auth.url, DEV_SECRET_KEY).storage
    name = f"keys-{uuid.uuid4().hex[:10]}"
    admin.create_bucket(name)
    try:
        assert name in {bucket.name for bucket in admin.list_buckets()}
        admin.from_(name).upload("a.txt", b"hello", {"content-type": "text/plain"})
        assert admin.from_(name).download("a.txt") == b"hello"
        # The publishable key is anon: the private bucket's object is not there for it.
        anon = client(served.auth.url, DEV_PUBLISHABLE_KEY).storage
        with pytest.raises(StorageApiError) as refused:
            anon.from_(name).download("a.txt")
        assert refused.value.status == "404"  # Storage's answer when a policy hides it
    finally:
        admin.empty_bucket(name)
        admin.delete_bucket(name)


def test_storage_refuses_an_unknown_secret_key_at_the_gateway(served: Served) -> None:
    response = httpx.get(
        f"{served.auth.url}/storage/v1/bucket",
        headers={"apikey": UNKNOWN_SECRET, "Authorization": f"Bearer {UNKNOWN_SECRET}"},
        timeout=10,
    )
    assert response.status_code == 401
    assert response.json()["message"] == "Invalid API key"
