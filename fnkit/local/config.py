"""The settings the local services share, and how `make dev` reads them from its environment.

The names follow `supabase/config.toml` and its `supabase/.env`, so one set of variables
configures both paths (`make dev` and `supabase start`):

- `AUTH_HOOKS_ENABLED` (default true here): call the Auth hooks on sign-up and token issue.
- `AUTH_HOOK_CUSTOM_ACCESS_TOKEN_URI`, `AUTH_HOOK_BEFORE_USER_CREATED_URI`: where; by default
  the `hooks` function on the same base URL.
- `AUTH_HOOK_SECRETS`: Standard Webhooks secrets (`v1,whsec_...`, `|` between several; the
  first signs).
- `AUTH_ENABLE_CONFIRMATIONS` (default false, as `[auth.email] enable_confirmations`): when
  true, a sign-up must confirm its email (the link is in the local inbox) before signing in.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from fnkit.devenv import (
    DEV_ANON_KEY,
    DEV_AUTH_HOOK_SECRET,
    DEV_JWT_SECRET,
    DEV_PUBLISHABLE_KEY,
    DEV_SECRET_KEY,
    DEV_SERVICE_ROLE_KEY,
)
from fnkit.local.keys import KeyRing

__all__ = ["LocalConfig"]

MiB = 1024 * 1024


@dataclass
class LocalConfig:
    """What every local service needs to know. Mutable: tests point the hooks after start."""

    base_url: str
    """The one origin clients use (`http://127.0.0.1:8080`); tokens' `iss` is base_url/auth/v1."""
    database_url: str
    """A superuser URL. Auth writes `auth.*` as GoTrue's own admin role does; Storage switches
    to the caller's role for every query, so the policies decide."""
    data_dir: Path
    """Git-ignored state: Storage's files under `storage/`, the Auth mail inbox under `inbox/`."""
    keys: KeyRing
    jwt_secret: str = DEV_JWT_SECRET
    """The legacy HS256 secret: the anon and service role keys are signed with it, and tokens
    signed with it are still accepted where Supabase accepts them."""
    anon_key: str = DEV_ANON_KEY
    service_role_key: str = DEV_SERVICE_ROLE_KEY
    publishable_key: str = DEV_PUBLISHABLE_KEY
    """`sb_publishable_...`: the gateway hands the services an anon JWT in its place."""
    secret_keys: tuple[str, ...] = (DEV_SECRET_KEY,)
    """`sb_secret_...` keys (several during a rotation): a service role JWT in their place."""
    jwt_expiry_s: int = 3600
    enable_confirmations: bool = False
    site_url: str = "http://127.0.0.1:3000"
    hook_secrets: str = DEV_AUTH_HOOK_SECRET
    custom_access_token_uri: str | None = None
    before_user_created_uri: str | None = None
    file_size_limit: int = 50 * MiB
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def issuer(self) -> str:
        return f"{self.base_url}/auth/v1"

    @classmethod
    def from_env(
        cls,
        base_url: str,
        database_url: str,
        data_dir: Path,
        env: Mapping[str, str] | None = None,
    ) -> LocalConfig:
        """`make dev`'s settings: the signing key kept in data_dir, hooks on by default."""
        env = os.environ if env is None else env
        hooks_on = _flag(env.get("AUTH_HOOKS_ENABLED"), default=True)
        functions = f"{base_url}/functions/v1/hooks"
        return cls(
            base_url=base_url,
            database_url=database_url,
            data_dir=data_dir,
            keys=KeyRing.load_or_create(data_dir / "auth" / "signing-key.pem"),
            jwt_secret=env.get("SUPABASE_JWT_SECRET") or DEV_JWT_SECRET,
            anon_key=env.get("SUPABASE_ANON_KEY") or DEV_ANON_KEY,
            service_role_key=env.get("SUPABASE_SERVICE_ROLE_KEY") or DEV_SERVICE_ROLE_KEY,
            publishable_key=env.get("SUPABASE_PUBLISHABLE_KEY") or DEV_PUBLISHABLE_KEY,
            secret_keys=_keys(env.get("SUPABASE_SECRET_KEY")) or (DEV_SECRET_KEY,),
            enable_confirmations=_flag(env.get("AUTH_ENABLE_CONFIRMATIONS"), default=False),
            hook_secrets=env.get("AUTH_HOOK_SECRETS") or DEV_AUTH_HOOK_SECRET,
            custom_access_token_uri=(
                (env.get("AUTH_HOOK_CUSTOM_ACCESS_TOKEN_URI") or f"{functions}/custom-access-token")
                if hooks_on
                else None
            ),
            before_user_created_uri=(
                (env.get("AUTH_HOOK_BEFORE_USER_CREATED_URI") or f"{functions}/before-user-created")
                if hooks_on
                else None
            ),
        )


def _keys(value: str | None) -> tuple[str, ...]:
    """A comma-separated list of keys (a rotation), blanks dropped."""
    return tuple(key.strip() for key in (value or "").split(",") if key.strip())


def _flag(value: str | None, *, default: bool) -> bool:
    if value is None or value.strip() == "":
        return default
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {value!r}")
