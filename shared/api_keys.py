"""Supabase's API keys as settings: which kind a value is, and a clear refusal when it is the
wrong one.

Two generations live side by side during the migration Supabase asks of every project:
publishable and secret keys (`sb_publishable_...`, `sb_secret_...`, not JWTs) and the legacy
JWT-based anon and service role keys. A value of the wrong kind (a JWT where a secret key is
expected, a publishable key where a secret one is needed) is refused at start; the message
names the setting and what kind of value it holds, never the value. `shared.settings` turns
the refusal (ValueError) into its one-line SettingsError.
"""

from __future__ import annotations

__all__ = [
    "PUBLISHABLE_PREFIX",
    "SECRET_PREFIX",
    "anon_key",
    "key_kind",
    "publishable_key",
    "secret_keys",
    "service_role_key",
]

PUBLISHABLE_PREFIX = "sb_publishable_"
SECRET_PREFIX = "sb_secret_"
_KINDS = {
    "publishable": "a publishable key (sb_publishable_...)",
    "secret": "a secret key (sb_secret_...)",
    "jwt": "a JWT (a legacy anon or service role key)",
    "other": "neither an sb_ key nor a JWT",
}


def key_kind(value: str) -> str:
    """`publishable`, `secret`, `jwt` or `other`."""
    if value.startswith(PUBLISHABLE_PREFIX):
        return "publishable"
    if value.startswith(SECRET_PREFIX):
        return "secret"
    if value.count(".") == 2 and value.startswith("eyJ"):
        return "jwt"
    return "other"


def publishable_key(value: str | None) -> str | None:
    """SUPABASE_PUBLISHABLE_KEY: an `sb_publishable_...` key, or nothing."""
    if value is not None and (kind := key_kind(value)) != "publishable":
        where = {
            "secret": "; a secret key must never be published: it belongs in SUPABASE_SECRET_KEY",
            "jwt": "; the legacy anon key belongs in SUPABASE_ANON_KEY",
        }.get(kind, "")
        raise ValueError(
            f"setting SUPABASE_PUBLISHABLE_KEY must be sb_publishable_..., got {_KINDS[kind]}"
            + where
        )
    return value


def secret_keys(value: str | None) -> tuple[str, ...]:
    """SUPABASE_SECRET_KEY: `sb_secret_...` keys separated by commas (several while one is
    being rotated out)."""
    keys = tuple(part.strip() for part in (value or "").split(",") if part.strip())
    for number, key in enumerate(keys, 1):
        if (kind := key_kind(key)) != "secret":
            where = {
                "publishable": "; a publishable key cannot act as the service role",
                "jwt": "; the legacy service role key belongs in SUPABASE_SERVICE_ROLE_KEY",
            }.get(kind, "")
            label = f"key {number}" if len(keys) > 1 else "the key"
            raise ValueError(
                f"setting SUPABASE_SECRET_KEY: {label} must be sb_secret_..., got {_KINDS[kind]}"
                + where
            )
    return keys


def anon_key(value: str | None) -> str | None:
    """SUPABASE_ANON_KEY: the legacy anon key, a JWT whose `role` is anon."""
    return _legacy_key(value, "SUPABASE_ANON_KEY", "anon")


def service_role_key(value: str | None) -> str | None:
    """SUPABASE_SERVICE_ROLE_KEY: the legacy service role key, a JWT whose `role` is
    service_role."""
    return _legacy_key(value, "SUPABASE_SERVICE_ROLE_KEY", "service_role")


def _legacy_key(value: str | None, name: str, role: str) -> str | None:
    """A legacy JWT-based key: a JWT whose `role` claim is `role` (signature not checked here:
    Supabase checks it, and we only ever compare the value)."""
    import base64
    import binascii
    import json

    if value is None:
        return None
    kind = key_kind(value)
    if kind != "jwt":
        new = "SUPABASE_PUBLISHABLE_KEY" if kind == "publishable" else "SUPABASE_SECRET_KEY"
        where = f"; it belongs in {new}" if kind in ("publishable", "secret") else ""
        raise ValueError(f"setting {name} must be a JWT, got {_KINDS[kind]}{where}")
    payload = value.split(".")[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (binascii.Error, ValueError):
        claims = None
    found = claims.get("role") if isinstance(claims, dict) else None
    if found != role:
        shown = f"role {found}" if found in ("anon", "service_role", "authenticated") else "no role"
        raise ValueError(f"setting {name} must be a JWT with role {role}, got one with {shown}")
    return value
