"""Settings from the environment: one line naming the setting on the first problem, defaults."""

from __future__ import annotations

import base64

import pytest

from fnkit.devenv import DEV_ANON_KEY, DEV_PUBLISHABLE_KEY, DEV_SECRET_KEY, DEV_SERVICE_ROLE_KEY
from shared.settings import GOOGLE_CERTS_URL, Settings, SettingsError, load_settings

BASE = {
    "SUPABASE_URL": "https://abc.supabase.co/",
    "DATABASE_URL": "postgresql://app:pw@db.internal:5432/app",
    "UPSTASH_REDIS_REST_URL": "https://eu1-redis.upstash.io",
    "UPSTASH_REDIS_REST_TOKEN": "token-1",
}


def load(**changes: str) -> Settings:
    return load_settings({**BASE, **changes})


def without(name: str) -> dict[str, str]:
    return {k: v for k, v in BASE.items() if k != name}


def problem(env: dict[str, str]) -> str:
    with pytest.raises(SettingsError) as raised:
        load_settings(env)
    message = str(raised.value)
    assert "\n" not in message and "\r" not in message, "one line"
    return message


def whsec(n: int) -> str:
    return "whsec_" + base64.b64encode(b"k" * n).decode()


# ---- required settings -----------------------------------------------------------------------


@pytest.mark.parametrize("name", list(BASE))
def test_a_missing_required_setting_is_named(name: str) -> None:
    assert problem(without(name)) == f"setting {name} is missing"
    assert problem({**BASE, name: "   "}) == f"setting {name} is missing"


def test_the_minimum_environment_loads_with_the_defaults() -> None:
    settings = load()
    assert settings.supabase_url == "https://abc.supabase.co"  # no trailing slash
    assert settings.database_url == BASE["DATABASE_URL"]
    assert settings.upstash_token == "token-1"
    defaults = Settings(
        supabase_url=settings.supabase_url,
        database_url=settings.database_url,
        upstash_url=settings.upstash_url,
        upstash_token=settings.upstash_token,
    )
    assert settings == defaults
    assert settings.jwt_secret is None and settings.allowed_origins == ()
    assert settings.trusted_proxy_hops == 0
    assert settings.max_body_bytes == 1_048_576 and settings.db_pool_max == 4
    assert settings.db_pool_timeout_s == 5.0 and settings.redis_timeout_s == 1.0
    assert settings.version == "0.1.0"
    assert settings.auth_hook_secrets == () and settings.db_webhook_secret is None
    assert settings.google_certs_url == GOOGLE_CERTS_URL
    assert settings.outbox_webhook_url is None and settings.outbox_webhook_secret is None
    assert settings.outbox_publish is True and settings.outbox_after_response is True
    assert settings.outbox_max_attempts == 8


def test_settings_are_frozen_and_derive_the_auth_urls() -> None:
    settings = load()
    with pytest.raises(AttributeError):
        settings.db_pool_max = 9  # type: ignore[misc]
    changed = settings._replace(db_pool_max=9)
    assert (changed.db_pool_max, settings.db_pool_max) == (9, 4)
    assert settings.jwt_issuer == "https://abc.supabase.co/auth/v1"
    assert settings.jwks_url == "https://abc.supabase.co/auth/v1/.well-known/jwks.json"


def test_load_settings_reads_the_process_environment_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in BASE.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DB_POOL_MAX", "11")
    assert load_settings().db_pool_max == 11


# ---- URLs ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SUPABASE_URL", "abc.supabase.co"),
        ("SUPABASE_URL", "ftp://abc.supabase.co"),
        ("SUPABASE_URL", "https://"),
        ("SUPABASE_URL", "postgresql://db/app"),
        ("DATABASE_URL", "https://db.internal/app"),
        ("DATABASE_URL", "postgres://"),
        ("DATABASE_URL", "mysql://db/app"),
        ("UPSTASH_REDIS_REST_URL", "redis://eu1-redis.upstash.io"),
        ("GOOGLE_CERTS_URL", "www.googleapis.com/oauth2/v3/certs"),
        ("OUTBOX_WEBHOOK_URL", "hooks.example.com"),
    ],
)
def test_a_malformed_url_is_named_with_its_schemes(name: str, value: str) -> None:
    message = problem({**BASE, name: value, "OUTBOX_WEBHOOK_SECRET": whsec(24)})
    assert message.startswith(f"setting {name} must be a ")
    assert " URL, got " in message


