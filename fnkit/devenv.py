"""The documented local-development defaults, and the settings `make dev` serves with.

These are the Supabase CLI's well-known local values (public, for development only); a real
deployment takes every one of them from its own environment.
"""

from __future__ import annotations

import os

DEV_SUPABASE_URL = "http://127.0.0.1:54321"
DEV_JWT_SECRET = "super-secret-jwt-token-with-at-least-32-characters-long"
# The Supabase CLI's local API keys, the ones `supabase status` prints for every local stack
# (supabase/cli, pkg/config/apikeys.go: defaultPublishableKey, defaultSecretKey).
DEV_PUBLISHABLE_KEY = "sb_publishable_ACJWlzQHlZjBrEguHvfOxg_3BJgxAaH"
DEV_SECRET_KEY = "sb_secret_N7UND0UgjKTVK-Uodkm0Hg_xSvEMPvz"
# The Supabase CLI's legacy demo keys (JWT-based anon and service_role), signed with
# DEV_JWT_SECRET, for clients that have not moved to the keys above.
DEV_ANON_KEY = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6ImFub24iLCJleHAi"
    "OjE5ODM4MTI5OTZ9.CRXP1A7WOeoJeXxjNni43kdQwgnWNReilDMblYTn_I0"
)
DEV_SERVICE_ROLE_KEY = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6InNlcnZpY2Vfcm9s"
    "ZSIsImV4cCI6MTk4MzgxMjk5Nn0.EGIM96RAZx35lJzdJsyH-qQwv8Hdp7fsn3W0YpN81IU"
)
# Local-development only. The Auth hook secret in Supabase's form (`v1,whsec_<base64>`; the
# base64 is of "fnkit-local-auth-hook-secret-000"), and the bearer secret database webhooks send.
DEV_AUTH_HOOK_SECRET = "v1,whsec_Zm5raXQtbG9jYWwtYXV0aC1ob29rLXNlY3JldC0wMDA="
DEV_DB_WEBHOOK_SECRET = "fnkit-local-database-webhook-secret-0000"
DEV_UPSTASH_PORT = 8079
DEV_PORT = 8080
DEV_ALLOWED_ORIGINS = "http://localhost:3000,http://127.0.0.1:3000,http://localhost:5173"


def supabase_api_answers(url: str = DEV_SUPABASE_URL, timeout: float = 0.2) -> bool:
    """Whether the Supabase CLI's API gateway (`supabase start`) is running."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout):
            return True
    except OSError:
        return False


def local_supabase_url(port: int = DEV_PORT) -> str:
    """The one base URL of `make dev`: functions, Auth and Storage (fnkit.local.gateway)."""
    return f"http://127.0.0.1:{port}"


def dev_environment(
    database_url: str, upstash_url: str, upstash_token: str, supabase_url: str | None = None
) -> dict[str, str]:
    """Settings for functions served locally; values already in the environment win.

    SUPABASE_URL is the Supabase CLI's stack (`supabase start`) when its API answers, else the
    local services `make dev` serves beside the functions (`supabase_url`, the dev server's
    own base URL), so Auth admin and Storage calls reach a real server either way.

    The publishable and secret keys come first; the legacy anon and service role keys and
    the JWT secret follow, for older clients and for `fnkit token`'s HS256 tokens.
    """
    if supabase_url is None:
        supabase_url = DEV_SUPABASE_URL if supabase_api_answers() else local_supabase_url()
    defaults = {
        "SUPABASE_URL": supabase_url,
        "SUPABASE_PUBLISHABLE_KEY": DEV_PUBLISHABLE_KEY,
        "SUPABASE_SECRET_KEY": DEV_SECRET_KEY,
        "SUPABASE_ANON_KEY": DEV_ANON_KEY,
        "SUPABASE_SERVICE_ROLE_KEY": DEV_SERVICE_ROLE_KEY,
        "SUPABASE_JWT_SECRET": DEV_JWT_SECRET,
        "DATABASE_URL": database_url,
        "UPSTASH_REDIS_REST_URL": upstash_url,
        "UPSTASH_REDIS_REST_TOKEN": upstash_token,
        "ALLOWED_ORIGINS": DEV_ALLOWED_ORIGINS,
        "AUTH_HOOK_SECRETS": DEV_AUTH_HOOK_SECRET,
        "DB_WEBHOOK_SECRET": DEV_DB_WEBHOOK_SECRET,
    }
    merged = {key: os.environ.get(key) or value for key, value in defaults.items()}
    return {key: value for key, value in merged.items() if value}
