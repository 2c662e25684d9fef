"""One origin for every local service, routed by path prefix as Supabase's API gateway does.

Each service is a WSGI app that sees its paths without the prefix (`/signup`, not
`/auth/v1/signup`): werkzeug's DispatcherMiddleware moves the prefix to SCRIPT_NAME.
Everything else (`/functions/v1/...`, `/docs`, `/`) goes to the functions app.

In front of each service (`/auth/v1`, `/storage/v1`, `/realtime/v1`) sits what Supabase's
gateway does with the project's API keys, `ApiKeys`: the services behind it only ever take
JWTs (the legacy anon and service role keys, users' access tokens), so a publishable or secret
key in `apikey` is swapped for a short-lived JWT of the matching role (`anon`,
`service_role`), signed with the key ring as the local Auth signs user tokens. The Supabase
CLI's gateway does the same with a Lua expression (supabase/cli, internal/start/start.go,
`BearerToken`): a non-`sb_` `Authorization` passes through; otherwise the secret key's or the
publishable key's JWT takes its place. Supabase documents the rest: an `sb_` key in
`Authorization` is accepted only when it equals `apikey`, an unknown key is 401, and a secret
key sent by a browser is 401.
"""

from __future__ import annotations

import hmac
import json
import threading
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode

from fnkit.local.config import LocalConfig

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = [
    "SERVICE_PREFIXES",
    "ApiKeys",
    "ForwardedFor",
    "close_services",
    "create_gateway",
    "service_mounts",
]

SERVICE_PREFIXES = ("/auth/v1", "/storage/v1", "/realtime/v1")
TOKEN_TTL_S = 300  # short-lived, as the platform's; re-minted well before it ends
_RENEW_BEFORE_S = 60
INVALID_KEY = {
    "message": "Invalid API key",
    "hint": "Double check your Supabase `anon` or `service_role` API key.",
}
MISPLACED_KEY = {
    "message": "Invalid API key",
    "hint": "A publishable or secret key goes in the apikey header; Authorization carries a"
    " user's access token, or the same key as apikey.",
}
SECRET_IN_BROWSER = {"message": "Forbidden use of secret API key in browser"}


class ApiKeys:
    """WSGI middleware: `sb_publishable_`/`sb_secret_` keys in, role JWTs out, for one service."""

    def __init__(self, app: WSGIApplication, config: LocalConfig) -> None:
        self.app = app
        self.config = config
        self._minted: dict[tuple[str, str], tuple[str, float]] = {}
        self._lock = threading.Lock()

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        header = environ.get("HTTP_APIKEY")
        query = parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        apikey = header if header is not None else dict(query).get("apikey", "")
        authorization = environ.get("HTTP_AUTHORIZATION", "")
        scheme, _, bearer = authorization.partition(" ")
        bearer = bearer.strip() if scheme.lower() == "bearer" else ""
        if not apikey.startswith("sb_") and not bearer.startswith("sb_"):
            return self.app(environ, start_response)  # legacy JWT keys and tokens pass as is
        if bearer.startswith("sb_") and not _same(bearer, apikey):
            return _refuse(start_response, MISPLACED_KEY)
        role = self.role_of(apikey)
        if role is None:
            return _refuse(start_response, INVALID_KEY)
        if role == "service_role" and _from_browser(environ):
            return _refuse(start_response, SECRET_IN_BROWSER)
        token = self.token_for(role)
        environ = dict(environ)  # the caller's environ stays as it came
        if header is not None:
            environ["HTTP_APIKEY"] = token
        else:
            swapped = [(k, token if k == "apikey" else v) for k, v in query]
            environ["QUERY_STRING"] = urlencode(swapped)
        if not bearer or bearer.startswith("sb_"):
            environ["HTTP_AUTHORIZATION"] = f"Bearer {token}"
        return self.app(environ, start_response)

    def role_of(self, key: str) -> str | None:
        """`anon` or `service_role` for a configured key (constant-time, every secret key
        compared); None for anything else."""
        if not key.startswith("sb_") or not key.isascii():
            return None
        service = False
        for secret in self.config.secret_keys:
            service |= hmac.compare_digest(key, secret)
        if service:
            return "service_role"
        return "anon" if hmac.compare_digest(key, self.config.publishable_key) else None

    def token_for(self, role: str) -> str:
        """A JWT of `role` signed with the ring's signing key, reused until near its end."""
        import jwt

        key = self.config.keys.signing_key()
        now = time.time()
        with self._lock:
            cached = self._minted.get((role, key.kid))
            if cached is not None and cached[1] - _RENEW_BEFORE_S > now:
                return cached[0]
            issued = int(now)
            claims = {
                "iss": self.config.issuer,
                "role": role,
                "iat": issued,
                "exp": issued + TOKEN_TTL_S,
            }
            token = jwt.encode(claims, key.private, algorithm="ES256", headers={"kid": key.kid})
            self._minted[(role, key.kid)] = (token, float(issued + TOKEN_TTL_S))
            return token


