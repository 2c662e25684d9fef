"""Settings read once from the environment, validated, and frozen.

Why one object: every module reads the same validated values, and a missing or malformed
setting fails at import of the function (its cold start) with one clear line instead of a
traceback on the first request.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import NamedTuple, TypeVar
from urllib.parse import urlsplit

from shared import api_keys

T = TypeVar("T")

GOOGLE_CERTS_URL = "https://www.googleapis.com/oauth2/v3/certs"


class SettingsError(RuntimeError):
    """A setting is missing or malformed; the message is one line naming it."""


class Settings(NamedTuple):
    """The validated settings, immutable (`_replace` makes a changed copy).

    A NamedTuple rather than a frozen dataclass: every cold start defines this class, and
    the dataclass machinery (generated methods, the slots copy) cost ~1.5 ms CPU of it for
    30 fields, against ~0.3 ms here."""

    supabase_url: str
    database_url: str
    upstash_url: str
    upstash_token: str
    jwt_secret: str | None = None
    # Supabase's API keys: the publishable key (`sb_publishable_...`) and the secret keys
    # (`sb_secret_...`, several during a rotation, the first one used for our own calls);
    # the legacy JWT-based anon and service role keys beside them until a project drops them.
    publishable_key: str | None = None
    secret_keys: tuple[str, ...] = ()
    anon_key: str | None = None
    service_role_key: str | None = None
    allowed_origins: tuple[str, ...] = ()
    max_body_bytes: int = 1_048_576
    db_pool_max: int = 4
    db_pool_timeout_s: float = 5.0
    db_statement_timeout_ms: int = 8_000
    # Server-side prepared statements (shared.pooler: DB_PREPARED_STATEMENTS, resolved).
    db_prepared_statements: bool = False
    redis_timeout_s: float = 1.0
    jwks_min_refresh_s: float = 30.0
    # Known keys are refetched this often, so a key revoked in Supabase stops being accepted.
    jwks_max_age_s: float = 600.0
    trusted_proxy_hops: int = 0
    attachment_max_bytes: int = 25 * 1_048_576
    attachment_content_types: tuple[str, ...] = ()
    version: str = "0.1.0"
    # Standard Webhooks secrets Supabase Auth signs its hooks with (`v1,whsec_<base64>`),
    # several during a rotation; and the bearer secret database webhooks send.
    auth_hook_secrets: tuple[str, ...] = ()
    db_webhook_secret: str | None = None
    # Scheduled routes on Google Cloud: Cloud Scheduler's OIDC token must name this service
    # account and this audience (the function's URL); the keys come from Google's JWKS.
    scheduler_service_account: str | None = None
    scheduler_audience: str | None = None
    google_certs_url: str = GOOGLE_CERTS_URL
    # The transactional outbox (shared.outbox, shared.dispatch).
    outbox_webhook_url: str | None = None
    outbox_webhook_secret: str | None = None
    outbox_publish: bool = True
    outbox_max_attempts: int = 8
    outbox_backoff_s: float = 10.0
    outbox_lease_s: float = 60.0
    outbox_after_response: bool = True

    @property
    def jwt_issuer(self) -> str:
        return f"{self.supabase_url}/auth/v1"

    @property
    def jwks_url(self) -> str:
        return f"{self.supabase_url}/auth/v1/.well-known/jwks.json"

    @property
    def admin_key(self) -> str | None:
        """The key our own Auth admin and Storage calls use: the first secret key, else the
        legacy service role key (a project that has not migrated)."""
        return self.secret_keys[0] if self.secret_keys else self.service_role_key


def _url(env: Mapping[str, str], name: str, schemes: tuple[str, ...]) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise SettingsError(f"setting {name} is missing")
    parts = urlsplit(value)
    if parts.scheme not in schemes or not (parts.netloc or parts.query):
        shown = parts.scheme + "://…" if parts.scheme else "a value without a scheme"
        # never the value itself: a URL may carry a password, and this line is logged
        raise SettingsError(f"setting {name} must be a {'/'.join(schemes)} URL, got {shown}")
    return value.rstrip("/")


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"setting {name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"setting {name} must be at least {minimum}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"setting {name} must be a number, got {raw!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise SettingsError(f"setting {name} must be positive, got {raw!r}")
    return value


def _list(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    return tuple(item.strip().rstrip("/") for item in env.get(name, "").split(",") if item.strip())


def _optional(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return value or None


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build and validate settings; raise SettingsError with one line on the first problem."""
    env = os.environ if env is None else env
    jwt_secret = _optional(env, "SUPABASE_JWT_SECRET")
    if jwt_secret is not None and len(jwt_secret) < 32:
        raise SettingsError("setting SUPABASE_JWT_SECRET must be at least 32 characters")
    return Settings(
        supabase_url=_url(env, "SUPABASE_URL", ("http", "https")),
        database_url=_url(env, "DATABASE_URL", ("postgres", "postgresql")),
        upstash_url=_url(env, "UPSTASH_REDIS_REST_URL", ("http", "https")),
        upstash_token=_required(env, "UPSTASH_REDIS_REST_TOKEN"),
        jwt_secret=jwt_secret,
        publishable_key=_api_key(api_keys.publishable_key, env, "SUPABASE_PUBLISHABLE_KEY"),
        secret_keys=_api_key(api_keys.secret_keys, env, "SUPABASE_SECRET_KEY"),
        anon_key=_api_key(api_keys.anon_key, env, "SUPABASE_ANON_KEY"),
        service_role_key=_api_key(api_keys.service_role_key, env, "SUPABASE_SERVICE_ROLE_KEY"),
        allowed_origins=_list(env, "ALLOWED_ORIGINS"),
        max_body_bytes=_int(env, "MAX_BODY_BYTES", 1_048_576, minimum=1),
        db_pool_max=_int(env, "DB_POOL_MAX", 4, minimum=1),
        db_pool_timeout_s=_float(env, "DB_POOL_TIMEOUT_S", 5.0),
        db_statement_timeout_ms=_int(env, "DB_STATEMENT_TIMEOUT_MS", 8_000, minimum=1),
        db_prepared_statements=_prepared(env),
        redis_timeout_s=_float(env, "UPSTASH_TIMEOUT_S", 1.0),
        jwks_min_refresh_s=_float(env, "JWKS_MIN_REFRESH_S", 30.0),
        jwks_max_age_s=_float(env, "JWKS_MAX_AGE_S", 600.0),
        # Cloud Run (K_SERVICE is set there) puts the client's address last in
        # X-Forwarded-For; elsewhere trust no proxy unless told.
        trusted_proxy_hops=_int(env, "TRUSTED_PROXY_HOPS", 1 if env.get("K_SERVICE") else 0),
        attachment_max_bytes=_int(env, "ATTACHMENT_MAX_BYTES", 25 * 1_048_576, minimum=1),
        attachment_content_types=_list(env, "ATTACHMENT_CONTENT_TYPES"),
        version=env.get("APP_VERSION", "0.1.0"),
        auth_hook_secrets=_hook_secrets(env, "AUTH_HOOK_SECRETS"),
        db_webhook_secret=_secret(env, "DB_WEBHOOK_SECRET", minimum=32),
        scheduler_service_account=_optional(env, "SCHEDULER_SERVICE_ACCOUNT"),
        scheduler_audience=_optional(env, "SCHEDULER_AUDIENCE"),
        google_certs_url=_url(env, "GOOGLE_CERTS_URL", ("http", "https"))
        if env.get("GOOGLE_CERTS_URL", "").strip()
        else GOOGLE_CERTS_URL,
        outbox_webhook_url=_url(env, "OUTBOX_WEBHOOK_URL", ("http", "https"))
        if env.get("OUTBOX_WEBHOOK_URL", "").strip()
        else None,
        outbox_webhook_secret=_webhook_secret(env),
        outbox_publish=_bool(env, "OUTBOX_PUBLISH", True),
        outbox_max_attempts=_int(env, "OUTBOX_MAX_ATTEMPTS", 8, minimum=1),
        outbox_backoff_s=_float(env, "OUTBOX_BACKOFF_S", 10.0),
        outbox_lease_s=_float(env, "OUTBOX_LEASE_S", 60.0),
        outbox_after_response=_bool(env, "OUTBOX_AFTER_RESPONSE", True),
    )