def test_database_urls_take_both_schemes_and_a_socket_in_the_query() -> None:
    assert load(DATABASE_URL="postgres://u@h/d").database_url == "postgres://u@h/d"
    socket = "postgresql:///app?host=/var/run/postgresql"
    assert load(DATABASE_URL=socket).database_url == socket


def test_a_malformed_database_url_does_not_echo_its_password() -> None:
    """Cold-start errors go to logs; DATABASE_URL usually carries the database password.

    A SQLAlchemy-style URL is a likely mistake, and its password must not land in the log line.
    """
    message = problem({**BASE, "DATABASE_URL": "postgresql+psycopg://app:s3cret-pw@db/app"})
    assert message.startswith("setting DATABASE_URL must be a postgres/postgresql URL")
    assert "s3cret-pw" not in message


# ---- numbers and flags -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("MAX_BODY_BYTES", "1MB", "must be an integer, got '1MB'"),
        ("MAX_BODY_BYTES", "0", "must be at least 1, got 0"),
        ("DB_POOL_MAX", "2.5", "must be an integer"),
        ("DB_POOL_MAX", "-1", "must be at least 1"),
        ("DB_STATEMENT_TIMEOUT_MS", "0", "must be at least 1"),
        ("TRUSTED_PROXY_HOPS", "-1", "must be at least 0, got -1"),
        ("TRUSTED_PROXY_HOPS", "one", "must be an integer"),
        ("ATTACHMENT_MAX_BYTES", "0", "must be at least 1"),
        ("OUTBOX_MAX_ATTEMPTS", "0", "must be at least 1"),
        ("DB_POOL_TIMEOUT_S", "5s", "must be a number, got '5s'"),
        ("DB_POOL_TIMEOUT_S", "0", "must be positive"),
        ("UPSTASH_TIMEOUT_S", "-1", "must be positive"),
        ("JWKS_MIN_REFRESH_S", "soon", "must be a number"),
        ("JWKS_MAX_AGE_S", "0.0", "must be positive"),
        ("OUTBOX_BACKOFF_S", "-0.5", "must be positive"),
        ("OUTBOX_LEASE_S", "x", "must be a number"),
        ("OUTBOX_PUBLISH", "maybe", "must be true or false, got 'maybe'"),
        ("OUTBOX_AFTER_RESPONSE", "2", "must be true or false"),
    ],
)
def test_a_malformed_number_or_flag_is_named(name: str, value: str, says: str) -> None:
    message = problem({**BASE, name: value})
    assert message.startswith(f"setting {name} ")
    assert says in message


def test_nan_is_not_a_number_of_seconds() -> None:
    """`float("nan")` parses, and `nan <= 0` is False: a NaN timeout must still be refused."""
    names = ["DB_POOL_TIMEOUT_S", "UPSTASH_TIMEOUT_S", "JWKS_MAX_AGE_S", "OUTBOX_LEASE_S"]
    accepted = []
    for name in names:
        try:
            load_settings({**BASE, name: "nan"})
        except SettingsError as exc:
            assert str(exc).startswith(f"setting {name} ")
        else:
            accepted.append(name)
    assert accepted == [], f"NaN accepted for {', '.join(accepted)}"


