"""One origin for every local service, routed by path prefix as Supabase's API gateway does.

Each service is a WSGI app that sees its paths without the prefix (`/signup`, not
`/auth/v1/signup`): werkzeug's DispatcherMiddleware moves the prefix to SCRIPT_NAME.
Everything else (`/functions/v1/...`, `/docs`, `/`) goes to the functions app.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from fnkit.local.config import LocalConfig

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

__all__ = ["create_gateway", "service_mounts"]


def service_mounts(config: LocalConfig) -> dict[str, WSGIApplication]:
    """The local Supabase services, by the path prefix they answer under."""
    from fnkit.local.auth import create_app as auth_app
    from fnkit.local.storage import create_app as storage_app

    return {"/auth/v1": auth_app(config), "/storage/v1": storage_app(config)}


def create_gateway(
    config: LocalConfig,
    functions_app: WSGIApplication,
    extra: Mapping[str, WSGIApplication] | None = None,
) -> WSGIApplication:
    """The functions behind `/functions/v1`, Auth and Storage beside them, on one app."""
    from werkzeug.middleware.dispatcher import DispatcherMiddleware

    return DispatcherMiddleware(functions_app, {**service_mounts(config), **(extra or {})})
