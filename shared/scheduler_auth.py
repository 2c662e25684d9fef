"""The scheduler as a caller: Cloud Scheduler's OIDC token, or the service role key.

On Google Cloud, Cloud Scheduler calls a job's URL with a Google-signed RS256 ID token whose
`aud` is what the job was created with (`fnkit deploy` uses the function's URL and sets
`SCHEDULER_AUDIENCE` to the same) and whose `email` is the job's service account
(`SCHEDULER_SERVICE_ACCOUNT`, with `email_verified`). It is checked against Google's published
keys (`GOOGLE_CERTS_URL`) with the same cache as Supabase's JWKS (`shared.auth.JwksCache`):
fetched once, refetched on an unknown `kid` at most once per interval, and when old.

On Supabase (pg_cron + pg_net), under `make dev`, or from a backend running a job by hand, the
caller sends one of the project's secret keys in `apikey` instead (supabase-py repeats it in
`Authorization`, which is then accepted when it is the same key), or, while legacy keys are
configured, the service role key (in `apikey` or as a bearer token). Keys are compared in
constant time. A publishable key, a user's token or anything else is 401. Either way the run
acts in Postgres as the service role.
"""

from __future__ import annotations

import hmac
import threading
from typing import TYPE_CHECKING, Any

import jwt

from shared.auth import LEEWAY_S, SERVICE, Claims, JwksCache, project_key_role
from shared.errors import Unauthenticated
from shared.settings import Settings

if TYPE_CHECKING:
    from shared.request import Request

GOOGLE_ISSUERS = ("https://accounts.google.com", "accounts.google.com")
_caches: dict[str, JwksCache] = {}
_caches_lock = threading.Lock()


def google_keys(settings: Settings) -> JwksCache:
    """One cache of Google's keys per process (per certs URL)."""
    url = settings.google_certs_url
    with _caches_lock:
        cache = _caches.get(url)
        if cache is None:
            cache = _caches[url] = JwksCache(
                url, settings.jwks_min_refresh_s, settings.jwks_max_age_s
            )
    return cache


class Scheduler:
    """Admits Cloud Scheduler (OIDC) and the project's secret (or service role) key only."""

    scheme_name = "scheduler"

    def authenticate(self, request: Request) -> Claims:
        settings = request.settings
        apikey = (request.headers.get("apikey") or "").strip()
        scheme, _, token = (request.headers.get("Authorization") or "").partition(" ")
        token = token.strip() if scheme.lower() == "bearer" else ""
        if apikey:
            same = not token or (token.isascii() and hmac.compare_digest(token, apikey))
            if same and project_key_role(settings, apikey) is SERVICE:
                return SERVICE
            raise Unauthenticated("Only the scheduler or the project's secret key may call this")
        if token.startswith("sb_"):
            raise Unauthenticated(
                "The secret key goes in the apikey header; Authorization carries a token"
            )
        if not token:
            raise Unauthenticated("This route runs on a schedule: only the scheduler may call it")
        if project_key_role(settings, token) is SERVICE:  # the legacy service role key
            return SERVICE
        return verify_google_token(settings, token)

    def security_scheme(self) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "The scheduler: Cloud Scheduler's OIDC ID token (audience the"
            " function's URL, email the configured service account), or the project's"
            " secret key in the `apikey` header (pg_cron + pg_net, `make dev`, a backend);"
            " on legacy keys, the service role key.",
        }


def verify_google_token(settings: Settings, token: str) -> Claims:
    """Claims of a valid Cloud Scheduler ID token, else `Unauthenticated`."""
    account, audience = settings.scheduler_service_account, settings.scheduler_audience
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise Unauthenticated("The token is malformed") from None
    if header.get("alg") != "RS256":
        raise Unauthenticated("Only the scheduler may call this route")
    if not account or not audience:
        raise Unauthenticated("No scheduler identity is configured for this function")
    kid = header.get("kid")
    jwk = google_keys(settings).key_for(kid) if isinstance(kid, str) else None
    if jwk is None or jwk.algorithm_name != "RS256":
        raise Unauthenticated("The token's signing key is unknown")
    try:
        payload: dict[str, Any] = jwt.decode(
            token,
            jwk.key,
            algorithms=["RS256"],
            audience=audience,
            issuer=GOOGLE_ISSUERS,
            leeway=LEEWAY_S,
            options={"require": ["exp", "iat", "iss", "aud", "email"]},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthenticated("The token has expired") from None
    except jwt.InvalidAudienceError:
        raise Unauthenticated("The token is not for this function") from None
    except jwt.PyJWTError:
        raise Unauthenticated("The token is not valid") from None
    if payload.get("email") != account or payload.get("email_verified") is not True:
        raise Unauthenticated("The token is not the scheduler's service account")
    return Claims(
        role="service_role",
        email=account,
        jwt={"role": "service_role", "scheduler": "cloud-scheduler", "email": account},
    )