def test_numbers_are_parsed_and_empty_means_default() -> None:
    settings = load(
        MAX_BODY_BYTES="2048",
        DB_POOL_MAX=" 8 ",
        DB_POOL_TIMEOUT_S="2.5",
        UPSTASH_TIMEOUT_S="",
        OUTBOX_MAX_ATTEMPTS="3",
        TRUSTED_PROXY_HOPS="0",
    )
    assert settings.max_body_bytes == 2048 and settings.db_pool_max == 8
    assert settings.db_pool_timeout_s == 2.5 and settings.redis_timeout_s == 1.0
    assert settings.outbox_max_attempts == 3 and settings.trusted_proxy_hops == 0


@pytest.mark.parametrize(
    ("raw", "value"),
    [("1", True), ("true", True), ("YES", True), (" On ", True),
     ("0", False), ("False", False), ("no", False), ("off", False), ("", True)],
)  # fmt: skip
def test_flags(raw: str, value: bool) -> None:
    settings = load(OUTBOX_PUBLISH=raw, OUTBOX_AFTER_RESPONSE=raw)
    assert settings.outbox_publish is value and settings.outbox_after_response is value


# ---- lists, strings, proxies -----------------------------------------------------------------


def test_allowed_origins_and_content_types_are_trimmed_lists() -> None:
    settings = load(
        ALLOWED_ORIGINS=" https://app.example.com/ ,https://admin.example.com,, ",
        ATTACHMENT_CONTENT_TYPES="image/png, application/pdf",
        APP_VERSION="1.2.3",
    )
    assert settings.allowed_origins == ("https://app.example.com", "https://admin.example.com")
    assert settings.attachment_content_types == ("image/png", "application/pdf")
    assert settings.version == "1.2.3"


def test_cloud_run_trusts_one_proxy_hop_by_default() -> None:
    assert load(K_SERVICE="tasks").trusted_proxy_hops == 1
    assert load(K_SERVICE="tasks", TRUSTED_PROXY_HOPS="2").trusted_proxy_hops == 2
    assert load(K_SERVICE="tasks", TRUSTED_PROXY_HOPS="0").trusted_proxy_hops == 0
    assert load(K_SERVICE="").trusted_proxy_hops == 0
    assert load(TRUSTED_PROXY_HOPS="3").trusted_proxy_hops == 3


def test_the_jwt_secret_needs_32_characters_and_is_not_echoed() -> None:
    message = problem({**BASE, "SUPABASE_JWT_SECRET": "short-secret-31-characters-long"[:31]})
    assert message == "setting SUPABASE_JWT_SECRET must be at least 32 characters"
    assert load(SUPABASE_JWT_SECRET="j" * 32).jwt_secret == "j" * 32
    assert load(SUPABASE_JWT_SECRET="  ").jwt_secret is None


def test_optional_keys_are_none_when_blank() -> None:
    settings = load(
        SUPABASE_ANON_KEY=" ", SUPABASE_PUBLISHABLE_KEY="", SUPABASE_SERVICE_ROLE_KEY=" "
    )
    assert settings.anon_key is None and settings.service_role_key is None
    assert settings.publishable_key is None and settings.secret_keys == ()
    assert settings.admin_key is None


# ---- API keys: new (sb_publishable_, sb_secret_) and legacy (JWT) ----------------------------

SECOND_SECRET = "sb_secret_" + "r" * 32


def test_a_project_with_only_new_keys() -> None:
    settings = load(
        SUPABASE_PUBLISHABLE_KEY=DEV_PUBLISHABLE_KEY, SUPABASE_SECRET_KEY=DEV_SECRET_KEY
    )
    assert settings.publishable_key == DEV_PUBLISHABLE_KEY
    assert settings.secret_keys == (DEV_SECRET_KEY,)
    assert settings.anon_key is None and settings.service_role_key is None
    assert settings.jwt_secret is None  # the JWKS alone verifies tokens
    assert settings.admin_key == DEV_SECRET_KEY


def test_a_project_with_only_legacy_keys() -> None:
    settings = load(SUPABASE_ANON_KEY=DEV_ANON_KEY, SUPABASE_SERVICE_ROLE_KEY=DEV_SERVICE_ROLE_KEY)
    assert settings.publishable_key is None and settings.secret_keys == ()
    assert settings.admin_key == DEV_SERVICE_ROLE_KEY


