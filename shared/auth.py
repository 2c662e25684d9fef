"""Verify Supabase JWTs locally: no network call per request.

Asymmetric tokens (ES256, RS256) are checked against the project's JWKS, fetched once and
refetched when a token names an unknown `kid` (at most once per `jwks_min_refresh_s`, so a
flood of forged kids cannot turn into a flood of fetches). That is all a project on JWT
signing keys needs; legacy HS256 tokens are checked against `SUPABASE_JWT_SECRET` only when it
is set (a project that has not migrated, or is migrating: both then work). An HS token is
never checked with a public key, and `none` is never accepted. Verified tokens are cached
until their `exp` so a hot client pays for signature checks once, not per request.

Project API keys are not JWTs and are never verified as such: the publishable and secret keys
(`sb_publishable_...`, `sb_secret_...`) and the legacy anon and service role keys are compared,
in constant time, with the configured ones, and name the role `anon` or `service_role`.
"""

from __future__ import annotations

import hmac
import json
import threading
import time
import urllib.request
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Literal

import jwt

from shared.errors import MfaRequired, Unauthenticated, Unavailable
from shared.settings import Settings

AuthLevel = Literal["public", "user", "user+aal2", "service_role"]
ASYMMETRIC_ALGORITHMS = ("ES256", "RS256")
LEEWAY_S = 10
AUDIENCE = "authenticated"


@dataclass(frozen=True, slots=True)
class Claims:
    """Who is calling, as the verified token says. `jwt` is what Postgres's `auth.jwt()` sees."""

    role: str
    sub: str | None = None
    email: str | None = None
    aal: str | None = None
    amr: list[Any] = field(default_factory=list)
    session_id: str | None = None
    is_anonymous: bool = False
    jwt: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> Claims:
        return cls(
            role=str(payload.get("role") or "anon"),
            sub=payload.get("sub"),
            email=payload.get("email"),
            aal=payload.get("aal"),
            amr=list(payload.get("amr") or []),
            session_id=payload.get("session_id"),
            is_anonymous=bool(payload.get("is_anonymous", False)),
            jwt=payload,
        )


ANON = Claims(role="anon", jwt={"role": "anon"})
SERVICE = Claims(role="service_role", jwt={"role": "service_role"})


class JwksCache:
    """The project's public keys by kid, refreshed on demand, at most once per interval.

    Known keys are also refetched once they are `max_age_s` old, so that a key revoked in
    Supabase stops being accepted by a warm instance within that time, not only after the
    next unknown kid. While Supabase Auth cannot be reached, known keys go on working.
    """

    def __init__(self, url: str, min_refresh_s: float, max_age_s: float = 600.0) -> None:
        self.url = url
        self.min_refresh_s = min_refresh_s
        self.max_age_s = max_age_s
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = float("-inf")  # last successful fetch
        self._attempted_at = float("-inf")  # last attempt, for the refresh rate limit
        self._lock = threading.Lock()
        self.fetches = 0
        # Bumped when a key disappears, so tokens verified with it drop out of caches.
        self.generation = 0

    def key_for(self, kid: str) -> jwt.PyJWK | None:
        key = self._keys.get(kid)
        if key is not None and not self.stale():
            return key
        with self._lock:
            key = self._keys.get(kid)
            if key is None or self.stale():
                self._refresh_if_allowed(keep_known=key is not None)
                key = self._keys.get(kid)
        return key

    def stale(self) -> bool:
        """Keys were fetched once and are older than `max_age_s`."""
        return self.fetches > 0 and time.monotonic() - self._fetched_at >= self.max_age_s

    def refresh_if_stale(self) -> None:
        """Refetch old keys (cheap to call per request: a clock read when fresh)."""
        if self.stale():
            with self._lock:
                if self.stale():
                    self._refresh_if_allowed(keep_known=True)

    def _refresh_if_allowed(self, keep_known: bool) -> None:
        if time.monotonic() - self._attempted_at < self.min_refresh_s:
            return
        try:
            self._refresh()
        except Unavailable:
            if not keep_known:
                raise

    def _refresh(self) -> None:
        # The standard library's client: a GET every few minutes needs no more, and an httpx
        # client would cost a cold start its import and an SSL context built from certifi.
        self._attempted_at = time.monotonic()
        self.fetches += 1
        try:
            with urllib.request.urlopen(self.url, timeout=3.0) as response:  # noqa: S310
                document = json.loads(response.read())
            if not isinstance(document, dict):
                raise ValueError("a JWKS is a JSON object")
        except (OSError, ValueError) as exc:  # URLError, HTTPError and timeouts are OSErrors
            raise Unavailable("The signing keys could not be fetched") from exc
        keys: dict[str, jwt.PyJWK] = {}
        for entry in document.get("keys", []):
            if entry.get("alg") not in ASYMMETRIC_ALGORITHMS or "kid" not in entry:
                continue
            try:
                keys[entry["kid"]] = jwt.PyJWK(entry)
            except jwt.PyJWTError:
                continue
        if set(self._keys) - set(keys):
            self.generation += 1
        self._keys = keys
        self._fetched_at = time.monotonic()