def _same(a: str, b: str) -> bool:
    return a.isascii() and b.isascii() and hmac.compare_digest(a, b)


def _from_browser(environ: WSGIEnvironment) -> bool:
    # Supabase refuses a secret key from a browser, which it tells by the User-Agent.
    return str(environ.get("HTTP_USER_AGENT", "")).startswith("Mozilla/")


def _refuse(start_response: StartResponse, body: Mapping[str, str]) -> list[bytes]:
    payload = json.dumps(body).encode()
    start_response(
        "401 Unauthorized",
        [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))],
    )
    return [payload]


def service_mounts(config: LocalConfig) -> dict[str, WSGIApplication]:
    """The local Supabase services, by the path prefix they answer under, each behind the
    gateway's key handling. Realtime starts its threads (the change stream, the pollers) here:
    close what this returns with `close_services`."""
    from fnkit.local.auth import create_app as auth_app
    from fnkit.local.realtime import create_app as realtime_app
    from fnkit.local.storage import create_app as storage_app

    return {
        "/auth/v1": ApiKeys(auth_app(config), config),
        "/storage/v1": ApiKeys(storage_app(config), config),
        "/realtime/v1": ApiKeys(realtime_app(config), config),
    }


def close_services(mounts: Mapping[str, WSGIApplication]) -> None:
    """Stop what the services run beside their requests (Realtime's threads and pool)."""
    for app in mounts.values():
        inner = app.app if isinstance(app, ApiKeys) else app
        close = getattr(inner, "close", None)
        if callable(close):
            close()


class ForwardedFor:
    """WSGI middleware: append the peer's address to X-Forwarded-For, as Supabase's gateway
    (Kong) does, so the services' per-address rate limits key on an address the client did
    not write (they read the last hop)."""

    def __init__(self, app: WSGIApplication) -> None:
        self.app = app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        peer = str(environ.get("REMOTE_ADDR") or "")
        if peer:
            sent = str(environ.get("HTTP_X_FORWARDED_FOR") or "").strip()
            environ = {**environ, "HTTP_X_FORWARDED_FOR": f"{sent}, {peer}" if sent else peer}
        return self.app(environ, start_response)


def create_gateway(
    functions_app: WSGIApplication, mounts: Mapping[str, WSGIApplication]
) -> WSGIApplication:
    """The functions behind `/functions/v1`, the services (`service_mounts`) beside them, on
    one app, each service behind `ForwardedFor` as behind Supabase's gateway; the functions
    see the keys as sent, and check them themselves."""
    from werkzeug.middleware.dispatcher import DispatcherMiddleware

    services: dict[str, WSGIApplication] = {p: ForwardedFor(app) for p, app in mounts.items()}
    return DispatcherMiddleware(functions_app, services)