def test_with_both_kinds_the_secret_key_makes_our_calls() -> None:
    settings = load(
        SUPABASE_SECRET_KEY=f" {DEV_SECRET_KEY} , {SECOND_SECRET} ,",
        SUPABASE_SERVICE_ROLE_KEY=DEV_SERVICE_ROLE_KEY,
    )
    assert settings.secret_keys == (DEV_SECRET_KEY, SECOND_SECRET)  # a rotation: both accepted
    assert settings.admin_key == DEV_SECRET_KEY


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        (
            "SUPABASE_SECRET_KEY",
            DEV_SERVICE_ROLE_KEY,
            "setting SUPABASE_SECRET_KEY: the key must be sb_secret_..., got a JWT (a legacy"
            " anon or service role key); the legacy service role key belongs in"
            " SUPABASE_SERVICE_ROLE_KEY",
        ),
        (
            "SUPABASE_SECRET_KEY",
            f"{DEV_SECRET_KEY},{DEV_PUBLISHABLE_KEY}",
            "setting SUPABASE_SECRET_KEY: key 2 must be sb_secret_..., got a publishable key"
            " (sb_publishable_...); a publishable key cannot act as the service role",
        ),
        (
            "SUPABASE_PUBLISHABLE_KEY",
            DEV_SECRET_KEY,
            "setting SUPABASE_PUBLISHABLE_KEY must be sb_publishable_..., got a secret key"
            " (sb_secret_...); a secret key must never be published: it belongs in"
            " SUPABASE_SECRET_KEY",
        ),
        (
            "SUPABASE_PUBLISHABLE_KEY",
            DEV_ANON_KEY,
            "setting SUPABASE_PUBLISHABLE_KEY must be sb_publishable_..., got a JWT (a legacy"
            " anon or service role key); the legacy anon key belongs in SUPABASE_ANON_KEY",
        ),
        (
            "SUPABASE_SERVICE_ROLE_KEY",
            DEV_SECRET_KEY,
            "setting SUPABASE_SERVICE_ROLE_KEY must be a JWT, got a secret key (sb_secret_...);"
            " it belongs in SUPABASE_SECRET_KEY",
        ),
        (
            "SUPABASE_SERVICE_ROLE_KEY",
            DEV_ANON_KEY,
            "setting SUPABASE_SERVICE_ROLE_KEY must be a JWT with role service_role, got one"
            " with role anon",
        ),
        (
            "SUPABASE_ANON_KEY",
            DEV_PUBLISHABLE_KEY,
            "setting SUPABASE_ANON_KEY must be a JWT, got a publishable key (sb_publishable_...);"
            " it belongs in SUPABASE_PUBLISHABLE_KEY",
        ),
        (
            "SUPABASE_ANON_KEY",
            "eyJhbGciOiJIUzI1NiJ9.bm90LWpzb24.c2ln",
            "setting SUPABASE_ANON_KEY must be a JWT with role anon, got one with no role",
        ),
        (
            "SUPABASE_SECRET_KEY",
            "service-role-password",
            "setting SUPABASE_SECRET_KEY: the key must be sb_secret_..., got neither an sb_ key"
            " nor a JWT",
        ),
    ],
)
def test_a_key_of_the_wrong_kind_fails_with_one_line_that_never_echoes_it(
    name: str, value: str, expected: str
) -> None:
    message = problem({**BASE, name: value})
    assert message == expected
    for part in value.split(","):
        assert part not in message


# ---- Auth hook secrets -----------------------------------------------------------------------


def test_auth_hook_secrets_are_pipe_separated() -> None:
    one, two = "v1," + whsec(16), "v1," + whsec(32)
    assert load(AUTH_HOOK_SECRETS=one).auth_hook_secrets == (one,)
    assert load(AUTH_HOOK_SECRETS=f" {one} | {two} |").auth_hook_secrets == (one, two)
    assert load(AUTH_HOOK_SECRETS=" | ").auth_hook_secrets == ()


