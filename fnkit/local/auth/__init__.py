"""Placeholder: the local Auth service is being written. Serves the JWKS only."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request, Response

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

    from fnkit.local.config import LocalConfig


def create_app(config: LocalConfig) -> WSGIApplication:
    def app(environ: Any, start_response: Any) -> Any:
        if Request(environ).path == "/.well-known/jwks.json":
            body = json.dumps(config.keys.jwks())
            return Response(body, content_type="application/json")(environ, start_response)
        return Response("{}", 404)(environ, start_response)

    return app