def _prepared(env: Mapping[str, str]) -> bool:
    """DB_PREPARED_STATEMENTS (auto, on, off) for DATABASE_URL; see shared.pooler."""
    from shared.pooler import prepared_statements

    setting = env.get("DB_PREPARED_STATEMENTS", "").strip().lower() or "auto"
    try:
        return prepared_statements(env.get("DATABASE_URL", "").strip(), setting)
    except ValueError as exc:
        raise SettingsError(str(exc)) from None


def _api_key(parse: Callable[[str | None], T], env: Mapping[str, str], name: str) -> T:
    """A key setting parsed by `shared.api_keys`; its refusal becomes one SettingsError line."""
    try:
        return parse(_optional(env, name))
    except ValueError as exc:
        raise SettingsError(str(exc)) from None


def _hook_secrets(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """`v1,whsec_<base64>` secrets separated by `|`, as Supabase Auth's hook settings take them."""
    import base64
    import binascii

    secrets = tuple(part.strip() for part in env.get(name, "").split("|") if part.strip())
    for number, secret in enumerate(secrets, 1):
        body = secret.removeprefix("v1,").removeprefix("whsec_")
        try:
            key = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            key = b""
        if not secret.startswith("v1,whsec_") or len(key) < 16:
            raise SettingsError(
                f"setting {name}: secret {number} must be v1,whsec_<base64 of at least 16 bytes>"
            )
    return secrets


def _secret(env: Mapping[str, str], name: str, minimum: int) -> str | None:
    value = _optional(env, name)
    if value is not None and len(value) < minimum:
        raise SettingsError(f"setting {name} must be at least {minimum} characters")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"setting {name} must be true or false, got {raw!r}")


def _webhook_secret(env: Mapping[str, str]) -> str | None:
    """`whsec_<base64>` as Standard Webhooks secrets are written; required with the URL."""
    import base64
    import binascii

    secret = _optional(env, "OUTBOX_WEBHOOK_SECRET")
    if secret is None:
        if env.get("OUTBOX_WEBHOOK_URL", "").strip():
            raise SettingsError(
                "setting OUTBOX_WEBHOOK_SECRET is missing (OUTBOX_WEBHOOK_URL is set)"
            )
        return None
    try:
        key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) < 24:
        raise SettingsError(
            "setting OUTBOX_WEBHOOK_SECRET must be whsec_ followed by at least 24 base64 bytes"
        )
    return secret


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise SettingsError(f"setting {name} is missing")
    return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, loaded on first use."""
    return load_settings()