@pytest.mark.parametrize(
    ("secrets", "number"),
    [
        (whsec(32), 1),  # without v1,
        ("v1," + base64.b64encode(b"k" * 32).decode(), 1),  # without whsec_
        ("v1,whsec_" + base64.b64encode(b"k" * 15).decode(), 1),  # 15 bytes
        ("v1,whsec_not*base64!", 1),
        ("v1,whsec_", 1),
        ("v1," + whsec(16) + "|v2," + whsec(16), 2),
        ("v1," + whsec(16) + "|v1,whsec_short", 2),
    ],
)
def test_a_malformed_auth_hook_secret_is_named_by_position_not_echoed(
    secrets: str, number: int
) -> None:
    message = problem({**BASE, "AUTH_HOOK_SECRETS": secrets})
    assert message == (
        f"setting AUTH_HOOK_SECRETS: secret {number} must be v1,whsec_<base64 of at least 16 bytes>"
    )


# ---- database webhook and outbox secrets -----------------------------------------------------


def test_the_db_webhook_secret_needs_32_characters() -> None:
    assert problem({**BASE, "DB_WEBHOOK_SECRET": "s" * 31}) == (
        "setting DB_WEBHOOK_SECRET must be at least 32 characters"
    )
    assert load(DB_WEBHOOK_SECRET="s" * 32).db_webhook_secret == "s" * 32
    assert load(DB_WEBHOOK_SECRET=" ").db_webhook_secret is None


def test_the_outbox_webhook_needs_its_secret() -> None:
    message = problem({**BASE, "OUTBOX_WEBHOOK_URL": "https://hooks.example.com/in"})
    assert message == "setting OUTBOX_WEBHOOK_SECRET is missing (OUTBOX_WEBHOOK_URL is set)"
    settings = load(
        OUTBOX_WEBHOOK_URL="https://hooks.example.com/in/", OUTBOX_WEBHOOK_SECRET=whsec(24)
    )
    assert settings.outbox_webhook_url == "https://hooks.example.com/in"
    assert settings.outbox_webhook_secret == whsec(24)


@pytest.mark.parametrize(
    "secret",
    [whsec(23), "whsec_***", "whsec_", "whsec_" + base64.b64encode(b"k" * 40).decode()[:-1]],
)
def test_a_short_or_malformed_outbox_secret_is_refused_without_echo(secret: str) -> None:
    message = problem({**BASE, "OUTBOX_WEBHOOK_SECRET": secret})
    assert message == (
        "setting OUTBOX_WEBHOOK_SECRET must be whsec_ followed by at least 24 base64 bytes"
    )


def test_a_blank_outbox_url_means_no_webhook() -> None:
    settings = load(OUTBOX_WEBHOOK_URL="  ")
    assert settings.outbox_webhook_url is None and settings.outbox_webhook_secret is None


# ---- scheduler -------------------------------------------------------------------------------


def test_scheduler_settings() -> None:
    settings = load(
        SCHEDULER_SERVICE_ACCOUNT=" scheduler@proj.iam.gserviceaccount.com ",
        SCHEDULER_AUDIENCE="https://tasks-xyz.a.run.app",
        GOOGLE_CERTS_URL="http://127.0.0.1:9/certs/",
    )
    assert settings.scheduler_service_account == "scheduler@proj.iam.gserviceaccount.com"
    assert settings.scheduler_audience == "https://tasks-xyz.a.run.app"
    assert settings.google_certs_url == "http://127.0.0.1:9/certs"
    blank = load(SCHEDULER_SERVICE_ACCOUNT="", SCHEDULER_AUDIENCE=" ", GOOGLE_CERTS_URL=" ")
    assert blank.scheduler_service_account is None and blank.scheduler_audience is None
    assert blank.google_certs_url == GOOGLE_CERTS_URL
