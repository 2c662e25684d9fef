"""Placeholder: the local Storage service is being written."""

from __future__ import annotations

from typing import TYPE_CHECKING

from werkzeug.wrappers import Response

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

    from fnkit.local.config import LocalConfig


def create_app(config: LocalConfig) -> WSGIApplication:
    return Response('{"message":"not yet served"}', 404, content_type="application/json")