class TokenVerifier:
    """Turns an Authorization header into Claims or raises Unauthenticated."""

    def __init__(self, settings: Settings, cache_size: int = 4096) -> None:
        self.settings = settings
        self.jwks = JwksCache(
            settings.jwks_url, settings.jwks_min_refresh_s, settings.jwks_max_age_s
        )
        # token -> (claims, exp, JWKS generation it was verified under)
        self._cache: OrderedDict[str, tuple[Claims, float, int]] = OrderedDict()
        self._cache_size = cache_size
        self._cache_lock = threading.Lock()

    def claims_for(self, authorization: str | None, apikey: str | None = None) -> Claims:
        """Claims of the caller; anonymous when no credential is sent at all.

        As on Supabase's gateway: a project key travels in `apikey` (publishable or secret,
        or a legacy anon/service role JWT) and names the caller's role; `Authorization`
        carries a user's access token, which then decides. An `sb_` key is accepted in
        `Authorization` only when it equals `apikey` (supabase-py sends its key in both).
        """
        key_role = self._api_key_role(apikey) if apikey else None
        if key_role is None and apikey and apikey.startswith("sb_"):
            raise Unauthenticated("The apikey header is not one of this project's API keys")
        if not authorization:
            return key_role or ANON
        token = _bearer(authorization)
        if token.startswith("sb_"):
            if (
                key_role is not None
                and token.isascii()
                and hmac.compare_digest(token, apikey or "")
            ):
                return key_role
            raise Unauthenticated(
                "Publishable and secret keys go in the apikey header; Authorization carries"
                " a user's access token (Bearer <JWT>)"
            )
        return self._api_key_role(token) or self.verify(token)

    def _api_key_role(self, key: str) -> Claims | None:
        return project_key_role(self.settings, key)

    def verify(self, token: str) -> Claims:
        now = time.time()
        self.jwks.refresh_if_stale()  # a revoked key's cached tokens drop out (generation)
        with self._cache_lock:
            hit = self._cache.get(token)
            if hit is not None:
                if hit[1] + LEEWAY_S > now and hit[2] == self.jwks.generation:
                    self._cache.move_to_end(token)
                    return hit[0]
                del self._cache[token]
        generation = self.jwks.generation
        payload = self._decode(token)
        claims = Claims.from_payload(payload)
        with self._cache_lock:
            self._cache[token] = (claims, float(payload["exp"]), generation)
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return claims

    def _decode(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthenticated("The token is malformed") from None
        alg = header.get("alg")
        key: Any
        if alg == "HS256" and self.settings.jwt_secret:
            key = self.settings.jwt_secret
        elif alg in ASYMMETRIC_ALGORITHMS:
            kid = header.get("kid")
            jwk = self.jwks.key_for(kid) if isinstance(kid, str) else None
            if jwk is None or jwk.algorithm_name != alg:
                raise Unauthenticated("The token's signing key is unknown")
            key = jwk.key
        else:
            raise Unauthenticated("The token's algorithm is not accepted")
        try:
            payload: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=AUDIENCE,
                issuer=self.settings.jwt_issuer,
                leeway=LEEWAY_S,
                options={"require": ["exp", "sub", "role"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("The token has expired") from None
        except jwt.InvalidAudienceError:
            raise Unauthenticated("The token is not for this audience") from None
        except jwt.InvalidIssuerError:
            raise Unauthenticated("The token was not issued by this project") from None
        except jwt.PyJWTError:
            raise Unauthenticated("The token is not valid") from None
        if not _is_user_id(payload["sub"]):
            # Supabase subjects are user ids; `auth.uid()` casts `sub` to uuid. Anything else
            # would fail in Postgres as a cast error (or a NUL it cannot store), not as auth.
            raise Unauthenticated("The token's subject is not a user id")
        return payload


def project_key_role(settings: Settings, key: str) -> Claims | None:
    """The role a project API key names (SERVICE or ANON), compared in constant time; None
    for any other value.

    Every configured secret key is compared (a rotation keeps several), so the time taken does
    not say which one matched. The legacy JWT-based keys count only while they are configured.
    """
    if not key.isascii():  # compare_digest refuses non-ASCII text; no key is such text
        return None
    if key.startswith("sb_"):
        service = False
        for secret in settings.secret_keys:
            service |= hmac.compare_digest(key, secret)
        if service:
            return SERVICE
        publishable = settings.publishable_key
        return ANON if publishable and hmac.compare_digest(key, publishable) else None
    if settings.service_role_key and hmac.compare_digest(key, settings.service_role_key):
        return SERVICE
    if settings.anon_key and hmac.compare_digest(key, settings.anon_key):
        return ANON
    return None


def require_level(claims: Claims, level: AuthLevel) -> None:
    """Refuse a caller whose claims do not reach the route's auth level."""
    if level == "public":
        return
    if level == "service_role":
        if claims.role != "service_role":
            raise Unauthenticated("This route needs the service role")
        return
    if claims.role not in ("authenticated", "service_role") or not claims.sub:
        raise Unauthenticated()
    if level == "user+aal2" and claims.aal != "aal2":
        raise MfaRequired()


_HEX = frozenset("0123456789abcdefABCDEF")


def _is_user_id(sub: Any) -> bool:
    """A UUID as Supabase writes `sub`: 8-4-4-4-12 hex digits. Checked with slices and a set,
    not a regex: every authenticated request asks, so a regex compiled on the first one."""
    return (
        isinstance(sub, str)
        and len(sub) == 36
        and sub[8] + sub[13] + sub[18] + sub[23] == "----"
        and _HEX.issuperset(sub.replace("-", ""))
        and sub.count("-") == 4
    )


def _bearer(header: str) -> str:
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated("The Authorization header must be 'Bearer <token>'")
    return token
